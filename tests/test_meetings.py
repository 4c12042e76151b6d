"""Planned contacts and meetings: scheduled ahead with a time, place, agenda and invitees,
then held (its record, action plan and attendees, a visit's outcome), rescheduled (earlier
times kept) or marked as not having happened with a reason; the contact rules at the moment
they matter; the chronology and the audit trail; outsiders learn nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from tests.builders.api import assert_problem, created, expect, items
from tests.builders.casework import (
    AuditTrail,
    Family,
    chronology,
    family,
    hub,
    patch_case,
    positions,
    referral_body,
    request_closure,
    route,
)
from tests.builders.clock import today
from tests.builders.holds import disposed, retain
from tests.builders.referrals import act, decision, refer
from tests.builders.team import (
    agency,
    join,
    leave,
    meetings,
    moment,
    plan,
    schedule,
    staff_member,
    step,
)
from tests.conftest import World

HELD, RESCHEDULE, NOT_HAPPENED = "held", "reschedule", "did-not-happen"


async def nurse_of(http: httpx.AsyncClient, fam: Family) -> dict[str, Any]:
    return await join(http, fam.headers, fam.id, agency("Riverside school nursing", "nurse"))


async def test_a_meeting_is_planned_then_held_with_its_record_and_attendees(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    nurse = await nurse_of(client, fam)
    colleague = await world.staff("practitioner", la_code="202")
    ewo = await join(client, fam.headers, fam.id, staff_member(colleague["username"], "EWO"))
    planned_at = datetime.now(UTC) - timedelta(days=2)
    meeting = await schedule(
        client,
        fam.headers,
        fam.id,
        plan(
            type="multi_agency_meeting",
            scheduled_at=planned_at.isoformat(),
            minutes=90,
            place="Oak Primary, meeting room 2",
            agenda="1. Attendance 2. Health 3. Actions",
            child_ids=[fam.child],
            invitees=[
                {"team_member_id": nurse["id"]},
                {"team_member_id": ewo["id"]},
                {"child_id": fam.child},
                {"name": "Alex Example", "role": "mother"},
            ],
        ),
    )
    assert datetime.fromisoformat(meeting["scheduled_at"]) == planned_at
    assert meeting["place"] == "Oak Primary, meeting room 2"
    assert meeting["invitees"][0] == {
        "kind": "team_member",
        "team_member_id": nurse["id"],
        "child_id": None,
        "name": "Riverside school nursing",
        "role": "nurse",
        "invited": None,
    }
    assert meeting["invitees"][2]["kind"] == "child"
    assert meeting["invitees"][3]["name"] == "Alex Example"
    assert meeting["intervention_id"] is None and meeting["occurred_at"] is None
    assert meeting["actions"] == [] and meeting["previous_times"] == []

    due = (today() + timedelta(days=14)).isoformat()
    response = await step(
        client,
        fam.headers,
        fam.id,
        meeting["id"],
        HELD,
        {
            "record": "Attendance up to 88%. Nurse to review sleep.",
            "actions": [{"action": "Review sleep", "owner": "School nurse", "due": due}],
            "attendees": [
                {"team_member_id": nurse["id"]},
                {"child_id": fam.child},
                {"name": "alex  EXAMPLE", "role": "mother"},
                {"name": "Sam Example", "role": "grandmother"},  # came along, not invited
            ],
        },
    )
    held = expect(response)
    assert held["status"] == "held"
    assert datetime.fromisoformat(held["occurred_at"]) == planned_at
    assert held["record"] == "Attendance up to 88%. Nurse to review sleep."
    assert held["actions"] == [
        {"action": "Review sleep", "owner": "School nurse", "due": due, "done": False}
    ]
    assert [(a["kind"], a["invited"]) for a in held["attendees"]] == [
        ("team_member", True),
        ("child", True),
        ("named", True),
        ("named", False),
    ]
    # The contact record, written with it, is in the contact list like any other.
    [contact] = await meetings_contacts(client, fam)
    assert contact["id"] == held["intervention_id"]
    assert contact["type"] == "multi_agency_meeting"
    assert contact["minutes"] == 90
    assert contact["agenda"] == "1. Attendance 2. Health 3. Actions"
    assert contact["record"] == held["record"]
    assert contact["child_ids"] == [fam.child] and contact["child_seen"] is True
    assert contact["participants"] == [
        "Riverside school nursing (nurse)",
        "alex  EXAMPLE (mother)",
        "Sam Example (grandmother)",
    ]
    assert (await meetings(client, fam.headers, fam.id)) == [held]
    read = expect(await client.get(route(fam.id, f"meetings/{meeting['id']}"), headers=fam.headers))
    assert read == held

    # Held is final: held twice, moved or cancelled afterwards is a conflict.
    for what, body in (
        (HELD, {"record": "Again."}),
        (RESCHEDULE, {"scheduled_at": moment(days=-1)}),
        (NOT_HAPPENED, {"reason": "no_answer"}),
    ):
        again = await step(client, fam.headers, fam.id, meeting["id"], what, body)
        assert_problem(again, 409, "conflict")
    assert len(await meetings_contacts(client, fam)) == 1


async def meetings_contacts(http: httpx.AsyncClient, fam: Family) -> list[dict[str, Any]]:
    """The case's contact records."""
    found: list[dict[str, Any]] = expect(
        await http.get(route(fam.id, "interventions"), headers=fam.headers)
    )["items"]
    return found


async def test_rescheduled_and_then_not_happened_with_the_history_kept(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    dpo = await world.headers(await world.staff("dpo", la_code="202"))
    trail = AuditTrail(client, dpo)
    await trail.new_events(fam.child)
    first = datetime.now(UTC) + timedelta(days=3)
    meeting = await schedule(
        client,
        fam.headers,
        fam.id,
        plan(
            type="planned_home_visit",
            location="home",
            scheduled_at=first.isoformat(),
            place="The family home",
        ),
    )
    second = first + timedelta(days=2)
    moved = expect(
        await step(
            client,
            fam.headers,
            fam.id,
            meeting["id"],
            RESCHEDULE,
            {"scheduled_at": second.isoformat(), "reason": "Mum at a hospital appointment"},
        )
    )
    assert datetime.fromisoformat(moved["scheduled_at"]) == second
    [earlier] = moved["previous_times"]
    assert datetime.fromisoformat(earlier["scheduled_at"]) == first
    assert earlier["location"] == "home" and earlier["place"] == "The family home"
    assert earlier["reason"] == "Mum at a hospital appointment"
    assert earlier["rescheduled_by"] == f"staff:{fam.work.practitioner['id']}"
    third = second + timedelta(hours=3)
    moved = expect(
        await step(
            client,
            fam.headers,
            fam.id,
            meeting["id"],
            RESCHEDULE,
            {"scheduled_at": third.isoformat(), "location": "school", "place": "Oak Primary"},
        )
    )
    assert [datetime.fromisoformat(p["scheduled_at"]) for p in moved["previous_times"]] == [
        first,
        second,
    ]
    assert (moved["location"], moved["place"], moved["status"]) == (
        "school",
        "Oak Primary",
        "scheduled",
    )
    gone = expect(
        await step(
            client, fam.headers, fam.id, meeting["id"], NOT_HAPPENED, {"reason": "family_declined"}
        )
    )
    assert gone["status"] == "did_not_happen"
    assert gone["not_happened_reason"] == "family_declined"
    assert gone["intervention_id"] is None
    assert await meetings_contacts(client, fam) == []
    again = await step(
        client, fam.headers, fam.id, meeting["id"], NOT_HAPPENED, {"reason": "other", "note": "x"}
    )
    assert_problem(again, 409, "conflict")

    events = sorted(await trail.new_events(fam.child), key=lambda e: str(e["id"]))
    assert [e["action"] for e in events] == [
        "meeting.schedule",
        "meeting.reschedule",
        "meeting.reschedule",
        "meeting.not_happened",
        "intervention.list",
    ]

    items = await chronology(client, fam.headers, fam.id)
    planned = positions(items, "meeting", "scheduled")
    rescheduled = positions(items, "meeting", "rescheduled")
    cancelled = positions(items, "meeting", "did", "not", "happen")
    assert len(planned) == 1 and len(rescheduled) == 2 and len(cancelled) == 1
    assert planned[0] < rescheduled[0] < rescheduled[1] < cancelled[0]
    assert "Planned home visit planned for" in items[planned[0]]["summary"]
    assert "moved from" in items[rescheduled[0]]["summary"]
    assert items[cancelled[0]]["summary"].endswith("did not happen: family declined")
    # The place (a family's address, perhaps) is not in the chronology.
    assert not any("family home" in i["summary"] for i in items)


async def test_lists_filter_by_state_and_planned_day(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    soon = await schedule(client, fam.headers, fam.id, plan(days_ahead=1))
    later = await schedule(client, fam.headers, fam.id, plan(days_ahead=20))
    past = await schedule(client, fam.headers, fam.id, plan(days_ahead=-2))
    expect(await step(client, fam.headers, fam.id, past["id"], HELD, {}))

    def ids(found: list[dict[str, Any]]) -> list[str]:
        return [m["id"] for m in found]

    assert ids(await meetings(client, fam.headers, fam.id)) == [past["id"], soon["id"], later["id"]]
    assert ids(await meetings(client, fam.headers, fam.id, status="scheduled")) == [
        soon["id"],
        later["id"],
    ]
    assert ids(await meetings(client, fam.headers, fam.id, status="held")) == [past["id"]]
    start = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    assert ids(await meetings(client, fam.headers, fam.id, **{"from": start})) == [later["id"]]
    end = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert ids(await meetings(client, fam.headers, fam.id, to=end)) == [past["id"]]
    for bad in ({"status": "planned"}, {"from": "soon"}, {"to": "2026-13-01"}):
        response = await client.get(route(fam.id, "meetings"), params=bad, headers=fam.headers)
        assert_problem(response, 422)


async def test_the_contact_rules_apply_when_they_matter(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)

    async def held(meeting: dict[str, Any], body: dict[str, Any], status: int = 200) -> Any:
        response = await step(client, fam.headers, fam.id, meeting["id"], HELD, body)
        if status != 200:
            return assert_problem(response, status)
        return expect(response)

    # A formal meeting is planned with its agenda, and held with its record.
    response = await client.post(
        route(fam.id, "meetings"), json=plan(type="signs_of_safety_meeting"), headers=fam.headers
    )
    assert "agenda" in assert_problem(response, 422, "validation-failed")["detail"] + response.text
    formal = await schedule(
        client,
        fam.headers,
        fam.id,
        plan(days_ahead=-1, type="signs_of_safety_meeting", agenda="Worries, strengths"),
    )
    assert "record" in str(await held(formal, {}, 422))
    assert (await held(formal, {"record": "Agreed a safety plan."}))["status"] == "held"

    # A video call with a child is planned freely; it takes place with the parent's consent.
    video = await schedule(
        client,
        fam.headers,
        fam.id,
        plan(days_ahead=-1, type="video_meeting", location="online", child_ids=[fam.child]),
    )
    assert "parent_consent_recorded" in str(await held(video, {}, 422))
    assert (await held(video, {"parent_consent_recorded": True}))["parent_consent_recorded"]

    # A doorstep visit is planned before its risk assessment; it takes place after one and
    # records its outcome.
    visit = await schedule(
        client, fam.headers, fam.id, plan(days_ahead=-1, type="doorstep_visit", location="home")
    )
    assert "risk_assessment_done" in str(await held(visit, {"visit_outcome": "seen"}, 422))
    assert "visit_outcome" in str(await held(visit, {"risk_assessment_done": True}, 422))
    done = await held(visit, {"risk_assessment_done": True, "visit_outcome": "refused"})
    assert (done["visit_outcome"], done["risk_assessment_done"]) == ("refused", True)
    [contact] = [
        c for c in await meetings_contacts(client, fam) if c["id"] == done["intervention_id"]
    ]
    assert contact["child_seen"] is False and contact["risk_assessment_done"] is True
    seen_visit = await schedule(
        client,
        fam.headers,
        fam.id,
        plan(days_ahead=-1, type="planned_home_visit", location="home", risk_assessment_done=True),
    )
    seen = await held(seen_visit, {"visit_outcome": "seen"})
    [contact] = [
        c for c in await meetings_contacts(client, fam) if c["id"] == seen["intervention_id"]
    ]
    assert contact["child_seen"] is True
    # Only a visit has an outcome.
    session = await schedule(client, fam.headers, fam.id, plan(days_ahead=-1))
    assert "visit_outcome" in str(await held(session, {"visit_outcome": "seen"}, 422))
    # A length is planned or given.
    unsized = await schedule(client, fam.headers, fam.id, plan(days_ahead=-1, minutes=None))
    assert "minutes" in str(await held(unsized, {}, 422))
    assert (await held(unsized, {"minutes": 20}))["status"] == "held"

    # The one-step record of a contact that already happened still works as before.
    one_step = {
        "type": "one_to_one_session",
        "occurred_at": moment(days=1),
        "minutes": 50,
        "location": "school",
        "child_ids": [fam.child],
        "child_seen": True,
    }
    expect(
        await client.post(route(fam.id, "interventions"), json=one_step, headers=fam.headers), 201
    )


async def test_bad_input_is_refused(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    nurse = await nurse_of(client, fam)
    other = await family(client, world)
    stranger_member = await nurse_of(client, other)
    left = await join(client, fam.headers, fam.id, agency("Youth service", "youth worker"))
    expect(await leave(client, fam.headers, fam.id, left["id"]))

    refused_plans = [
        plan(days_ahead=-30),  # far in the past: that is a contact to record, not a plan
        plan(days_ahead=-8),
        plan(days_ahead=800),
        plan(scheduled_at="next tuesday"),
        plan(type="coffee"),
        plan(location="moon"),
        plan(minutes=-5),
        plan(minutes=10**12),
        plan(place="x" * 301),
        plan(place="Room\x00 2"),
        plan(agenda="a" * 10_001),
        plan(colour="blue"),
        plan(child_ids=[fam.stranger]),
        plan(child_ids=[str(uuid.uuid4())]),
        plan(invitees=[{"team_member_id": str(uuid.uuid4())}]),
        plan(invitees=[{"team_member_id": stranger_member["id"]}]),
        plan(invitees=[{"team_member_id": left["id"]}]),  # no longer on the team
        plan(invitees=[{"child_id": fam.stranger}]),
        plan(invitees=[{"family_member": "Alex Example"}]),  # no referral names a family
        plan(invitees=[{"name": "Alex Example"}]),  # a named person has a role
        plan(invitees=[{"team_member_id": nurse["id"]}, {"team_member_id": nurse["id"]}]),
        plan(invitees=[{"name": "Alex", "role": "mother", "phone": "0"}]),
    ]
    for body in refused_plans:
        response = await client.post(route(fam.id, "meetings"), json=body, headers=fam.headers)
        assert_problem(response, 422, "validation-failed")
    assert await meetings(client, fam.headers, fam.id) == []

    meeting = await schedule(client, fam.headers, fam.id, plan(days_ahead=-1))
    refused_steps = [
        (NOT_HAPPENED, {}),  # no reason
        (NOT_HAPPENED, {"reason": "snow"}),
        (NOT_HAPPENED, {"reason": "other"}),  # other, without saying why
        (NOT_HAPPENED, {"reason": "no_answer", "note": ""}),
        (RESCHEDULE, {}),
        (RESCHEDULE, {"scheduled_at": moment(days=30)}),
        (HELD, {"occurred_at": moment(days=-1)}),  # in the future
        (HELD, {"occurred_at": moment(days=70)}),  # before the case opened
        (HELD, {"attendees": [{"team_member_id": stranger_member["id"]}]}),
        (HELD, {"attendees": [{"child_id": fam.stranger}]}),
        (HELD, {"attendees": [{"name": "Gran"}]}),
        (HELD, {"actions": [{"action": "x"}]}),
        (HELD, {"minutes": 1441}),
    ]
    for what, body in refused_steps:
        response = await step(client, fam.headers, fam.id, meeting["id"], what, body)
        assert_problem(response, 422, "validation-failed")
    [unchanged] = await meetings(client, fam.headers, fam.id)
    assert unchanged == meeting
    for what, body in ((HELD, {}), (NOT_HAPPENED, {"reason": "no_answer"})):
        response = await step(client, fam.headers, fam.id, str(uuid.uuid4()), what, body)
        assert_problem(response, 404, "not-found")
        # A meeting is found only through its own case.
        response = await step(client, other.headers, other.id, meeting["id"], what, body)
        assert_problem(response, 404, "not-found")
    missing = await client.get(route(fam.id, f"meetings/{uuid.uuid4()}"), headers=fam.headers)
    assert_problem(missing, 404, "not-found")


async def test_a_plan_is_not_dated_before_its_case_opened(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world, opened_days_ago=2)
    response = await client.post(
        route(fam.id, "meetings"), json=plan(days_ahead=-4), headers=fam.headers
    )
    assert "before the case opened" in assert_problem(response, 422)["errors"][0]["detail"]


async def test_family_members_from_the_referral_are_invited_and_attend(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    desk = await hub(world)
    referral = await refer(
        client, desk, referral_body({"pupil_id": fam.stranger})
    )  # Alex Example (mother) in its family list
    await act(client, fam.headers, referral["id"], "review")
    accepted = await act(client, fam.headers, referral["id"], "decision", decision("accept"))
    case_id = accepted["decision"]["case_id"]
    meeting = await schedule(
        client,
        fam.headers,
        case_id,
        plan(days_ahead=0, invitees=[{"family_member": "alex   example"}]),
    )
    assert meeting["invitees"] == [
        {
            "kind": "family_member",
            "team_member_id": None,
            "child_id": None,
            "name": "Alex Example",
            "role": "mother",
            "invited": None,
        }
    ]
    held = expect(
        await step(
            client,
            fam.headers,
            case_id,
            meeting["id"],
            HELD,
            {"attendees": [{"family_member": "ALEX EXAMPLE"}, {"child_id": fam.stranger}]},
        )
    )
    assert [(a["kind"], a["name"], a["invited"]) for a in held["attendees"]] == [
        ("family_member", "Alex Example", True),
        ("child", None, False),
    ]
    unknown = await client.post(
        route(case_id, "meetings"),
        json=plan(invitees=[{"family_member": "Jo Nobody"}]),
        headers=fam.headers,
    )
    assert "family list" in assert_problem(unknown, 422)["errors"][0]["detail"]


async def test_consent_and_closure(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    meeting = await schedule(client, fam.headers, fam.id, plan(days_ahead=2))
    other = await schedule(client, fam.headers, fam.id, plan(days_ahead=4))
    withdrawn = {"given": False, "given_by": "Alex Example (mother)", "date": today().isoformat()}
    changed = await patch_case(client, fam.work.manager_headers, fam.id, {"consent": withdrawn})
    assert changed.status_code == 200, changed.text
    response = await client.post(route(fam.id, "meetings"), json=plan(), headers=fam.headers)
    assert_problem(response, 409, "conflict")
    moved = await step(
        client, fam.headers, fam.id, meeting["id"], RESCHEDULE, {"scheduled_at": moment(days=-5)}
    )
    assert_problem(moved, 409, "conflict")
    # That it will not happen is recorded all the same: that is often why.
    gone = await step(
        client, fam.headers, fam.id, meeting["id"], NOT_HAPPENED, {"reason": "cancelled_by_family"}
    )
    assert expect(gone)["status"] == "did_not_happen"
    closed = await request_closure(
        client, fam.work.manager_headers, fam.id, reason="consent_withdrawn"
    )
    assert closed.json()["status"] == "closed", closed.text
    response = await step(
        client, fam.headers, fam.id, other["id"], NOT_HAPPENED, {"reason": "cancelled_by_service"}
    )
    assert_problem(response, 409, "conflict")
    assert len(await meetings(client, fam.headers, fam.id)) == 2


async def test_closing_the_case_cancels_what_is_still_planned(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    dpo = await world.headers(await world.staff("dpo", la_code="202"))
    trail = AuditTrail(client, dpo)
    visit = await schedule(client, fam.headers, fam.id, plan(days_ahead=-1))
    review = await schedule(client, fam.headers, fam.id, plan(days_ahead=5))
    expect(await step(client, fam.headers, fam.id, visit["id"], HELD, {"record": "Talked."}))
    await trail.new_events(fam.child)
    # A practitioner's request changes nothing until a manager approves it.
    asked = await request_closure(client, fam.headers, fam.id)
    assert asked.json()["status"] == "open", asked.text
    assert [m["status"] for m in await meetings(client, fam.headers, fam.id)] == [
        "held",
        "scheduled",
    ]
    approved = await client.post(
        route(fam.id, "closure/approval"),
        json={"approve": True, "note": "Reviewed in supervision."},
        headers=fam.work.manager_headers,
    )
    assert expect(approved)["status"] == "closed"

    held, cancelled = await meetings(client, fam.headers, fam.id)
    assert (held["id"], held["status"], held["not_happened_reason"]) == (visit["id"], "held", None)
    assert held["intervention_id"] is not None
    assert cancelled["id"] == review["id"]
    assert (cancelled["status"], cancelled["not_happened_reason"]) == (
        "did_not_happen",
        "cancelled_by_service",
    )
    assert cancelled["not_happened_note"] == "case closed"
    assert cancelled["intervention_id"] is None

    items = await chronology(client, fam.headers, fam.id)
    closed = positions(items, "case", "closed")
    gone = positions(items, "meeting", "did", "not", "happen")
    assert len(closed) == 1 and len(gone) == 1 and closed[0] < gone[0]
    assert items[gone[0]]["summary"].endswith("did not happen: cancelled by service (case closed)")
    assert items[gone[0]]["actor"] == f"staff:{fam.work.manager['id']}"
    events = sorted(await trail.new_events(fam.child), key=lambda e: str(e["id"]))
    actions = [e["action"] for e in events]
    assert "meeting.not_happened" in actions
    assert actions.index("meeting.not_happened") < actions.index("case.closure_decision")

    # Reopening does not bring it back.
    reopened = await client.post(
        route(fam.id, "reopen"), json={"reason": "Absences again."}, headers=fam.headers
    )
    assert expect(reopened)["status"] == "open"
    assert [m["status"] for m in await meetings(client, fam.headers, fam.id)] == [
        "held",
        "did_not_happen",
    ]


async def test_meetings_outside_reach_are_404(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    nurse = await nurse_of(client, fam)
    meeting = await schedule(
        client, fam.headers, fam.id, plan(invitees=[{"team_member_id": nurse["id"]}])
    )
    outsiders = [
        await world.headers(await world.staff(role, la_code="303"))
        for role in ("practitioner", "manager")
    ]
    neighbour = await world.school(la_code="202")
    outsiders.append(await world.headers(await world.staff("practitioner", schools=[neighbour])))
    base = route(fam.id, "meetings")
    calls = [
        ("GET", base, None),
        ("GET", f"{base}/{meeting['id']}", None),
        ("POST", base, plan()),
        ("POST", f"{base}/{meeting['id']}/held", {"minutes": 5}),
        ("POST", f"{base}/{meeting['id']}/reschedule", {"scheduled_at": moment(days=-9)}),
        ("POST", f"{base}/{meeting['id']}/did-not-happen", {"reason": "no_answer"}),
    ]
    for headers in outsiders:
        for method, path, body in calls:
            response = await client.request(method, path, json=body, headers=headers)
            assert_problem(response, 404, "not-found")
    # A DPO reads but does not write; a hub does neither.
    dpo = await world.headers(await world.staff("dpo", la_code="202"))
    assert len(await meetings(client, dpo, fam.id)) == 1
    desk = await hub(world)
    for method, path, body in calls:
        response = await client.request(method, path, json=body, headers=dpo)
        if method == "POST":
            assert_problem(response, 403, "insufficient-scope")
        response = await client.request(method, path, json=body, headers=desk)
        assert_problem(response, 403, "insufficient-scope")
    assert [m["status"] for m in await meetings(client, fam.headers, fam.id)] == ["scheduled"]
    [unchanged] = await meetings(client, fam.headers, fam.id)
    assert unchanged == meeting


async def test_subject_access_and_retention(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    fam = await family(client, world)
    family_wide = await schedule(client, fam.headers, fam.id, plan())
    siblings_own = await schedule(client, fam.headers, fam.id, plan(child_ids=[fam.sibling]))
    childs_own = await schedule(
        client, fam.headers, fam.id, plan(days_ahead=-1, child_ids=[fam.child])
    )
    expect(await step(client, fam.headers, fam.id, childs_own["id"], HELD, {"record": "Talked."}))
    dpo = await world.headers(await world.staff("dpo", la_code="202"))
    found = expect(await client.get(f"/v1/pupils/{fam.child}/subject-access", headers=dpo))
    assert {m["id"] for m in found["meetings"]} == {family_wide["id"], childs_own["id"]}
    held_row = next(m for m in found["meetings"] if m["id"] == childs_own["id"])
    assert held_row["status"] == "held" and held_row["intervention_id"]
    # The sibling's own meeting, and its steps in the chronology, are the sibling's.
    steps = [e for e in found["chronology"] if e["event"].startswith("meeting.")]
    assert all(e["details"].get("meeting_id") != siblings_own["id"] for e in steps)
    assert len(steps) == 3
    sibling = expect(await client.get(f"/v1/pupils/{fam.sibling}/subject-access", headers=dpo))
    assert {m["id"] for m in sibling["meetings"]} == {family_wide["id"], siblings_own["id"]}

    closed = await request_closure(client, fam.work.manager_headers, fam.id)
    assert closed.json()["status"] == "closed", closed.text
    far = today().replace(year=today().year + 26)
    assert disposed(await retain(fresh_app, far, only=["early_help_case"]), "early_help_case") == 1
    assert await meetings(client, fam.work.manager_headers, fam.id) == []


async def test_a_held_meetings_action_plan_becomes_action_records_once(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    meeting = await schedule(client, fam.headers, fam.id, plan(days_ahead=-1))
    due = (today() + timedelta(days=14)).isoformat()
    agreed = [
        {"action": "Review sleep", "owner": "School nurse", "due": due},
        {"action": "Send the timetable", "owner": "School", "done": True},
    ]
    held = expect(
        await step(
            client, fam.headers, fam.id, meeting["id"], HELD, {"record": "Met.", "actions": agreed}
        )
    )
    # One source, the meeting: the contact written with it gives no second copy.
    made = await items(client, route(fam.id, "actions"), fam.headers)
    assert [(a["text"], a["status"], a["source_kind"], a["source_id"]) for a in made] == [
        ("Review sleep", "open", "meeting", meeting["id"]),
        ("Send the timetable", "done", "meeting", meeting["id"]),
    ]
    assert [(a["owner"]["kind"], a["owner"]["name"]) for a in made] == [
        ("named", "School nurse"),
        ("named", "School"),
    ]
    assert made[0]["due_on"] == due and made[1]["due_on"] is None
    assert [(h["status"], h["note"]) for h in made[1]["history"]] == [
        ("open", None),
        ("done", "Recorded as done at the meeting."),
    ]
    # Followed up like any action; the meeting's plan stays as written.
    response = await client.post(
        f"/v1/actions/{made[0]['id']}/status",
        json={"status": "done", "note": "Seen by the nurse."},
        headers=fam.headers,
    )
    assert expect(response)["status"] == "done"
    [contact] = await meetings_contacts(client, fam)
    assert contact["id"] == held["intervention_id"]
    assert (
        contact["actions"]
        == held["actions"]
        == [
            {**agreed[0], "done": False},
            {**agreed[1], "due": None},
        ]
    )
    # An action the practitioner records later from the same meeting names it too.
    later = await created(
        client,
        route(fam.id, "actions"),
        {
            "text": "Book a follow-up",
            "source_kind": "meeting",
            "source_id": meeting["id"],
            "owner": {"kind": "staff", "staff_id": fam.work.practitioner["id"]},
            "due_on": due,
        },
        fam.headers,
    )
    assert later["source_id"] == meeting["id"]
    assert len(await items(client, route(fam.id, "actions"), fam.headers)) == 3


async def test_an_action_from_a_siblings_own_meeting_is_the_siblings(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    plan_for = {
        "family": plan(days_ahead=-1),
        "child": plan(days_ahead=-1, child_ids=[fam.child]),
        "sibling": plan(days_ahead=-1, child_ids=[fam.sibling]),
    }
    texts: dict[str, str] = {}
    for whose, body in plan_for.items():
        meeting = await schedule(client, fam.headers, fam.id, body)
        texts[whose] = f"Action agreed at the {whose} meeting"
        actions = [{"action": texts[whose], "owner": "School"}]
        response = await step(
            client, fam.headers, fam.id, meeting["id"], HELD, {"record": "Met.", "actions": actions}
        )
        expect(response)
    dpo = await world.headers(await world.staff("dpo", la_code="202"))

    async def exported(pupil_id: str) -> set[str]:
        found = expect(await client.get(f"/v1/pupils/{pupil_id}/subject-access", headers=dpo))
        ids = {a["id"] for a in found["actions"]}
        assert {s["action_id"] for s in found["action_statuses"]} == ids
        return {a["text"] for a in found["actions"]}

    assert await exported(fam.child) == {texts["family"], texts["child"]}
    assert await exported(fam.sibling) == {texts["family"], texts["sibling"]}
