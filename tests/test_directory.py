"""The service directory: the public Open Referral UK API checked against the profile's own
JSON Schemas, its filters and page envelope, the scoped write API, and importing a
council's feed (through the service and through the `liaison directory import` command)."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jsonschema
import pytest
from fastapi import FastAPI
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from typer.testing import CliRunner

from app.cli import cli
from app.errors import LiaisonError
from app.services import directory_import
from tests.builders.api import assert_problem, created
from tests.conftest import World

# The profile's files (OpenReferralUK/uk-profile, CC BY-SA 4.0).
# The profile's schemas and examples, copied into the repo (CC BY-SA 4.0, see tests/oruk/).
ORUK = Path(os.environ.get("LIAISON_ORUK_PROFILE", Path(__file__).parent / "oruk"))
PROFILE = "https://raw.githubusercontent.com/openreferral/uk-profile/main/schema/"
OPENAPI = "urn:oruk:openapi"
WRITE = "directory:write"
ENVELOPE = {
    "total_items",
    "total_pages",
    "page_number",
    "size",
    "first_page",
    "last_page",
    "empty",
    "contents",
}


# --- the profile's schemas ---------------------------------------------------------------


@cache
def registry() -> Registry[Any]:
    """The profile's OpenAPI and compiled schemas under the URLs the OpenAPI refers to.

    `taxonomy.json` and `taxonomy_term.json` are not published compiled: they are the
    definitions inside `service_with_definitions.json`."""

    def load(name: str) -> Any:
        return json.loads((ORUK / "schema" / name).read_text())

    def definition(name: str) -> Resource[Any]:
        target = f"{PROFILE}compiled/service_with_definitions.json#/definitions/{name}"
        return DRAFT202012.create_resource({"$ref": target})

    resources: list[tuple[str, Resource[Any]]] = [
        (OPENAPI, DRAFT202012.create_resource(load("openapi.json"))),
        (f"{PROFILE}taxonomy.json", definition("taxonomy")),
        (f"{PROFILE}taxonomy_term.json", definition("taxonomy_term")),
    ]
    for name in (
        "service",
        "service_list",
        "service_at_location",
        "service_at_location_list",
        "service_with_definitions",
        "organization",
        "organization_list",
    ):
        resources.append(
            (f"{PROFILE}compiled/{name}.json", DRAFT202012.create_resource(load(f"{name}.json")))
        )
    return Registry().with_resources(resources)


def validator(ref: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        {"$ref": ref},
        registry=registry(),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def answer_schema(path: str) -> str:
    """The profile's schema for the 200 answer of GET `path` (an OpenAPI path)."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return f"{OPENAPI}#/paths/{pointer}/get/responses/200/content/application~1json/schema"


def conforms(body: Any, ref: str) -> None:
    errors = sorted(validator(ref).iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def test_the_schemas_catch_what_the_profile_forbids() -> None:
    """The checks below can fail: a record breaking the profile is refused."""
    good = json.loads((ORUK / "examples" / "service_full.json").read_text())
    conforms(good, answer_schema("/services/{id}"))
    for broken in (
        {**good, "status": "open"},
        {k: v for k, v in good.items() if k != "name"},
        {**good, "id": "not-a-uuid"},
        {**good, "attributes": [{"id": str(uuid.uuid4()), "taxonomy_term": {"id": 1}}]},
    ):
        assert list(validator(answer_schema("/services/{id}")).iter_errors(broken))
    page = json.loads((ORUK / "examples" / "service_list.json").read_text())
    conforms(page, answer_schema("/services"))
    page["contents"][0]["minimum_age"] = "twelve"
    assert list(validator(answer_schema("/services")).iter_errors(page))


# --- helpers -----------------------------------------------------------------------------


def example_service() -> dict[str, Any]:
    """The profile's own full example, with a location that is on Earth."""
    body: dict[str, Any] = json.loads((ORUK / "examples" / "service_full.json").read_text())
    place = body["service_at_locations"][0]["location"]
    place.update(latitude=52.2, longitude=0.12)
    return body


def service_body(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "status": "active", "description": f"About {name}.", **fields}


def term(name: str, taxonomy_id: str | None = None) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "description": f"{name} services",
        "taxonomy": "Test taxonomy",
        **({"taxonomy_id": taxonomy_id} if taxonomy_id else {}),
    }


def weekly(byday: str, opens: str, closes: str) -> dict[str, Any]:
    return {"freq": "WEEKLY", "byday": byday, "opens_at": opens, "closes_at": closes}


def place(name: str) -> dict[str, Any]:
    return {
        "location": {
            "id": str(uuid.uuid4()),
            "location_type": "physical",
            "name": name,
            "addresses": [
                {"address_1": "1 High Street", "city": "Riverside", "postal_code": "RV1 1AA"}
            ],
        }
    }


async def create(http: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return await created(http, "/v1/directory/services", body, headers)


async def names(http: httpx.AsyncClient, path: str = "/oruk/services", **params: Any) -> set[str]:
    response = await http.get(path, params={"per_page": 100, **params})
    assert response.status_code == 200, response.text
    items = response.json()["contents"]
    return {i["name"] if "name" in i else i["service"]["name"] for i in items}


async def put_taxonomy(
    http: httpx.AsyncClient, headers: dict[str, str], name: str, terms: list[dict[str, Any]]
) -> str:
    taxonomy_id = str(uuid.uuid4())
    body = {"id": taxonomy_id, "name": name, "description": f"The {name}", "taxonomy_terms": terms}
    response = await http.put(f"/v1/directory/taxonomies/{taxonomy_id}", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return taxonomy_id


@pytest.fixture
async def writer(world: World) -> dict[str, str]:
    # Directory records belong to an LA: its writers are bound to one.
    return await world.client_headers(WRITE, la_code="202")


# --- the public ORUK API -----------------------------------------------------------------


async def test_every_oruk_answer_matches_the_profile(
    client: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    taxonomy_id = await put_taxonomy(client, writer, "Needs", [term("Bereavement")])
    body = example_service()
    body["attributes"][0]["taxonomy_term"]["taxonomy_id"] = taxonomy_id
    put = await client.put(f"/v1/directory/services/{body['id']}", json=body, headers=writer)
    assert put.status_code == 201, put.text
    await create(client, writer, service_body("Bare service"))  # the fewest fields allowed

    root = await client.get("/oruk/")
    assert root.status_code == 200
    conforms(root.json(), answer_schema("/"))
    assert root.json()["version"] == "3.0" and root.json()["openapi_url"].endswith("/openapi.json")

    services = (await client.get("/oruk/services")).json()
    conforms(services, answer_schema("/services"))
    assert services["total_items"] == 2 and set(services) == ENVELOPE
    full = (await client.get(f"/oruk/services/{body['id']}")).json()
    conforms(full, answer_schema("/services/{id}"))
    # Everything the example carried came back, nested as the profile nests it.
    assert full["organization"]["id"] == body["organization"]["id"]
    full_term, sent_term = full["attributes"][0], body["attributes"][0]
    assert full_term["taxonomy_term"]["id"] == sent_term["taxonomy_term"]["id"]
    location = full["service_at_locations"][0]["location"]
    assert location["addresses"][0]["postal_code"] == "ABC 1234"
    assert (
        full["schedules"][0]["byday"] == "TH,FR" and full["schedules"][0]["opens_at"] == "10:00:00"
    )
    assert full["cost_options"][0]["amount"] == 35
    assert full["contacts"][0]["name"] == "Ann Persona"
    bare = next(s for s in services["contents"] if s["name"] == "Bare service")
    bare_full = (await client.get(f"/oruk/services/{bare['id']}")).json()
    conforms(bare_full, answer_schema("/services/{id}"))

    taxonomies = (await client.get("/oruk/taxonomies")).json()
    conforms(taxonomies, answer_schema("/taxonomies"))
    taxonomy = (await client.get(f"/oruk/taxonomies/{taxonomy_id}")).json()
    conforms(taxonomy, answer_schema("/taxonomies/{id}"))
    assert {t["name"] for t in taxonomy["taxonomy_terms"]} == {"Bereavement", "name"}

    terms = (await client.get("/oruk/taxonomy_terms")).json()
    conforms(terms, answer_schema("/taxonomy_terms"))
    assert terms["total_items"] == 2
    one_term = (await client.get(f"/oruk/taxonomy_terms/{terms['contents'][0]['id']}")).json()
    conforms(one_term, answer_schema("/taxonomy_terms/{id}"))

    places = (await client.get("/oruk/service_at_locations")).json()
    conforms(places, answer_schema("/service_at_locations"))
    assert places["total_items"] == 1
    link_id = body["service_at_locations"][0]["id"]
    assert places["contents"][0]["id"] == link_id
    one_place = (await client.get(f"/oruk/service_at_locations/{link_id}")).json()
    # The profile's OpenAPI names service.json here, a slip for the fully nested
    # service_at_location its own description asks for, which is what is checked.
    conforms(one_place, f"{PROFILE}compiled/service_at_location.json")
    assert one_place["location"]["addresses"] and one_place["service"]["name"] == full["name"]


async def test_oruk_is_public_and_readable_from_any_origin(
    client: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    created = await create(client, writer, service_body("Open service"))
    for path in (
        "/oruk/",
        "/oruk/services",
        f"/oruk/services/{created['id']}",
        "/oruk/taxonomies",
        "/oruk/taxonomy_terms",
        "/oruk/service_at_locations",
    ):
        response = await client.get(path, headers={"Origin": "https://partner.example.org"})
        assert response.status_code == 200, (path, response.text)
        assert response.headers["access-control-allow-origin"] == "*", path
    # Errors too, or a browser hides the reason from the page that asked.
    bad = await client.get("/oruk/services", params={"page": 0})
    assert_problem(bad, 422)
    assert bad.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    "path", ["services", "taxonomies", "taxonomy_terms", "service_at_locations"]
)
async def test_unknown_ids_are_404_problems(client: httpx.AsyncClient, path: str) -> None:
    for unknown in (str(uuid.uuid4()), "not-an-id"):
        response = await client.get(f"/oruk/{path}/{unknown}")
        body = assert_problem(response, 404)
        assert body["type"] == "urn:liaison:problem:not-found"
        assert response.headers["access-control-allow-origin"] == "*"


async def test_page_envelope(
    client: httpx.AsyncClient, writer: dict[str, str], fresh_app: FastAPI, monkeypatch: Any
) -> None:
    for n in range(5):
        await create(client, writer, service_body(f"Service {n}"))

    async def page(**params: Any) -> dict[str, Any]:
        response = await client.get("/oruk/services", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    first = await page(per_page=2)
    assert {k: v for k, v in first.items() if k != "contents"} == {
        "total_items": 5,
        "total_pages": 3,
        "page_number": 1,
        "size": 2,
        "first_page": True,
        "last_page": False,
        "empty": False,
    }
    middle, last = await page(per_page=2, page=2), await page(per_page=2, page=3)
    assert (middle["first_page"], middle["last_page"], middle["size"]) == (False, False, 2)
    assert (last["last_page"], last["size"]) == (True, 1)
    seen = [s["name"] for p in (first, middle, last) for s in p["contents"]]
    assert seen == [f"Service {n}" for n in range(5)]  # by name, each once
    beyond = await page(per_page=2, page=4)
    assert beyond["contents"] == [] and beyond["empty"] and beyond["size"] == 0
    assert beyond["total_items"] == 5 and beyond["last_page"]
    default = await page()
    assert default["size"] == 5 and default["total_pages"] == 1
    # per_page above the server's cap is capped, and the envelope says so.
    monkeypatch.setattr(fresh_app.state.settings, "page_max_limit", 2)
    capped = await page(per_page=50)
    assert capped["size"] == 2 and capped["total_pages"] == 3
    for bad in ({"page": 0}, {"per_page": 0}, {"page": "two"}, {"per_page": -1}):
        assert_problem(await client.get("/oruk/services", params=bad), 422)
        assert_problem(await client.get("/oruk/taxonomies", params=bad), 422)


async def test_service_filters(client: httpx.AsyncClient, writer: dict[str, str]) -> None:
    counselling, sport = term("Counselling"), term("Sport")
    needs = await put_taxonomy(client, writer, "Needs", [term("Housing")])
    housing_term = (await client.get(f"/oruk/taxonomies/{needs}")).json()["taxonomy_terms"][0]
    org = {"id": str(uuid.uuid4()), "name": "Riverside Counselling CIC", "description": "CIC"}
    await create(
        client,
        writer,
        service_body(
            "Young People's Counselling",
            minimum_age=11,
            maximum_age=25,
            organization=org,
            attributes=[{"taxonomy_term": counselling}],
            schedules=[weekly("MO,TU", "09:00", "17:00")],
            service_at_locations=[place("Centre")],
        ),
    )
    await create(
        client,
        writer,
        service_body(
            "Saturday Football",
            description="100% fun, for 5_16 year olds",
            minimum_age=5,
            maximum_age=16,
            attributes=[{"taxonomy_term": sport}],
            schedules=[weekly("SA", "10:00", "12:00")],
            service_at_locations=[place("Field")],
        ),
    )
    await create(
        client,
        writer,
        service_body(
            "Housing Options",
            minimum_age=16,
            attributes=[{"taxonomy_term_id": housing_term["id"]}],
            schedules=[weekly("MO", "13:00", "20:00"), weekly("FR", "08:00", "12:00")],
        ),
    )
    everything = {"Young People's Counselling", "Saturday Football", "Housing Options"}

    assert await names(client) == everything
    assert await names(client, search="FOOTBALL") == {"Saturday Football"}
    assert await names(client, search="riverside") == {"Young People's Counselling"}  # org
    assert await names(client, search="100%") == {"Saturday Football"}  # in the description
    assert await names(client, search="5_1") == {"Saturday Football"}  # `_` is not a wildcard
    assert await names(client, search="nothing like it") == set()
    assert await names(client, taxonomy_term_id=sport["id"]) == {"Saturday Football"}
    assert await names(client, taxonomy_id=needs) == {"Housing Options"}
    assert await names(client, taxonomy_id=str(uuid.uuid4())) == set()
    assert await names(client, organization_id=org["id"]) == {"Young People's Counselling"}
    # As the profile words them: minimum age at least, maximum age at most, the value.
    assert await names(client, minimum_age=11) == {"Young People's Counselling", "Housing Options"}
    assert await names(client, maximum_age=18) == {"Saturday Football"}
    assert await names(client, minimum_age=5, maximum_age=16) == {"Saturday Football"}
    assert await names(client, day="SA") == {"Saturday Football"}
    assert await names(client, day="monday") == {"Young People's Counselling", "Housing Options"}
    assert await names(client, start_time="10:00") == {"Saturday Football", "Housing Options"}
    assert await names(client, end_time="12:00") == {"Saturday Football", "Housing Options"}
    # Day and times hold for one schedule: Housing is open on Monday, but from 13:00.
    assert await names(client, day="MO", end_time="17:00") == {"Young People's Counselling"}
    assert await names(client, day="FR", start_time="08:00", end_time="12:00") == {
        "Housing Options"
    }
    assert await names(client, modified_after="2000-01-01T00:00:00Z") == everything
    assert await names(client, modified_after="2000-01-01T00:00:00") == everything
    assert await names(client, modified_after="2999-01-01T00:00:00Z") == set()
    # The same filters on services at locations; Housing has no location.
    assert await names(client, "/oruk/service_at_locations") == everything - {"Housing Options"}
    at_locations = await names(
        client, "/oruk/service_at_locations", day="SA", taxonomy_term_id=sport["id"]
    )
    assert at_locations == {"Saturday Football"}
    counted = (await client.get("/oruk/service_at_locations", params={"search": "foot"})).json()
    assert counted["total_items"] == 1

    for bad in (
        {"day": "Funday"},
        {"start_time": "25:00"},
        {"taxonomy_id": "x"},
        {"minimum_age": "old"},
    ):
        assert_problem(await client.get("/oruk/services", params=bad), 422)
    unsupported = await client.get("/oruk/service_at_locations", params={"postcode": "RV1 1AA"})
    assert "postcode" in assert_problem(unsupported, 400)["detail"]


# --- writes ------------------------------------------------------------------------------


async def test_writes_need_a_token_with_directory_write(
    client: httpx.AsyncClient, world: World
) -> None:
    some_id = uuid.uuid4()
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/v1/directory/services", service_body("X")),
        ("PUT", f"/v1/directory/services/{some_id}", service_body("X")),
        ("PATCH", f"/v1/directory/services/{some_id}", {"status": "defunct"}),
        ("PUT", f"/v1/directory/taxonomies/{some_id}", {"id": str(some_id), "name": "T"}),
    ]
    reader = await world.client_headers("referrals:read referrals:write")
    for method, path, body in calls:
        assert_problem(await client.request(method, path, json=body), 401)
        denied = assert_problem(await client.request(method, path, json=body, headers=reader), 403)
        assert denied["required_scopes"] == [WRITE]
    assert (await client.get("/oruk/services")).json()["total_items"] == 0
    # An admin's staff account carries the scope.
    admin = await world.headers(await world.staff("admin", la_code="202"))
    created = await client.post("/v1/directory/services", json=service_body("X"), headers=admin)
    assert created.status_code == 201, created.text


async def test_create_put_and_retire(client: httpx.AsyncClient, writer: dict[str, str]) -> None:
    first, second = place("Centre"), place("Library")
    created = await client.post(
        "/v1/directory/services",
        json=service_body(
            "Parenting Support",
            service_at_locations=[first, second],
            schedules=[weekly("TU", "09:00", "12:00")],
        ),
        headers=writer,
    )
    assert created.status_code == 201, created.text
    service = created.json()
    assert created.headers["location"] == f"/oruk/services/{service['id']}"
    assert service == (await client.get(f"/oruk/services/{service['id']}")).json()
    links = {s["location"]["name"]: s["id"] for s in service["service_at_locations"]}

    # Sending back what was read replaces the record: one location dropped, one kept with
    # its id, the schedule replaced.
    edited = copy.deepcopy(service)
    edited["name"] = "Parenting Support Programme"
    edited["service_at_locations"] = [
        {"location_id": s["location_id"]}
        for s in service["service_at_locations"]
        if s["location"]["name"] == "Library"
    ]
    edited["schedules"] = [weekly("WE", "18:00", "20:00")]
    replaced = await client.put(
        f"/v1/directory/services/{service['id']}", json=edited, headers=writer
    )
    assert replaced.status_code == 200, replaced.text
    after = replaced.json()
    assert after["name"] == "Parenting Support Programme"
    assert [s["id"] for s in after["service_at_locations"]] == [links["Library"]]
    assert [s["byday"] for s in after["schedules"]] == ["WE"]
    assert after["last_modified"] >= service["last_modified"]
    places = (await client.get("/oruk/service_at_locations")).json()
    assert places["total_items"] == 1

    # PUT to a new id creates.
    new_id = str(uuid.uuid4())
    made = await client.put(
        f"/v1/directory/services/{new_id}", json=service_body("Made by PUT"), headers=writer
    )
    assert made.status_code == 201 and made.json()["id"] == new_id
    # A link id of another service is not taken over.
    stolen = {**place("Elsewhere"), "id": links["Library"]}
    taken = await client.post(
        "/v1/directory/services",
        json=service_body("Thief", service_at_locations=[stolen]),
        headers=writer,
    )
    assert_problem(taken, 409)
    # The same id again by POST is a conflict.
    again = await client.post(
        "/v1/directory/services", json=service_body("Again", id=new_id), headers=writer
    )
    assert_problem(again, 409)

    retired = await client.patch(
        f"/v1/directory/services/{service['id']}", json={"status": "defunct"}, headers=writer
    )
    assert retired.status_code == 200 and retired.json()["status"] == "defunct"
    read = (await client.get(f"/oruk/services/{service['id']}")).json()
    assert read["status"] == "defunct"  # still there: signposts point at it
    closed = await client.patch(
        f"/v1/directory/services/{service['id']}",
        json={"status": "temporarily closed"},
        headers=writer,
    )
    assert closed.json()["status"] == "temporarily closed"
    assert_problem(
        await client.patch(
            f"/v1/directory/services/{uuid.uuid4()}", json={"status": "active"}, headers=writer
        ),
        404,
    )


async def test_writes_are_validated(client: httpx.AsyncClient, writer: dict[str, str]) -> None:
    async def refused(body: dict[str, Any], *loc: str | int) -> None:
        answer = assert_problem(
            await client.post("/v1/directory/services", json=body, headers=writer), 422
        )
        if loc:
            assert any(tuple(e["loc"][: len(loc)]) == loc for e in answer["errors"]), answer

    await refused({"status": "active"}, "body", "name")
    await refused(service_body("X", status="open"), "body", "status")
    await refused(service_body("X", minimum_age=18, maximum_age=5), "body")
    await refused(service_body("X", email="not an email"), "body", "email")
    await refused(service_body("X", url="not a url"), "body", "url")
    await refused(service_body("X", schedules=[weekly("XX", "09:00", "10:00")]), "body")
    await refused(service_body("X", attributes=[{"link_type": "x"}]), "body", "attributes", 0)
    await refused(
        service_body("X", attributes=[{"taxonomy_term_id": str(uuid.uuid4())}]),
        "body",
        "attributes",
        0,
        "taxonomy_term_id",
    )
    await refused(service_body("X", organization_id=str(uuid.uuid4())), "body", "organization_id")
    await refused(
        service_body("X", service_at_locations=[{"location_id": str(uuid.uuid4())}]),
        "body",
        "service_at_locations",
        0,
        "location_id",
    )
    twice = place("Centre")
    await refused(
        service_body("X", service_at_locations=[twice, {"location_id": twice["location"]["id"]}]),
        "body",
        "service_at_locations",
        1,
    )
    lost = term("Orphan", taxonomy_id=str(uuid.uuid4()))
    await refused(
        service_body("X", attributes=[{"taxonomy_term": lost}]),
        "body",
        "attributes",
        0,
        "taxonomy_term",
        "taxonomy_id",
    )
    mismatch = await client.put(
        f"/v1/directory/services/{uuid.uuid4()}",
        json=service_body("X", id=str(uuid.uuid4())),
        headers=writer,
    )
    assert_problem(mismatch, 422)
    assert_problem(
        await client.patch(
            f"/v1/directory/services/{uuid.uuid4()}", json={"status": "gone"}, headers=writer
        ),
        422,
    )
    # Nothing refused was half-written.
    assert (await client.get("/oruk/services")).json()["total_items"] == 0
    assert (await client.get("/oruk/taxonomy_terms")).json()["total_items"] == 0


# --- import from a feed ------------------------------------------------------------------

FEED_TAXONOMY = "5c4d79d7-cc55-470e-9f1f-8cad074e4892"
FEED_ORGS = [str(uuid.UUID(int=0xA0 + n)) for n in range(2)]
FEED_TERMS = [str(uuid.UUID(int=0xB0 + n)) for n in range(2)]


def feed_service(n: int, name: str | None = None) -> dict[str, Any]:
    """Service n of a council's feed: two organizations and two terms are shared."""
    return {
        "id": str(uuid.UUID(int=0x100 + n)),
        "name": name or f"Feed service {n}",
        "description": "From the council's directory.",
        "status": "active",
        "url": "www.council.example.gov.uk/services",  # no scheme, as feeds often have
        "email": "",  # blank, as feeds often have
        # Some feeds give no offset: that is UTC.
        "last_modified": "2026-10-01T09:00:00" + ("Z" if n % 2 else ""),
        "organization": {
            "id": FEED_ORGS[n % 2],
            "name": f"Provider {n % 2}",
            "description": "A provider",
        },
        "attributes": [
            {
                "id": str(uuid.UUID(int=0x200 + n)),
                "link_type": "service",
                "taxonomy_term": {
                    "id": FEED_TERMS[n % 2],
                    "name": f"Term {n % 2}",
                    "description": "A term",
                    "taxonomy_id": FEED_TAXONOMY,
                },
            }
        ],
        "service_at_locations": [
            {
                "id": str(uuid.UUID(int=0x300 + n)),
                "location": {
                    "id": str(uuid.UUID(int=0x400 + n)),
                    "location_type": "physical",
                    "name": f"Venue {n}",
                },
            }
        ],
        "schedules": [{"id": str(uuid.UUID(int=0x500 + n)), **weekly("MO", "09:00", "17:00")}],
    }


class Feed:
    """A council's ORUK feed: `/services` pages of summaries, `/services/{id}` in full."""

    def __init__(self, services: list[dict[str, Any]]) -> None:
        self.services = services
        self.broken_pages: dict[int, tuple[int, str]] = {}  # page → (status, body)
        self.requests: list[str] = []

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, str]:
        self.requests.append(path)
        path = path.removeprefix("/oruk")
        if path == "/services":
            number = int(query.get("page", ["1"])[0])
            size = int(query.get("per_page", ["2"])[0])
            if number in self.broken_pages:
                return self.broken_pages[number]
            chunk = self.services[(number - 1) * size : number * size]
            total_pages = -(-len(self.services) // size)
            summaries = [{k: v for k, v in s.items() if not isinstance(v, list)} for s in chunk]
            page = {
                "total_items": len(self.services),
                "total_pages": total_pages,
                "page_number": number,
                "size": len(chunk),
                "first_page": number == 1,
                "last_page": number >= total_pages,
                "empty": not chunk,
                "contents": summaries,
            }
            return 200, json.dumps(page)
        if path.startswith("/services/"):
            wanted = path.removeprefix("/services/")
            found = next((s for s in self.services if s["id"] == wanted), None)
            return (200, json.dumps(found)) if found else (404, "{}")
        if path == f"/taxonomies/{FEED_TAXONOMY}":
            taxonomy = {"id": FEED_TAXONOMY, "name": "Council services", "description": "LGA"}
            return 200, json.dumps(taxonomy)
        return 404, "{}"

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            status, body = self.answer(request.url.path, parse_qs(request.url.query.decode()))
            return httpx.Response(status, text=body, headers={"content-type": "application/json"})

        return httpx.MockTransport(handle)


async def import_into(
    application: FastAPI, feed: Feed, **options: Any
) -> directory_import.ImportReport:
    async with (
        httpx.AsyncClient(transport=feed.transport()) as http,
        application.state.session_factory() as session,
    ):
        try:
            report = await directory_import.import_feed(
                session, "http://feed.test/oruk/", http, per_page=2, **options
            )
        except BaseException:
            await session.rollback()
            raise
        await session.commit()
        return report


async def test_import_pages_through_a_feed_and_upserts_by_id(
    client: httpx.AsyncClient, fresh_app: FastAPI
) -> None:
    feed = Feed([feed_service(n) for n in range(5)])
    progress: list[tuple[int, int | None]] = []
    async with (
        httpx.AsyncClient(transport=feed.transport()) as http,
        fresh_app.state.session_factory() as session,
    ):
        report = await directory_import.import_feed(
            session,
            "http://feed.test/oruk",
            http,
            per_page=2,
            on_progress=lambda done, total: progress.append((done, total)),
        )
        await session.commit()
    assert (report.pages, report.created, report.updated, report.skipped) == (3, 5, 0, [])
    assert progress[-1] == (5, 5)
    # Each page, then each service's full record; the taxonomy once.
    assert feed.requests.count("/oruk/services") == 3
    assert feed.requests.count(f"/oruk/taxonomies/{FEED_TAXONOMY}") == 1

    services = (await client.get("/oruk/services")).json()
    assert services["total_items"] == 5
    full = (await client.get(f"/oruk/services/{feed_service(3)['id']}")).json()
    conforms(full, answer_schema("/services/{id}"))
    assert full["url"] == "https://www.council.example.gov.uk/services" and "email" not in full
    assert full["last_modified"] == "2026-10-01T09:00:00Z"
    naive = (await client.get(f"/oruk/services/{feed_service(2)['id']}")).json()
    assert naive["last_modified"] == "2026-10-01T09:00:00Z"
    assert full["organization"]["id"] == FEED_ORGS[1]
    assert full["service_at_locations"][0]["id"] == feed_service(3)["service_at_locations"][0]["id"]
    taxonomy = (await client.get(f"/oruk/taxonomies/{FEED_TAXONOMY}")).json()
    assert {t["id"] for t in taxonomy["taxonomy_terms"]} == set(FEED_TERMS)
    assert await names(client, taxonomy_id=FEED_TAXONOMY) == {f"Feed service {n}" for n in range(5)}

    # Again, after the council renamed one service: updated in place, nothing doubled.
    feed.services[2] = feed_service(2, name="Renamed service")
    again = await import_into(fresh_app, feed)
    assert (again.created, again.updated) == (0, 5)
    assert (await client.get("/oruk/services")).json()["total_items"] == 5
    assert (await client.get("/oruk/taxonomy_terms")).json()["total_items"] == 2
    assert (await client.get("/oruk/service_at_locations")).json()["total_items"] == 5
    assert (await client.get("/oruk/taxonomies")).json()["total_items"] == 1
    assert "Renamed service" in await names(client)


async def test_an_import_owns_what_it_imports_and_leaves_others_records(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    """An import writes as the operator (or the LA it is run for): it owns what it creates,
    and a service an LA wrote stays as that LA wrote it."""
    feed = Feed([feed_service(n) for n in range(2)])
    first = await import_into(fresh_app, feed)
    assert (first.created, first.skipped) == (2, [])
    la_admin = await world.client_headers(WRITE, la_code="202")
    operators = f"/v1/directory/services/{feed_service(0)['id']}"
    refused = await client.patch(operators, json={"status": "defunct"}, headers=la_admin)
    assert assert_problem(refused, 403)["detail"].startswith("This service belongs to the operator")

    # LA 202 writes a service of its own under the id the feed will later use.
    own_id = str(uuid.UUID(int=0x100 + 2))
    mine = await client.put(
        f"/v1/directory/services/{own_id}",
        json=service_body("Our own group"),
        headers=la_admin,
    )
    assert mine.status_code == 201, mine.text
    feed.services.append(feed_service(2, name="The council's version"))
    again = await import_into(fresh_app, feed)
    assert (again.created, again.updated) == (0, 2)
    assert len(again.skipped) == 1 and "belongs to LA 202" in again.skipped[0]
    assert (await client.get(f"/oruk/services/{own_id}")).json()["name"] == "Our own group"

    # Run for LA 202, the import updates that LA's service and leaves the operator's alone.
    for_la = await import_into(fresh_app, feed, owner="202")
    assert (for_la.created, for_la.updated, len(for_la.skipped)) == (0, 1, 2)
    assert (await client.get(f"/oruk/services/{own_id}")).json()["name"] == "The council's version"


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (200, "<html>Service unavailable</html>", "not JSON"),
        (200, json.dumps({"contents": []}), "lacks total_items"),
        (200, json.dumps([1, 2]), "not an ORUK page"),
        (
            200,
            json.dumps(
                {
                    "total_items": 5,
                    "total_pages": "many",
                    "page_number": 2,
                    "size": 2,
                    "first_page": False,
                    "last_page": False,
                    "empty": False,
                    "contents": [],
                }
            ),
            "total_pages",
        ),
        (503, "", "503"),
        (404, "{}", "404"),
    ],
)
async def test_an_unusable_page_stops_the_import_and_writes_nothing(
    client: httpx.AsyncClient, fresh_app: FastAPI, status: int, body: str, reason: str
) -> None:
    feed = Feed([feed_service(n) for n in range(5)])
    feed.broken_pages[2] = (status, body)
    with pytest.raises(directory_import.FeedError) as failed:
        await import_into(fresh_app, feed)
    assert "page 2" in str(failed.value.detail) and reason in str(failed.value.detail)
    assert (await client.get("/oruk/services")).json()["total_items"] == 0


async def test_a_feed_that_does_not_page_is_refused(fresh_app: FastAPI) -> None:
    feed = Feed([feed_service(n) for n in range(5)])
    first_page = feed.answer("/services", {"page": ["1"], "per_page": ["2"]})
    feed.broken_pages[2] = first_page  # answers page 1 whatever is asked
    with pytest.raises(directory_import.FeedError, match="does not page"):
        await import_into(fresh_app, feed)


async def test_invalid_services_are_skipped_with_a_reason_or_stop_a_strict_import(
    client: httpx.AsyncClient, fresh_app: FastAPI
) -> None:
    feed = Feed([feed_service(n) for n in range(4)])
    feed.services[1] = {**feed.services[1], "status": "open"}
    feed.services[2] = {**feed.services[2], "id": "S-0003"}
    report = await import_into(fresh_app, feed)
    assert report.created == 2 and len(report.skipped) == 2
    assert "page 1, item 2" in report.skipped[0] and "status" in report.skipped[0]
    assert "page 2, item 1" in report.skipped[1] and "S-0003" in report.skipped[1]
    assert (await client.get("/oruk/services")).json()["total_items"] == 2

    with pytest.raises(LiaisonError, match="status"):
        await import_into(fresh_app, Feed([feed_service(9), feed.services[1]]), strict=True)


async def test_a_service_with_text_the_database_cannot_store_is_skipped(
    client: httpx.AsyncClient, fresh_app: FastAPI
) -> None:
    """A feed is JSON read by the standard library: `\\u0000` and a lone `\\ud800` arrive as
    text PostgreSQL refuses. The service holding them is skipped, the rest imported."""
    feed = Feed([feed_service(n) for n in range(4)])
    feed.services[1] = {**feed.services[1], "description": "Drop-in\u0000sessions"}
    feed.services[2]["organization"] = {**feed.services[2]["organization"], "name": "Org\ud800"}
    feed.services[3] = {**feed.services[3], "minimum_age": float("nan")}
    report = await import_into(fresh_app, feed)
    assert report.created == 1 and len(report.skipped) == 3, report.skipped
    assert "description" in report.skipped[0]
    assert "organization.name" in report.skipped[1]
    assert "minimum_age" in report.skipped[2]
    assert (await client.get("/oruk/services")).json()["total_items"] == 1


# --- the command -------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def served() -> Iterator[Callable[[Feed], str]]:
    """Serve a `Feed` over real HTTP on localhost; gives its base URL."""
    servers: list[ThreadingHTTPServer] = []

    def serve(feed: Feed) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                status, body = feed.answer(url.path, parse_qs(url.query))
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/oruk"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


async def test_import_command(
    cli_env: None, client: httpx.AsyncClient, served: Callable[[Feed], str]
) -> None:
    feed = Feed([feed_service(n) for n in range(5)])
    url = served(feed)

    def run(*args: str) -> Any:
        return runner.invoke(cli, ["directory", "import", *args])

    # The CLI runs its own event loop, so from an async test it runs on a thread.
    done = await asyncio.to_thread(run, url, "--per-page", "2")
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary == {
        "feed": url,
        "pages": 3,
        "services": 5,
        "created": 5,
        "updated": 0,
        "skipped": 0,
    }
    again = json.loads((await asyncio.to_thread(run, url, "--per-page", "2")).stdout)
    assert (again["created"], again["updated"]) == (0, 5)
    assert (await client.get("/oruk/services")).json()["total_items"] == 5

    broken = Feed([feed_service(n) for n in range(10, 15)])
    broken.broken_pages[2] = (200, "<html>Maintenance</html>")
    failed = await asyncio.to_thread(run, served(broken), "--per-page", "2")
    assert failed.exit_code == 1
    assert "page 2" in failed.output and "not JSON" in failed.output
    # All or nothing: page 1 of the broken feed was not kept.
    assert (await client.get("/oruk/services")).json()["total_items"] == 5

    skipping = Feed([feed_service(20), {**feed_service(21), "status": "open"}])
    warned = await asyncio.to_thread(run, served(skipping))
    assert warned.exit_code == 0 and "skipped" in warned.output
    assert json.loads(warned.stdout)["skipped"] == 1
    strict = await asyncio.to_thread(run, served(skipping), "--strict")
    assert strict.exit_code == 1

    unreachable = await asyncio.to_thread(run, "http://127.0.0.1:9/oruk", "--timeout", "2")
    assert unreachable.exit_code == 1 and "ConnectError" in unreachable.output
    assert (await asyncio.to_thread(run, "ftp://example.org")).exit_code == 2
