"""Actions as records (issue 17, item 2): recorded on a case with a source, an owner and a
due day; followed up `open → done | not_done | superseded`, each change dated and audited;
a work list within reach; overdue actions announced once; contacts' action plans become
action records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.models.base import utcnow
from app.services.action_overdue import record_overdue_actions
from tests.builders.api import assert_problem, created, expect, items, walk
from tests.builders.casework import (
    Casework,
    add_goal,
    add_review,
    casework,
    chronology,
    open_case,
    open_case_since,
    request_closure,
)
from tests.builders.clock import days_ago, today
from tests.builders.database import rows
from tests.builders.outbox import recorded
from tests.conftest import World


def action_body(owner: dict[str, Any], due_on: Any = None, **fields: Any) -> dict[str, Any]:
    return {
        "text": "Book the school nurse appointment",
        "source_kind": "other",
        "owner": owner,
        "due_on": (due_on or today() + timedelta(days=14)).__str__(),
        **fields,
    }


def staff_owner(work: Casework) -> dict[str, Any]:
    return {"kind": "staff", "staff_id": work.practitioner["id"]}


async def record(
    http: httpx.AsyncClient, headers: dict[str, str], case_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    return await created(http, f"/v1/cases/{case_id}/actions", body, headers)


async def set_status(
    http: httpx.AsyncClient, headers: dict[str, str], action_id: str, **body: Any
) -> httpx.Response:
    return await http.post(f"/v1/actions/{action_id}/status", json=body, headers=headers)


async def test_an_action_is_recorded_and_followed_up_to_a_final_status(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    goal = await add_goal(client, work.headers, case["id"])
    action = await record(
        client,
        work.headers,
        case["id"],
        action_body(staff_owner(work), source_kind="plan", source_id=goal["id"]),
    )
    assert action["case_id"] == case["id"]
    assert (action["status"], action["overdue"], action["source_kind"]) == ("open", False, "plan")
    assert action["owner"]["kind"] == "staff"
    assert action["owner"]["staff_id"] == work.practitioner["id"]
    assert [h["status"] for h in action["history"]] == ["open"]

    done = expect(await set_status(client, work.headers, action["id"], status="done"))
    assert done["status"] == "done"
    assert [(h["status"], h["changed_by"]) for h in done["history"]] == [
        ("open", f"staff:{work.practitioner['id']}"),
        ("done", f"staff:{work.practitioner['id']}"),
    ]
    # Final: no change, not even to another final status, and no reopening.
    for status in ("open", "not_done", "superseded", "done"):
        assert_problem(
            await set_status(client, work.headers, action["id"], status=status, note="Again."),
            409,
        )
    listed = await items(client, f"/v1/cases/{case['id']}/actions", work.headers)
    assert [(a["id"], a["status"]) for a in listed] == [(action["id"], "done")]

    # Every step is in the chronology (without the action's text) and the audit trail.
    events = [
        e for e in await chronology(client, work.headers, case["id"]) if "action" in e["event"]
    ]
    assert [e["event"] for e in events] == ["action.recorded", "action.status_changed"]
    assert all("nurse" not in e["summary"] for e in events)
    app = client._transport.app  # type: ignore[attr-defined]
    audited = await rows(
        app,
        "SELECT action FROM audit_event WHERE action LIKE 'action.%' ORDER BY occurred_at",
    )
    assert [a for (a,) in audited] == ["action.create", "action.status", "action.list"]


async def test_each_kind_of_owner_and_source(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client)
    case = await open_case(client, work.headers, [work.pupil("P0"), work.pupil("P1")])
    goal = await add_goal(client, work.headers, case["id"])
    review = await add_review(client, work.headers, case["id"], today(), {goal["id"]: 4})
    owners = [
        ({"kind": "family_member", "child_id": work.pupil("P1")}, "child_id"),
        ({"kind": "family_member", "name": "Alex Example", "relationship": "mother"}, "name"),
        ({"kind": "agency", "name": "CAMHS", "role": "Primary mental health worker"}, "name"),
        ({"kind": "staff", "staff_id": work.manager["id"]}, "staff_id"),
    ]
    for owner, shown in owners:
        made = await record(
            client,
            work.headers,
            case["id"],
            action_body(owner, source_kind="review", source_id=review["id"]),
        )
        assert made["owner"]["kind"] == owner["kind"]
        assert made["owner"][shown] == owner[next(k for k in owner if k != "kind")]
    made = await record(
        client, work.headers, case["id"], action_body(owners[2][0] | {}, source_kind="other")
    )
    assert made["owner"]["role"] == "Primary mental health worker"
    assert made["owner"]["relationship"] is None


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"due_on": "2026-02-30"}, ["body", "due_on"]),
        ({"due_on": "next week"}, ["body", "due_on"]),
        ({"due_on": 1700000000}, ["body", "due_on"]),
        ({"due_on": "2000-01-01"}, ["body", "due_on"]),  # before the case opened
        ({"due_on": "2999-01-01"}, ["body", "due_on"]),  # more than two years ahead
        ({"text": ""}, ["body", "text"]),
        ({"text": "x" * 1001}, ["body", "text"]),
        ({"text": "nul\x00byte"}, ["body", "text"]),
        ({"source_kind": "gossip"}, ["body", "source_kind"]),
        ({"surprise": True}, ["body", "surprise"]),
        ({"owner": {"kind": "staff"}}, ["body", "owner"]),
        ({"owner": {"kind": "wizard", "name": "Merlin"}}, ["body", "owner", "kind"]),
        ({"owner": {"kind": "staff", "staff_id": "not-an-id"}}, ["body", "owner", "staff_id"]),
        ({"owner": {"kind": "family_member", "child_id": None, "name": None}}, ["body", "owner"]),
        ({"owner": {"kind": "agency", "name": "CAMHS", "staff_id": None, "x": 1}}, None),
    ],
)
async def test_bad_input_is_refused(
    client: httpx.AsyncClient, world: World, change: dict[str, Any], where: list[str] | None
) -> None:
    work = await casework(world, client)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    body = {**action_body(staff_owner(work)), **change}
    problem = assert_problem(
        await client.post(f"/v1/cases/{case['id']}/actions", json=body, headers=work.headers), 422
    )
    if where is not None:
        assert any(e["loc"][: len(where)] == where for e in problem["errors"]), problem
    assert await items(client, f"/v1/cases/{case['id']}/actions", work.headers) == []


async def test_owners_and_sources_that_are_not_the_cases_are_refused_alike(
    client: httpx.AsyncClient, world: World
) -> None:
    """An unknown owner or source, and another case's or another LA's, get one answer."""
    work = await casework(world, client)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    other_case = await open_case(client, work.headers, [work.pupil("P1")])
    other_goal = await add_goal(client, work.headers, other_case["id"])
    elsewhere = await casework(world, client, la_code="303")
    inactive_or_unknown = [elsewhere.practitioner["id"], "01a00000-0000-7000-8000-000000000000"]
    answers = []
    for staff_id in inactive_or_unknown:
        answer = assert_problem(
            await client.post(
                f"/v1/cases/{case['id']}/actions",
                json=action_body({"kind": "staff", "staff_id": staff_id}),
                headers=work.headers,
            ),
            422,
        )
        answers.append([e["detail"] for e in answer["errors"]])
    assert (
        answers[0] == answers[1] == ["no active staff member who can reach this case has this id"]
    )
    for owner, field in (
        ({"kind": "family_member", "child_id": work.pupil("P1")}, "child_id"),
        ({"kind": "agency", "organization_id": other_goal["id"]}, "organization_id"),
        ({"kind": "team_member", "team_member_id": other_goal["id"]}, "team_member_id"),
    ):
        answer = assert_problem(
            await client.post(
                f"/v1/cases/{case['id']}/actions", json=action_body(owner), headers=work.headers
            ),
            422,
        )
        assert answer["errors"][0]["loc"] == ["body", "owner", field], answer
    for kind, source in (("plan", other_goal["id"]), ("review", other_goal["id"])):
        answer = assert_problem(
            await client.post(
                f"/v1/cases/{case['id']}/actions",
                json=action_body(staff_owner(work), source_kind=kind, source_id=source),
                headers=work.headers,
            ),
            422,
        )
        assert answer["errors"][0]["loc"] == ["body", "source_id"], answer


async def test_a_status_change_needs_its_note_and_a_case_open_for_work(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    first = await record(client, work.headers, case["id"], action_body(staff_owner(work)))
    second = await record(client, work.headers, case["id"], action_body(staff_owner(work)))
    for status in ("not_done", "superseded"):
        problem = assert_problem(
            await set_status(client, work.headers, first["id"], status=status), 422
        )
        assert "note" in problem["errors"][0]["detail"], problem
    for body in (
        {"status": "finished"},
        {"status": "done", "extra": 1},
        {"status": "done", "note": ""},
    ):
        assert_problem(await set_status(client, work.headers, first["id"], **body), 422)
    assert_problem(await set_status(client, work.headers, first["id"], status="open"), 409)
    changed = expect(
        await set_status(
            client,
            work.headers,
            first["id"],
            status="superseded",
            note="Replaced by a CAMHS referral.",
        )
    )
    assert changed["history"][-1]["note"] == "Replaced by a CAMHS referral."
    # A closed case's actions stay as they were: reopen it to follow them up.
    expect(await request_closure(client, work.manager_headers, case["id"]))
    assert_problem(await set_status(client, work.headers, second["id"], status="done"), 409)
    assert_problem(
        await client.post(
            f"/v1/cases/{case['id']}/actions",
            json=action_body(staff_owner(work)),
            headers=work.headers,
        ),
        409,
    )


async def test_another_las_staff_cannot_see_or_change_a_cases_actions(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    action = await record(client, work.headers, case["id"], action_body(staff_owner(work)))
    elsewhere = await casework(world, client, la_code="303")
    for headers in (elsewhere.headers, elsewhere.manager_headers):
        assert_problem(await client.get(f"/v1/cases/{case['id']}/actions", headers=headers), 404)
        assert_problem(
            await client.post(
                f"/v1/cases/{case['id']}/actions",
                json=action_body({"kind": "agency", "name": "Police"}),
                headers=headers,
            ),
            404,
        )
        assert_problem(await set_status(client, headers, action["id"], status="done"), 404)
        for params in (
            {},
            {"case_id": case["id"]},
            {"owner": work.practitioner["id"]},
            {"status": "open"},
        ):
            assert await items(client, "/v1/actions", headers, **params) == []
    still = await items(client, f"/v1/cases/{case['id']}/actions", work.headers)
    assert [a["status"] for a in still] == ["open"]
    # Without the scopes: 403.
    reader = await world.client_headers("cases:read", la_code="202")
    assert_problem(await set_status(client, reader, action["id"], status="done"), 403)


async def test_the_work_list(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client)
    colleague = await world.staff("practitioner", schools=[work.school])
    case = await open_case(client, work.headers, [work.pupil("P0")])
    other = await open_case(client, work.headers, [work.pupil("P1")])
    mine_soon = await record(
        client,
        work.headers,
        case["id"],
        action_body(staff_owner(work), today() + timedelta(days=3)),
    )
    mine_later = await record(
        client,
        work.headers,
        other["id"],
        action_body(staff_owner(work), today() + timedelta(days=30)),
    )
    theirs = await record(
        client,
        work.headers,
        case["id"],
        action_body({"kind": "staff", "staff_id": colleague["id"]}),
    )
    family = await record(
        client,
        work.headers,
        case["id"],
        action_body({"kind": "family_member", "name": "Alex Example"}),
    )
    expect(await set_status(client, work.headers, mine_later["id"], status="done"))

    def ids(found: list[dict[str, Any]]) -> list[str]:
        return [a["id"] for a in found]

    assert ids(await items(client, "/v1/actions", work.headers, owner="me")) == [
        mine_soon["id"],
        mine_later["id"],
    ]
    assert ids(await items(client, "/v1/actions", work.headers, owner="me", status="open")) == [
        mine_soon["id"]
    ]
    week = (today() + timedelta(days=7)).isoformat()
    assert ids(await items(client, "/v1/actions", work.headers, due_before=week)) == [
        mine_soon["id"]
    ]
    # A manager's view: everyone's, or one practitioner's.
    assert ids(await walk(client, "/v1/actions", work.manager_headers, limit=2)) == [
        mine_soon["id"],
        mine_later["id"],
        theirs["id"],
        family["id"],
    ]
    assert ids(await items(client, "/v1/actions", work.manager_headers, owner=colleague["id"])) == [
        theirs["id"]
    ]
    assert ids(await items(client, "/v1/actions", work.manager_headers, case_id=other["id"])) == [
        mine_later["id"]
    ]
    # `me` is a staff member: a system has none.
    system = await world.client_headers("cases:read", la_code="202")
    assert_problem(await client.get("/v1/actions", params={"owner": "me"}, headers=system), 422)
    for params in (
        {"owner": "someone"},
        {"due_before": "soon"},
        {"status": "late"},
        {"cursor": "!"},
    ):
        response = await client.get("/v1/actions", params=params, headers=work.headers)
        assert response.status_code in (400, 422), response.text


async def test_a_contacts_action_plan_becomes_action_records(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    plan = [
        {"action": "Apply for free school meals", "owner": "Mum", "due": today().isoformat()},
        {"action": "Send the timetable", "owner": "School", "done": True},
    ]
    contact = await created(
        client,
        f"/v1/cases/{case['id']}/interventions",
        {
            "type": "one_to_one_session",
            "occurred_at": datetime.now(UTC).isoformat(),
            "minutes": 30,
            "location": "school",
            "actions": plan,
        },
        work.headers,
    )
    # The contact answers as before.
    assert contact["actions"] == [
        {**plan[0], "done": False},
        {**plan[1], "due": None},
    ]
    made = await items(client, f"/v1/cases/{case['id']}/actions", work.headers)
    assert [(a["text"], a["status"], a["source_kind"], a["source_id"]) for a in made] == [
        ("Apply for free school meals", "open", "contact", contact["id"]),
        ("Send the timetable", "done", "contact", contact["id"]),
    ]
    assert [(a["owner"]["kind"], a["owner"]["name"]) for a in made] == [
        ("named", "Mum"),
        ("named", "School"),
    ]
    expect(await set_status(client, work.headers, made[0]["id"], status="done", note="Applied."))
    [listed] = await items(client, f"/v1/cases/{case['id']}/interventions", work.headers)
    assert listed["actions"] == contact["actions"]  # the contact's plan stays as written


async def test_an_overdue_action_is_announced_once(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    work = await casework(world, client)
    settings = fresh_app.state.settings
    case = await open_case_since(client, work, [work.pupil("P0")], days_ago(20))
    late = await record(
        client, work.headers, case["id"], action_body(staff_owner(work), days_ago(3))
    )
    due_today = await record(
        client, work.headers, case["id"], action_body(staff_owner(work), today())
    )
    done_late = await record(
        client, work.headers, case["id"], action_body(staff_owner(work), days_ago(5))
    )
    expect(await set_status(client, work.headers, done_late["id"], status="done"))
    assert late["overdue"] is True and due_today["overdue"] is False

    async def sweep() -> int:
        async with fresh_app.state.session_factory() as session:
            count = await record_overdue_actions(session, settings, utcnow())
            await session.commit()
            return count

    assert await sweep() == 1
    assert await sweep() == 0
    [event] = await recorded(fresh_app, "case.action_overdue")
    assert (event.subject_kind, str(event.subject_id)) == ("case", case["id"])
    assert event.payload == {
        "case_id": case["id"],
        "action_id": late["id"],
        "la_code": "202",
        "school_id": work.school["id"],
        "due_on": days_ago(3).isoformat(),
        "owner_kind": "staff",
        "owner_staff_id": work.practitioner["id"],
    }
    # Done after the event: nothing more; a closed case's actions are not announced.
    expect(await set_status(client, work.headers, late["id"], status="done"))
    other = await open_case_since(client, work, [work.pupil("P1")], days_ago(20))
    await record(client, work.headers, other["id"], action_body(staff_owner(work), days_ago(2)))
    expect(await request_closure(client, work.manager_headers, other["id"]))
    assert await sweep() == 0
    assert len(await recorded(fresh_app, "case.action_overdue")) == 1


async def test_a_member_of_the_team_around_the_family_owns_an_action(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    other = await open_case(client, work.headers, [work.pupil("P1")])
    team = f"/v1/cases/{case['id']}/team"
    camhs = await created(
        client, team, {"kind": "agency", "name": "CAMHS", "role": "Clinician"}, work.headers
    )
    nurse = await created(
        client, team, {"kind": "agency", "name": "School nursing", "role": "Nurse"}, work.headers
    )
    elsewhere = await created(
        client,
        f"/v1/cases/{other['id']}/team",
        {"kind": "agency", "name": "Police", "role": "PCSO"},
        work.headers,
    )
    made = await record(
        client,
        work.headers,
        case["id"],
        action_body({"kind": "team_member", "team_member_id": camhs["id"]}),
    )
    assert made["owner"]["kind"] == "team_member"
    assert made["owner"]["team_member_id"] == camhs["id"]
    expect(await client.post(f"{team}/{nurse['id']}/leave", json={}, headers=work.headers))
    for member in (nurse, elsewhere):
        answer = assert_problem(
            await client.post(
                f"/v1/cases/{case['id']}/actions",
                json=action_body({"kind": "team_member", "team_member_id": member["id"]}),
                headers=work.headers,
            ),
            422,
        )
        assert answer["errors"][0]["detail"] == "no current member of this case's team has this id"


async def test_a_meeting_of_the_case_is_a_source(client: httpx.AsyncClient, world: World) -> None:
    """`source_kind: meeting` names a planned or held meeting of this case; another case's
    meeting, or an id that is no meeting, gets the same 422 as any other source."""
    work = await casework(world, client)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    other_case = await open_case(client, work.headers, [work.pupil("P1")])
    plan = {
        "type": "one_to_one_session",
        "scheduled_at": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
        "minutes": 30,
        "location": "school",
    }
    meeting = await created(client, f"/v1/cases/{case['id']}/meetings", plan, work.headers)
    elsewhere = await created(client, f"/v1/cases/{other_case['id']}/meetings", plan, work.headers)
    made = await record(
        client,
        work.headers,
        case["id"],
        action_body(staff_owner(work), source_kind="meeting", source_id=meeting["id"]),
    )
    assert (made["source_kind"], made["source_id"]) == ("meeting", meeting["id"])
    details = []
    for source in (elsewhere["id"], case["id"], "01a00000-0000-7000-8000-000000000000"):
        answer = assert_problem(
            await client.post(
                f"/v1/cases/{case['id']}/actions",
                json=action_body(staff_owner(work), source_kind="meeting", source_id=source),
                headers=work.headers,
            ),
            422,
        )
        assert answer["errors"][0]["loc"] == ["body", "source_id"], answer
        details.append(answer["errors"][0]["detail"])
    assert details == ["no meeting with this id on this case"] * 3
    # A meeting action may still name no source.
    unsourced = await record(
        client, work.headers, case["id"], action_body(staff_owner(work), source_kind="meeting")
    )
    assert unsourced["source_id"] is None
    assert len(await items(client, f"/v1/cases/{case['id']}/actions", work.headers)) == 2
