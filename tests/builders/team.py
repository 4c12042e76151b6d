"""The team around the family and the meetings of a case: members added through the API,
and the bodies the routes take. The case is `tests.builders.casework.family`'s."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.builders.api import created, expect, items
from tests.builders.casework import route
from tests.conftest import World


def moment(days: float = 0, hours: float = 0) -> str:
    """An ISO date-time that long before now (negative: after now)."""
    return (datetime.now(UTC) - timedelta(days=days, hours=hours)).isoformat()


# --- the team -------------------------------------------------------------------------------


def staff_member(username: str, role: str = "Family practitioner", **fields: Any) -> dict[str, Any]:
    return {"kind": "staff", "username": username, "role": role, **fields}


def agency(name: str, role: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "agency", "name": name, "role": role, **fields}


async def join(
    http: httpx.AsyncClient, headers: dict[str, str], case_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    member = await created(http, route(case_id, "team"), body, headers)
    assert member["case_id"] == case_id
    return member


async def team(
    http: httpx.AsyncClient, headers: dict[str, str], case_id: str, **params: Any
) -> list[dict[str, Any]]:
    return await items(http, route(case_id, "team"), headers, **params)


async def leave(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    case_id: str,
    member_id: str,
    **body: Any,
) -> httpx.Response:
    return await http.post(route(case_id, f"team/{member_id}/leave"), json=body, headers=headers)


async def organisation(world: World, name: str = "Riverside CAMHS") -> str:
    """A directory organisation, written through the directory's API: its id."""
    writer = await world.client_headers("directory:write", la_code="202")
    organization_id = str(uuid.uuid4())
    body = {
        "name": f"{name} drop-in",
        "description": "Weekly drop-in.",
        "status": "active",
        "organization": {"id": organization_id, "name": name},
    }
    expect(await world.http.post("/v1/directory/services", json=body, headers=writer), 201)
    return organization_id


# --- meetings -------------------------------------------------------------------------------


def plan(days_ahead: float = 3, **fields: Any) -> dict[str, Any]:
    """A meeting body planned `days_ahead` from now (negative: in the past)."""
    return {
        "type": "one_to_one_session",
        "scheduled_at": moment(days=-days_ahead),
        "minutes": 45,
        "location": "school",
        **fields,
    }


async def schedule(
    http: httpx.AsyncClient, headers: dict[str, str], case_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    meeting = await created(http, route(case_id, "meetings"), body, headers)
    assert meeting["case_id"] == case_id and meeting["status"] == "scheduled"
    return meeting


async def step(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    case_id: str,
    meeting_id: str,
    what: str,
    body: dict[str, Any],
) -> httpx.Response:
    """A step of a planned meeting: `held`, `reschedule` or `did-not-happen`."""
    return await http.post(
        route(case_id, f"meetings/{meeting_id}/{what}"), json=body, headers=headers
    )


async def meetings(
    http: httpx.AsyncClient, headers: dict[str, str], case_id: str, **params: Any
) -> list[dict[str, Any]]:
    return await items(http, route(case_id, "meetings"), headers, **params)
