"""The events a change queued for webhook delivery (the outbox), as the catalogue shows them.

`recorded` reads the outbox straight from the database; `message` is what a receiver gets
for an event; `catalogued` checks events against the schemas `GET /v1/webhooks/event-types`
publishes and against the personal details they must never carry.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastapi import FastAPI
from jsonschema import Draft202012Validator
from sqlmodel import col, select

from app.models.event import OutboxEvent
from tests.builders.api import expect


async def recorded(application: FastAPI, *types: str) -> list[OutboxEvent]:
    """The outbox's events (of `types`, when given) in the order they were recorded."""
    async with application.state.session_factory() as session:
        query = select(OutboxEvent).order_by(col(OutboxEvent.id))
        if types:
            query = query.where(col(OutboxEvent.type).in_(types))
        return list((await session.exec(query)).all())


def message(event: OutboxEvent) -> dict[str, Any]:
    """The body a receiver gets for the event."""
    return {"type": event.type, "timestamp": event.occurred_at.isoformat(), "data": event.payload}


async def catalogued(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    events: list[OutboxEvent],
    never: list[str],
) -> None:
    """Each event's message validates against its type's published schema, and none of
    `never` (names, UPNs, dates of birth, text people wrote) appears in any payload."""
    listed = expect(await http.get("/v1/webhooks/event-types", headers=headers))["items"]
    schemas = {item["type"]: item["message_schema"] for item in listed}
    for event in events:
        validator = Draft202012Validator(schemas[event.type])
        errors = [e.message for e in validator.iter_errors(message(event))]
        assert not errors, (event.type, event.payload, errors)
        text = json.dumps(event.payload).lower()
        for value in never:
            assert value.lower() not in text, (value, event.type, event.payload)
