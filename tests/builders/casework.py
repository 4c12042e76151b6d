"""Casework in one school: referrals, cases and their closure, the chronology, records on
a family plan (goals, reviews) and the audit trail about a child.

`casework` gives a school of LA 202 with pupils P0, P1, ..., a practitioner and a manager
who reach it; the other helpers take headers and ids, so they serve any world.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx

from tests.builders.api import created, expect, items, read_with_etag
from tests.builders.clock import days_ago
from tests.builders.schools import Setup, make_school
from tests.conftest import World

CONSENT = {
    "given": True,
    "given_by": "Alex Example (mother)",
    "date": "2025-09-01",
    "share_with": ["school"],
}
REFERRAL_CONSENT = {**CONSENT, "date": "2025-11-20", "share_with": ["school", "school nursing"]}
FAMILY = [
    {
        "name": "Alex Example",
        "relationship": "mother",
        "phone": "07700 900123",
        "email": "alex@example.org",
        "preferred_contact": "phone",
        "language": "English",
        "interpreter_needed": False,
    }
]
HUB_SCOPES = "referrals:read referrals:write"
_references = itertools.count(1)


# --- the people -----------------------------------------------------------------------------


@dataclass
class Casework:
    """A school with pupils P0, P1, ..., a practitioner and a manager who reach it."""

    setup: Setup
    practitioner: dict[str, str]
    headers: dict[str, str]
    manager: dict[str, str]
    manager_headers: dict[str, str]

    @property
    def school(self) -> dict[str, Any]:
        return self.setup.school

    def pupil(self, mis_id: str) -> str:
        return self.setup.pupil_ids[mis_id]


async def casework(
    world: World, http: httpx.AsyncClient, pupils: int = 3, **school_fields: Any
) -> Casework:
    setup = await make_school(world, http, pupils=pupils, **school_fields)
    practitioner = await world.staff("practitioner", schools=[setup.school])
    manager = await world.staff("manager", schools=[setup.school])
    return Casework(
        setup,
        practitioner,
        await world.headers(practitioner),
        manager,
        await world.headers(manager),
    )


async def hub(world: World, la_code: str = "202") -> dict[str, str]:
    """A hub's headers: a client bound to an LA, with no schools of its own."""
    return await world.client_headers(HUB_SCOPES, la_code=la_code)


# --- referrals --------------------------------------------------------------------------------


def referral_body(*children: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A valid referral body for `children`, each with its own external reference."""
    return {
        "external_reference": f"HUB-2026-{next(_references):04d}",
        "children": list(children),
        "family": FAMILY,
        "concerns": ["attendance", "parental_mental_health"],
        "level_of_need": "targeted_early_help",
        "consent": REFERRAL_CONSENT,
        "urgency": "routine",
        "summary": "Attendance has fallen since half term; mum says she is struggling.",
        **fields,
    }


# --- cases ------------------------------------------------------------------------------------


def case_body(pupil_ids: list[str], **fields: Any) -> dict[str, Any]:
    return {
        "children": [{"pupil_id": p} for p in pupil_ids],
        "level_of_need": "targeted_early_help",
        "consent": CONSENT,
        **fields,
    }


async def open_case(
    http: httpx.AsyncClient, headers: dict[str, str], pupil_ids: list[str], **fields: Any
) -> dict[str, Any]:
    return await created(http, "/v1/cases", case_body(pupil_ids, **fields), headers)


async def open_case_since(
    http: httpx.AsyncClient, work: Casework, pupil_ids: list[str], opened_on: date, **fields: Any
) -> dict[str, Any]:
    """A case brought in with its past opening day, so that its history (reviews, contacts,
    measures dated before today) fits inside it: a manager opens it (only a manager may
    backdate), the practitioner leads it."""
    fields.setdefault("lead_practitioner_id", work.practitioner["id"])
    return await open_case(
        http, work.manager_headers, pupil_ids, opened_on=opened_on.isoformat(), **fields
    )


@dataclass
class FamilyPupils:
    """Who is who in a family's casework: P0 (the child) and P1 (the sibling) on the case,
    P2 at the school and not on it."""

    work: Casework

    @property
    def child(self) -> str:
        return self.work.pupil("P0")

    @property
    def sibling(self) -> str:
        return self.work.pupil("P1")

    @property
    def stranger(self) -> str:
        return self.work.pupil("P2")


@dataclass
class Family(FamilyPupils):
    """A case for P0 (the child) and P1 (the sibling); P2 is at the school, not on it."""

    case: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.case["id"])

    @property
    def headers(self) -> dict[str, str]:
        return self.work.headers

    @property
    def actor(self) -> str:
        return f"staff:{self.work.practitioner['id']}"


async def family(http: httpx.AsyncClient, world: World, opened_days_ago: int = 60) -> Family:
    """The case opened `opened_days_ago` (by a manager, led by the practitioner), so that
    the history the tests record fits inside it."""
    work = await casework(world, http, pupils=3)
    pupils = [work.pupil("P0"), work.pupil("P1")]
    case = await open_case_since(http, work, pupils, days_ago(opened_days_ago))
    return Family(work, case)


async def read_case(
    http: httpx.AsyncClient, headers: dict[str, str], case_id: str
) -> tuple[dict[str, Any], str]:
    """The case and its ETag."""
    return await read_with_etag(http, f"/v1/cases/{case_id}", headers)


async def patch_case(
    http: httpx.AsyncClient, headers: dict[str, str], case_id: str, body: dict[str, Any]
) -> httpx.Response:
    """A change to the case as it is now (its current ETag in `If-Match`)."""
    _, etag = await read_case(http, headers, case_id)
    return await http.patch(
        f"/v1/cases/{case_id}", json=body, headers={**headers, "If-Match": etag}
    )


async def list_cases(
    http: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    return await items(http, "/v1/cases", headers, **params)


async def request_closure(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    case_id: str,
    reason: str = "needs_met",
    note: str = "Attendance back above 95% for six weeks.",
    **fields: Any,
) -> httpx.Response:
    """Ask to close the case; `fields` add `closed_on` or `destination`."""
    return await http.post(
        f"/v1/cases/{case_id}/closure",
        json={"reason": reason, "note": note, **fields},
        headers=headers,
    )


# --- the chronology -------------------------------------------------------------------------


async def chronology(
    http: httpx.AsyncClient, headers: dict[str, str], case_id: str
) -> list[dict[str, Any]]:
    body = expect(await http.get(f"/v1/cases/{case_id}/chronology", headers=headers))
    assert body["case_id"] == case_id
    found: list[dict[str, Any]] = body["items"]
    return found


def matches(item: dict[str, Any], *words: str) -> bool:
    """The event's name has a part starting with each word: `case.closure_requested`
    matches ("closure", "request"); `case.reopened` does not match ("opened",)."""
    parts = [p for p in re.split(r"[^a-z0-9]+", item["event"].lower()) if p]
    return all(any(p.startswith(w) for p in parts) for w in words)


def positions(found: list[dict[str, Any]], *words: str, **fields: Any) -> list[int]:
    """Where in a chronology the events matching `words` (and `fields`) stand."""
    return [
        n
        for n, item in enumerate(found)
        if matches(item, *words) and all(item.get(k) == v for k, v in fields.items())
    ]


# --- the family plan --------------------------------------------------------------------------


def route(case_id: str, what: str) -> str:
    return f"/v1/cases/{case_id}/{what}"


async def add_to_case(
    http: httpx.AsyncClient, headers: dict[str, str], case_id: str, what: str, body: Any
) -> dict[str, Any]:
    """A record (goal, review, contact, ...) added to the case; the record."""
    answer = await created(http, route(case_id, what), body, headers)
    assert answer["case_id"] == case_id
    return answer


def goal_body(
    category: str = "school_attendance_managed",
    title: str = "Get to school on time every day",
    **fields: Any,
) -> dict[str, Any]:
    return {"title": title, "outcome_category": category, **fields}


async def add_goal(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    case_id: str,
    category: str = "school_attendance_managed",
    **fields: Any,
) -> dict[str, Any]:
    return await add_to_case(http, headers, case_id, "goals", goal_body(category, **fields))


def review_body(held_on: date, scores: dict[str, int], **fields: Any) -> dict[str, Any]:
    """A review held on `held_on`, scoring each goal (by id) 0-10."""
    return {
        "held_on": held_on.isoformat(),
        "worries": "Mornings are still hard.",
        "working_well": "The walking bus.",
        "next_steps": "Keep the morning routine chart going.",
        "scores": [{"goal_id": goal_id, "score": score} for goal_id, score in scores.items()],
        **fields,
    }


async def add_review(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    case_id: str,
    held_on: date,
    scores: dict[str, int],
) -> dict[str, Any]:
    return await add_to_case(http, headers, case_id, "reviews", review_body(held_on, scores))


# --- the audit trail about a child --------------------------------------------------------------


@dataclass
class AuditTrail:
    """What an auditor reads about a child, one step at a time: each call gives the events
    not seen before, the trail's own reads (`audit.*`) left out."""

    http: httpx.AsyncClient
    headers: dict[str, str]
    seen: set[str] = field(default_factory=set)

    async def new_events(self, pupil_id: str) -> list[dict[str, Any]]:
        found = await items(
            self.http, "/v1/audit-events", self.headers, pupil_id=pupil_id, limit=100
        )
        fresh = [
            e for e in found if e["id"] not in self.seen and not e["action"].startswith("audit.")
        ]
        self.seen.update(e["id"] for e in found)
        return fresh
