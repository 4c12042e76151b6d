"""Legal holds and the retention run, for tests: place and lift holds through the API, run
retention as on a chosen day, and count rows straight from the database."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from app.services.retention import Hooks, RunSummary, run_retention
from app.services.retention_schedule import load
from tests.builders.api import created, expect

HOLDS = "/v1/legal-holds"


async def place_hold(
    http: httpx.AsyncClient, headers: dict[str, str], kind: str, **subject: str
) -> dict[str, Any]:
    body = {"kind": kind, "reason": "Inquiry into the family's case", **subject}
    return await created(http, HOLDS, body, headers)


async def lift_hold(http: httpx.AsyncClient, headers: dict[str, str], hold_id: str) -> Any:
    response = await http.post(
        f"{HOLDS}/{hold_id}/lift", json={"reason": "Inquiry closed"}, headers=headers
    )
    return expect(response)


async def retain(
    application: FastAPI,
    today: date,
    *,
    dry_run: bool = False,
    batch_size: int = 500,
    only: list[str] | None = None,
    hooks: Hooks | None = None,
    sessions: Any = None,
) -> RunSummary:
    """A retention run over the app's database with the default schedule, as on `today`."""
    return await run_retention(
        sessions or application.state.session_factory,
        load(None),
        today=today,
        dry_run=dry_run,
        batch_size=batch_size,
        only=only,
        hooks=hooks,
        store=application.state.document_store,
    )


def disposed(summary: RunSummary, record_type: str) -> int:
    return sum(t.disposed for t in summary.types if t.record_type == record_type)


def held(summary: RunSummary, record_type: str) -> int:
    return sum(t.held for t in summary.types if t.record_type == record_type)


def due(summary: RunSummary, record_type: str) -> int:
    return sum(t.due for t in summary.types if t.record_type == record_type)


async def count(application: FastAPI, model: Any, *conditions: Any) -> int:
    async with application.state.session_factory() as session:
        result = await session.exec(select(func.count()).select_from(model).where(*conditions))
        return int(result.one()[0])


def ids(*values: str) -> list[uuid.UUID]:
    return [uuid.UUID(v) for v in values]
