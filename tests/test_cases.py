"""Cases: opening (directly, from an attendance flag, from accepted referrals), reach,
updates under If-Match, closure with a manager's approval, reopening, consent, and the
chronology an attendance officer relies on (JSON and CSV), all of it audited."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.builders.api import assert_problem, created, walk
from tests.builders.casework import (
    CONSENT,
    AuditTrail,
    Casework,
    case_body,
    casework,
    chronology,
    list_cases,
    open_case,
    patch_case,
    positions,
    read_case,
    referral_body,
    request_closure,
)
from tests.builders.schools import flags, make_school, push_marks
from tests.conftest import World

CLOSURE_REASONS = [
    "stepped_up_to_social_care",
    "stepped_down_to_school",
    "transferred",
    "needs_met",
    "moved_out_of_area",
    "disengaged",
    "consent_withdrawn",
    "other",
]
CSV_HEADER = ["at", "actor", "source", "event", "summary", "referral_id", "flag_id", "pupil_id"]


# --- helpers ------------------------------------------------------------------------------


async def ids_listed(http: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> set[str]:
    return {c["id"] for c in await list_cases(http, headers, **params)}


async def decide_closure(
    http: httpx.AsyncClient, headers: dict[str, str], case_id: str, approve: bool
) -> httpx.Response:
    return await http.post(
        f"/v1/cases/{case_id}/closure/approval",
        json={"approve": approve, "note": "Reviewed in supervision."},
        headers=headers,
    )


async def closed_case(http: httpx.AsyncClient, work: Casework, pupil: str = "P0") -> dict[str, Any]:
    case = await open_case(http, work.headers, [work.pupil(pupil)])
    response = await request_closure(http, work.manager_headers, case["id"])
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "closed"
    return case


def first(items: list[dict[str, Any]], *words: str, **fields: Any) -> int:
    found = positions(items, *words, **fields)
    assert found, (words, fields, [i["event"] for i in items])
    return found[0]


def decision(items: list[dict[str, Any]], referral_id: str) -> int:
    """The referral's decision: `referral.decided`, or named for it (`referral.accepted`)."""
    found = positions(items, "decided", referral_id=referral_id) + positions(
        items, "accept", referral_id=referral_id
    )
    assert len(found) == 1, [i["event"] for i in items]
    return found[0]


def assert_time_order(items: list[dict[str, Any]]) -> None:
    times = [datetime.fromisoformat(i["at"]) for i in items]
    assert times == sorted(times), [i["at"] for i in items]


# --- referrals, enough to open a case from them -------------------------------------------


async def refer(
    http: httpx.AsyncClient, hub: dict[str, str], pupil_ids: list[str], reference: str
) -> dict[str, Any]:
    body = referral_body(*({"pupil_id": p} for p in pupil_ids), external_reference=reference)
    referral = await created(http, "/v1/referrals", body, hub)
    assert referral["status"] == "received"
    return referral


async def accept(
    http: httpx.AsyncClient, headers: dict[str, str], referral_id: str
) -> dict[str, Any]:
    read = await http.get(f"/v1/referrals/{referral_id}", headers=headers)
    assert read.status_code == 200, read.text
    response = await http.post(
        f"/v1/referrals/{referral_id}/decision",
        json={"decision": "accept", "reason": "The family want help with attendance."},
        headers={**headers, "If-Match": read.headers["ETag"]},
    )
    assert response.status_code == 200, response.text
    referral: dict[str, Any] = response.json()
    assert referral["status"] == "accepted"
    return referral


# --- opening and reading ------------------------------------------------------------------


async def test_open_a_case_and_read_it_back(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client)
    lead = await world.staff("practitioner", schools=[work.school])
    body = case_body(
        [work.pupil("P0"), work.pupil("P1")],
        level_of_need="specialist",
        lead_practitioner_id=lead["id"],
        summary="Two siblings, both missing Mondays.",
    )
    response = await client.post("/v1/cases", json=body, headers=work.headers)
    assert response.status_code == 201, response.text
    case = response.json()
    assert response.headers["Location"].endswith(f"/v1/cases/{case['id']}")
    assert response.headers["ETag"]
    assert case["status"] == "open"
    assert case["la_code"] == "202"
    assert case["school_id"] == work.school["id"]
    assert case["level_of_need"] == "specialist"
    assert case["lead_practitioner_id"] == lead["id"]
    assert case["consent_given"] is True
    assert case["consent"]["given_by"] == CONSENT["given_by"]
    assert case["summary"] == "Two siblings, both missing Mondays."
    assert case["opened_by"] == f"staff:{work.practitioner['id']}"
    assert case["opened_at"]
    opened_at = datetime.fromisoformat(case["opened_at"]).astimezone(UTC)
    assert case["opened_on"] == opened_at.date().isoformat()
    assert (
        case["closed_on"],
        case["closed_at"],
        case["closure_reason"],
        case["closure_destination"],
        case["pending_closure"],
    ) == (None, None, None, None, None)
    assert case["reopened_count"] == 0
    assert case["referral_ids"] == []
    children = {c["pupil_id"]: c for c in case["children"]}
    assert set(children) == {work.pupil("P0"), work.pupil("P1")}
    child = children[work.pupil("P0")]
    assert child["school_id"] == work.school["id"]
    assert (child["given_name"], child["family_name"]) == ("Child0", "Example")
    assert child["date_of_birth"] == "2015-03-14"
    assert child["on_roll"] is True

    again, etag = await read_case(client, work.headers, case["id"])
    assert again == case
    assert etag == response.headers["ETag"]
    # The lead practitioner, a manager and an LA-wide practitioner all see it.
    la_wide = await world.headers(await world.staff("practitioner", la_code="202"))
    for headers in (await world.headers(lead), work.manager_headers, la_wide):
        assert (await read_case(client, headers, case["id"]))[0]["id"] == case["id"]

    missing = await client.get(f"/v1/cases/{uuid.uuid4()}", headers=work.headers)
    assert_problem(missing, 404, "not-found")


async def test_lead_practitioner_defaults_to_the_opener(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client, pupils=1)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    assert case["lead_practitioner_id"] == work.practitioner["id"]


async def test_list_filters_and_pages(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client)
    other = await make_school(world, client, pupils=1)
    second_lead = await world.staff("practitioner", schools=[other.school])
    both = await world.headers(
        await world.staff("practitioner", schools=[work.school, other.school])
    )
    lead = work.practitioner["id"]
    first_case = await open_case(client, both, [work.pupil("P0")], lead_practitioner_id=lead)
    second = await open_case(
        client,
        both,
        [other.pupil_ids["P0"]],
        lead_practitioner_id=second_lead["id"],
        level_of_need="specialist",
    )
    third = await open_case(
        client, both, [work.pupil("P1")], lead_practitioner_id=lead, level_of_need="universal_plus"
    )
    closed = await request_closure(client, work.manager_headers, third["id"])
    assert closed.json()["status"] == "closed", closed.text
    assert second["school_id"] == other.school["id"]

    assert await ids_listed(client, both) == {first_case["id"], second["id"], third["id"]}
    assert await ids_listed(client, both, status="open") == {first_case["id"], second["id"]}
    assert await ids_listed(client, both, status="closed") == {third["id"]}
    assert await ids_listed(client, both, lead_practitioner_id=second_lead["id"]) == {second["id"]}
    assert await ids_listed(client, both, lead_practitioner_id=lead) == {
        first_case["id"],
        third["id"],
    }
    assert await ids_listed(client, both, school_id=other.school["id"]) == {second["id"]}
    assert await ids_listed(client, both, school_id=work.school["id"]) == {
        first_case["id"],
        third["id"],
    }
    assert await ids_listed(client, both, level_of_need="specialist") == {second["id"]}
    assert await ids_listed(client, both, level_of_need="universal_plus", status="open") == set()

    seen = [c["id"] for c in await walk(client, "/v1/cases", both, limit=1, pages=5)]
    assert sorted(seen) == sorted([first_case["id"], second["id"], third["id"]])
    bad = await client.get("/v1/cases", params={"cursor": "not-a-cursor"}, headers=both)
    assert_problem(bad, 400)

    # Someone who reaches only the second school sees only its case.
    assert await ids_listed(client, await world.headers(second_lead)) == {second["id"]}


async def test_open_a_case_from_an_attendance_flag(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client, pupils=1)
    await push_marks(client, work.setup, work.setup.marks("P0", ["/", "N", "N", "N"]))
    (flag,) = await flags(client, work.setup, kind="unexplained_absence")
    case = await open_case(client, work.headers, [work.pupil("P0")], attendance_flag_id=flag["id"])

    linked = await client.get(f"/v1/attendance/flags/{flag['id']}", headers=work.headers)
    assert linked.status_code == 200, linked.text
    assert linked.json()["case_id"] == case["id"]

    items = await chronology(client, work.headers, case["id"])
    raised = first(items, "raised", flag_id=flag["id"])
    assert items[raised]["pupil_id"] == work.pupil("P0")
    opened = first(items, "opened")
    assert items[opened]["actor"] == f"staff:{work.practitioner['id']}"
    assert raised < opened
    assert_time_order(items)


async def test_a_flag_outside_reach_is_refused(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client, pupils=1)
    theirs = await make_school(world, client, pupils=1)
    await push_marks(client, theirs, theirs.marks("P0", ["N", "N", "N"]))
    (flag,) = await flags(client, theirs)
    response = await client.post(
        "/v1/cases",
        json=case_body([work.pupil("P0")], attendance_flag_id=flag["id"]),
        headers=work.headers,
    )
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert await list_cases(client, work.headers) == []


async def test_idempotency_key_replays_the_first_case(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client)
    key = {"Idempotency-Key": "open-case-0001"}
    body = case_body([work.pupil("P0")])
    first_answer = await client.post("/v1/cases", json=body, headers={**work.headers, **key})
    assert first_answer.status_code == 201, first_answer.text
    replay = await client.post("/v1/cases", json=body, headers={**work.headers, **key})
    assert replay.status_code == 201, replay.text
    assert replay.json()["id"] == first_answer.json()["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"
    other = await client.post(
        "/v1/cases", json=case_body([work.pupil("P1")]), headers={**work.headers, **key}
    )
    assert_problem(other, 422, "validation-failed")
    assert await ids_listed(client, work.headers) == {first_answer.json()["id"]}
    # Without a key the same body is a second case.
    fresh = await client.post("/v1/cases", json=body, headers=work.headers)
    assert fresh.status_code == 201
    assert fresh.json()["id"] != first_answer.json()["id"]


async def test_invalid_cases_are_refused_and_nothing_is_created(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client)
    elsewhere = await make_school(world, client, pupils=1, la_code="303")
    foreign_lead = await world.staff("practitioner", schools=[elsewhere.school])
    neighbour = await make_school(world, client, pupils=1)  # same LA, not in reach

    unknown_level = await client.post(
        "/v1/cases",
        json=case_body([work.pupil("P0")], level_of_need="no_such_level"),
        headers=work.headers,
    )
    assert_problem(unknown_level, 422, "validation-failed")
    assert "no_such_level" in unknown_level.text

    for lead in (foreign_lead["id"], str(uuid.uuid4())):
        refused = await client.post(
            "/v1/cases",
            json=case_body([work.pupil("P0")], lead_practitioner_id=lead),
            headers=work.headers,
        )
        assert_problem(refused, 422, "validation-failed")

    for child in (neighbour.pupil_ids["P0"], elsewhere.pupil_ids["P0"], str(uuid.uuid4())):
        outside = await client.post(
            "/v1/cases", json=case_body([work.pupil("P0"), child]), headers=work.headers
        )
        assert_problem(outside, 422, "validation-failed")
        errors = outside.json()["errors"]
        assert any("children" in e["loc"] and 1 in e["loc"] for e in errors), errors

    no_children = await client.post("/v1/cases", json=case_body([]), headers=work.headers)
    assert_problem(no_children, 422, "validation-failed")

    assert await list_cases(client, work.headers) == []
    la_wide = await world.headers(await world.staff("manager", la_code="202"))
    assert await list_cases(client, la_wide) == []


# --- reach and scopes ---------------------------------------------------------------------


async def test_a_case_outside_reach_is_not_found(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client, pupils=1)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    elsewhere = await make_school(world, client, pupils=1, la_code="303")
    outsider = await world.headers(await world.staff("practitioner", schools=[elsewhere.school]))
    outside_manager = await world.headers(await world.staff("manager", la_code="303"))
    for headers in (outsider, outside_manager):
        assert_problem(
            await client.get(f"/v1/cases/{case['id']}", headers=headers), 404, "not-found"
        )
        assert await list_cases(client, headers) == []
        assert_problem(
            await client.get(f"/v1/cases/{case['id']}/chronology", headers=headers),
            404,
            "not-found",
        )
        assert_problem(
            await client.patch(
                f"/v1/cases/{case['id']}",
                json={"level_of_need": "specialist"},
                headers={**headers, "If-Match": '"anything"'},
            ),
            404,
            "not-found",
        )
        assert_problem(await request_closure(client, headers, case["id"]), 404, "not-found")
    assert (await read_case(client, work.headers, case["id"]))[0]["status"] == "open"


async def test_cases_need_cases_read(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client, pupils=1)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    hub = await world.client_headers("referrals:write referrals:read", la_code="202")
    for url in ("/v1/cases", f"/v1/cases/{case['id']}", f"/v1/cases/{case['id']}/chronology"):
        assert_problem(await client.get(url, headers=hub), 403, "insufficient-scope")
    refused = await client.post("/v1/cases", json=case_body([work.pupil("P0")]), headers=hub)
    assert_problem(refused, 403, "insufficient-scope")
    assert (await client.get("/v1/cases")).status_code == 401
    # A DPO reads cases (cases:read) but may not run them.
    dpo = await world.headers(await world.staff("dpo", la_code="202"))
    assert (await read_case(client, dpo, case["id"]))[0]["id"] == case["id"]
    assert_problem(
        await client.post("/v1/cases", json=case_body([work.pupil("P0")]), headers=dpo),
        403,
        "insufficient-scope",
    )


# --- updates ------------------------------------------------------------------------------


async def test_patch_needs_the_current_etag(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    url = f"/v1/cases/{case['id']}"
    _, etag = await read_case(client, work.headers, case["id"])
    new_lead = await world.staff("practitioner", schools=[work.school])

    missing = await client.patch(url, json={"level_of_need": "specialist"}, headers=work.headers)
    assert_problem(missing, 428)

    seen = {etag}
    changes: list[dict[str, Any]] = [
        {"lead_practitioner_id": new_lead["id"]},
        {"level_of_need": "specialist"},
        {"children": [{"pupil_id": work.pupil("P1")}, {"pupil_id": work.pupil("P2")}]},
        {"consent": {**CONSENT, "given_by": "Sam Example (father)", "share_with": []}},
    ]
    for change in changes:
        response = await client.patch(url, json=change, headers={**work.headers, "If-Match": etag})
        assert response.status_code == 200, (change, response.text)
        _, new_etag = await read_case(client, work.headers, case["id"])
        assert new_etag not in seen
        assert response.headers.get("ETag", new_etag) == new_etag
        stale = await client.patch(url, json=change, headers={**work.headers, "If-Match": etag})
        assert_problem(stale, 412)
        etag = new_etag
        seen.add(etag)

    updated, current = await read_case(client, work.headers, case["id"])
    assert current == etag
    assert updated["lead_practitioner_id"] == new_lead["id"]
    assert updated["level_of_need"] == "specialist"
    assert sorted(c["pupil_id"] for c in updated["children"]) == sorted(
        [work.pupil("P1"), work.pupil("P2")]
    )
    assert updated["consent"]["given_by"] == "Sam Example (father)"
    assert updated["consent_given"] is True
    assert updated["status"] == "open"
    assert updated["version"] > case["version"]

    bad = await client.patch(
        url, json={"level_of_need": "no_such_level"}, headers={**work.headers, "If-Match": etag}
    )
    assert_problem(bad, 422, "validation-failed")
    foreign = await world.staff("practitioner", schools=[await world.school(la_code="303")])
    bad_lead = await client.patch(
        url,
        json={"lead_practitioner_id": foreign["id"]},
        headers={**work.headers, "If-Match": etag},
    )
    assert_problem(bad_lead, 422, "validation-failed")
    assert (await read_case(client, work.headers, case["id"]))[1] == etag

    items = await chronology(client, work.headers, case["id"])
    assert positions(items, "updated")


async def test_patch_on_a_closed_case_is_409(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client, pupils=1)
    case = await closed_case(client, work)
    _, etag = await read_case(client, work.headers, case["id"])
    response = await client.patch(
        f"/v1/cases/{case['id']}",
        json={"level_of_need": "specialist"},
        headers={**work.headers, "If-Match": etag},
    )
    assert_problem(response, 409, "conflict")
    assert (await read_case(client, work.headers, case["id"]))[0]["level_of_need"] == (
        "targeted_early_help"
    )


# --- closure ------------------------------------------------------------------------------


async def test_a_practitioners_closure_waits_for_a_manager(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client, pupils=1)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    url = f"/v1/cases/{case['id']}"

    none_pending = await decide_closure(client, work.manager_headers, case["id"], True)
    assert_problem(none_pending, 409, "conflict")

    stale = await client.post(
        f"{url}/closure",
        json={"reason": "needs_met", "note": "n"},
        headers={**work.headers, "If-Match": '"stale"'},
    )
    assert_problem(stale, 412)

    _, etag = await read_case(client, work.headers, case["id"])
    requested = await client.post(
        f"{url}/closure",
        json={"reason": "needs_met", "note": "Attendance back above 95%."},
        headers={**work.headers, "If-Match": etag},
    )
    assert requested.status_code == 200, requested.text
    pending = requested.json()
    assert pending["status"] == "open"
    assert pending["closed_at"] is None
    assert pending["pending_closure"]["reason"] == "needs_met"
    assert pending["pending_closure"]["note"] == "Attendance back above 95%."
    assert pending["pending_closure"]["requested_by"] == f"staff:{work.practitioner['id']}"
    assert pending["pending_closure"]["requested_at"]
    assert (await read_case(client, work.headers, case["id"]))[1] != etag

    second = await request_closure(client, work.headers, case["id"], reason="other")
    assert_problem(second, 409, "conflict")
    by_manager = await request_closure(client, work.manager_headers, case["id"])
    assert_problem(by_manager, 409, "conflict")

    not_a_manager = await decide_closure(client, work.headers, case["id"], True)
    assert_problem(not_a_manager, 403, "insufficient-scope")
    assert (await read_case(client, work.headers, case["id"]))[0]["pending_closure"]

    approved = await decide_closure(client, work.manager_headers, case["id"], True)
    assert approved.status_code == 200, approved.text
    closed = approved.json()
    assert closed["status"] == "closed"
    assert closed["closure_reason"] == "needs_met"
    assert closed["closed_at"]
    assert closed["pending_closure"] is None
    assert (await read_case(client, work.headers, case["id"]))[0]["status"] == "closed"

    assert_problem(await request_closure(client, work.headers, case["id"]), 409, "conflict")
    assert_problem(await request_closure(client, work.manager_headers, case["id"]), 409, "conflict")
    assert_problem(
        await decide_closure(client, work.manager_headers, case["id"], True), 409, "conflict"
    )

    items = await chronology(client, work.headers, case["id"])
    assert_time_order(items)
    requested_at = first(items, "closure", "request")
    assert items[requested_at]["actor"] == f"staff:{work.practitioner['id']}"
    approved_at = first(items, "closure", "approv")
    assert items[approved_at]["actor"] == f"staff:{work.manager['id']}"
    assert first(items, "opened") < requested_at < min(approved_at, first(items, "closed"))


async def test_a_refused_closure_leaves_the_case_open(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client, pupils=1)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    assert (await request_closure(client, work.headers, case["id"])).status_code == 200
    refused = await decide_closure(client, work.manager_headers, case["id"], False)
    assert refused.status_code == 200, refused.text
    body = refused.json()
    assert body["status"] == "open"
    assert body["pending_closure"] is None
    assert (body["closed_at"], body["closure_reason"]) == (None, None)
    assert_problem(
        await decide_closure(client, work.manager_headers, case["id"], True), 409, "conflict"
    )
    # A new request may follow the refusal.
    again = await request_closure(client, work.headers, case["id"], reason="disengaged")
    assert again.status_code == 200, again.text
    assert again.json()["pending_closure"]["reason"] == "disengaged"

    items = await chronology(client, work.headers, case["id"])
    assert len(positions(items, "closure", "request")) == 2
    assert positions(items, "closure", "refus")
    assert not positions(items, "closed")


async def test_a_managers_closure_is_at_once_for_every_reason(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client, pupils=1)
    for reason in CLOSURE_REASONS:
        case = await open_case(client, work.headers, [work.pupil("P0")])
        # Every reason takes a destination; transferred and stepped_down_to_school need one.
        destination = f"Destination after {reason}"
        response = await request_closure(
            client, work.manager_headers, case["id"], reason=reason, destination=destination
        )
        assert response.status_code == 200, (reason, response.text)
        closed = response.json()
        assert closed["status"] == "closed", reason
        assert closed["closure_reason"] == reason
        assert closed["closure_note"] == "Attendance back above 95% for six weeks."
        assert closed["closure_destination"] == destination
        assert closed["closed_at"]
        assert closed["pending_closure"] is None
        assert closed["consent_given"] is (reason != "consent_withdrawn")

    case = await open_case(client, work.headers, [work.pupil("P0")])
    for bad in ("case_closed", "", "NEEDS_MET"):
        response = await request_closure(client, work.manager_headers, case["id"], reason=bad)
        assert_problem(response, 422, "validation-failed")
        response = await request_closure(client, work.headers, case["id"], reason=bad)
        assert_problem(response, 422, "validation-failed")
    after, _ = await read_case(client, work.headers, case["id"])
    assert (after["status"], after["pending_closure"]) == ("open", None)


async def test_step_up_to_social_care_needs_a_managers_approval(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client, pupils=1)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    requested = await request_closure(
        client,
        work.headers,
        case["id"],
        reason="stepped_up_to_social_care",
        note="Disclosure at school; threshold for a section 17 assessment met.",
    )
    assert requested.status_code == 200, requested.text
    assert requested.json()["status"] == "open"
    assert requested.json()["pending_closure"]["reason"] == "stepped_up_to_social_care"
    approved = await decide_closure(client, work.manager_headers, case["id"], True)
    assert approved.status_code == 200, approved.text
    closed = approved.json()
    assert closed["status"] == "closed"
    assert closed["closure_reason"] == "stepped_up_to_social_care"
    assert closed["closed_at"]
    assert closed["pending_closure"] is None
    listed = await list_cases(client, work.headers, status="closed")
    assert [c["closure_reason"] for c in listed] == ["stepped_up_to_social_care"]


# --- reopening ----------------------------------------------------------------------------


async def test_reopen_only_a_closed_case(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client, pupils=1)
    still_open = await open_case(client, work.headers, [work.pupil("P0")])
    response = await client.post(
        f"/v1/cases/{still_open['id']}/reopen", json={"reason": "x"}, headers=work.headers
    )
    assert_problem(response, 409, "conflict")

    case = await closed_case(client, work)
    reopened = await client.post(
        f"/v1/cases/{case['id']}/reopen",
        json={"reason": "Absences started again after half term."},
        headers=work.headers,
    )
    assert reopened.status_code == 200, reopened.text
    body = reopened.json()
    assert body["status"] == "open"
    assert body["reopened_count"] == 1
    assert (body["closed_at"], body["closure_reason"], body["pending_closure"]) == (
        None,
        None,
        None,
    )
    assert (await read_case(client, work.headers, case["id"]))[0]["reopened_count"] == 1
    again = await client.post(
        f"/v1/cases/{case['id']}/reopen", json={"reason": "again"}, headers=work.headers
    )
    assert_problem(again, 409, "conflict")

    # Closed and reopened a second time: the count goes on.
    assert (await request_closure(client, work.manager_headers, case["id"])).status_code == 200
    second = await client.post(
        f"/v1/cases/{case['id']}/reopen", json={"reason": "Back again."}, headers=work.headers
    )
    assert second.status_code == 200, second.text
    assert second.json()["reopened_count"] == 2

    # The closures stay in the chronology.
    items = await chronology(client, work.headers, case["id"])
    closures = positions(items, "closed")
    reopenings = positions(items, "reopen")
    assert len(closures) == 2 and len(reopenings) == 2
    assert closures[0] < reopenings[0] < closures[1] < reopenings[1]
    assert_time_order(items)

    dpo = await world.headers(await world.staff("dpo", la_code="202"))
    refused = await client.post(
        f"/v1/cases/{still_open['id']}/reopen", json={"reason": "x"}, headers=dpo
    )
    assert_problem(refused, 403, "insufficient-scope")


# --- consent ------------------------------------------------------------------------------


async def test_consent_withdrawn_and_given_again(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client, pupils=1)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    withdrawn = await patch_case(
        client,
        work.headers,
        case["id"],
        {"consent": {**CONSENT, "given": False, "date": "2025-10-01"}},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["consent_given"] is False
    assert withdrawn.json()["status"] == "open"
    assert (await read_case(client, work.headers, case["id"]))[0]["consent_given"] is False
    items = await chronology(client, work.headers, case["id"])
    withdrawal = first(items, "consent", "withdrawn")

    given = await patch_case(
        client,
        work.headers,
        case["id"],
        {"consent": {**CONSENT, "date": "2025-10-08"}},
    )
    assert given.status_code == 200, given.text
    assert given.json()["consent_given"] is True
    items = await chronology(client, work.headers, case["id"])
    assert max(positions(items, "consent", "given")) > withdrawal


# --- the whole path -----------------------------------------------------------------------


async def test_referrals_to_a_case_to_its_closure(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client, pupils=3)
    hub = await world.client_headers("referrals:write referrals:read", la_code="202")
    child, sibling = work.pupil("P0"), work.pupil("P1")

    first_referral = await refer(client, hub, [child], "HUB-2025-0001")
    assert first_referral["source"] == "hub"
    accepted = await accept(client, work.headers, first_referral["id"])
    case_id = accepted["decision"]["case_id"]
    assert case_id
    case, _ = await read_case(client, work.headers, case_id)
    assert case["status"] == "open"
    assert case["referral_ids"] == [first_referral["id"]]
    assert [c["pupil_id"] for c in case["children"]] == [child]
    assert case["lead_practitioner_id"] == work.practitioner["id"]
    # The hub learns the decision but not the case.
    seen_by_hub = await client.get(f"/v1/referrals/{first_referral['id']}", headers=hub)
    assert seen_by_hub.json()["decision"]["decision"] == "accept"
    assert seen_by_hub.json()["decision"]["case_id"] is None

    second_referral = await refer(client, hub, [sibling, child], "HUB-2025-0002")
    joined = await accept(client, work.headers, second_referral["id"])
    assert joined["decision"]["case_id"] == case_id
    case, _ = await read_case(client, work.headers, case_id)
    assert sorted(c["pupil_id"] for c in case["children"]) == sorted([child, sibling])
    assert sorted(case["referral_ids"]) == sorted([first_referral["id"], second_referral["id"]])
    assert await ids_listed(client, work.headers) == {case_id}

    assert (await request_closure(client, work.headers, case_id)).status_code == 200
    closed = await decide_closure(client, work.manager_headers, case_id, True)
    assert closed.json()["status"] == "closed", closed.text

    items = await chronology(client, work.headers, case_id)
    assert_time_order(items)
    for item in items:
        assert set(item) >= set(CSV_HEADER)
    r1, r2 = first_referral["id"], second_referral["id"]
    received_1 = first(items, "received", referral_id=r1)
    assert items[received_1]["event"] == "referral.received"
    assert items[received_1]["source"] == "referral"
    assert items[received_1]["actor"].startswith("client:")
    received_2 = first(items, "received", referral_id=r2)
    decided_1 = decision(items, r1)
    decided_2 = decision(items, r2)
    assert items[decided_1]["actor"] == f"staff:{work.practitioner['id']}"
    opened = first(items, "opened")
    joined_at = first(items, "join")
    requested = first(items, "closure", "request")
    approved = first(items, "closure", "approv")
    closed_at = first(items, "closed")
    assert received_1 < decided_1 < received_2 < decided_2
    assert received_1 < opened < received_2 < joined_at
    assert max(decided_2, joined_at) < requested < min(approved, closed_at)
    assert set(range(requested, len(items))) == {requested, approved, closed_at}

    # The same rows as CSV.
    response = await client.get(
        f"/v1/cases/{case_id}/chronology", headers={**work.headers, "Accept": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == CSV_HEADER
    assert len(rows) == len(items) + 1
    for row, item in zip(rows[1:], items, strict=True):
        record = dict(zip(CSV_HEADER, row, strict=True))
        assert datetime.fromisoformat(record["at"]) == datetime.fromisoformat(item["at"])
        for field in CSV_HEADER[1:]:
            assert record[field] == ("" if item[field] is None else str(item[field])), field


async def test_chronology_csv_of_a_flagged_case(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client, pupils=1)
    await push_marks(client, work.setup, work.setup.marks("P0", ["N", "N", "N"]))
    (flag,) = await flags(client, work.setup)
    case = await open_case(client, work.headers, [work.pupil("P0")], attendance_flag_id=flag["id"])
    items = await chronology(client, work.headers, case["id"])
    response = await client.get(
        f"/v1/cases/{case['id']}/chronology", headers={**work.headers, "Accept": "text/csv"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    records = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["event"] for r in records] == [i["event"] for i in items]
    assert [r["flag_id"] for r in records] == [i["flag_id"] or "" for i in items]
    assert flag["id"] in {r["flag_id"] for r in records}


# --- audit --------------------------------------------------------------------------------


async def test_case_reads_and_changes_are_audited_with_the_child(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client, pupils=1)
    auditor = await world.client_headers("audit:read", la_code="202")
    child = work.pupil("P0")
    trail = AuditTrail(client, auditor)

    async def new_case_events(case_id: str) -> list[dict[str, Any]]:
        fresh = await trail.new_events(child)
        about_case = [e for e in fresh if e["resource_id"] == case_id]
        assert about_case, fresh
        for event in about_case:
            assert child in event["pupil_ids"]
            assert event["actor"] == f"staff:{work.practitioner['id']}"
            assert "Child0" not in str(event)
        return about_case

    case = await open_case(client, work.headers, [child])
    created = await new_case_events(case["id"])
    _, etag = await read_case(client, work.headers, case["id"])
    read = await new_case_events(case["id"])
    response = await client.patch(
        f"/v1/cases/{case['id']}",
        json={"level_of_need": "specialist"},
        headers={**work.headers, "If-Match": etag},
    )
    assert response.status_code == 200, response.text
    updated = await new_case_events(case["id"])
    await chronology(client, work.headers, case["id"])
    await new_case_events(case["id"])
    actions = [{e["action"] for e in step} for step in (created, read, updated)]
    assert actions[0] != actions[2] and actions[0] != actions[1] and actions[1] != actions[2]
