"""Historic cases and honest dates (issue 13, item 9), and where a closed case went (item 2).

A manager brings an existing case in with its past `opened_on`, or closes one as of a past
`closed_on`; a practitioner may not (403), and nobody may date either in the future (422).
Reviews, contacts and measures are dated within their case's life: one dated before the
case opened or after it closed is refused with a 422 naming both dates. A closure names
where the family went (`destination`), required for a transfer or a step-down to school,
carried through approval, and cleared when the case is reopened.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from app.services.school_calendar import school_today
from tests.builders.api import assert_problem, expect, read_with_etag
from tests.builders.casework import (
    add_goal,
    add_review,
    add_to_case,
    case_body,
    casework,
    chronology,
    list_cases,
    open_case,
    open_case_since,
    read_case,
    request_closure,
    review_body,
    route,
)
from tests.builders.clock import days_ago
from tests.conftest import World

DESTINATION = "Family Partnership Team"


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def moment(text: str) -> datetime:
    """A time as answered, in UTC (the chronology gives SQLite's times without an offset)."""
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def backdated(day: date) -> str:
    return f"(backdated to {day}; recorded on {school_today()})"


def refused(response: httpx.Response, field: str, detail: str, title: str) -> None:
    """A 422 naming `field` with exactly `detail`."""
    body = assert_problem(response, 422, "validation-failed")
    assert (body["detail"], body["errors"]) == (
        title,
        [{"loc": ["body", field], "detail": detail}],
    )


def dates_refused(response: httpx.Response, field: str, detail: str) -> None:
    refused(response, field, detail, "The date does not fit the case's dates.")


def contact_body(pupil: str, on: date, **fields: Any) -> dict[str, Any]:
    return {
        "type": "one_to_one_session",
        "occurred_at": f"{on.isoformat()}T10:00:00+00:00",
        "minutes": 45,
        "location": "school",
        "participants": ["Learning mentor"],
        "child_ids": [pupil],
        "child_seen": True,
        "actions": [],
        **fields,
    }


def measure_body(pupil: str, on: date) -> dict[str, Any]:
    return {"child_id": pupil, "instrument": "reading_age", "score": 8.5, "measured_on": str(on)}


async def close(
    http: httpx.AsyncClient, headers: dict[str, str], case_id: str, **fields: Any
) -> httpx.Response:
    return await request_closure(
        http, headers, case_id, **{"reason": "transferred", "destination": DESTINATION, **fields}
    )


# --- opening ----------------------------------------------------------------------------------


async def test_a_manager_brings_an_existing_case_in(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client, pupils=1)
    opened_on = days_ago(100)
    before = datetime.now(UTC)
    case = await open_case_since(client, work, [work.pupil("P0")], opened_on)
    after = datetime.now(UTC)

    assert (case["opened_on"], moment(case["opened_at"])) == (str(opened_on), midnight(opened_on))
    assert case["opened_by"] == f"staff:{work.manager['id']}"
    assert case["lead_practitioner_id"] == work.practitioner["id"]
    # Every reader of the opening day reads the day given: the review timetable too.
    assert (case["last_review_on"], case["next_review_due"], case["review_overdue"]) == (
        None,
        str(opened_on + timedelta(weeks=6)),
        True,
    )
    assert (await read_case(client, work.headers, case["id"]))[0] == case
    [listed] = await list_cases(client, work.headers)
    assert listed == case

    # The chronology has the opening at the day it took effect, saying it was recorded later.
    items = await chronology(client, work.headers, case["id"])
    [opening] = [item for item in items if item["event"] == "case.opened"]
    assert opening == {
        "at": opening["at"],
        "actor": f"staff:{work.manager['id']}",
        "source": "case",
        "event": "case.opened",
        "summary": f"Case opened {backdated(opened_on)}",
        "referral_id": None,
        "flag_id": None,
        "pupil_id": None,
    }
    assert moment(opening["at"]) == midnight(opened_on)

    # The audit trail records when it was done, not the day it took effect.
    auditor = await world.client_headers("audit:read", la_code="202")
    events = expect(
        await client.get(
            "/v1/audit-events",
            params={"pupil_id": work.pupil("P0"), "action": "case.create", "limit": 100},
            headers=auditor,
        )
    )["items"]
    [created] = [e for e in events if e["action"] == "case.create"]
    assert before <= moment(created["occurred_at"]) <= after


async def test_opening_today_is_as_before(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client, pupils=2)
    for body in (
        case_body([work.pupil("P0")]),
        case_body([work.pupil("P1")], opened_on=str(school_today())),
    ):
        before = datetime.now(UTC)
        case = expect(await client.post("/v1/cases", json=body, headers=work.headers), 201)
        opened_at = moment(case["opened_at"])
        assert before <= opened_at <= datetime.now(UTC)
        assert case["opened_on"] == str(opened_at.date())
        items = await chronology(client, work.headers, case["id"])
        [opening] = [item for item in items if item["event"] == "case.opened"]
        assert (opening["summary"], moment(opening["at"])) == ("Case opened", opened_at)


async def test_a_practitioner_may_not_backdate_a_case(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client, pupils=1)
    day = days_ago(3)
    response = await client.post(
        "/v1/cases", json=case_body([work.pupil("P0")], opened_on=str(day)), headers=work.headers
    )
    body = assert_problem(response, 403, "forbidden")
    assert body["detail"] == (
        f"Only a manager (scope cases:approve) may open a case with a past date: opened_on "
        f"{day} is before today ({school_today()})."
    )
    assert await list_cases(client, work.manager_headers) == []


async def test_nobody_opens_a_case_in_the_future(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client, pupils=1)
    day = school_today() + timedelta(days=2)
    for headers in (work.headers, work.manager_headers):
        response = await client.post(
            "/v1/cases", json=case_body([work.pupil("P0")], opened_on=str(day)), headers=headers
        )
        dates_refused(response, "opened_on", f"opened_on {day} is after today ({school_today()})")
    for bad in ("yesterday", "2026-02-30", 20260101, "1899-12-31"):
        response = await client.post(
            "/v1/cases", json=case_body([work.pupil("P0")], opened_on=bad), headers=work.headers
        )
        assert_problem(response, 422, "validation-failed")
    assert await list_cases(client, work.manager_headers) == []


# --- records within the case's life -----------------------------------------------------------


async def test_records_before_the_case_opened_are_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client, pupils=1)
    child = work.pupil("P0")
    opened = days_ago(30)
    case = await open_case_since(client, work, [child], opened)
    goal = await add_goal(client, work.headers, case["id"])
    early = opened - timedelta(days=1)
    why = f"is before the case opened ({opened})"

    response = await client.post(
        route(case["id"], "reviews"), json=review_body(early, {goal["id"]: 3}), headers=work.headers
    )
    dates_refused(response, "held_on", f"held_on {early} {why}")
    response = await client.post(
        route(case["id"], "interventions"), json=contact_body(child, early), headers=work.headers
    )
    dates_refused(response, "occurred_at", f"occurred_at {early} {why}")
    response = await client.post(
        route(case["id"], "measures"), json=measure_body(child, early), headers=work.headers
    )
    dates_refused(response, "measured_on", f"measured_on {early} {why}")

    # Nothing was written; the opening day itself is inside the case's life.
    for what in ("reviews", "interventions", "measures"):
        listed = expect(await client.get(route(case["id"], what), headers=work.headers))
        assert listed["items"] == [], what
    review = await add_review(client, work.headers, case["id"], opened, {goal["id"]: 3})
    contact = await add_to_case(
        client, work.headers, case["id"], "interventions", contact_body(child, opened)
    )
    measure = await add_to_case(
        client, work.headers, case["id"], "measures", measure_body(child, opened)
    )
    assert (review["held_on"], contact["occurred_at"], measure["measured_on"]) == (
        str(opened),
        f"{opened}T10:00:00Z",
        str(opened),
    )


async def test_records_dated_after_today_are_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client, pupils=1)
    child = work.pupil("P0")
    case = await open_case(client, work.headers, [child])
    goal = await add_goal(client, work.headers, case["id"])
    later = school_today() + timedelta(days=2)
    response = await client.post(
        route(case["id"], "reviews"), json=review_body(later, {goal["id"]: 3}), headers=work.headers
    )
    dates_refused(response, "held_on", f"held_on {later} is after today ({school_today()})")
    response = await client.post(
        route(case["id"], "measures"), json=measure_body(child, later), headers=work.headers
    )
    dates_refused(response, "measured_on", f"measured_on {later} is after today ({school_today()})")


async def test_records_after_the_case_closed_are_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client, pupils=1)
    child = work.pupil("P0")
    case = await open_case_since(client, work, [child], days_ago(40))
    goal = await add_goal(client, work.headers, case["id"])
    await add_review(client, work.headers, case["id"], days_ago(30), {goal["id"]: 3})
    closed_on = days_ago(20)
    expect(await close(client, work.manager_headers, case["id"], closed_on=str(closed_on)))
    late = days_ago(10)
    why = f"is after the case closed ({closed_on})"

    response = await client.post(
        route(case["id"], "reviews"), json=review_body(late, {goal["id"]: 5}), headers=work.headers
    )
    dates_refused(response, "held_on", f"held_on {late} {why}")
    response = await client.post(
        route(case["id"], "interventions"), json=contact_body(child, late), headers=work.headers
    )
    dates_refused(response, "occurred_at", f"occurred_at {late} {why}")
    response = await client.post(
        route(case["id"], "measures"), json=measure_body(child, late), headers=work.headers
    )
    dates_refused(response, "measured_on", f"measured_on {late} {why}")
    # Dated within its life, a record still waits for the case to be reopened.
    response = await client.post(
        route(case["id"], "reviews"),
        json=review_body(days_ago(25), {goal["id"]: 5}),
        headers=work.headers,
    )
    assert assert_problem(response, 409, "conflict")["detail"] == (
        "This case is closed; reopen it to add to its record."
    )

    _, etag = await read_with_etag(client, f"/v1/cases/{case['id']}", work.headers)
    reopened = await client.post(
        f"/v1/cases/{case['id']}/reopen",
        json={"reason": "The family asked for help again."},
        headers={**work.headers, "If-Match": etag},
    )
    assert expect(reopened)["closed_on"] is None
    review = await add_review(client, work.headers, case["id"], late, {goal["id"]: 5})
    assert review["held_on"] == str(late)


# --- closing ----------------------------------------------------------------------------------


async def test_a_manager_closes_a_case_as_of_a_past_day(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client, pupils=1)
    case = await open_case_since(client, work, [work.pupil("P0")], days_ago(60))
    goal = await add_goal(client, work.headers, case["id"])
    await add_review(client, work.headers, case["id"], days_ago(15), {goal["id"]: 6})
    closed_on = days_ago(14)

    closed = expect(await close(client, work.manager_headers, case["id"], closed_on=str(closed_on)))
    assert (
        closed["status"],
        closed["closed_on"],
        moment(closed["closed_at"]),
        closed["closure_reason"],
        closed["closure_destination"],
        closed["pending_closure"],
    ) == ("closed", str(closed_on), midnight(closed_on), "transferred", DESTINATION, None)
    assert (await read_case(client, work.headers, case["id"]))[0] == closed

    items = await chronology(client, work.headers, case["id"])
    [closing] = [i for i in items if i["event"] == "case.closed"]
    assert closing == {
        "at": closing["at"],
        "actor": f"staff:{work.manager['id']}",
        "source": "case",
        "event": "case.closed",
        "summary": f"Closed (transferred; destination: {DESTINATION}) by a manager "
        f"{backdated(closed_on)}: Attendance back above 95% for six weeks.",
        "referral_id": None,
        "flag_id": None,
        "pupil_id": None,
    }
    assert moment(closing["at"]) == midnight(closed_on)
    times = [moment(i["at"]) for i in items]
    assert times == sorted(times)


async def test_a_closing_day_must_fit_the_case(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client, pupils=1)
    child = work.pupil("P0")
    opened = days_ago(60)
    case = await open_case_since(client, work, [child], opened)
    await add_to_case(
        client, work.headers, case["id"], "interventions", contact_body(child, days_ago(9))
    )
    await add_to_case(
        client, work.headers, case["id"], "measures", measure_body(child, days_ago(12))
    )

    def closing_refused(response: httpx.Response, detail: str) -> None:
        refused(response, "closed_on", detail, "The closing date does not fit the case's dates.")

    before_opening = opened - timedelta(days=1)
    closing_refused(
        await close(client, work.manager_headers, case["id"], closed_on=str(before_opening)),
        f"closed_on {before_opening} is before the case opened ({opened})",
    )
    closing_refused(
        await close(client, work.manager_headers, case["id"], closed_on=str(days_ago(10))),
        f"closed_on {days_ago(10)} is before the case's latest record (a contact on {days_ago(9)})",
    )
    future = school_today() + timedelta(days=1)
    dates_refused(
        await close(client, work.manager_headers, case["id"], closed_on=str(future)),
        "closed_on",
        f"closed_on {future} is after today ({school_today()})",
    )
    response = await close(client, work.headers, case["id"], closed_on=str(days_ago(5)))
    assert assert_problem(response, 403, "forbidden")["detail"] == (
        f"Only a manager (scope cases:approve) may close a case with a past date: closed_on "
        f"{days_ago(5)} is before today ({school_today()})."
    )
    still, _ = await read_case(client, work.headers, case["id"])
    assert (still["status"], still["pending_closure"], still["version"]) == (
        "open",
        None,
        case["version"],
    )
    # The day of the latest record is a day the case may close on.
    closed = expect(
        await close(client, work.manager_headers, case["id"], closed_on=str(days_ago(9)))
    )
    assert closed["closed_on"] == str(days_ago(9))


# --- where the family went --------------------------------------------------------------------


async def test_a_transfer_or_step_down_says_where_the_family_went(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client, pupils=1)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    for reason in ("transferred", "stepped_down_to_school"):
        for headers in (work.headers, work.manager_headers):
            for absent in ({}, {"destination": None}):
                response = await request_closure(client, headers, case["id"], reason, **absent)
                refused(
                    response,
                    "destination",
                    f"a closure as {reason} names the team or school now leading (destination)",
                    "Say where the family went.",
                )
    for bad in ("", "   ", "x" * 301, 42):
        response = await close(client, work.manager_headers, case["id"], destination=bad)
        body = assert_problem(response, 422, "validation-failed")
        assert [e["loc"] for e in body["errors"]] == [["body", "destination"]], body
    after, _ = await read_case(client, work.headers, case["id"])
    assert (after["status"], after["pending_closure"]) == ("open", None)

    # Stripped and kept; optional for the other reasons (a step-up goes to the LA's own
    # children's social care).
    kept = expect(
        await close(client, work.manager_headers, case["id"], destination="  Oak Primary as lead  ")
    )
    assert (kept["closure_reason"], kept["closure_destination"]) == (
        "transferred",
        "Oak Primary as lead",
    )
    other = await open_case(client, work.headers, [work.pupil("P0")])
    stepped_up = expect(
        await request_closure(
            client, work.manager_headers, other["id"], "stepped_up_to_social_care"
        )
    )
    assert (stepped_up["closure_reason"], stepped_up["closure_destination"]) == (
        "stepped_up_to_social_care",
        None,
    )


async def test_the_destination_is_approved_with_the_closure_and_cleared_on_reopening(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client, pupils=1)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    today = str(school_today())
    requested = expect(
        await request_closure(
            client,
            work.headers,
            case["id"],
            "stepped_down_to_school",
            "School pastoral team to lead.",
            destination="Oak Primary as lead",
            closed_on=today,
        )
    )
    pending = requested["pending_closure"]
    assert pending == {
        "reason": "stepped_down_to_school",
        "note": "School pastoral team to lead.",
        "closed_on": today,
        "destination": "Oak Primary as lead",
        "requested_by": f"staff:{work.practitioner['id']}",
        "requested_at": pending["requested_at"],
    }
    assert (requested["status"], requested["closure_destination"]) == ("open", None)

    _, etag = await read_with_etag(client, f"/v1/cases/{case['id']}", work.manager_headers)
    approved = expect(
        await client.post(
            f"/v1/cases/{case['id']}/closure/approval",
            json={"approve": True, "note": "Agreed at supervision."},
            headers={**work.manager_headers, "If-Match": etag},
        )
    )
    assert (
        approved["status"],
        approved["closure_reason"],
        approved["closure_destination"],
        approved["closed_on"],
        approved["pending_closure"],
    ) == ("closed", "stepped_down_to_school", "Oak Primary as lead", today, None)
    items = await chronology(client, work.headers, case["id"])
    assert [i["summary"] for i in items if i["event"].startswith("case.clos")] == [
        "Closure requested (stepped down to school; destination: Oak Primary as lead): "
        "School pastoral team to lead.",
        "Closure approved (stepped down to school; destination: Oak Primary as lead): "
        "Agreed at supervision.",
        "Closed (stepped down to school; destination: Oak Primary as lead)",
    ]

    _, etag = await read_with_etag(client, f"/v1/cases/{case['id']}", work.headers)
    reopened = expect(
        await client.post(
            f"/v1/cases/{case['id']}/reopen",
            json={"reason": "The school asked for the team back."},
            headers={**work.headers, "If-Match": etag},
        )
    )
    assert (
        reopened["status"],
        reopened["closure_reason"],
        reopened["closure_note"],
        reopened["closure_destination"],
        reopened["closed_on"],
        reopened["closed_at"],
    ) == ("open", None, None, None, None, None)
