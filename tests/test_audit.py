"""The audit trail: every read or write of child-level data leaves an event, in the same
transaction, and the trail cannot be edited."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.builders.api import items
from tests.builders.schools import pupil, push_roster
from tests.conftest import World


@pytest.fixture
async def setting(client: httpx.AsyncClient, world: World) -> dict[str, Any]:
    school = await world.school()
    mis_credentials = await world.api_client("pupils:write", schools=[school])
    mis = await world.headers(mis_credentials)
    await push_roster(client, school, [pupil(1), pupil(2)], mis)
    practitioner = await world.staff("practitioner", schools=[school])
    dpo = await world.staff("dpo", la_code="202")
    return {
        "school": school,
        "mis": mis,
        "mis_client_id": mis_credentials.client_id,
        "practitioner": practitioner,
        "practitioner_headers": await world.headers(practitioner),
        "dpo": await world.headers(dpo),
    }


async def events(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    return await items(client, "/v1/audit-events", headers, **params)


async def test_roster_push_is_audited_with_its_pupils(
    client: httpx.AsyncClient, setting: dict[str, Any]
) -> None:
    pushed = await events(client, setting["dpo"], action="pupil.roster.push")
    assert len(pushed) == 1
    event = pushed[0]
    assert event["actor"].startswith("client:")
    assert event["client_id"] == setting["mis_client_id"]
    assert event["resource_type"] == "school"
    assert event["resource_id"] == setting["school"]["id"]
    assert len(event["pupil_ids"]) == 2
    assert event["details"]["created"] == 2
    assert event["request_id"]
    assert "Child1" not in str(event)


async def test_reading_a_pupil_is_audited(
    client: httpx.AsyncClient, setting: dict[str, Any]
) -> None:
    headers = setting["practitioner_headers"]
    listed = await client.get("/v1/pupils", headers=headers)
    one = listed.json()["items"][0]
    read = await client.get(
        f"/v1/pupils/{one['id']}", headers={**headers, "X-Request-ID": "trace-abc-123"}
    )
    assert read.status_code == 200
    trail = await events(client, setting["dpo"], pupil_id=one["id"])
    assert [e["action"] for e in trail] == ["pupil.read", "pupil.list", "pupil.roster.push"]
    assert trail[0]["actor"] == f"staff:{setting['practitioner']['id']}"
    assert trail[0]["request_id"] == "trace-abc-123"
    assert trail[0]["pupil_ids"] == [one["id"]]
    listing = trail[1]
    assert len(listing["pupil_ids"]) == 2
    assert listing["details"]["returned"] == 2


async def test_name_searches_are_audited_without_the_name(
    client: httpx.AsyncClient, setting: dict[str, Any]
) -> None:
    await client.get(
        "/v1/pupils", params={"name": "Child1"}, headers=setting["practitioner_headers"]
    )
    event = (await events(client, setting["dpo"], action="pupil.list"))[0]
    assert event["details"]["name_filter"] is True
    assert "Child1" not in str(event)


async def test_filters_by_actor_and_time(
    client: httpx.AsyncClient, setting: dict[str, Any]
) -> None:
    await client.get("/v1/pupils", headers=setting["practitioner_headers"])
    actor = f"staff:{setting['practitioner']['id']}"
    assert {e["action"] for e in await events(client, setting["dpo"], actor=actor)} == {
        "pupil.list"
    }
    now = datetime.now(UTC)
    assert (
        await events(client, setting["dpo"], since=(now + timedelta(minutes=1)).isoformat()) == []
    )
    before = await events(client, setting["dpo"], until=(now + timedelta(minutes=1)).isoformat())
    assert {"pupil.list", "pupil.roster.push"} <= {e["action"] for e in before}
    response = await client.get(
        "/v1/audit-events", params={"since": "2026-01-01T00:00:00"}, headers=setting["dpo"]
    )
    assert response.status_code == 422  # a time without its UTC offset is ambiguous


async def test_trail_pages_newest_first(client: httpx.AsyncClient, setting: dict[str, Any]) -> None:
    for _ in range(4):
        await client.get("/v1/pupils", headers=setting["practitioner_headers"])
    first = await client.get("/v1/audit-events", params={"limit": 2}, headers=setting["dpo"])
    page = first.json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    times = [e["occurred_at"] for e in page["items"]]
    assert times == sorted(times, reverse=True)
    second = await client.get(
        "/v1/audit-events",
        params={"limit": 2, "cursor": page["next_cursor"]},
        headers=setting["dpo"],
    )
    assert second.json()["items"][0]["id"] < page["items"][-1]["id"]


async def test_reading_the_trail_needs_audit_read(
    client: httpx.AsyncClient, setting: dict[str, Any]
) -> None:
    for headers in (setting["practitioner_headers"], setting["mis"]):
        assert (await client.get("/v1/audit-events", headers=headers)).status_code == 403
    await events(client, setting["dpo"])
    assert await events(client, setting["dpo"], action="audit.list")


async def test_a_failed_request_leaves_no_event(
    client: httpx.AsyncClient, setting: dict[str, Any], fresh_app: FastAPI
) -> None:
    before = len(await events(client, setting["dpo"], action="pupil.roster.push"))
    settings = fresh_app.state.settings
    limit = settings.roster_max_pupils
    object.__setattr__(settings, "roster_max_pupils", 1)
    try:
        refused = await push_roster(client, setting["school"], [pupil(1), pupil(2)], setting["mis"])
    finally:
        object.__setattr__(settings, "roster_max_pupils", limit)
    assert refused.status_code == 413
    assert len(await events(client, setting["dpo"], action="pupil.roster.push")) == before


async def test_trail_is_append_only(fresh_app: FastAPI, setting: dict[str, Any]) -> None:
    for statement in [
        "UPDATE audit_event SET action = 'tampered'",
        "DELETE FROM audit_event",
        "DELETE FROM audit_event_pupil",
        f"UPDATE audit_event_pupil SET pupil_id = '{uuid.uuid4().hex}'",
    ]:
        async with fresh_app.state.engine.connect() as connection:
            with pytest.raises(DBAPIError, match="append-only"):
                await connection.execute(text(statement))
            await connection.rollback()
