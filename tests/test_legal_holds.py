"""Legal holds: a DPO places and lifts them on a child, a family or a case within reach;
they are listed, read and audited; another LA's DPO cannot learn they exist; a practitioner
cannot place one; each kind keeps what it says from the retention run."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI

from app.models.attendance import AttendanceMark
from app.models.case import Case
from app.models.referral import Referral
from tests.builders.api import assert_problem, expect, items, read_with_etag
from tests.builders.casework import Casework, casework, hub, open_case, referral_body
from tests.builders.clock import today
from tests.builders.holds import HOLDS, count, disposed, held, lift_hold, place_hold, retain
from tests.builders.schools import AUTUMN_2025, push_marks
from tests.conftest import World

FAR = today().replace(year=today().year + 26)


@pytest.fixture
async def work(world: World, client: httpx.AsyncClient) -> Casework:
    return await casework(world, client, pupils=4)


@pytest.fixture
async def dpo(world: World, work: Casework) -> dict[str, str]:
    return await world.headers(await world.staff("dpo", schools=[work.school]))


@pytest.fixture
async def other_dpo(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    other = await casework(world, client, pupils=1, la_code="203")
    return await world.headers(await world.staff("dpo", schools=[other.school]))


async def test_place_read_list_and_lift(
    client: httpx.AsyncClient, work: Casework, dpo: dict[str, str]
) -> None:
    case = await open_case(client, work.headers, [work.pupil("P1")])
    child = await place_hold(client, dpo, "child", pupil_id=work.pupil("P0"))
    on_case = await place_hold(client, dpo, "case", case_id=case["id"])
    family = await place_hold(client, dpo, "family", case_id=case["id"])
    assert child["active"] and child["la_code"] == "202" and child["kind"] == "child"
    assert child["placed_by"].startswith("staff:") and child["lifted_at"] is None

    read = expect(await client.get(f"{HOLDS}/{on_case['id']}", headers=dpo))
    assert read == on_case
    lifted = await lift_hold(client, dpo, child["id"])
    assert not lifted["active"] and lifted["lift_reason"] == "Inquiry closed"
    again = await client.post(f"{HOLDS}/{child['id']}/lift", json={"reason": "twice"}, headers=dpo)
    assert_problem(again, 409, "conflict")

    listed = await items(client, HOLDS, dpo)
    assert [h["id"] for h in listed] == [child["id"], on_case["id"], family["id"]]
    active = await items(client, HOLDS, dpo, active="true")
    assert [h["id"] for h in active] == [on_case["id"], family["id"]]
    assert [h["id"] for h in await items(client, HOLDS, dpo, active="false")] == [child["id"]]


async def test_every_step_is_audited_with_the_children(
    client: httpx.AsyncClient, work: Casework, dpo: dict[str, str]
) -> None:
    case = await open_case(client, work.headers, [work.pupil("P1"), work.pupil("P2")])
    hold = await place_hold(client, dpo, "case", case_id=case["id"])
    expect(await client.get(f"{HOLDS}/{hold['id']}", headers=dpo))
    await lift_hold(client, dpo, hold["id"])
    await items(client, HOLDS, dpo)

    events = await items(client, "/v1/audit-events", dpo, pupil_id=work.pupil("P2"))
    actions = [e["action"] for e in events if e["action"].startswith("legal_hold.")]
    assert sorted(actions) == sorted(
        ["legal_hold.place", "legal_hold.read", "legal_hold.lift", "legal_hold.list"]
    )
    placed = next(e for e in events if e["action"] == "legal_hold.place")
    assert placed["resource_id"] == hold["id"]
    assert sorted(placed["pupil_ids"]) == sorted([work.pupil("P1"), work.pupil("P2")])


async def test_subjects_outside_reach_are_not_found(
    client: httpx.AsyncClient, work: Casework, dpo: dict[str, str], other_dpo: dict[str, str]
) -> None:
    case = await open_case(client, work.headers, [work.pupil("P0")])
    hold = await place_hold(client, dpo, "child", pupil_id=work.pupil("P0"))
    for body in (
        {"kind": "child", "pupil_id": work.pupil("P0")},
        {"kind": "case", "case_id": case["id"]},
        {"kind": "family", "case_id": case["id"]},
        {"kind": "child", "pupil_id": str(uuid.uuid4())},
    ):
        response = await client.post(HOLDS, json={**body, "reason": "probe"}, headers=other_dpo)
        assert_problem(response, 404, "not-found")
    assert_problem(await client.get(f"{HOLDS}/{hold['id']}", headers=other_dpo), 404, "not-found")
    lift = await client.post(f"{HOLDS}/{hold['id']}/lift", json={"reason": "x"}, headers=other_dpo)
    assert_problem(lift, 404, "not-found")
    assert await items(client, HOLDS, other_dpo) == []


async def test_only_holds_write_places_and_bodies_name_one_subject(
    client: httpx.AsyncClient, work: Casework, dpo: dict[str, str]
) -> None:
    body = {"kind": "child", "pupil_id": work.pupil("P0"), "reason": "x"}
    assert_problem(await client.post(HOLDS, json=body, headers=work.headers), 403)
    assert_problem(await client.get(HOLDS, headers=work.headers), 403)
    for wrong in (
        {"kind": "child", "case_id": str(uuid.uuid4())},
        {"kind": "case", "pupil_id": work.pupil("P0")},
        {"kind": "family", "case_id": str(uuid.uuid4()), "referral_id": str(uuid.uuid4())},
        {"kind": "child", "pupil_id": work.pupil("P0"), "reason": ""},
    ):
        response = await client.post(HOLDS, json={"reason": "x", **wrong}, headers=dpo)
        assert_problem(response, 422)


async def old_marks(client: httpx.AsyncClient, work: Casework, *mis_ids: str) -> None:
    marks = []
    for mis_id in mis_ids:
        marks += work.setup.marks(mis_id, ["/", "N"], start=AUTUMN_2025)
    await push_marks(client, work.setup, marks)


async def test_a_family_hold_keeps_every_case_and_referral_naming_its_children(
    client: httpx.AsyncClient,
    fresh_app: FastAPI,
    world: World,
    work: Casework,
    dpo: dict[str, str],
) -> None:
    """The family is named by a referral about P0 and P1; P1 is also on a case with P2. The
    hold keeps the referral, P0's and P1's records, and the case (it names P1), but not P3's
    marks nor a case about P3 alone."""
    sender = await hub(world)
    body = referral_body({"pupil_id": work.pupil("P0")}, {"pupil_id": work.pupil("P1")})
    referral = expect(await client.post("/v1/referrals", json=body, headers=sender), 201)
    shared = await open_case(client, work.headers, [work.pupil("P1"), work.pupil("P2")])
    alone = await open_case(client, work.headers, [work.pupil("P3")])
    for case in (shared, alone):
        _, etag = await read_with_etag(client, f"/v1/cases/{case['id']}", work.manager_headers)
        expect(
            await client.post(
                f"/v1/cases/{case['id']}/closure",
                json={"reason": "needs_met", "note": "Done."},
                headers={**work.manager_headers, "If-Match": etag},
            )
        )
    await old_marks(client, work, "P0", "P1", "P3")
    hold = await place_hold(client, dpo, "family", referral_id=referral["id"])

    summary = await retain(
        fresh_app, FAR, only=["attendance_mark", "early_help_case", "referral_not_taken_up"]
    )

    assert (disposed(summary, "early_help_case"), held(summary, "early_help_case")) == (1, 1)
    assert disposed(summary, "attendance_mark") == 2  # P3's
    assert held(summary, "attendance_mark") == 4
    kept = Case.id == uuid.UUID(shared["id"])
    assert await count(fresh_app, Case, kept, Case.deidentified_at.is_(None)) == 1  # type: ignore[union-attr]
    p0 = AttendanceMark.pupil_id == uuid.UUID(work.pupil("P0"))
    assert await count(fresh_app, AttendanceMark, p0) == 2
    row = Referral.id == uuid.UUID(referral["id"])
    assert await count(fresh_app, Referral, row, Referral.summary != "") == 1

    await lift_hold(client, dpo, hold["id"])
    after = await retain(fresh_app, FAR, only=["attendance_mark", "early_help_case"])
    assert disposed(after, "early_help_case") == 1
    assert disposed(after, "attendance_mark") == 4


async def test_a_family_hold_keeps_the_referrals_of_a_child_known_only_by_name(
    client: httpx.AsyncClient,
    fresh_app: FastAPI,
    world: World,
    work: Casework,
    dpo: dict[str, str],
) -> None:
    """A child never on a roll is recognised by names and birth date (case ignored): a family
    hold on one referral about them keeps every other referral naming them, and nothing
    about another child."""
    sender = await hub(world)
    # A referral naming no child on a roll is the LA's: staff of the LA see it.
    la_code = work.school["la_code"]
    decider = await world.headers(await world.staff("practitioner", la_code=la_code))
    la_dpo = await world.headers(await world.staff("dpo", la_code=la_code))
    robin = {"given_name": "Robin", "family_name": "Hidden", "date_of_birth": "2016-01-02"}
    again = {**robin, "given_name": "ROBIN", "family_name": "hidden"}
    sky = {**robin, "given_name": "Sky"}
    made = []
    for child in (robin, again, sky):
        referral = expect(
            await client.post("/v1/referrals", json=referral_body(child), headers=sender), 201
        )
        path = f"/v1/referrals/{referral['id']}"
        _, etag = await read_with_etag(client, path, decider)
        expect(
            await client.post(
                f"{path}/decision",
                json={"decision": "decline", "reason": "Below threshold for early help."},
                headers={**decider, "If-Match": etag},
            )
        )
        made.append(uuid.UUID(referral["id"]))
    hold = await place_hold(client, la_dpo, "family", referral_id=str(made[0]))
    on_day = today().replace(year=today().year + 7)

    summary = await retain(fresh_app, on_day, only=["referral_not_taken_up"])

    assert (disposed(summary, "referral_not_taken_up"), held(summary, "referral_not_taken_up")) == (
        1,
        2,
    )
    for referral_id, kept in zip(made, (True, True, False), strict=True):
        intact = Referral.id == referral_id, Referral.summary != ""
        assert await count(fresh_app, Referral, *intact) == int(kept)

    await lift_hold(client, la_dpo, hold["id"])
    after = await retain(fresh_app, on_day, only=["referral_not_taken_up"])
    assert disposed(after, "referral_not_taken_up") == 2
