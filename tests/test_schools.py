"""`/v1/schools`: admins create and edit within their LA; everyone reads within reach."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.builders.api import walk
from tests.conftest import World

NEW_SCHOOL = {
    "code": "123456",
    "name": "Meadow Lane Primary",
    "la_code": "202",
    "jurisdiction": "england",
    "phase": "primary",
}


async def test_admin_creates_reads_and_edits_a_school(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = await world.client_headers("admin", la_code="202")
    created = await client.post("/v1/schools", json=NEW_SCHOOL, headers=admin)
    assert created.status_code == 201
    school = created.json()
    assert {k: school[k] for k in NEW_SCHOOL} == NEW_SCHOOL
    read = await client.get(f"/v1/schools/{school['id']}", headers=admin)
    assert read.json() == school
    edited = await client.patch(
        f"/v1/schools/{school['id']}", json={"name": "Meadow Lane Academy"}, headers=admin
    )
    assert edited.status_code == 200
    assert edited.json()["name"] == "Meadow Lane Academy"
    assert (await client.get(f"/v1/schools/{school['id']}", headers=admin)).json()["name"] == (
        "Meadow Lane Academy"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"code": "12345"},
        {"jurisdiction": "wales"},  # a six-digit code is not a Welsh LA+establishment number
        {"jurisdiction": "atlantis"},
        {"phase": "university"},
        {"la_code": "two-oh-two"},
        {"la_code": "ZZZZ"},  # three digits in every jurisdiction
        {"la_code": "2020"},
        {"jurisdiction": "wales", "code": "6602001"},  # a Welsh code starts with its LA's: 202
        {"name": ""},
        {"unexpected": "field"},
    ],
)
async def test_invalid_school_is_422_problem(
    client: httpx.AsyncClient, world: World, change: dict[str, str]
) -> None:
    admin = await world.client_headers("admin", la_code="202")
    response = await client.post("/v1/schools", json={**NEW_SCHOOL, **change}, headers=admin)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:liaison:problem:validation-failed"
    assert body["errors"]


async def test_welsh_and_scottish_codes(client: httpx.AsyncClient, world: World) -> None:
    for jurisdiction, code, la_code in [
        ("wales", "6612345", "661"),
        ("scotland", "5244439", "100"),
    ]:
        admin = await world.client_headers("admin", la_code=la_code)
        body = {**NEW_SCHOOL, "jurisdiction": jurisdiction, "code": code, "la_code": la_code}
        assert (await client.post("/v1/schools", json=body, headers=admin)).status_code == 201


async def test_codes_are_checked_per_jurisdiction_as_the_cli_checks_them(
    client: httpx.AsyncClient, world: World
) -> None:
    """The API refuses what `liaison create-school` refuses, naming the field and why."""
    admin = await world.client_headers("admin", la_code="202")
    welsh = {**NEW_SCHOOL, "jurisdiction": "wales", "code": "6602001"}
    refused = await client.post("/v1/schools", json=welsh, headers=admin)
    assert refused.status_code == 422
    assert refused.json()["detail"] == "a Welsh school code starts with its LA code (202)."
    assert refused.json()["errors"] == [
        {"loc": ["body", "code"], "detail": "a Welsh school code starts with its LA code (202)"}
    ]
    school = (await client.post("/v1/schools", json=NEW_SCHOOL, headers=admin)).json()
    url = f"/v1/schools/{school['id']}"
    # A new jurisdiction is judged with the codes it keeps: a URN is no Welsh code.
    moved = await client.patch(url, json={"jurisdiction": "wales"}, headers=admin)
    assert moved.status_code == 422
    assert moved.json()["errors"] == [
        {
            "loc": ["body", "code"],
            "detail": "a school code in wales is a seven-digit LA and establishment number",
        }
    ]
    renumbered = await client.patch(url, json={"la_code": "ZZZ"}, headers=admin)
    assert renumbered.status_code == 422
    assert (await client.patch(url, json={"name": "Meadow"}, headers=admin)).status_code == 200
    # An LA's own reference data names an LA in any jurisdiction's form.
    concern = {"code": "online_safety", "label": "Online safety", "la_code": "ZZZZ"}
    assert (
        await client.post("/v1/referral-concerns", json=concern, headers=admin)
    ).status_code == 422
    concern["la_code"] = "202"
    assert (
        await client.post("/v1/referral-concerns", json=concern, headers=admin)
    ).status_code == 201


async def test_duplicate_school_is_409(client: httpx.AsyncClient, world: World) -> None:
    admin = await world.client_headers("admin", la_code="202")
    assert (await client.post("/v1/schools", json=NEW_SCHOOL, headers=admin)).status_code == 201
    response = await client.post("/v1/schools", json=NEW_SCHOOL, headers=admin)
    assert response.status_code == 409
    assert response.json()["type"] == "urn:liaison:problem:conflict"


async def test_admin_cannot_create_or_move_schools_outside_its_la(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = await world.client_headers("admin", la_code="202")
    response = await client.post(
        "/v1/schools", json={**NEW_SCHOOL, "la_code": "203"}, headers=admin
    )
    assert response.status_code == 403
    school = (await client.post("/v1/schools", json=NEW_SCHOOL, headers=admin)).json()
    moved = await client.patch(
        f"/v1/schools/{school['id']}", json={"la_code": "203"}, headers=admin
    )
    assert moved.status_code == 403


async def test_non_admins_cannot_create_or_edit(client: httpx.AsyncClient, world: World) -> None:
    school = await world.school()
    practitioner = await world.headers(await world.staff("practitioner", la_code="202"))
    assert (
        await client.post("/v1/schools", json=NEW_SCHOOL, headers=practitioner)
    ).status_code == 403
    response = await client.patch(
        f"/v1/schools/{school['id']}", json={"name": "x"}, headers=practitioner
    )
    assert response.status_code == 403


async def test_reads_are_limited_to_reach(client: httpx.AsyncClient, world: World) -> None:
    ours = await world.school(la_code="202")
    sibling = await world.school(la_code="202")
    elsewhere = await world.school(la_code="203")
    school_client = await world.client_headers("pupils:write", schools=[ours])
    la_client = await world.client_headers("pupils:write", la_code="202")

    listed = (await client.get("/v1/schools", headers=school_client)).json()["items"]
    assert [s["id"] for s in listed] == [ours["id"]]
    listed = (await client.get("/v1/schools", headers=la_client)).json()["items"]
    assert {s["id"] for s in listed} == {ours["id"], sibling["id"]}

    for headers in (school_client, la_client):
        response = await client.get(f"/v1/schools/{elsewhere['id']}", headers=headers)
        assert response.status_code == 404
    response = await client.get(f"/v1/schools/{sibling['id']}", headers=school_client)
    assert response.status_code == 404
    assert (await client.get(f"/v1/schools/{uuid.uuid4()}", headers=la_client)).status_code == 404


async def test_school_list_pages_with_cursor(client: httpx.AsyncClient, world: World) -> None:
    created = [(await world.school())["id"] for _ in range(5)]
    headers = await world.client_headers("pupils:write", la_code="202")
    seen = [s["id"] for s in await walk(client, "/v1/schools", headers, limit=2)]
    assert seen == created
    response = await client.get("/v1/schools", params={"cursor": "garbage!"}, headers=headers)
    assert response.status_code == 400
