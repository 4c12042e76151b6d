"""The database under the app, read and changed straight, for what the API does not show:
running counts, queued events, a row's timestamps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Uuid, column, table, text, update
from sqlmodel.sql.sqltypes import UTCDateTime


async def rows(application: FastAPI, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """The rows a read-only query of the app's database gives, as tuples."""
    async with application.state.engine.connect() as connection:
        result = await connection.execute(text(sql), params)
        return [tuple(row) for row in result.all()]


async def move_back(
    application: FastAPI, table_name: str, time_column: str, row_id: str, by: timedelta
) -> None:
    """Set a row's timestamp to `by` ago: the only way to test a rule about elapsed time
    (a case opened 100 days ago, a referral waiting for a week)."""
    moved = table(table_name, column("id", Uuid()), column(time_column, UTCDateTime()))
    async with application.state.session_factory() as session:
        await session.exec(
            update(moved)
            .where(moved.c.id == uuid.UUID(row_id))
            .values({time_column: datetime.now(UTC) - by})
        )
        await session.commit()
