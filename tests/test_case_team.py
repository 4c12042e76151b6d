"""The team around the family: staff members (by username) and partner agencies (from the
directory, or named) join a case's team with their role and contact, leave it on a day, and
both steps reach the chronology and the audit trail; outsiders learn nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI

from tests.builders.api import assert_problem, expect
from tests.builders.casework import (
    AuditTrail,
    chronology,
    family,
    positions,
    request_closure,
    route,
)
from tests.builders.clock import days_ago, today
from tests.builders.holds import disposed, retain
from tests.builders.team import agency, join, leave, organisation, staff_member, team
from tests.conftest import World


async def test_staff_and_agencies_join_and_leave_the_team(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    colleague = await world.staff("practitioner", la_code="202")
    camhs = await organisation(world, "Riverside CAMHS")

    mine = await join(
        client,
        fam.headers,
        fam.id,
        staff_member(
            colleague["username"].upper(), "Attendance officer", joined_on=days_ago(30).isoformat()
        ),
    )
    assert mine["kind"] == "staff"
    assert mine["username"] == colleague["username"]
    assert mine["staff_member_id"] == colleague["id"]
    assert mine["name"] == "Test practitioner"
    assert mine["joined_on"] == days_ago(30).isoformat()
    assert mine["left_on"] is None and mine["current"] is True
    assert mine["created_by"] == f"staff:{fam.work.practitioner['id']}"

    from_directory = await join(
        client,
        fam.headers,
        fam.id,
        {
            "kind": "agency",
            "organization_id": camhs,
            "role": "CAMHS worker",
            "contact": "0161 496 0000",
            "joined_on": days_ago(20).isoformat(),
        },
    )
    assert from_directory["organization_id"] == camhs
    assert from_directory["name"] == "Riverside CAMHS"
    assert from_directory["contact"] == "0161 496 0000"

    nurse = await join(
        client, fam.headers, fam.id, agency("Riverside school nursing", "school nurse")
    )
    assert nurse["joined_on"] == today().isoformat()
    assert nurse["organization_id"] is None and nurse["username"] is None

    everyone = await team(client, fam.headers, fam.id)
    assert [m["id"] for m in everyone] == [mine["id"], from_directory["id"], nurse["id"]]

    left = await leave(
        client, fam.headers, fam.id, mine["id"], left_on=days_ago(2).isoformat(), note="Moved on"
    )
    gone = expect(left)
    assert gone["left_on"] == days_ago(2).isoformat()
    assert gone["leaving_note"] == "Moved on"
    assert gone["current"] is False

    current = await team(client, fam.headers, fam.id, current=True)
    assert [m["id"] for m in current] == [from_directory["id"], nurse["id"]]
    past = await team(client, fam.headers, fam.id, current=False)
    assert [m["id"] for m in past] == [mine["id"]]
    assert len(await team(client, fam.headers, fam.id)) == 3

    # Leaving twice is a conflict; a staff member who left may join again.
    assert_problem(await leave(client, fam.headers, fam.id, mine["id"]), 409, "conflict")
    again = await join(client, fam.headers, fam.id, staff_member(colleague["username"]))
    assert again["current"] is True


async def test_joining_and_leaving_reach_the_chronology_and_the_audit_trail(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    dpo = await world.headers(await world.staff("dpo", la_code="202"))
    trail = AuditTrail(client, dpo)
    await trail.new_events(fam.child)
    nurse = await join(client, fam.headers, fam.id, agency("Riverside school nursing", "nurse"))
    expect(await leave(client, fam.headers, fam.id, nurse["id"]))
    await team(client, fam.headers, fam.id)

    events = sorted(await trail.new_events(fam.child), key=lambda e: str(e["id"]))
    actions = [e["action"] for e in events]
    assert actions == ["team_member.create", "team_member.leave", "team_member.list"]
    # The sibling on the case is named too.
    sibling_trail = AuditTrail(client, dpo)
    sibling_actions = [e["action"] for e in await sibling_trail.new_events(fam.sibling)]
    assert "team_member.create" in sibling_actions

    items = await chronology(client, fam.headers, fam.id)
    joined = positions(items, "team", "joined")
    left = positions(items, "team", "left")
    assert len(joined) == 1 and len(left) == 1 and joined[0] < left[0]
    assert "Riverside school nursing (nurse) joined" in items[joined[0]]["summary"]
    assert "left the team" in items[left[0]]["summary"]


async def test_who_may_join(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    other_la = await world.staff("practitioner", la_code="303")
    dpo = await world.staff("dpo", la_code="202")
    neighbour_school = await world.school(la_code="202")
    elsewhere = await world.staff("practitioner", schools=[neighbour_school])
    manager = fam.work.manager

    async def refused(body: dict[str, object], field: str) -> str:
        response = await client.post(route(fam.id, "team"), json=body, headers=fam.headers)
        problem = assert_problem(response, 422)
        locs = [e["loc"] for e in problem.get("errors") or []]
        assert any(field in loc for loc in locs) or field in str(problem), problem
        return str(problem)

    # Another LA's practitioner is answered exactly as no account at all.
    unknown = await refused(staff_member("nobody@example.org"), "username")
    foreign = await refused(staff_member(other_la["username"]), "username")
    assert unknown.split("request_id")[0] == foreign.split("request_id")[0]
    # A practitioner bound to another school of the LA does not reach this case.
    await refused(staff_member(elsewhere["username"]), "username")
    # A DPO reaches the case but is not a practitioner.
    await refused(staff_member(dpo["username"]), "username")
    # A manager of the school may join.
    await join(client, fam.headers, fam.id, staff_member(manager["username"], "Team manager"))
    # ...once: while on the team, joining again is a conflict.
    again = await client.post(
        route(fam.id, "team"), json=staff_member(manager["username"]), headers=fam.headers
    )
    assert_problem(again, 409, "conflict")

    await refused({"kind": "agency", "organization_id": str(uuid.uuid4()), "role": "GP"}, "org")
    assert len(await team(client, fam.headers, fam.id)) == 1


async def test_bad_input_is_refused(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world, opened_days_ago=10)
    nurse = await join(client, fam.headers, fam.id, agency("School nursing", "nurse"))
    bodies = [
        {"kind": "staff", "role": "EWO"},  # staff without a username
        {"kind": "staff", "username": "a@example.org", "name": "Bob", "role": "EWO"},
        {"kind": "agency", "role": "GP"},  # neither organisation nor name
        {"kind": "agency", "name": "GP", "organization_id": str(uuid.uuid4()), "role": "GP"},
        {"kind": "agency", "name": "GP", "username": "a@example.org", "role": "GP"},
        {"kind": "partner", "name": "GP", "role": "GP"},
        agency("GP", ""),
        agency("GP\x00", "GP"),
        agency("G" * 201, "GP"),
        agency("GP", "GP", contact="0" * 301),
        agency("GP", "GP", colour="blue"),
        agency("GP", "GP", joined_on=(today() + timedelta(days=1)).isoformat()),
        agency("GP", "GP", joined_on=days_ago(11).isoformat()),  # before the case opened
        agency("GP", "GP", joined_on="yesterday"),
    ]
    for body in bodies:
        response = await client.post(route(fam.id, "team"), json=body, headers=fam.headers)
        assert_problem(response, 422, "validation-failed")
    before = days_ago(1).isoformat()
    response = await leave(client, fam.headers, fam.id, nurse["id"], left_on=before)
    assert_problem(response, 422)
    assert "before they joined" in response.text
    response = await leave(client, fam.headers, fam.id, nurse["id"], reason="gone")
    assert_problem(response, 422)
    assert_problem(await leave(client, fam.headers, fam.id, str(uuid.uuid4())), 404, "not-found")
    assert len(await team(client, fam.headers, fam.id, current=True)) == 1


async def test_a_team_outside_reach_is_404(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    nurse = await join(client, fam.headers, fam.id, agency("School nursing", "nurse"))
    other = await family(client, world)
    other_la = [
        await world.headers(await world.staff(role, la_code="303"))
        for role in ("practitioner", "manager")
    ]
    neighbour = await world.school(la_code="202")
    same_la_other_school = await world.headers(
        await world.staff("practitioner", schools=[neighbour])
    )
    for headers in (*other_la, same_la_other_school):
        assert_problem(await client.get(route(fam.id, "team"), headers=headers), 404, "not-found")
        response = await client.post(
            route(fam.id, "team"), json=agency("Probe", "probe"), headers=headers
        )
        assert_problem(response, 404, "not-found")
        assert_problem(await leave(client, headers, fam.id, nurse["id"]), 404, "not-found")
    # A member is found only through its own case.
    assert_problem(await leave(client, other.headers, other.id, nurse["id"]), 404, "not-found")
    members = await team(client, fam.headers, fam.id)
    assert [(m["id"], m["left_on"]) for m in members] == [(nurse["id"], None)]


async def test_reading_needs_cases_read_and_writing_cases_write(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    nurse = await join(client, fam.headers, fam.id, agency("School nursing", "nurse"))
    dpo = await world.headers(await world.staff("dpo", la_code="202"))
    assert len(await team(client, dpo, fam.id)) == 1
    response = await client.post(route(fam.id, "team"), json=agency("GP", "GP"), headers=dpo)
    assert_problem(response, 403, "insufficient-scope")
    assert_problem(await leave(client, dpo, fam.id, nurse["id"]), 403, "insufficient-scope")
    hub = await world.client_headers("referrals:write referrals:read", la_code="202")
    assert_problem(await client.get(route(fam.id, "team"), headers=hub), 403)
    assert (await client.get(route(fam.id, "team"))).status_code == 401


async def test_a_closed_case_keeps_its_team_but_takes_no_changes(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    nurse = await join(client, fam.headers, fam.id, agency("School nursing", "nurse"))
    closed = await request_closure(client, fam.work.manager_headers, fam.id)
    assert closed.json()["status"] == "closed", closed.text
    response = await client.post(
        route(fam.id, "team"), json=agency("GP", "GP"), headers=fam.headers
    )
    assert_problem(response, 409, "conflict")
    assert_problem(await leave(client, fam.headers, fam.id, nurse["id"]), 409, "conflict")
    assert [m["id"] for m in await team(client, fam.headers, fam.id)] == [nurse["id"]]


async def test_subject_access_holds_the_team(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    nurse = await join(
        client, fam.headers, fam.id, agency("School nursing", "nurse", contact="0161 496 0001")
    )
    dpo = await world.headers(await world.staff("dpo", la_code="202"))
    found = expect(await client.get(f"/v1/pupils/{fam.child}/subject-access", headers=dpo))
    [row] = found["team_members"]
    assert (row["id"], row["case_id"], row["contact"]) == (nurse["id"], fam.id, "0161 496 0001")
    # Nobody else's case: the stranger at the school has none.
    found = expect(await client.get(f"/v1/pupils/{fam.stranger}/subject-access", headers=dpo))
    assert found["team_members"] == []


async def test_deidentification_clears_the_teams_contact_details(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    fam = await family(client, world)
    colleague = await world.staff("practitioner", la_code="202")
    staff = await join(
        client, fam.headers, fam.id, staff_member(colleague["username"], contact="ext 204")
    )
    named = await join(
        client, fam.headers, fam.id, agency("Dr Example's surgery", "GP", contact="0161 496 0002")
    )
    camhs = await organisation(world, "Riverside CAMHS")
    listed = await join(
        client, fam.headers, fam.id, {"kind": "agency", "organization_id": camhs, "role": "CAMHS"}
    )
    expect(await leave(client, fam.headers, fam.id, named["id"], note="Family changed GP"))
    closed = await request_closure(client, fam.work.manager_headers, fam.id)
    assert closed.json()["status"] == "closed", closed.text

    far = today().replace(year=today().year + 26)
    summary = await retain(fresh_app, far, only=["early_help_case"])
    assert disposed(summary, "early_help_case") == 1

    after = {m["id"]: m for m in await team(client, fam.work.manager_headers, fam.id)}
    assert after[staff["id"]]["name"] == "Test practitioner"
    assert after[staff["id"]]["contact"] is None
    assert after[named["id"]]["name"] == ""
    assert after[named["id"]]["contact"] is None and after[named["id"]]["leaving_note"] is None
    assert after[named["id"]]["role"] == "GP"
    assert after[named["id"]]["left_on"] == today().isoformat()
    assert after[listed["id"]]["name"] == "Riverside CAMHS"
