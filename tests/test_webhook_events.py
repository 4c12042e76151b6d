"""Webhook events: the catalogue, and each event written by the change that causes it, in the
same transaction, with its subject, owners and a thin payload that matches its schema."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from jsonschema import Draft202012Validator

from app.models.base import utcnow
from app.models.webhook_events import EventType
from app.services.events import SubjectKind
from app.services.review_overdue import record_overdue_reviews
from app.services.webhook_audience import READ_SCOPE
from app.services.webhook_events import CATALOGUE, catalogue
from tests.builders.api import assert_problem, created, expect, read_with_etag
from tests.builders.casework import (
    FAMILY,
    Casework,
    add_goal,
    add_review,
    casework,
    hub,
    open_case,
    read_case,
    referral_body,
    request_closure,
)
from tests.builders.clock import days_ago
from tests.builders.database import move_back
from tests.builders.outbox import catalogued, recorded
from tests.builders.referrals import decision, service
from tests.builders.schools import push_marks, roll_row
from tests.conftest import World

SUMMARY = referral_body()["summary"]


def never_shown(work: Casework, *texts: str) -> list[str]:
    """What no payload may carry: the children's names, UPNs and dates of birth, the family's
    details and any text a person wrote."""
    children = [roll_row(n) for n in range(len(work.setup.pupil_ids))]
    return [
        *(c["given_name"] for c in children),
        *(c["upn"] for c in children),
        children[0]["date_of_birth"],
        "Example",
        FAMILY[0]["name"],
        FAMILY[0]["phone"],
        FAMILY[0]["email"],
        SUMMARY,
        *texts,
    ]


async def change(
    http: httpx.AsyncClient, headers: dict[str, str], path: str, body: dict[str, Any]
) -> httpx.Response:
    """A POST to a referral's or case's action (`/v1/cases/{id}/closure/approval`) against
    the object's current ETag."""
    target = "/".join(path.split("/")[:4])
    _, etag = await read_with_etag(http, target, headers)
    return await http.post(path, json=body, headers={**headers, "If-Match": etag})


# --- the catalogue --------------------------------------------------------------------------


async def test_the_catalogue_lists_every_event_type_with_its_schema(
    client: httpx.AsyncClient, world: World
) -> None:
    assert_problem(await client.get("/v1/webhooks/event-types"), 401)
    # Any valid token reads it: here a client with one unrelated scope.
    headers = await world.client_headers("directory:write", la_code="202")
    listed = expect(await client.get("/v1/webhooks/event-types", headers=headers))["items"]
    assert [item["type"] for item in listed] == [
        "referral.received",
        "referral.decided",
        "referral.withdrawn",
        "case.opened",
        "case.closed",
        "case.stepped_up",
        "case.review_overdue",
        "case.action_overdue",
        "attendance.flag.raised",
        "attendance.flag.resolved",
        "signpost.status_changed",
    ]
    kinds = {
        "referral": "referrals:read",
        "case": "cases:read",
        "flag": "attendance:read",
        "signpost": "cases:read",
    }
    for item in listed:
        assert item["description"]
        assert item["scope"] == kinds[item["subject_kind"]]
        assert item["scope"] == READ_SCOPE[SubjectKind(item["subject_kind"])].value
        schema = item["message_schema"]
        Draft202012Validator.check_schema(schema)
        assert schema["required"] == ["type", "timestamp", "data"]
        assert schema["properties"]["type"]["const"] == item["type"]
        assert schema["additionalProperties"] is False
    by_type = {item["type"]: item["message_schema"] for item in listed}
    decided = by_type["referral.decided"]["$defs"]["ReferralDecided"]
    assert set(decided["properties"]) == {
        "referral_id",
        "la_code",
        "school_id",
        "decision",
        "reason_category",
        "signposts",
    }
    assert decided["additionalProperties"] is False


# --- referrals ------------------------------------------------------------------------------


async def test_a_referrals_life_writes_received_decided_and_withdrawn(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    work = await casework(world, client)
    hub_headers = await hub(world)
    upn = roll_row(0)["upn"]
    declined_reason = "Needs can be met by the school's pastoral team."
    sent = await created(
        client,
        "/v1/referrals",
        referral_body({"upn": upn, "school_code": work.school["code"]}),
        hub_headers,
    )
    [received] = await recorded(fresh_app)
    assert received.type == "referral.received"
    assert (received.subject_kind, received.subject_id) == ("referral", uuid.UUID(sent["id"]))
    assert (received.la_code, received.school_id) == ("202", uuid.UUID(work.school["id"]))
    assert received.referrer == sent["referrer"]
    assert received.payload == {
        "referral_id": sent["id"],
        "la_code": "202",
        "school_id": work.school["id"],
        "source": "hub",
        "urgency": "routine",
    }

    services = [
        await service(
            client, await world.client_headers("directory:write", la_code="202"), "Mentors"
        )
    ]
    decided = await change(
        client,
        work.headers,
        f"/v1/referrals/{sent['id']}/decision",
        decision("decline", "threshold_not_met", declined_reason, signposted_service_ids=services),
    )
    expect(decided)
    [event] = await recorded(fresh_app, "referral.decided")
    assert event.subject_id == uuid.UUID(sent["id"]) and event.referrer == sent["referrer"]
    assert event.payload == {
        "referral_id": sent["id"],
        "la_code": "202",
        "school_id": work.school["id"],
        "decision": "decline",
        "reason_category": "threshold_not_met",
        "signposts": [{"service_id": services[0]}],
    }

    # A child named only by name: the referrer is not told the child is on a roll.
    named = {"given_name": "Child1", "family_name": "Example", "date_of_birth": "2015-03-14"}
    other = await created(client, "/v1/referrals", referral_body(named), hub_headers)
    withdrawn = await change(
        client,
        hub_headers,
        f"/v1/referrals/{other['id']}/withdrawal",
        {"reason": "Sent by mistake."},
    )
    expect(withdrawn)
    events = await recorded(fresh_app)
    assert [(e.type, str(e.subject_id)) for e in events] == [
        ("referral.received", sent["id"]),
        ("referral.decided", sent["id"]),
        ("referral.received", other["id"]),
        ("referral.withdrawn", other["id"]),
    ]
    assert events[2].payload["school_id"] is None
    assert events[3].payload == {"referral_id": other["id"], "la_code": "202", "school_id": None}
    await catalogued(
        client,
        hub_headers,
        events,
        never_shown(work, declined_reason, "Sent by mistake.", "Mentors"),
    )


async def test_accepting_a_referral_opens_a_case(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    work = await casework(world, client)
    hub_headers = await hub(world)
    pupil = work.pupil("P0")
    sent = await created(client, "/v1/referrals", referral_body({"pupil_id": pupil}), hub_headers)
    accepted = await change(
        client,
        work.headers,
        f"/v1/referrals/{sent['id']}/decision",
        decision("accept", reason="Meets the threshold for targeted help."),
    )
    case_id = expect(accepted)["decision"]["case_id"]
    events = await recorded(fresh_app)
    # The case opens as part of the acceptance, so its event comes first.
    assert [e.type for e in events] == ["referral.received", "case.opened", "referral.decided"]
    opened, decided = events[1], events[2]
    assert decided.payload["decision"] == "accept"
    assert decided.payload["reason_category"] is None and decided.payload["signposts"] == []
    assert (opened.subject_kind, str(opened.subject_id)) == ("case", case_id)
    assert opened.referrer is None and opened.school_id == uuid.UUID(work.school["id"])
    case, _ = await read_case(client, work.headers, case_id)
    assert opened.payload == {
        "case_id": case_id,
        "la_code": "202",
        "school_id": work.school["id"],
        "level_of_need": "targeted_early_help",
        "referral_id": sent["id"],
        "opened_on": case["opened_on"],
    }

    # A second referral about the same child joins the open case: no new case is opened.
    again = await created(client, "/v1/referrals", referral_body({"pupil_id": pupil}), hub_headers)
    expect(
        await change(
            client,
            work.headers,
            f"/v1/referrals/{again['id']}/decision",
            decision("accept", reason="Same family."),
        )
    )
    assert len(await recorded(fresh_app, "case.opened")) == 1
    await catalogued(client, work.headers, await recorded(fresh_app), never_shown(work))


async def test_a_step_up_is_decided_when_a_manager_approves_it(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    work = await casework(world, client)
    hub_headers = await hub(world)
    body = referral_body({"pupil_id": work.pupil("P0")})
    sent = await created(client, "/v1/referrals", body, hub_headers)
    path = f"/v1/referrals/{sent['id']}"
    asked = decision("step_up", "risk_of_significant_harm", "Disclosure of harm.")
    assert (
        expect(await change(client, work.headers, f"{path}/decision", asked))["status"]
        == "awaiting_approval"
    )
    assert await recorded(fresh_app, "referral.decided") == []
    refused = {"approve": False, "note": "Not yet: gather more."}
    expect(await change(client, work.manager_headers, f"{path}/approval", refused))
    assert await recorded(fresh_app, "referral.decided") == []

    expect(await change(client, work.headers, f"{path}/decision", asked))
    approved = {"approve": True, "note": "Agreed."}
    expect(await change(client, work.manager_headers, f"{path}/approval", approved))
    [event] = await recorded(fresh_app, "referral.decided")
    assert event.payload["decision"] == "step_up"
    assert event.payload["reason_category"] == "risk_of_significant_harm"
    await catalogued(
        client, hub_headers, [event], never_shown(work, "Disclosure of harm.", "Agreed.")
    )


async def test_a_refused_change_writes_no_event(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    work = await casework(world, client)
    hub_headers = await hub(world)
    sent = await created(
        client, "/v1/referrals", referral_body({"pupil_id": work.pupil("P0")}), hub_headers
    )
    path = f"/v1/referrals/{sent['id']}"
    before = await recorded(fresh_app)
    assert [e.type for e in before] == ["referral.received"]

    # 422: a category from another decision's list; 422: an unknown service to signpost to.
    wrong = decision("decline", "risk_of_significant_harm")
    assert_problem(await change(client, work.headers, f"{path}/decision", wrong), 422)
    unknown = decision("decline", "other", signposted_service_ids=[str(uuid.uuid4())])
    assert_problem(await change(client, work.headers, f"{path}/decision", unknown), 422)
    # 412: decided against a version that is no longer current.
    _, stale = await read_with_etag(client, path, work.headers)
    expect(await change(client, work.headers, f"{path}/review", {}))
    late = await client.post(
        f"{path}/decision",
        json=decision("decline", "other"),
        headers={**work.headers, "If-Match": stale},
    )
    assert_problem(late, 412)
    # 403: only the referrer withdraws.
    assert_problem(await change(client, work.headers, f"{path}/withdrawal", {"reason": "No."}), 403)
    assert await recorded(fresh_app) == before

    expect(await change(client, work.headers, f"{path}/decision", decision("decline", "other")))
    # 409: decided already; withdrawn too late.
    assert_problem(
        await change(client, work.headers, f"{path}/decision", decision("decline", "other")), 409
    )
    assert_problem(
        await change(client, hub_headers, f"{path}/withdrawal", {"reason": "Too late."}), 409
    )
    assert [e.type for e in await recorded(fresh_app)] == ["referral.received", "referral.decided"]


# --- cases ----------------------------------------------------------------------------------


async def test_cases_opened_closed_and_stepped_up(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    work = await casework(world, client)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    [opened] = await recorded(fresh_app)
    assert opened.type == "case.opened" and str(opened.subject_id) == case["id"]
    assert opened.payload == {
        "case_id": case["id"],
        "la_code": "202",
        "school_id": work.school["id"],
        "level_of_need": "targeted_early_help",
        "referral_id": None,
        "opened_on": case["opened_on"],
    }

    # A practitioner's request waits for a manager: closed only when approved.
    _, etag = await read_case(client, work.headers, case["id"])
    asked = await request_closure(client, {**work.headers, "If-Match": etag}, case["id"])
    assert expect(asked)["status"] == "open"
    assert await recorded(fresh_app, "case.closed") == []
    refused = await change(
        client, work.manager_headers, f"/v1/cases/{case['id']}/closure/approval",
        {"approve": False, "note": "Not yet."},
    )  # fmt: skip
    expect(refused)
    assert await recorded(fresh_app, "case.closed") == []
    _, etag = await read_case(client, work.headers, case["id"])
    expect(await request_closure(client, {**work.headers, "If-Match": etag}, case["id"]))
    approved = await change(
        client, work.manager_headers, f"/v1/cases/{case['id']}/closure/approval",
        {"approve": True, "note": "Agreed."},
    )  # fmt: skip
    closed_case = expect(approved)
    [closed] = await recorded(fresh_app, "case.closed")
    assert (closed.subject_kind, str(closed.subject_id)) == ("case", case["id"])
    assert closed.payload == {
        "case_id": case["id"],
        "la_code": "202",
        "school_id": work.school["id"],
        "reason": "needs_met",
        "closed_on": closed_case["closed_on"],
    }
    assert await recorded(fresh_app, "case.stepped_up") == []
    # Closing a closed case is refused and writes nothing.
    _, etag = await read_case(client, work.headers, case["id"])
    again = await request_closure(client, {**work.manager_headers, "If-Match": etag}, case["id"])
    assert_problem(again, 409)
    assert len(await recorded(fresh_app, "case.closed")) == 1

    # A manager's step-up to social care takes effect at once: closed and stepped up.
    other = await open_case(client, work.headers, [work.pupil("P1")])
    _, etag = await read_case(client, work.headers, other["id"])
    stepped = await request_closure(
        client,
        {**work.manager_headers, "If-Match": etag},
        other["id"],
        reason="stepped_up_to_social_care",
        note="Section 47 enquiry opened.",
    )
    stepped_case = expect(stepped)
    events = await recorded(fresh_app)
    assert [e.type for e in events][-2:] == ["case.closed", "case.stepped_up"]
    assert events[-2].payload["reason"] == "stepped_up_to_social_care"
    assert events[-1].payload == {
        "case_id": other["id"],
        "la_code": "202",
        "school_id": work.school["id"],
        "stepped_up_on": stepped_case["closed_on"],
    }
    await catalogued(
        client, work.headers, events, never_shown(work, "Section 47", "Agreed.", "Not yet.")
    )


async def test_a_review_overdue_is_announced_once_per_missed_due_date(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    work = await casework(world, client)
    settings = fresh_app.state.settings
    late = await open_case(client, work.headers, [work.pupil("P0")])
    recent = await open_case(client, work.headers, [work.pupil("P1")])
    closed = await open_case(client, work.headers, [work.pupil("P2")])
    await move_back(fresh_app, "early_help_case", "opened_at", late["id"], timedelta(days=100))
    await move_back(fresh_app, "early_help_case", "opened_at", recent["id"], timedelta(days=20))
    await move_back(fresh_app, "early_help_case", "opened_at", closed["id"], timedelta(days=100))
    _, etag = await read_case(client, work.headers, closed["id"])
    expect(await request_closure(client, {**work.manager_headers, "If-Match": etag}, closed["id"]))

    async def sweep() -> int:
        async with fresh_app.state.session_factory() as session:
            count = await record_overdue_reviews(session, settings, utcnow())
            await session.commit()
            return count

    assert await sweep() == 1
    [event] = await recorded(fresh_app, "case.review_overdue")
    opened_on = (await read_case(client, work.headers, late["id"]))[0]["opened_on"]
    assert (event.subject_kind, str(event.subject_id)) == ("case", late["id"])
    assert event.payload == {
        "case_id": late["id"],
        "la_code": "202",
        "school_id": work.school["id"],
        "review_due_on": (days_ago(100) + timedelta(weeks=6)).isoformat(),
        "last_review_on": None,
    }
    assert opened_on == days_ago(100).isoformat()
    assert await sweep() == 0

    # A review held late moves the due date on; when that one is missed too, it is
    # announced again, once.
    goal = await add_goal(client, work.headers, late["id"])
    await add_review(client, work.headers, late["id"], days_ago(60), {goal["id"]: 4})
    assert await sweep() == 1
    assert await sweep() == 0
    events = await recorded(fresh_app, "case.review_overdue")
    assert [e.payload["review_due_on"] for e in events] == [
        (days_ago(100) + timedelta(weeks=6)).isoformat(),
        (days_ago(60) + timedelta(weeks=6)).isoformat(),
    ]
    assert events[1].payload["last_review_on"] == days_ago(60).isoformat()

    # Reviewed today: nothing is late.
    await add_review(client, work.headers, late["id"], days_ago(0), {goal["id"]: 6})
    assert await sweep() == 0
    await catalogued(client, work.headers, events, never_shown(work))


# --- attendance flags and signposts ---------------------------------------------------------


async def test_flags_raised_and_resolved(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    work = await casework(world, client, pupils=1)
    setup = work.setup
    run = setup.marks("P0", ["/", "N", "O", "N"])
    await push_marks(client, setup, run)
    [raised] = await recorded(fresh_app)
    assert raised.type == "attendance.flag.raised" and raised.subject_kind == "flag"
    assert (raised.la_code, raised.school_id) == ("202", uuid.UUID(work.school["id"]))
    flag_id = raised.payload["flag_id"]
    assert str(raised.subject_id) == flag_id
    expected = {
        "flag_id": flag_id,
        "pupil_id": work.pupil("P0"),
        "school_id": work.school["id"],
        "kind": "unexplained_absence",
        "academic_year": 2025,
    }
    assert raised.payload == expected

    run[2]["code"] = "I"  # the school learns the child was ill
    await push_marks(client, setup, run)
    [resolved] = await recorded(fresh_app, "attendance.flag.resolved")
    assert (resolved.subject_kind, str(resolved.subject_id)) == ("flag", flag_id)
    assert (resolved.la_code, resolved.school_id) == ("202", uuid.UUID(work.school["id"]))
    assert resolved.payload == expected
    await catalogued(client, setup.mis, [raised, resolved], never_shown(work))


async def test_a_flag_turned_into_a_referral_or_a_case(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    work = await casework(world, client, pupils=2)
    setup = work.setup
    await push_marks(
        client, setup, setup.marks("P0", ["N", "N", "N"]) + setup.marks("P1", ["N", "N", "N"])
    )
    flag_of = {e.payload["pupil_id"]: str(e.subject_id) for e in await recorded(fresh_app)}
    first, second = flag_of[work.pupil("P0")], flag_of[work.pupil("P1")]
    body = referral_body({"pupil_id": work.pupil("P0")}, attendance_flag_id=first)
    sent = await created(client, "/v1/referrals", body, await hub(world))
    [received] = await recorded(fresh_app, "referral.received")
    assert str(received.subject_id) == sent["id"]
    assert received.payload["source"] == "attendance_flag"
    case = await open_case(client, work.headers, [work.pupil("P1")], attendance_flag_id=second)
    [opened] = await recorded(fresh_app, "case.opened")
    assert str(opened.subject_id) == case["id"] and opened.payload["referral_id"] is None


async def test_a_signpost_moving_on_writes_its_status_change(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    work = await casework(world, client)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    service_id = await service(
        client, await world.client_headers("directory:write", la_code="202"), "CAMHS"
    )
    signpost = await created(
        client,
        f"/v1/cases/{case['id']}/signposts",
        {"service_id": service_id, "reason": "Low mood since the move."},
        work.headers,
    )
    assert await recorded(fresh_app, "signpost.status_changed") == []
    path = f"/v1/cases/{case['id']}/signposts/{signpost['id']}"
    moved = await client.patch(
        path, json={"status": "referred", "note": "Form sent."}, headers=work.headers
    )
    expect(moved)
    [event] = await recorded(fresh_app, "signpost.status_changed")
    assert (event.subject_kind, str(event.subject_id)) == ("signpost", signpost["id"])
    assert (event.la_code, event.school_id) == ("202", uuid.UUID(work.school["id"]))
    assert event.payload == {
        "signpost_id": signpost["id"],
        "case_id": case["id"],
        "service_id": service_id,
        "status": "referred",
        "previous_status": "suggested",
    }
    # A move the workflow refuses writes nothing.
    back = await client.patch(path, json={"status": "suggested"}, headers=work.headers)
    assert_problem(back, 409)
    assert len(await recorded(fresh_app, "signpost.status_changed")) == 1
    await catalogued(client, work.headers, [event], never_shown(work, "Low mood", "Form sent."))


def test_every_event_type_has_a_catalogue_entry() -> None:
    assert set(CATALOGUE) == set(EventType)
    assert [item.type for item in catalogue()] == list(EventType)
