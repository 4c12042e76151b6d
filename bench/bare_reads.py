"""The bare baseline for bench/reads.py: FastAPI and asyncpg reading the same rows Liaison's
audited reads return, with no authentication, reach, audit, logging or middleware. What is
left is the floor: HTTP, routing, one or two statements and JSON.

Served by `uvicorn bench.bare_reads:app`; the database comes from BARE_READS_DSN.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException

pool: asyncpg.Pool | None = None


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    global pool
    pool = await asyncpg.create_pool(os.environ["BARE_READS_DSN"], min_size=10, max_size=10)
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


def _db() -> asyncpg.Pool:
    assert pool is not None
    return pool


@app.get("/pupils/{pupil_id}")
async def read_pupil(pupil_id: uuid.UUID) -> dict[str, Any]:
    row = await _db().fetchrow("SELECT * FROM pupil WHERE id = $1", pupil_id)
    if row is None:
        raise HTTPException(404)
    return dict(row)


@app.get("/pupils/{pupil_id}/attendance")
async def read_attendance(pupil_id: uuid.UUID, start: date, end: date) -> dict[str, Any]:
    rows = await _db().fetch(
        "SELECT date, category, late FROM attendance_mark "
        "WHERE pupil_id = $1 AND date >= $2 AND date <= $3",
        pupil_id,
        start,
        end,
    )
    weeks: dict[str, dict[str, int]] = {}
    for row in rows:
        week = weeks.setdefault(row["date"].isoformat(), {"sessions": 0, "late": 0})
        week["sessions"] += 1
        week["late"] += int(row["late"])
    return {"pupil_id": str(pupil_id), "sessions": len(rows), "weeks": weeks}


@app.get("/cases/{case_id}")
async def read_case(case_id: uuid.UUID) -> dict[str, Any]:
    db = _db()
    async with db.acquire() as connection:
        case = await connection.fetchrow("SELECT * FROM early_help_case WHERE id = $1", case_id)
        if case is None:
            raise HTTPException(404)
        children = await connection.fetch(
            "SELECT * FROM case_child WHERE case_id = $1 ORDER BY position", case_id
        )
    return {**dict(case), "children": [dict(child) for child in children]}
