"""Dates relative to today, and time made to pass for rules about elapsed time."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from fastapi import FastAPI
from sqlalchemy import Uuid, column, table, update
from sqlmodel.sql.sqltypes import UTCDateTime


def today() -> date:
    return datetime.now(UTC).date()


def days_ago(days: int) -> date:
    return today() - timedelta(days=days)


async def move_back(
    application: FastAPI, table_name: str, time_column: str, row_id: str, by: timedelta
) -> None:
    """Set a row's timestamp to `by` ago: the only way to test a rule about elapsed time
    (a case opened 100 days ago, a referral waiting for a week)."""
    rows = table(table_name, column("id", Uuid()), column(time_column, UTCDateTime()))
    async with application.state.session_factory() as session:
        await session.exec(
            update(rows)
            .where(rows.c.id == uuid.UUID(row_id))
            .values({time_column: datetime.now(UTC) - by})
        )
        await session.commit()
