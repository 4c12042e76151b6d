"""Tenancy on the side paths: each finding of the outside probe (issue 10) reproduced as a
test, on both databases. Two LAs share one database; LA 887's every role tries LA 886's
children, staff, reference data and directory records, and learns nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.builders.database import rows
from tests.builders.schools import upn
from tests.conftest import World

CONSENT = {"given": True, "given_by": "Parent", "date": "2026-01-05"}


@dataclass
class La:
    """One LA's school, pupils and an account per role (headers ready to use)."""

    code: str
    name: str  # every child's names start with it
    school: dict[str, Any]
    sibling: dict[str, Any]
    pupils: dict[str, str]  # mis id → pupil id
    mis: dict[str, str]
    hub: dict[str, str]
    practitioner: dict[str, str]
    practitioner_id: str
    manager: dict[str, str]
    manager_id: str
    dpo: dict[str, str]
    dpo_id: str
    admin: dict[str, str]


async def make_la(http: httpx.AsyncClient, world: World, code: str, name: str) -> La:
    school = await world.school(la_code=code)
    sibling = await world.school(la_code=code)
    mis = await world.client_headers(
        "pupils:read pupils:write attendance:read attendance:write", schools=[school]
    )
    rows = [
        {
            "mis_id": f"{code}-{n}",
            "upn": upn(n, la=code),
            "given_name": f"{name}{n}",
            "family_name": f"{name}son",
            "date_of_birth": "2015-03-14",
            "year_group": "5",
        }
        for n in range(2)
    ]
    pushed = await http.put(
        f"/v1/schools/{school['id']}/pupils", json={"pupils": rows}, headers=mis
    )
    assert pushed.status_code == 200, pushed.text
    staff = {role: await world.staff(role, la_code=code) for role in ("practitioner", "manager")}
    dpo = await world.staff("dpo", la_code=code)
    listed = await http.get(
        "/v1/pupils", params={"school_id": school["id"]}, headers=await world.headers(dpo)
    )
    pupils = {p["mis_id"]: p["id"] for p in listed.json()["items"]}
    return La(
        code=code,
        name=name,
        school=school,
        sibling=sibling,
        pupils=pupils,
        mis=mis,
        hub=await world.client_headers("referrals:read referrals:write", la_code=code),
        practitioner=await world.headers(staff["practitioner"]),
        practitioner_id=staff["practitioner"]["id"],
        manager=await world.headers(staff["manager"]),
        manager_id=staff["manager"]["id"],
        dpo=await world.headers(dpo),
        dpo_id=dpo["id"],
        admin=await world.headers(await world.staff("admin", la_code=code)),
    )


@pytest.fixture
async def las(client: httpx.AsyncClient, world: World) -> tuple[La, La]:
    return await make_la(client, world, "886", "Ottoline"), await make_la(
        client, world, "887", "Bartholomew"
    )


def case_body(*children: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "children": list(children),
        "level_of_need": "targeted_early_help",
        "consent": CONSENT,
        **fields,
    }


def referral_body(*children: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "children": list(children),
        "concerns": ["attendance"],
        "level_of_need": "targeted_early_help",
        "urgency": "routine",
        "consent": CONSENT,
        "summary": "Attendance has fallen since half term.",
        **fields,
    }


def without_noise(response: httpx.Response, *ids: str) -> dict[str, Any]:
    """The body as the caller sees it, without what differs per request by design: the
    request id, and the ids the caller itself sent."""
    body: dict[str, Any] = response.json()
    body.pop("request_id", None)
    text_body = httpx.Response(200, json=body).text
    for one in ids:
        text_body = text_body.replace(one, "<id>")
    return {"status": response.status_code, "body": httpx.Response(200, text=text_body).json()}


def leaks(response: httpx.Response, la: La) -> list[str]:
    """Any of `la`'s children's names, UPNs or ids in the answer."""
    found = [value for value in la.pupils.values() if value in response.text]
    found += [la.name] if la.name in response.text else []
    found += [upn(n, la=la.code) for n in range(2) if upn(n, la=la.code) in response.text]
    return found


# --- 1. the audit trail ------------------------------------------------------------------


async def test_the_audit_trail_is_read_within_reach(
    client: httpx.AsyncClient, world: World, las: tuple[La, La]
) -> None:
    first, second = las
    pupil = first.pupils["886-0"]
    read = await client.get(f"/v1/pupils/{pupil}", headers=first.practitioner)
    assert read.status_code == 200
    actor = f"staff:{first.practitioner_id}"

    # The first LA's DPO sees its child's access history, naming the child.
    own = await client.get("/v1/audit-events", params={"pupil_id": pupil}, headers=first.dpo)
    assert {e["action"] for e in own.json()["items"]} >= {"pupil.read", "pupil.roster.push"}
    assert all(pupil in e["pupil_ids"] for e in own.json()["items"])
    mine = await client.get("/v1/audit-events", params={"actor": actor}, headers=first.dpo)
    assert [e["action"] for e in mine.json()["items"]] == ["pupil.read"]

    # The other LA's DPO sees only its own LA's trail...
    trail = await client.get("/v1/audit-events", params={"limit": 200}, headers=second.dpo)
    assert trail.json()["items"], "the second LA's own events are there"
    assert not leaks(trail, first)
    assert first.practitioner_id not in trail.text and first.school["id"] not in trail.text
    assert {e["la_code"] for e in trail.json()["items"]} == {"887"}
    # ...and finds nothing by child or by actor: exactly as for unknown ones.
    for name, value, random in (
        ("pupil_id", pupil, str(uuid.uuid4())),
        ("actor", actor, f"staff:{uuid.uuid4()}"),
    ):
        foreign = await client.get("/v1/audit-events", params={name: value}, headers=second.dpo)
        unknown = await client.get("/v1/audit-events", params={name: random}, headers=second.dpo)
        assert foreign.status_code == 200
        assert foreign.json() == {"items": [], "next_cursor": None}
        assert without_noise(foreign, value) == without_noise(unknown, random)

    # A DPO with no reach at all sees nothing.
    nobody = await world.headers(await world.staff("dpo"))
    empty = await client.get("/v1/audit-events", params={"limit": 200}, headers=nobody)
    assert empty.json() == {"items": [], "next_cursor": None}
    # A DPO of the sibling school sees nothing of the first school's children.
    sibling_dpo = await world.headers(await world.staff("dpo", schools=[first.sibling]))
    sibling = await client.get("/v1/audit-events", params={"pupil_id": pupil}, headers=sibling_dpo)
    assert sibling.json()["items"] == []


# --- 2. reference data -------------------------------------------------------------------


async def test_an_las_reference_data_is_written_only_by_its_own_admins(
    client: httpx.AsyncClient, las: tuple[La, La]
) -> None:
    first, second = las
    attempt = {"code": "b_only", "label": "B", "rank": 1, "la_code": "886"}
    refused = await client.post("/v1/levels-of-need", json=attempt, headers=second.admin)
    unknown = await client.post(
        "/v1/levels-of-need", json={**attempt, "la_code": "999"}, headers=second.admin
    )
    assert refused.status_code == 403, refused.text
    assert without_noise(refused, "886") == without_noise(unknown, "999")
    for path, body in (
        ("/v1/referral-concerns", {"code": "gaming", "label": "Gaming", "la_code": "886"}),
        ("/v1/outcome-categories", {"code": "pets", "label": "Pets", "la_code": "886"}),
        (
            "/v1/measure-instruments",
            {"code": "boxall", "label": "Boxall", "min_score": 0, "max_score": 9, "la_code": "886"},
        ),
    ):
        assert (await client.post(path, json=body, headers=second.admin)).status_code == 403

    # LA 886 still uses the default set: its cases take targeted_early_help.
    opened = await client.post(
        "/v1/cases", json=case_body({"pupil_id": first.pupils["886-0"]}), headers=first.manager
    )
    assert opened.status_code == 201, opened.text

    # LA 886's own entries are its own: LA 887 does not see them, nor can it ask for them.
    own = await client.post(
        "/v1/outcome-categories", json={"code": "pets", "label": "Pets"}, headers=first.admin
    )
    assert own.status_code == 201 and own.json()["la_code"] == "886"
    seen = await client.get("/v1/outcome-categories", headers=second.practitioner)
    assert "pets" not in {c["code"] for c in seen.json()["items"]}
    for path in ("/v1/outcome-categories", "/v1/levels-of-need", "/v1/referral-concerns"):
        foreign = await client.get(path, params={"la_code": "886"}, headers=second.practitioner)
        unknown = await client.get(path, params={"la_code": "999"}, headers=second.practitioner)
        assert foreign.status_code == 404
        assert without_noise(foreign, "886") == without_noise(unknown, "999")


# --- 3. matching -------------------------------------------------------------------------


async def test_re_referral_matching_stays_within_the_la(
    client: httpx.AsyncClient, las: tuple[La, La], fresh_app: FastAPI
) -> None:
    first, second = las
    # LA 886 helped Ottoline0; the case closed last month.
    opened = await client.post(
        "/v1/cases", json=case_body({"pupil_id": first.pupils["886-0"]}), headers=first.manager
    )
    case_id = opened.json()["id"]
    closed = await client.post(
        f"/v1/cases/{case_id}/closure",
        json={"reason": "needs_met", "note": "Back in school."},
        headers=first.manager,
    )
    assert closed.json()["status"] == "closed"

    # LA 887's hub refers a child of the same name and birth date.
    by_name = {
        "given_name": "Ottoline0",
        "family_name": "Ottolineson",
        "date_of_birth": "2015-03-14",
    }
    made = await client.post("/v1/referrals", json=referral_body(by_name), headers=second.hub)
    assert made.status_code == 201, made.text
    assert case_id not in made.text and first.pupils["886-0"] not in made.text
    seen = await client.get(f"/v1/referrals/{made.json()['id']}", headers=second.manager)
    assert (seen.json()["re_referral"], seen.json()["previous_case_id"]) == (False, None)
    assert case_id not in seen.text

    # In LA 886 the same child is a re-referral, as it should be.
    again = await client.post("/v1/referrals", json=referral_body(by_name), headers=first.hub)
    staff_view = await client.get(f"/v1/referrals/{again.json()['id']}", headers=first.manager)
    assert (staff_view.json()["re_referral"], staff_view.json()["previous_case_id"]) == (
        True,
        case_id,
    )
    # By UPN at LA 886's school: refused exactly like an unknown UPN.
    foreign = await client.post(
        "/v1/referrals",
        json=referral_body({"upn": upn(0, la="886"), "school_code": first.school["code"]}),
        headers=second.hub,
    )
    unknown = await client.post(
        "/v1/referrals",
        json=referral_body({"upn": upn(7, la="886"), "school_code": first.school["code"]}),
        headers=second.hub,
    )
    assert foreign.status_code == 422
    assert without_noise(foreign) == without_noise(unknown)


# --- 4. existence oracles ----------------------------------------------------------------


async def test_a_lead_practitioner_out_of_reach_is_answered_as_an_unknown_one(
    client: httpx.AsyncClient, las: tuple[La, La]
) -> None:
    first, second = las
    child = {"pupil_id": second.pupils["887-0"]}
    opened = await client.post("/v1/cases", json=case_body(child), headers=second.manager)
    assert opened.status_code == 201
    case = opened.json()
    made = await client.post("/v1/referrals", json=referral_body(child), headers=second.hub)
    referral = made.json()

    def attempts(staff_id: str) -> list[tuple[str, str, dict[str, Any], dict[str, str]]]:
        return [
            ("POST", "/v1/cases", case_body(child, lead_practitioner_id=staff_id), {}),
            ("PATCH", f"/v1/cases/{case['id']}", {"lead_practitioner_id": staff_id}, {}),
            (
                "POST",
                f"/v1/referrals/{referral['id']}/decision",
                {"decision": "accept", "reason": "Agreed.", "lead_practitioner_id": staff_id},
                {},
            ),
        ]

    for foreign_id in (first.practitioner_id, first.dpo_id):  # a lead's role, and not
        random_id = str(uuid.uuid4())
        for (method, path, body, _), (_, _, random_body, _) in zip(
            attempts(foreign_id), attempts(random_id), strict=True
        ):
            etag = {"If-Match": "*"}
            foreign = await client.request(
                method, path, json=body, headers={**second.manager, **etag}
            )
            unknown = await client.request(
                method, path, json=random_body, headers={**second.manager, **etag}
            )
            assert foreign.status_code == 422, (path, foreign.text)
            assert without_noise(foreign, foreign_id) == without_noise(unknown, random_id), path
            assert "dpo" not in foreign.text and "practitioner or a manager" not in foreign.text

    # In reach, the role is still checked and said.
    dpo_here = await client.post(
        "/v1/cases",
        json=case_body(child, lead_practitioner_id=second.dpo_id),
        headers=second.manager,
    )
    assert "a practitioner or a manager" in dpo_here.text


# --- 5. disclosure to referrers ----------------------------------------------------------


async def test_a_hub_sees_a_child_only_as_it_named_it(
    client: httpx.AsyncClient, las: tuple[La, La]
) -> None:
    first, _ = las
    named = {"upn": upn(1, la="886"), "school_code": first.school["code"]}
    made = await client.post("/v1/referrals", json=referral_body(named), headers=first.hub)
    assert made.status_code == 201, made.text
    read = await client.get(f"/v1/referrals/{made.json()['id']}", headers=first.hub)
    listed = await client.get("/v1/referrals", headers=first.hub)
    for answer in (made, read, listed):
        assert "Ottoline" not in answer.text and "2015-03-14" not in answer.text
        assert upn(1, la="886") in answer.text
    (child,) = read.json()["children"]
    assert (child["given_name"], child["family_name"], child["date_of_birth"]) == (None,) * 3
    # The LA's practitioners, who read cases, see who the child is.
    staff = await client.get(f"/v1/referrals/{made.json()['id']}", headers=first.practitioner)
    assert staff.json()["children"][0]["given_name"] == "Ottoline1"


# --- 6. the directory's owners -----------------------------------------------------------


def service(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "status": "active", **fields}


async def test_directory_records_are_changed_only_by_their_owner(
    client: httpx.AsyncClient, las: tuple[La, La]
) -> None:
    first, second = las
    organization = {"id": str(uuid.uuid4()), "name": "Ottoline Trust", "description": "Help."}
    created = await client.post(
        "/v1/directory/services",
        json=service("Parenting group", organization=organization),
        headers=first.admin,
    )
    assert created.status_code == 201, created.text
    record = created.json()
    path = f"/v1/directory/services/{record['id']}"
    taxonomy_id = str(uuid.uuid4())
    taxonomy = {"id": taxonomy_id, "name": "Needs"}
    made = await client.put(
        f"/v1/directory/taxonomies/{taxonomy_id}", json=taxonomy, headers=first.admin
    )
    assert made.status_code == 201

    for method, url, body in (
        ("PUT", path, service("Taken over")),
        ("PATCH", path, {"status": "defunct"}),
        ("PUT", f"/v1/directory/taxonomies/{taxonomy_id}", {**taxonomy, "name": "Mine"}),
        # A service of its own that would rename the other LA's organization.
        (
            "POST",
            "/v1/directory/services",
            service("Copycat", organization={**organization, "name": "Renamed"}),
        ),
    ):
        refused = await client.request(method, url, json=body, headers=second.admin)
        assert refused.status_code == 403, (method, url, refused.text)
        assert refused.json()["type"] == "urn:liaison:problem:forbidden"
    assert (await client.get(f"/oruk/services/{record['id']}")).json() == record
    assert (await client.get(f"/oruk/taxonomies/{taxonomy_id}")).json()["name"] == "Needs"

    # Naming the other LA's organization, unchanged, is fine: it is public.
    linked = await client.post(
        "/v1/directory/services",
        json=service("Our group", organization=organization),
        headers=second.admin,
    )
    assert linked.status_code == 201, linked.text
    # And the owner still changes its own.
    retired = await client.patch(path, json={"status": "defunct"}, headers=first.admin)
    assert retired.status_code == 200 and retired.json()["status"] == "defunct"
    # An account bound to no LA owns nothing, so writes nothing.
    for headers in (second.mis,):
        assert (
            await client.post("/v1/directory/services", json=service("X"), headers=headers)
        ).status_code == 403


# --- the audit trail keeps whose data it was ----------------------------------------------


async def test_events_record_the_la_and_each_childs_school(
    client: httpx.AsyncClient, las: tuple[La, La], fresh_app: FastAPI
) -> None:
    first, _ = las
    await client.get(f"/v1/pupils/{first.pupils['886-1']}", headers=first.mis)
    found = await rows(
        fresh_app,
        "SELECT e.la_code, e.school_id, l.school_id FROM audit_event e "
        "JOIN audit_event_pupil l ON l.event_id = e.id WHERE e.action = 'pupil.read'",
    )
    assert len(found) == 1
    la_code, school_id, child_school = found[0]
    assert la_code == "886"  # the school-bound client's LA, from its school
    assert str(uuid.UUID(str(school_id))) == first.school["id"]
    assert str(uuid.UUID(str(child_school))) == first.school["id"]
