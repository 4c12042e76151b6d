"""Referrals: reference data, a hub's referral in every child shape, retries, reading within
reach, triage decisions under If-Match, withdrawal and re-referral."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.builders.api import assert_problem, created, items, read_with_etag, walk
from tests.builders.casework import (
    FAMILY,
    HUB_SCOPES,
    REFERRAL_CONSENT,
    casework,
    hub,
    referral_body,
)
from tests.builders.database import move_back
from tests.builders.schools import Setup, flags, make_school, push_marks, upn
from tests.conftest import World

DEFAULT_CONCERNS = {
    "domestic_abuse", "parental_mental_health", "child_mental_health", "substance_misuse",
    "neglect", "behaviour", "attendance", "send", "young_carer", "bereavement", "housing",
    "finances", "parenting", "family_relationships", "exploitation_risk", "physical_health",
    "other",
}  # fmt: skip
DEFAULT_LEVELS = [
    ("universal", 1),
    ("universal_plus", 2),
    ("targeted_early_help", 3),
    ("specialist", 4),
]


def by_name(n: int, **fields: str) -> dict[str, str]:
    """Pupil Pn of `make_school`, named rather than identified."""
    return {
        "given_name": f"Child{n}",
        "family_name": "Example",
        "date_of_birth": "2015-03-14",
        **fields,
    }


async def refer(
    http: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    return await created(http, "/v1/referrals", body, headers)


async def read(
    http: httpx.AsyncClient, headers: dict[str, str], referral_id: str
) -> tuple[dict[str, Any], str]:
    return await read_with_etag(http, f"/v1/referrals/{referral_id}", headers)


async def listed(
    http: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    return await items(http, "/v1/referrals", headers, **params)


async def post(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    referral_id: str,
    action: str,
    body: dict[str, Any] | None = None,
    etag: str | None = None,
) -> httpx.Response:
    """POST to one of a referral's state changes, with `If-Match` when given."""
    sent = dict(headers)
    if etag is not None:
        sent["If-Match"] = etag
    return await http.post(f"/v1/referrals/{referral_id}/{action}", json=body, headers=sent)


async def change(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    referral_id: str,
    action: str,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Read the current ETag, make the change, and expect it to succeed."""
    _, etag = await read(http, headers, referral_id)
    response = await post(http, headers, referral_id, action, body, etag)
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] != etag
    changed: dict[str, Any] = response.json()
    return changed


def decision(
    kind: str, reason: str = "Meets the threshold for targeted help.", **fields: Any
) -> dict[str, Any]:
    return {"decision": kind, "reason": reason, **fields}


def to_statuses(body: dict[str, Any]) -> list[str]:
    """The statuses a referral went through (history entries that changed none left out)."""
    return [h["to_status"] for h in body["history"] if h["to_status"] is not None]


@dataclass
class Desk:
    """A school in LA 202 with pupils P0.., a hub, and the school's practitioner and manager."""

    setup: Setup
    hub: dict[str, str]
    practitioner: dict[str, str]
    practitioner_id: str
    manager: dict[str, str]
    manager_id: str

    @property
    def school(self) -> dict[str, Any]:
        return self.setup.school

    def pupil(self, mis_id: str) -> dict[str, str]:
        return {"pupil_id": self.setup.pupil_ids[mis_id]}


async def desk(world: World, http: httpx.AsyncClient, pupils: int = 3) -> Desk:
    work = await casework(world, http, pupils=pupils)
    return Desk(
        work.setup,
        await hub(world),
        work.headers,
        work.practitioner["id"],
        work.manager_headers,
        work.manager["id"],
    )


# --- reference data -----------------------------------------------------------------------


async def test_default_concerns_and_levels_of_need(client: httpx.AsyncClient, world: World) -> None:
    headers = await hub(world)
    response = await client.get("/v1/referral-concerns", headers=headers)
    assert response.status_code == 200, response.text
    concerns = response.json()["items"]
    assert {c["code"] for c in concerns} == DEFAULT_CONCERNS
    assert all(c["active"] is True and c["label"] for c in concerns)

    response = await client.get("/v1/levels-of-need", params={"la_code": "202"}, headers=headers)
    assert response.status_code == 200, response.text
    levels = sorted(response.json()["items"], key=lambda level: level["rank"])
    assert [(level["code"], level["rank"]) for level in levels] == DEFAULT_LEVELS
    assert all(level["la_code"] is None and level["label"] for level in levels)

    assert (await client.get("/v1/referral-concerns")).status_code == 401


async def test_an_las_admin_adds_its_own_concerns_and_levels(
    client: httpx.AsyncClient, world: World
) -> None:
    """An LA's own reference data: added by its admins, seen and used within the LA only.
    National entries are the operator's (the CLI), so no API caller adds or changes them."""
    admin = await world.client_headers("admin", la_code="202")
    admin_303 = await world.client_headers("admin", la_code="303")
    local_hub = await hub(world)
    hub_303 = await hub(world, la_code="303")
    refused = await client.post(
        "/v1/referral-concerns",
        json={"code": "online_safety", "label": "Online safety"},
        headers=local_hub,
    )
    assert_problem(refused, 403)

    created = await client.post(
        "/v1/referral-concerns",
        json={"code": "online_safety", "label": "Online safety"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assert created.json() == {
        "code": "online_safety",
        "label": "Online safety",
        "active": True,
        "la_code": "202",
    }
    for code in ("online_safety", "neglect"):
        again = await client.post(
            "/v1/referral-concerns", json={"code": code, "label": "Again"}, headers=admin
        )
        assert_problem(again, 409, "conflict")
    codes = {
        c["code"]
        for c in (await client.get("/v1/referral-concerns", headers=local_hub)).json()["items"]
    }
    assert codes == DEFAULT_CONCERNS | {"online_safety"}
    # Another LA neither sees LA 202's concern nor is kept from adding its own.
    codes_303 = {
        c["code"]
        for c in (await client.get("/v1/referral-concerns", headers=hub_303)).json()["items"]
    }
    assert codes_303 == DEFAULT_CONCERNS
    for la_code in ("303", "999"):  # another LA, or one that does not exist: the same 403
        elsewhere = await client.post(
            "/v1/referral-concerns",
            json={"code": "gaming", "label": "Gaming", "la_code": la_code},
            headers=admin,
        )
        assert (
            assert_problem(elsewhere, 403, "forbidden")["detail"]
            == f"LA {la_code} is outside your reach."
        )
    own_303 = await client.post(
        "/v1/referral-concerns",
        json={"code": "online_safety", "label": "Safety online"},
        headers=admin_303,
    )
    assert own_303.status_code == 201 and own_303.json()["la_code"] == "303"

    # LA 303 gets a set of levels of its own; LA 202 keeps the defaults.
    for code, rank in (("early_support", 1), ("intensive_support", 2)):
        level = await client.post(
            "/v1/levels-of-need",
            json={"code": code, "label": code.replace("_", " "), "rank": rank},
            headers=admin_303,
        )
        assert level.status_code == 201, level.text
        assert (level.json()["code"], level.json()["la_code"]) == (code, "303")
    duplicate = await client.post(
        "/v1/levels-of-need",
        json={"code": "early_support", "label": "Again", "rank": 3, "la_code": "303"},
        headers=admin_303,
    )
    assert_problem(duplicate, 409, "conflict")
    for body in (
        # LA 202's admin cannot change LA 303's set (or name an LA that does not exist).
        {"code": "b_only", "label": "B", "rank": 1, "la_code": "303"},
        {"code": "b_only", "label": "B", "rank": 1, "la_code": "999"},
    ):
        assert_problem(await client.post("/v1/levels-of-need", json=body, headers=admin), 403)
    assert_problem(
        await client.post(
            "/v1/levels-of-need",
            json={"code": "other_level", "label": "Other", "rank": 5, "la_code": "303"},
            headers=hub_303,
        ),
        403,
    )

    own = await client.get("/v1/levels-of-need", params={"la_code": "303"}, headers=hub_303)
    assert [
        (i["code"], i["la_code"]) for i in sorted(own.json()["items"], key=lambda i: i["rank"])
    ] == [
        ("early_support", "303"),
        ("intensive_support", "303"),
    ]
    assert (await client.get("/v1/levels-of-need", headers=hub_303)).json() == own.json()
    # Another LA's set is not found, like an LA that does not exist.
    for la_code in ("303", "999"):
        hidden = await client.get(
            "/v1/levels-of-need", params={"la_code": la_code}, headers=local_hub
        )
        assert_problem(hidden, 404, "not-found")
    defaults = await client.get("/v1/levels-of-need", params={"la_code": "202"}, headers=admin)
    assert {i["code"] for i in defaults.json()["items"]} == {c for c, _ in DEFAULT_LEVELS}

    # A referral in LA 303 uses its own set: the default codes no longer validate there.
    setup_303 = await make_school(world, client, pupils=1, la_code="303")
    child = {"pupil_id": setup_303.pupil_ids["P0"]}
    refused_level = await client.post("/v1/referrals", json=referral_body(child), headers=hub_303)
    assert "targeted_early_help" in str(assert_problem(refused_level, 422, "validation-failed"))
    made = await refer(
        client,
        hub_303,
        referral_body(child, level_of_need="intensive_support", concerns=["online_safety"]),
    )
    assert (made["level_of_need"], made["la_code"]) == ("intensive_support", "303")
    assert made["concerns"] == ["online_safety"]

    # And LA 202 does not accept LA 303's codes.
    setup_202 = await make_school(world, client, pupils=1)
    wrong_la = await client.post(
        "/v1/referrals",
        json=referral_body({"pupil_id": setup_202.pupil_ids["P0"]}, level_of_need="early_support"),
        headers=local_hub,
    )
    assert "early_support" in str(assert_problem(wrong_la, 422, "validation-failed"))


# --- making a referral --------------------------------------------------------------------


async def test_a_hub_refers_children_in_every_shape(
    client: httpx.AsyncClient, world: World
) -> None:
    setup = await make_school(world, client, pupils=3)
    headers = await hub(world)
    unknown_child = {"given_name": "Sam", "family_name": "Jones", "date_of_birth": "2016-04-01"}
    body = referral_body(
        {"pupil_id": setup.pupil_ids["P0"]},
        {"upn": upn(1), "school_code": setup.school["code"]},
        by_name(2),
        unknown_child,
        external_reference="HUB-2026-0042",
    )
    response = await client.post("/v1/referrals", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["Location"].endswith(f"/v1/referrals/{created['id']}")
    assert response.headers["ETag"]
    assert created["status"] == "received"
    assert created["version"] == 1
    assert created["source"] == "hub"
    assert created["referrer"].startswith("client:")
    assert created["la_code"] == "202"
    assert created["school_id"] == setup.school["id"]
    assert created["external_reference"] == "HUB-2026-0042"
    assert created["concerns"] == ["attendance", "parental_mental_health"]
    assert created["level_of_need"] == "targeted_early_help"
    assert created["urgency"] == "routine"
    assert created["summary"] == body["summary"]
    assert created["family"] == FAMILY
    assert created["consent"] == REFERRAL_CONSENT
    # Whether a child was worked with before is for those who may read cases.
    assert (created["re_referral"], created["previous_case_id"]) == (None, None)
    assert created["decision"] is None and created["pending_decision"] is None
    assert created["withdrawn_at"] is None and created["withdrawal_reason"] is None

    # The hub (no cases:read) sees each child only as it named it.
    ids = setup.pupil_ids
    children = created["children"]
    assert [(c["pupil_id"], c["on_roll"]) for c in children] == [
        (ids["P0"], True),
        (ids["P1"], True),
        (None, None),  # named by name: not even told whether a roll has the child
        (None, None),
    ]
    assert [c["school_id"] for c in children] == [setup.school["id"]] * 2 + [None] * 2
    assert [c["upn"] for c in children] == [None, upn(1), None, None]
    assert [c["given_name"] for c in children] == [None, None, "Child2", "Sam"]
    assert children[3]["date_of_birth"] == "2016-04-01"

    # Staff who read cases see who the children are, and how each was matched.
    practitioner = await world.headers(await world.staff("practitioner", la_code="202"))
    full = (await read(client, practitioner, created["id"]))[0]["children"]
    assert [(c["pupil_id"], c["on_roll"]) for c in full] == [
        (ids["P0"], True),
        (ids["P1"], True),
        (ids["P2"], True),  # named exactly as one pupil within reach: linked
        (None, False),  # named as nobody on a roll: kept as a child not on a roll
    ]
    assert [c["school_id"] for c in full] == [setup.school["id"]] * 3 + [None]
    assert (full[0]["given_name"], full[0]["family_name"]) == ("Child0", "Example")
    assert (full[2]["given_name"], full[2]["family_name"]) == ("Child2", "Example")
    assert (full[3]["given_name"], full[3]["family_name"]) == ("Sam", "Jones")
    assert full[3]["date_of_birth"] == "2016-04-01"

    (received,) = created["history"]
    assert received["event"] == "received"
    assert (received["from_status"], received["to_status"]) == (None, "received")
    assert received["actor"] == created["referrer"]

    again, etag = await read(client, headers, created["id"])
    assert etag == response.headers["ETag"]
    assert again["status"] == "received"
    assert [c["pupil_id"] for c in again["children"]] == [c["pupil_id"] for c in children]
    assert [h["event"] for h in again["history"]] == ["received"]
    assert [r["id"] for r in await listed(client, headers)] == [created["id"]]


async def test_a_name_shared_by_two_pupils_links_nobody(
    client: httpx.AsyncClient, world: World
) -> None:
    """Two schools in the LA each have a Child0 Example born 2015-03-14: not exactly one."""
    await make_school(world, client, pupils=1)
    await make_school(world, client, pupils=1)
    made = await refer(
        client,
        await hub(world),
        referral_body(by_name(0), by_name(0, date_of_birth="2015-03-15")),
    )
    practitioner = await world.headers(await world.staff("practitioner", la_code="202"))
    children = (await read(client, practitioner, made["id"]))[0]["children"]
    assert [(c["pupil_id"], c["on_roll"]) for c in children] == [(None, False), (None, False)]


async def test_source_follows_the_referrer_and_the_flag(
    client: httpx.AsyncClient, world: World
) -> None:
    setup = await make_school(world, client, pupils=1)
    school_system = await world.client_headers(HUB_SCOPES, schools=[setup.school])
    from_school = await refer(
        client, school_system, referral_body({"pupil_id": setup.pupil_ids["P0"]})
    )
    assert from_school["source"] == "school"

    await push_marks(client, setup, setup.marks("P0", ["N", "N", "N"]))
    (flag,) = await flags(client, setup)
    from_flag = await refer(
        client,
        await hub(world),
        referral_body({"pupil_id": setup.pupil_ids["P0"]}, attendance_flag_id=flag["id"]),
    )
    assert (from_flag["source"], from_flag["attendance_flag_id"]) == ("attendance_flag", flag["id"])

    # A flag outside the hub's reach is refused, and so is one that does not exist.
    elsewhere = await make_school(world, client, pupils=1, la_code="303")
    await push_marks(client, elsewhere, elsewhere.marks("P0", ["N", "N", "N"]))
    (their_flag,) = await flags(client, elsewhere)
    for flag_id in (their_flag["id"], str(uuid.uuid4())):
        refused = await client.post(
            "/v1/referrals",
            json=referral_body({"pupil_id": setup.pupil_ids["P0"]}, attendance_flag_id=flag_id),
            headers=await hub(world),
        )
        assert "attendance_flag_id" in str(assert_problem(refused, 422, "validation-failed"))


async def test_invalid_referrals_are_refused_and_nothing_is_created(
    client: httpx.AsyncClient, world: World
) -> None:
    setup = await make_school(world, client, pupils=1)
    elsewhere = await make_school(world, client, pupils=1, la_code="303")
    headers = await hub(world)
    p0 = {"pupil_id": setup.pupil_ids["P0"]}
    tomorrow = (date.today() + timedelta(days=2)).isoformat()
    unknown = ["attendance", "no_such_concern", "nor_this_one"]
    outside = {"pupil_id": elsewhere.pupil_ids["P0"]}
    cases: list[tuple[str, dict[str, Any], list[str]]] = [
        ("unknown concerns", referral_body(p0, concerns=unknown), unknown[1:]),
        ("no concerns", referral_body(p0, concerns=[]), []),
        ("unknown level", referral_body(p0, level_of_need="no_such_level"), ["no_such_level"]),
        ("no consent", referral_body(p0, consent={**REFERRAL_CONSENT, "given": False}), []),
        ("future consent", referral_body(p0, consent={**REFERRAL_CONSENT, "date": tomorrow}), []),
        ("pupil in another LA", referral_body(outside), ["children"]),
        ("no such pupil", referral_body({"pupil_id": str(uuid.uuid4())}), ["children"]),
        ("unknown school", referral_body({"upn": upn(0), "school_code": "999999"}), ["children"]),
        (
            "school in another LA",
            referral_body({"upn": upn(0), "school_code": elsewhere.school["code"]}),
            ["children"],
        ),
        (
            "upn not on the roll",
            referral_body(p0, {"upn": upn(9), "school_code": setup.school["code"]}),
            ["children"],
        ),
        ("no children", referral_body(), []),
        ("too many children", referral_body(*[by_name(n) for n in range(21)]), []),
        ("extra field", {**referral_body(p0), "colour": "blue"}, []),
        ("extra child field", referral_body({**p0, "nickname": "Bud"}), []),
        (
            "bad contact",
            referral_body(p0, family=[{**FAMILY[0], "preferred_contact": "pigeon"}]),
            [],
        ),
        ("bad urgency", referral_body(p0, urgency="whenever"), []),
        ("empty summary", referral_body(p0, summary=""), []),
        ("summary too long", referral_body(p0, summary="x" * 10_001), []),
    ]
    for what, body, named in cases:
        response = await client.post("/v1/referrals", json=body, headers=headers)
        assert response.status_code == 422, (what, response.text)
        found = assert_problem(response, 422, "validation-failed")
        for text_ in named:
            assert text_ in str(found), (what, found)
    assert await listed(client, headers) == []


async def test_creating_needs_referrals_write(client: httpx.AsyncClient, world: World) -> None:
    setup = await make_school(world, client, pupils=1)
    reader = await world.client_headers("referrals:read", la_code="202")
    body = referral_body({"pupil_id": setup.pupil_ids["P0"]})
    assert_problem(await client.post("/v1/referrals", json=body, headers=reader), 403)
    assert (await client.post("/v1/referrals", json=body)).status_code == 401
    assert (await client.get("/v1/referrals")).status_code == 401


# --- retries ------------------------------------------------------------------------------


async def test_the_same_idempotency_key_replays_the_first_answer(
    client: httpx.AsyncClient, world: World
) -> None:
    setup = await make_school(world, client, pupils=2)
    headers = await hub(world)
    key = {**headers, "Idempotency-Key": "hub-retry-1"}
    body = referral_body({"pupil_id": setup.pupil_ids["P0"]})
    first = await client.post("/v1/referrals", json=body, headers=key)
    assert first.status_code == 201, first.text
    replay = await client.post("/v1/referrals", json=body, headers=key)
    assert replay.status_code == 201, replay.text
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
    other = await client.post(
        "/v1/referrals", json=referral_body({"pupil_id": setup.pupil_ids["P1"]}), headers=key
    )
    assert_problem(other, 422, "validation-failed")
    assert [r["id"] for r in await listed(client, headers)] == [first.json()["id"]]


async def test_the_same_external_reference_finds_the_first_referral(
    client: httpx.AsyncClient, world: World
) -> None:
    setup = await make_school(world, client, pupils=1)
    first_hub, second_hub = await hub(world), await hub(world)
    body = referral_body({"pupil_id": setup.pupil_ids["P0"]}, external_reference="HUB-2026-0042")
    first = await refer(client, first_hub, body)

    again = await client.post("/v1/referrals", json=body, headers=first_hub)
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first["id"]
    # Even with a different body: the reference names the referral already made.
    changed = await client.post(
        "/v1/referrals", json={**body, "summary": "A second go at it."}, headers=first_hub
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["id"] == first["id"]
    assert changed.json()["summary"] == body["summary"]
    assert [r["id"] for r in await listed(client, first_hub)] == [first["id"]]

    # Another hub's reference is its own.
    theirs = await refer(client, second_hub, body)
    assert theirs["id"] != first["id"]
    assert [r["id"] for r in await listed(client, second_hub)] == [theirs["id"]]
    assert [r["id"] for r in await listed(client, first_hub)] == [first["id"]]
    practitioner = await world.headers(await world.staff("practitioner", schools=[setup.school]))
    assert len(await listed(client, practitioner)) == 2


# --- reading ------------------------------------------------------------------------------


async def test_a_hub_sees_only_its_own_referrals(client: httpx.AsyncClient, world: World) -> None:
    setup = await make_school(world, client, pupils=1)
    mine, theirs = await hub(world), await hub(world)
    made = await refer(client, mine, referral_body({"pupil_id": setup.pupil_ids["P0"]}))
    assert_problem(
        await client.get(f"/v1/referrals/{made['id']}", headers=theirs), 404, "not-found"
    )
    assert await listed(client, theirs) == []
    assert_problem(
        await client.get(f"/v1/referrals/{uuid.uuid4()}", headers=mine), 404, "not-found"
    )


async def test_staff_see_the_referrals_within_their_reach(
    client: httpx.AsyncClient, world: World
) -> None:
    setup = await make_school(world, client, pupils=1)
    made = await refer(client, await hub(world), referral_body({"pupil_id": setup.pupil_ids["P0"]}))
    of_the_school = await world.headers(await world.staff("practitioner", schools=[setup.school]))
    of_the_la = await world.headers(await world.staff("practitioner", la_code="202"))
    for headers in (of_the_school, of_the_la):
        body, etag = await read(client, headers, made["id"])
        assert body["id"] == made["id"] and etag
        assert body["children"][0]["given_name"] == "Child0"  # holders of cases:read
        (item,) = await listed(client, headers)
        assert item["id"] == made["id"]
        assert not item.get("history")  # the history is on the single read only

    other_school = await world.school(la_code="303")
    outsider = await world.headers(await world.staff("practitioner", schools=[other_school]))
    assert_problem(
        await client.get(f"/v1/referrals/{made['id']}", headers=outsider), 404, "not-found"
    )
    assert await listed(client, outsider) == []
    other_la = await world.headers(await world.staff("practitioner", la_code="303"))
    assert_problem(
        await client.get(f"/v1/referrals/{made['id']}", headers=other_la), 404, "not-found"
    )


async def test_staff_reach_follows_each_child_and_the_la(
    client: httpx.AsyncClient, world: World
) -> None:
    a = await make_school(world, client, pupils=1)
    b = await make_school(world, client, pupils=1)
    referrer = await hub(world)
    at_b = await world.headers(await world.staff("practitioner", schools=[b.school]))
    of_the_la = await world.headers(await world.staff("practitioner", la_code="202"))
    only_a = await refer(client, referrer, referral_body({"pupil_id": a.pupil_ids["P0"]}))
    both = await refer(
        client,
        referrer,
        referral_body({"pupil_id": a.pupil_ids["P0"]}, {"pupil_id": b.pupil_ids["P0"]}),
    )
    off_roll = await refer(
        client,
        referrer,
        referral_body({"given_name": "Sam", "family_name": "Jones", "date_of_birth": "2016-04-01"}),
    )
    assert off_roll["la_code"] == "202"
    # A practitioner of school B: not the referral about A's child alone, but the one about
    # a child at B too, and not the one about a child on no roll.
    assert_problem(
        await client.get(f"/v1/referrals/{only_a['id']}", headers=at_b), 404, "not-found"
    )
    assert [r["id"] for r in await listed(client, at_b)] == [both["id"]]
    assert_problem(
        await client.get(f"/v1/referrals/{off_roll['id']}", headers=at_b), 404, "not-found"
    )
    # The LA's own staff see all three.
    assert [r["id"] for r in await listed(client, of_the_la)] == [
        only_a["id"],
        both["id"],
        off_roll["id"],
    ]
    body, _ = await read(client, of_the_la, off_roll["id"])
    assert body["children"][0]["given_name"] == "Sam"


async def test_names_are_null_without_cases_read(client: httpx.AsyncClient, world: World) -> None:
    setup = await make_school(world, client, pupils=1)
    made = await refer(client, await hub(world), referral_body({"pupil_id": setup.pupil_ids["P0"]}))
    staff = await world.staff("practitioner", schools=[setup.school])
    narrow = await world.headers(staff, scope="referrals:read")
    body, _ = await read(client, narrow, made["id"])
    (child,) = body["children"]
    assert child["pupil_id"] == setup.pupil_ids["P0"]
    assert (child["given_name"], child["family_name"], child["date_of_birth"]) == (
        None,
        None,
        None,
    )
    assert body["family"] is None
    (item,) = await listed(client, narrow)
    assert item["children"][0]["given_name"] is None and item["family"] is None


async def test_list_filters_and_pages_oldest_first(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    a = await make_school(world, client, pupils=2)
    b = await make_school(world, client, pupils=1)
    headers = await hub(world)
    practitioner = await world.headers(await world.staff("practitioner", la_code="202"))
    first = await refer(client, headers, referral_body({"pupil_id": a.pupil_ids["P0"]}))
    second = await refer(client, headers, referral_body({"pupil_id": b.pupil_ids["P0"]}))
    third = await refer(client, headers, referral_body({"pupil_id": a.pupil_ids["P1"]}))
    ids = [first["id"], second["id"], third["id"]]
    await change(client, practitioner, first["id"], "review")
    # The first arrived ten days ago.
    await move_back(fresh_app, "referral", "received_at", first["id"], timedelta(days=10))

    def ids_of(items: list[dict[str, Any]]) -> list[str]:
        return [i["id"] for i in items]

    assert ids_of(await listed(client, headers)) == ids
    assert ids_of(await listed(client, headers, status="under_review")) == [first["id"]]
    assert ids_of(await listed(client, headers, status="received")) == ids[1:]
    assert ids_of(await listed(client, headers, school_id=a.school["id"])) == [
        first["id"],
        third["id"],
    ]
    assert ids_of(await listed(client, practitioner, school_id=b.school["id"])) == [second["id"]]

    today = datetime.now(UTC).date()

    def day(offset: int) -> str:
        return (today + timedelta(days=offset)).isoformat()

    assert ids_of(await listed(client, headers, received_from=day(0))) == ids[1:]
    assert ids_of(await listed(client, headers, received_to=day(-1))) == ids[:1]
    assert ids_of(await listed(client, headers, received_from=day(-10), received_to=day(-10))) == [
        first["id"]
    ]
    assert ids_of(await listed(client, headers, received_from=day(-11), received_to=day(0))) == ids
    assert await listed(client, headers, received_from=day(1)) == []
    assert await listed(client, headers, received_from=day(-9), received_to=day(-1)) == []
    assert ids_of(await listed(client, headers, status="received", school_id=a.school["id"])) == [
        third["id"]
    ]
    assert_problem(
        await client.get("/v1/referrals", params={"status": "pending"}, headers=headers), 422
    )

    walked = ids_of(await walk(client, "/v1/referrals", headers, limit=1, pages=5))
    assert walked == ids
    assert_problem(
        await client.get("/v1/referrals", params={"cursor": "not-a-cursor"}, headers=headers), 400
    )


# --- decisions ----------------------------------------------------------------------------


async def test_review_then_accept_opens_a_case(client: httpx.AsyncClient, world: World) -> None:
    d = await desk(world, client)
    made = await refer(client, d.hub, referral_body(d.pupil("P0"), d.pupil("P1")))
    _, etag = await read(client, d.practitioner, made["id"])
    reviewed = await post(client, d.practitioner, made["id"], "review", etag=etag)
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["status"] == "under_review"
    assert reviewed.headers["ETag"] != etag

    accepted = await post(
        client,
        d.practitioner,
        made["id"],
        "decision",
        decision("accept", "Attendance and mum's health: targeted help fits."),
        reviewed.headers["ETag"],
    )
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["status"] == "accepted"
    assert body["version"] > reviewed.json()["version"] > made["version"]
    decided = body["decision"]
    assert decided["decision"] == "accept"
    assert decided["reason"] == "Attendance and mum's health: targeted help fits."
    assert d.practitioner_id in decided["decided_by"]
    assert decided["decided_at"]
    assert decided["decision_seconds"] >= 0
    assert decided["case_id"]
    assert body["pending_decision"] is None
    assert to_statuses(body) == ["received", "under_review", "accepted"]
    _, now = await read(client, d.practitioner, made["id"])
    assert now == accepted.headers["ETag"]

    # The case: opened for both children, led by the deciding practitioner.
    case = await client.get(f"/v1/cases/{decided['case_id']}", headers=d.practitioner)
    assert case.status_code == 200, case.text
    assert case.json()["status"] == "open"
    assert case.json()["lead_practitioner_id"] == d.practitioner_id
    assert made["id"] in case.json()["referral_ids"]
    assert {c["pupil_id"] for c in case.json()["children"]} == {
        d.setup.pupil_ids["P0"],
        d.setup.pupil_ids["P1"],
    }

    # The hub learns the outcome and why, but not the case.
    seen, _ = await read(client, d.hub, made["id"])
    assert seen["status"] == "accepted"
    assert seen["decision"]["decision"] == "accept"
    assert seen["decision"]["reason"] == decided["reason"]
    assert seen["decision"]["case_id"] is None
    (item,) = await listed(client, d.hub)
    assert item["decision"]["case_id"] is None


async def test_accept_names_a_lead_practitioner_within_reach(
    client: httpx.AsyncClient, world: World
) -> None:
    d = await desk(world, client)
    made = await refer(client, d.hub, referral_body(d.pupil("P0")))
    colleague = await world.staff("practitioner", la_code="202")
    stranger = await world.staff("practitioner", la_code="303")
    dpo = await world.staff("dpo", la_code="202")  # in reach, but not a practitioner
    _, etag = await read(client, d.practitioner, made["id"])
    for lead in (stranger["id"], dpo["id"], str(uuid.uuid4())):
        refused = await post(
            client,
            d.practitioner,
            made["id"],
            "decision",
            decision("accept", lead_practitioner_id=lead),
            etag,
        )
        assert_problem(refused, 422, "validation-failed")
    accepted = await post(
        client,
        d.practitioner,
        made["id"],
        "decision",
        decision("accept", lead_practitioner_id=colleague["id"]),
        etag,
    )
    assert accepted.status_code == 200, accepted.text
    case_id = accepted.json()["decision"]["case_id"]
    case = await client.get(f"/v1/cases/{case_id}", headers=d.practitioner)
    assert case.json()["lead_practitioner_id"] == colleague["id"]


async def test_decision_seconds_count_from_receipt(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    d = await desk(world, client)
    made = await refer(client, d.hub, referral_body(d.pupil("P0")))
    await move_back(fresh_app, "referral", "received_at", made["id"], timedelta(hours=2))
    declined = await change(client, d.practitioner, made["id"], "decision", decision("decline"))
    assert 7200 <= declined["decision"]["decision_seconds"] < 7200 + 600


async def test_accept_joins_the_open_case_of_a_child(
    client: httpx.AsyncClient, world: World
) -> None:
    d = await desk(world, client)
    first = await refer(client, d.hub, referral_body(d.pupil("P0")))
    case_id = (await change(client, d.practitioner, first["id"], "decision", decision("accept")))[
        "decision"
    ]["case_id"]
    second = await refer(client, d.hub, referral_body(d.pupil("P0"), d.pupil("P1")))
    joined = await change(client, d.practitioner, second["id"], "decision", decision("accept"))
    assert joined["decision"]["case_id"] == case_id
    case = (await client.get(f"/v1/cases/{case_id}", headers=d.practitioner)).json()
    assert {c["pupil_id"] for c in case["children"]} == {
        d.setup.pupil_ids["P0"],
        d.setup.pupil_ids["P1"],
    }
    assert set(case["referral_ids"]) == {first["id"], second["id"]}


async def test_decline_needs_a_reason_and_says_where_the_family_was_signposted(
    client: httpx.AsyncClient, world: World
) -> None:
    d = await desk(world, client)
    made = await refer(client, d.hub, referral_body(d.pupil("P0")))
    _, etag = await read(client, d.practitioner, made["id"])
    for body in ({"decision": "decline"}, {"decision": "decline", "reason": ""}):
        missing = await post(client, d.practitioner, made["id"], "decision", body, etag)
        assert_problem(missing, 422, "validation-failed")
    unknown = await post(
        client,
        d.practitioner,
        made["id"],
        "decision",
        decision("decline", "Pastoral team.", signposted_service_ids=[str(uuid.uuid4())]),
        etag,
    )
    assert assert_problem(unknown, 422, "validation-failed")["errors"][0]["loc"] == [
        "body",
        "signposted_service_ids",
        0,
    ]
    writer = await world.client_headers("directory:write", la_code="202")
    services = []
    for name in ("Pastoral mentoring", "Young carers group"):
        service = await client.post(
            "/v1/directory/services", json={"name": name, "status": "active"}, headers=writer
        )
        assert service.status_code == 201, service.text
        services.append(service.json()["id"])
    declined = await post(
        client,
        d.practitioner,
        made["id"],
        "decision",
        decision(
            "decline",
            "Needs can be met by the school's pastoral team.",
            signposted_service_ids=services,
        ),
        etag,
    )
    assert declined.status_code == 200, declined.text
    body = declined.json()
    assert body["status"] == "declined"
    assert body["decision"]["decision"] == "decline"
    assert body["decision"]["signposted_service_ids"] == services
    assert body["decision"]["case_id"] is None
    seen, _ = await read(client, d.hub, made["id"])
    assert seen["status"] == "declined"
    assert seen["decision"]["reason"] == "Needs can be met by the school's pastoral team."
    assert seen["decision"]["signposted_service_ids"] == services


async def test_redirect_names_where_the_referral_went(
    client: httpx.AsyncClient, world: World
) -> None:
    d = await desk(world, client)
    made = await refer(client, d.hub, referral_body(d.pupil("P0")))
    _, etag = await read(client, d.practitioner, made["id"])
    nowhere = await post(client, d.practitioner, made["id"], "decision", decision("redirect"), etag)
    assert_problem(nowhere, 422, "validation-failed")
    redirected = await post(
        client,
        d.practitioner,
        made["id"],
        "decision",
        decision("redirect", "Family lives in the next borough.", redirected_to="LA 303 hub"),
        etag,
    )
    assert redirected.status_code == 200, redirected.text
    body = redirected.json()
    assert body["status"] == "redirected"
    assert body["decision"]["redirected_to"] == "LA 303 hub"
    assert body["decision"]["case_id"] is None


async def test_a_practitioners_step_up_awaits_a_manager(
    client: httpx.AsyncClient, world: World
) -> None:
    d = await desk(world, client)
    made = await refer(client, d.hub, referral_body(d.pupil("P0")))
    asked = await change(
        client,
        d.practitioner,
        made["id"],
        "decision",
        decision("step_up", "Disclosure of harm: this is for children's social care."),
    )
    assert asked["status"] == "awaiting_approval"
    assert asked["decision"] is None
    pending = asked["pending_decision"]
    assert pending["decision"] == "step_up"
    assert pending["reason"] == "Disclosure of harm: this is for children's social care."
    assert d.practitioner_id in pending["requested_by"]
    assert pending["requested_at"]

    _, etag = await read(client, d.practitioner, made["id"])
    self_approval = await post(
        client, d.practitioner, made["id"], "approval", {"approve": True, "note": "ok"}, etag
    )
    assert_problem(self_approval, 403)
    assert (await read(client, d.practitioner, made["id"]))[0]["status"] == "awaiting_approval"

    approved = await change(
        client, d.manager, made["id"], "approval", {"approve": True, "note": "Agreed."}
    )
    assert approved["status"] == "stepped_up"
    assert approved["pending_decision"] is None
    assert approved["decision"]["decision"] == "step_up"
    assert approved["decision"]["reason"] == pending["reason"]
    assert approved["decision"]["decision_seconds"] >= 0
    assert to_statuses(approved) == ["received", "awaiting_approval", "stepped_up"]
    seen, _ = await read(client, d.hub, made["id"])
    assert (seen["status"], seen["decision"]["decision"]) == ("stepped_up", "step_up")


async def test_a_refused_step_up_goes_back_to_review(
    client: httpx.AsyncClient, world: World
) -> None:
    d = await desk(world, client)
    made = await refer(client, d.hub, referral_body(d.pupil("P0")))
    await change(client, d.practitioner, made["id"], "review")
    await change(client, d.practitioner, made["id"], "decision", decision("step_up"))
    refused = await change(
        client,
        d.manager,
        made["id"],
        "approval",
        {"approve": False, "note": "Not at that threshold; try targeted help."},
    )
    assert refused["status"] == "under_review"
    assert refused["pending_decision"] is None
    assert refused["decision"] is None
    # It can be decided afresh.
    accepted = await change(client, d.practitioner, made["id"], "decision", decision("accept"))
    assert accepted["status"] == "accepted"


async def test_a_managers_step_up_is_at_once(client: httpx.AsyncClient, world: World) -> None:
    d = await desk(world, client)
    made = await refer(client, d.hub, referral_body(d.pupil("P0")))
    stepped = await change(
        client, d.manager, made["id"], "decision", decision("step_up", "Immediate risk.")
    )
    assert stepped["status"] == "stepped_up"
    assert stepped["pending_decision"] is None
    assert stepped["decision"]["decision"] == "step_up"
    assert d.manager_id in stepped["decision"]["decided_by"]


async def test_deciding_needs_referrals_decide(client: httpx.AsyncClient, world: World) -> None:
    d = await desk(world, client)
    made = await refer(client, d.hub, referral_body(d.pupil("P0")))
    _, etag = await read(client, d.hub, made["id"])
    assert_problem(await post(client, d.hub, made["id"], "review", etag=etag), 403)
    assert_problem(await post(client, d.hub, made["id"], "decision", decision("accept"), etag), 403)
    assert (await read(client, d.hub, made["id"]))[0]["status"] == "received"


async def test_impossible_transitions_are_409_saying_why(
    client: httpx.AsyncClient, world: World
) -> None:
    d = await desk(world, client, pupils=4)
    accepted = await refer(client, d.hub, referral_body(d.pupil("P0")))
    await change(client, d.practitioner, accepted["id"], "decision", decision("accept"))
    declined = await refer(client, d.hub, referral_body(d.pupil("P1")))
    await change(client, d.practitioner, declined["id"], "decision", decision("decline"))
    withdrawn = await refer(client, d.hub, referral_body(d.pupil("P2")))
    await change(client, d.hub, withdrawn["id"], "withdrawal", {"reason": "Sent in error."})
    reviewing = await refer(client, d.hub, referral_body(d.pupil("P3")))
    await change(client, d.practitioner, reviewing["id"], "review")
    awaiting = await refer(client, d.hub, referral_body(d.pupil("P3"), by_name(0)))
    await change(client, d.practitioner, awaiting["id"], "decision", decision("step_up"))

    attempts = [
        ("decide accepted", d.practitioner, accepted, "decision", decision("decline")),
        ("decide declined", d.practitioner, declined, "decision", decision("accept")),
        ("decide withdrawn", d.practitioner, withdrawn, "decision", decision("accept")),
        ("review accepted", d.practitioner, accepted, "review", None),
        ("review under review", d.practitioner, reviewing, "review", None),
        ("review withdrawn", d.practitioner, withdrawn, "review", None),
        ("approve nothing", d.manager, reviewing, "approval", {"approve": True, "note": "ok"}),
        ("approve accepted", d.manager, accepted, "approval", {"approve": True, "note": "ok"}),
        ("withdraw accepted", d.hub, accepted, "withdrawal", {"reason": "Changed our mind."}),
        ("withdraw declined", d.hub, declined, "withdrawal", {"reason": "Changed our mind."}),
        ("withdraw twice", d.hub, withdrawn, "withdrawal", {"reason": "Again."}),
        ("decide awaiting", d.practitioner, awaiting, "decision", decision("accept")),
        ("manager decides awaiting", d.manager, awaiting, "decision", decision("decline")),
        ("review awaiting", d.practitioner, awaiting, "review", None),
    ]
    for what, headers, target, action, body in attempts:
        before, etag = await read(client, headers, target["id"])
        response = await post(client, headers, target["id"], action, body, etag)
        found = assert_problem(response, 409, "conflict")
        assert found.get("detail"), (what, found)
        after, etag_after = await read(client, headers, target["id"])
        assert (after["status"], etag_after) == (before["status"], etag), what


async def test_if_match_is_required_and_must_be_current(
    client: httpx.AsyncClient, world: World
) -> None:
    d = await desk(world, client)
    made = await refer(client, d.hub, referral_body(d.pupil("P0")))
    _, first_etag = await read(client, d.practitioner, made["id"])
    for action, body in (
        ("review", None),
        ("decision", decision("accept")),
    ):
        assert_problem(await post(client, d.practitioner, made["id"], action, body), 428)
    assert_problem(await post(client, d.hub, made["id"], "withdrawal", {"reason": "Oops."}), 428)
    assert_problem(
        await post(client, d.practitioner, made["id"], "review", etag='"not-the-etag"'), 412
    )
    reviewed = await post(client, d.practitioner, made["id"], "review", etag=first_etag)
    assert reviewed.status_code == 200, reviewed.text
    stale = await post(
        client, d.practitioner, made["id"], "decision", decision("accept"), first_etag
    )
    assert_problem(stale, 412)
    assert_problem(
        await post(client, d.hub, made["id"], "withdrawal", {"reason": "Oops."}, first_etag), 412
    )
    current, etag = await read(client, d.practitioner, made["id"])
    assert current["status"] == "under_review"
    assert etag == reviewed.headers["ETag"]


async def test_the_second_of_two_practitioners_gets_412(
    client: httpx.AsyncClient, world: World
) -> None:
    d = await desk(world, client)
    second = await world.staff("practitioner", schools=[d.school])
    second_headers = await world.headers(second)
    made = await refer(client, d.hub, referral_body(d.pupil("P0")))
    _, etag = await read(client, d.practitioner, made["id"])
    _, same = await read(client, second_headers, made["id"])
    assert same == etag
    first = await post(
        client,
        d.practitioner,
        made["id"],
        "decision",
        decision("decline", "School can help."),
        etag,
    )
    assert first.status_code == 200, first.text
    late = await post(client, second_headers, made["id"], "decision", decision("accept"), etag)
    assert_problem(late, 412)
    final, _ = await read(client, second_headers, made["id"])
    assert final["status"] == "declined"
    assert final["decision"]["reason"] == "School can help."
    assert d.practitioner_id in final["decision"]["decided_by"]
    assert to_statuses(final) == ["received", "declined"]


@pytest.mark.postgresql_only
async def test_two_decisions_at_once_exactly_one_wins(
    client: httpx.AsyncClient, world: World
) -> None:
    d = await desk(world, client)
    second = await world.headers(await world.staff("practitioner", schools=[d.school]))
    made = await refer(client, d.hub, referral_body(d.pupil("P0")))
    _, etag = await read(client, d.practitioner, made["id"])
    accept, decline = await asyncio.gather(
        post(client, d.practitioner, made["id"], "decision", decision("accept"), etag),
        post(client, second, made["id"], "decision", decision("decline"), etag),
    )
    assert sorted([accept.status_code, decline.status_code]) == [200, 412], (
        accept.text,
        decline.text,
    )
    winner = "accepted" if accept.status_code == 200 else "declined"
    final, _ = await read(client, d.practitioner, made["id"])
    assert final["status"] == winner
    assert to_statuses(final) == ["received", winner]
    cases = await client.get("/v1/cases", headers=d.practitioner)
    assert len(cases.json()["items"]) == (1 if winner == "accepted" else 0)


# --- withdrawal ---------------------------------------------------------------------------


async def test_only_the_referrer_withdraws_before_a_decision(
    client: httpx.AsyncClient, world: World
) -> None:
    d = await desk(world, client)
    other_hub = await hub(world)
    made = await refer(client, d.hub, referral_body(d.pupil("P0")))
    _, etag = await read(client, d.hub, made["id"])
    reason = {"reason": "The family has moved away."}
    assert_problem(await post(client, other_hub, made["id"], "withdrawal", reason, etag), 404)
    not_theirs = await post(client, d.practitioner, made["id"], "withdrawal", reason, etag)
    assert not_theirs.status_code in (403, 404), not_theirs.text
    assert (await read(client, d.hub, made["id"]))[0]["status"] == "received"

    withdrawn = await post(client, d.hub, made["id"], "withdrawal", reason, etag)
    assert withdrawn.status_code == 200, withdrawn.text
    body = withdrawn.json()
    assert body["status"] == "withdrawn"
    assert body["withdrawn_at"]
    assert body["withdrawal_reason"] == "The family has moved away."
    assert body["decision"] is None
    assert to_statuses(body) == ["received", "withdrawn"]
    assert [r["status"] for r in await listed(client, d.practitioner)] == ["withdrawn"]

    # Under review is still before a decision.
    reviewing = await refer(client, d.hub, referral_body(d.pupil("P1")))
    await change(client, d.practitioner, reviewing["id"], "review")
    again = await change(client, d.hub, reviewing["id"], "withdrawal", reason)
    assert again["status"] == "withdrawn"


# --- re-referral --------------------------------------------------------------------------


async def seen_by(
    client: httpx.AsyncClient, staff: dict[str, str], made: dict[str, Any]
) -> tuple[bool | None, str | None]:
    """Whether a referral is a re-referral, and of which case, as staff who read cases see
    it (a hub is not told)."""
    body, _ = await read(client, staff, made["id"])
    return body["re_referral"], body["previous_case_id"]


async def test_a_child_on_a_case_closed_within_a_year_is_a_re_referral(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    d = await desk(world, client)
    first = await refer(client, d.hub, referral_body(d.pupil("P0")))
    assert (await seen_by(client, d.practitioner, first))[0] is False
    # The hub itself is not told about a child's earlier casework.
    assert (first["re_referral"], first["previous_case_id"]) == (None, None)
    accepted = await change(client, d.practitioner, first["id"], "decision", decision("accept"))
    case_id = accepted["decision"]["case_id"]

    # While the case is open, a new referral is not a re-referral.
    while_open = await refer(client, d.hub, referral_body(d.pupil("P0")))
    assert await seen_by(client, d.practitioner, while_open) == (False, None)

    closed = await client.post(
        f"/v1/cases/{case_id}/closure",
        json={"reason": "needs_met", "note": "Attendance back above 95% for a term."},
        headers=d.manager,
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"

    again = await refer(
        client, d.hub, referral_body({"upn": upn(0), "school_code": d.school["code"]})
    )
    assert await seen_by(client, d.practitioner, again) == (True, case_id)
    with_a_sibling = await refer(client, d.hub, referral_body(d.pupil("P1"), by_name(0)))
    assert await seen_by(client, d.practitioner, with_a_sibling) == (True, case_id)
    someone_else = await refer(client, d.hub, referral_body(d.pupil("P1")))
    assert await seen_by(client, d.practitioner, someone_else) == (False, None)
    hub_view, _ = await read(client, d.hub, again["id"])
    assert (hub_view["re_referral"], hub_view["previous_case_id"]) == (None, None)

    # Thirteen months on, it is a new referral again.
    await move_back(fresh_app, "early_help_case", "closed_at", case_id, timedelta(days=396))
    later = await refer(client, d.hub, referral_body(d.pupil("P0")))
    assert await seen_by(client, d.practitioner, later) == (False, None)


async def test_a_re_referral_names_the_most_recently_closed_case(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    d = await desk(world, client)
    closed: list[str] = []
    for mis_id in ("P0", "P1"):
        made = await refer(client, d.hub, referral_body(d.pupil(mis_id)))
        accepted = await change(client, d.practitioner, made["id"], "decision", decision("accept"))
        case_id = accepted["decision"]["case_id"]
        closing = await client.post(
            f"/v1/cases/{case_id}/closure",
            json={"reason": "needs_met", "note": "Goals met."},
            headers=d.manager,
        )
        assert closing.status_code == 200, closing.text
        closed.append(case_id)
    # P1's case closed two months ago, P0's three months ago.
    await move_back(fresh_app, "early_help_case", "closed_at", closed[0], timedelta(days=90))
    await move_back(fresh_app, "early_help_case", "closed_at", closed[1], timedelta(days=60))
    both = await refer(client, d.hub, referral_body(d.pupil("P0"), d.pupil("P1")))
    assert await seen_by(client, d.practitioner, both) == (True, closed[1])
    # The same with the older case made the more recent one.
    await move_back(fresh_app, "early_help_case", "closed_at", closed[0], timedelta(days=30))
    again = await refer(client, d.hub, referral_body(d.pupil("P1"), d.pupil("P0")))
    assert await seen_by(client, d.practitioner, again) == (True, closed[0])


# --- audit --------------------------------------------------------------------------------


async def test_referral_create_and_read_are_audited_naming_the_child(
    client: httpx.AsyncClient, world: World
) -> None:
    d = await desk(world, client)
    made = await refer(client, d.hub, referral_body(d.pupil("P0")))
    await read(client, d.practitioner, made["id"])
    await listed(client, d.practitioner)
    await change(client, d.practitioner, made["id"], "decision", decision("decline"))
    auditor = await world.client_headers("audit:read", la_code="202")
    response = await client.get(
        "/v1/audit-events", params={"pupil_id": d.setup.pupil_ids["P0"]}, headers=auditor
    )
    assert response.status_code == 200, response.text
    events = [e for e in response.json()["items"] if e["action"].startswith("referral")]
    # Newest first: at least the create, the read, the list and the decision.
    assert len(events) >= 4, [e["action"] for e in response.json()["items"]]
    assert len({e["action"] for e in events}) >= 3
    for event in events:
        assert d.setup.pupil_ids["P0"] in event["pupil_ids"]
    about_it = [e for e in events if e["resource_id"] == made["id"]]
    assert about_it
    assert {e["actor"] for e in about_it} >= {
        made["referrer"],
        f"staff:{d.practitioner_id}",
    }
    assert "Child0" not in str(events)
    assert made["summary"] not in str(events)
