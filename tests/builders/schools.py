"""A school with its roll and its marks: UPNs, roster rows, the roster and marks pushes,
and the absence flags they raise.

Dates are fixed school days (`AUTUMN_2025`), so figures worked out by hand never drift.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx

from app.services.upn import check_letter
from tests.builders.api import expect, items
from tests.conftest import World

MIS_SCOPES = "pupils:write pupils:read attendance:write attendance:read"
# A term of past school days.
AUTUMN_2025 = date(2025, 9, 1)  # a Monday


def upn(serial: int, estab: int = 2001, *, la: str = "202", year: int = 24) -> str:
    """A valid UPN (check letter included) of the LA, establishment, year and serial."""
    body = f"{int(la):03d}{estab:04d}{year:02d}{serial:03d}"
    return check_letter(body) + body


def roll_row(n: int, **fields: Any) -> dict[str, Any]:
    """Roster row of pupil `Pn` of `make_school`: Child<n> Example."""
    return {
        "mis_id": f"P{n}",
        "upn": upn(n),
        "given_name": f"Child{n}",
        "family_name": "Example",
        "date_of_birth": "2015-03-14",
        **fields,
    }


def pupil(n: int, **fields: Any) -> dict[str, Any]:
    """Roster row `MIS-n`, as a school's MIS sends it (year group included)."""
    return roll_row(n, **{"mis_id": f"MIS-{n}", "year_group": "5", **fields})


async def push_roster(
    http: httpx.AsyncClient,
    school: dict[str, Any],
    rows: list[dict[str, Any]],
    headers: dict[str, str],
    **params: str,
) -> httpx.Response:
    return await http.put(
        f"/v1/schools/{school['id']}/pupils", json={"pupils": rows}, headers=headers, params=params
    )


def school_days(start: date, count: int) -> Iterator[date]:
    day = start
    produced = 0
    while produced < count:
        if day.weekday() < 5:
            yield day
            produced += 1
        day += timedelta(days=1)


def sessions(start: date, codes: list[str]) -> list[tuple[date, str, str]]:
    """(date, session, code) for consecutive sessions, AM then PM, from `start`."""
    days = list(school_days(start, (len(codes) + 1) // 2))
    out = []
    for n, code in enumerate(codes):
        out.append((days[n // 2], "AM" if n % 2 == 0 else "PM", code))
    return out


@dataclass
class Setup:
    """A school, its MIS's headers and its pupils P0, P1, ... by MIS id."""

    school: dict[str, Any]
    mis: dict[str, str]
    pupil_ids: dict[str, str]  # mis_id -> pupil id

    def mark(
        self, mis_id: str, day: date, session: str, code: str, **fields: Any
    ) -> dict[str, Any]:
        return {
            "school_code": self.school["code"],
            "mis_id": mis_id,
            "date": day.isoformat(),
            "session": session,
            "code": code,
            **fields,
        }

    def marks(
        self, mis_id: str, codes: list[str], start: date = AUTUMN_2025
    ) -> list[dict[str, Any]]:
        return [self.mark(mis_id, d, s, c) for d, s, c in sessions(start, codes)]


async def make_school(
    world: World, http: httpx.AsyncClient, pupils: int = 3, **school_fields: Any
) -> Setup:
    """A school (of LA 202 unless said) with pupils P0.. on its roll (a Scottish school's
    without UPNs) and an MIS client bound to it. With no pupils, no roster is pushed."""
    school = await world.school(**school_fields)
    mis = await world.client_headers(MIS_SCOPES, schools=[school])
    if not pupils:
        return Setup(school, mis, {})
    rows = [roll_row(n) for n in range(pupils)]
    if school["jurisdiction"] == "scotland":
        for row in rows:
            del row["upn"]
    response = await push_roster(http, school, rows, mis)
    assert response.status_code == 200 and not response.json()["rejected"], response.text
    listed = await items(http, "/v1/pupils", mis, school_id=school["id"], limit=200)
    return Setup(school, mis, {p["mis_id"]: p["id"] for p in listed})


async def push_marks(
    http: httpx.AsyncClient, setup: Setup, marks: list[dict[str, Any]], **headers: str
) -> dict[str, Any]:
    """A marks push by the school's MIS that must succeed; its summary."""
    response = await http.post(
        "/v1/attendance/marks", json={"marks": marks}, headers={**setup.mis, **headers}
    )
    result: dict[str, Any] = expect(response)
    return result


async def flags(http: httpx.AsyncClient, setup: Setup, **params: str) -> list[dict[str, Any]]:
    """The absence flags the school's MIS reads."""
    return await items(http, "/v1/attendance/flags", setup.mis, **params)
