"""Bad input is a 4xx, always (issue 10, findings 7 and 9).

Text PostgreSQL cannot store, numbers past their columns, dates that are not dates and bodies
that are not JSON are refused with the problem the contract declares; a bad roster or marks
row is rejected alone, with its field, and the good rows are kept. A 405 names every method
of its path, and a change that needs `If-Match` says so with 428.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest

from tests.builders.api import assert_problem
from tests.builders.schools import make_school, roll_row, upn
from tests.conftest import World

NUL = "\x00"
LONE_SURROGATE = "\ud800"
# Midnight UTC of 1 January 2010 and of 5 November 2024: pydantic's lax mode reads these
# numbers as those dates.
UNIX_2010 = 1262304000
UNIX_2024_11_05 = 1730764800
CONSENT = {"given": True, "given_by": "Alex Example (mother)", "date": "2025-09-01"}


def mark(mis_id: str, day: str, **fields: Any) -> dict[str, Any]:
    return {"mis_id": mis_id, "date": day, "session": "AM", "code": "/", **fields}


def as_json(body: Any) -> bytes:
    """JSON as a careless client writes it: ASCII, so that a lone surrogate goes as the
    escape `\\ud800` (which httpx's `json=`, writing UTF-8, cannot send)."""
    return json.dumps(body).encode()


async def send(
    http: httpx.AsyncClient, method: str, url: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    return await http.request(
        method, url, content=as_json(body), headers={**headers, "content-type": "application/json"}
    )


async def school_with_roll(
    world: World, http: httpx.AsyncClient, pupils: int = 1
) -> tuple[dict[str, Any], dict[str, str]]:
    """A school with pupils P0.. on its roll, and its MIS's headers."""
    setup = await make_school(world, http, pupils=pupils)
    return setup.school, setup.mis


# --- text PostgreSQL cannot store ----------------------------------------------------------


async def test_a_roster_row_with_unstorable_text_is_rejected_alone(
    client: httpx.AsyncClient, world: World
) -> None:
    school, mis = await school_with_roll(world, client, pupils=0)
    rows = [
        roll_row(1),
        roll_row(2, given_name="Ad" + NUL + "a"),
        roll_row(3, family_name="Ex" + LONE_SURROGATE + "ample"),
        roll_row(4, mis_id="P" + NUL),
        roll_row(5, date_of_birth=UNIX_2010),
        roll_row(6, date_of_birth=str(UNIX_2010)),
        roll_row(7),
    ]
    response = await send(
        client, "PUT", f"/v1/schools/{school['id']}/pupils", {"pupils": rows}, mis
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["created"] == 2
    reasons = {r["index"]: r["reason"] for r in result["rejected"]}
    assert sorted(reasons) == [1, 2, 3, 4, 5]
    assert reasons[1].startswith("given_name")
    assert reasons[2].startswith("family_name")
    assert reasons[3].startswith("mis_id")
    assert reasons[4].startswith("date_of_birth") and "ISO 8601" in reasons[4]
    assert reasons[5].startswith("date_of_birth") and "ISO 8601" in reasons[5]


@pytest.mark.parametrize("media", ["application/json", "application/x-ndjson"])
async def test_a_mark_with_unstorable_text_is_rejected_alone(
    client: httpx.AsyncClient, world: World, media: str
) -> None:
    school, mis = await school_with_roll(world, client)
    code = school["code"]
    marks = [
        mark("P0", "2025-10-06", school_code=code),
        mark("P0", "2025-10-07", school_code=code + NUL),
        mark("P0", "2025-10-08", school_code=code, comment="late" + NUL),
        mark("P0", "2025-10-09", school_code=code, source_record_id=LONE_SURROGATE),
        mark("P0", UNIX_2024_11_05, school_code=code),  # type: ignore[arg-type]
        mark("P0", "0", school_code=code),
        mark("P0" + NUL, "2025-10-10", school_code=code),
    ]
    if media == "application/json":
        content = as_json({"marks": marks})
    else:
        content = b"\n".join(as_json(m) for m in marks)
    response = await client.post(
        "/v1/attendance/marks", content=content, headers={**mis, "content-type": media}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["created"] == 1
    reasons = {r["index"]: r["reason"] for r in result["rejected"]}
    assert sorted(reasons) == [1, 2, 3, 4, 5, 6]
    for index, field in [
        (1, "school_code"), (2, "comment"), (3, "source_record_id"), (4, "date"), (5, "date"),
        (6, "mis_id"),
    ]:  # fmt: skip
        assert reasons[index].startswith(field + ":"), reasons[index]


async def test_unstorable_text_in_a_query_is_422_naming_the_parameter(
    client: httpx.AsyncClient, world: World
) -> None:
    school = await world.school()
    practitioner = await world.headers(await world.staff("practitioner", schools=[school]))
    response = await client.get(
        "/v1/pupils", params={"name": "a" + NUL + "b"}, headers=practitioner
    )
    problem = assert_problem(response, 422, "validation-failed")
    assert problem["errors"][0]["loc"] == ["query", "name"]
    # No token needed to find it in the public directory, and its answer is still CORS-open.
    public = await client.get("/oruk/services", params={"search": NUL})
    assert_problem(public, 422, "validation-failed")
    assert public.headers["access-control-allow-origin"] == "*"
    in_path = await client.get("/oruk/services/a%00b")
    assert assert_problem(in_path, 422, "validation-failed")["errors"][0]["loc"] == [
        "path",
        "service_id",
    ]


async def test_unstorable_text_in_a_case_or_referral_child_is_422(
    client: httpx.AsyncClient, world: World
) -> None:
    school = await world.school()
    practitioner = await world.headers(await world.staff("practitioner", schools=[school]))
    hub = await world.client_headers("referrals:write referrals:read", la_code="202")
    child = {"upn": upn(1)[:6] + NUL + upn(1)[7:], "school_code": school["code"]}
    case = {"children": [child], "level_of_need": "targeted_early_help", "consent": CONSENT}
    response = await send(client, "POST", "/v1/cases", case, practitioner)
    assert_problem(response, 422, "validation-failed")
    referral = {
        "children": [child],
        "concerns": ["attendance"],
        "level_of_need": "targeted_early_help",
        "consent": CONSENT,
        "urgency": "routine",
        "summary": "Worried about attendance",
    }
    response = await send(client, "POST", "/v1/referrals", referral, hub)
    assert_problem(response, 422, "validation-failed")
    named = {
        **referral,
        "children": [{"given_name": "Ada", "family_name": "B", "date_of_birth": 0}],
    }
    response = await send(client, "POST", "/v1/referrals", named, hub)
    assert_problem(response, 422, "validation-failed")


async def test_a_nul_in_an_idempotency_key_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    school, mis = await school_with_roll(world, client)
    response = await client.post(
        "/v1/attendance/marks",
        json={"marks": [mark("P0", "2025-10-06", school_code=school["code"])]},
        headers={**mis, "Idempotency-Key": "key" + NUL},
    )
    assert_problem(response, 400, "bad-request")


async def test_the_token_endpoint_refuses_unstorable_text_as_invalid_request(
    client: httpx.AsyncClient, world: World
) -> None:
    credentials = await world.api_client("pupils:read")
    attempts = [
        ({"grant_type": "client_credentials", "client_id": "a" + NUL, "client_secret": "x"}, {}),
        ({"grant_type": "password", "username": "a" + NUL + "@example.org", "password": "x"}, {}),
        (
            {"grant_type": "client_credentials"},
            {"Authorization": "Basic " + base64.b64encode(b"a\x00:b").decode()},
        ),
        ({"grant_type": "client_credentials", "client_id": "c" * 65, "client_secret": "x"}, {}),
    ]
    for form, headers in attempts:
        response = await client.post("/oauth/token", data=form, headers=headers)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_request"
    # The real client still gets its token.
    assert await world.token(credentials)


# --- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/oruk/services", "/oruk/taxonomies", "/oruk/taxonomy_terms", "/oruk/service_at_locations"],
)
async def test_oruk_pages_past_int64_are_422(client: httpx.AsyncClient, path: str) -> None:
    for params in ({"page": "10000000000000000000000"}, {"per_page": "10000000000000000000000"}):
        response = await client.get(path, params=params)
        assert_problem(response, 422, "validation-failed")
        assert response.headers["access-control-allow-origin"] == "*"
    far = await client.get(path, params={"page": "1000000", "per_page": "10000"})
    assert far.status_code == 200 and far.json()["contents"] == []


async def test_list_limits_are_bounded(client: httpx.AsyncClient, world: World) -> None:
    headers = await world.client_headers("pupils:read", la_code="202")
    response = await client.get("/v1/pupils", params={"limit": str(2**63)}, headers=headers)
    assert_problem(response, 422, "validation-failed")
    assert (await client.get("/v1/pupils", params={"limit": "5000"}, headers=headers)).is_success


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_bodies_take_only_finite_numbers(
    client: httpx.AsyncClient, world: World, number: str
) -> None:
    admin = await world.client_headers("admin", la_code="202")
    body = f'{{"code": "reading", "label": "Reading", "min_score": {number}, "max_score": 10}}'
    response = await client.post(
        "/v1/measure-instruments",
        content=body.encode(),
        headers={**admin, "content-type": "application/json"},
    )
    problem = assert_problem(response, 422, "validation-failed")
    assert problem["errors"][0]["loc"] == ["body", "min_score"]


# --- dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name", "scopes"),
    [
        ("/v1/attendance/codes", "on", "attendance:read"),
        ("/v1/pupils/{id}/attendance", "to", "attendance:read"),
        ("/v1/pupils/{id}/attendance", "from", "attendance:read"),
        ("/v1/reports/outcomes", "from", "reports:read"),
        ("/v1/referrals", "received_from", "referrals:read"),
        ("/v1/referrals", "received_to", "referrals:read"),
        ("/v1/audit-events", "since", "audit:read"),
        ("/oruk/services", "modified_after", ""),
        ("/oruk/services", "start_time", ""),
    ],
)
async def test_dates_that_are_not_iso_text_are_422(
    client: httpx.AsyncClient, world: World, path: str, name: str, scopes: str
) -> None:
    headers = await world.client_headers(scopes, la_code="202") if scopes else {}
    url = path.replace("{id}", str(uuid.uuid4()))
    # Numbers, numeric strings, a space for the `T`, and the ends of the calendar (where
    # date arithmetic fails: these gave 500s from the figures and the outcome report).
    values = ("0", "0.5", "1700000000", str(UNIX_2010), "2024-01-01 10:00", "0001-01-01")
    for value in (*values, "9999-12-31", "9999-12-31T23:59:59-05:00"):
        response = await client.get(url, params={name: value}, headers=headers)
        problem = assert_problem(response, 422, "validation-failed")
        assert problem["errors"][0]["loc"] == ["query", name], value


# --- bodies that are not JSON --------------------------------------------------------------


async def test_a_body_that_is_not_json_is_a_400_problem(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = await world.client_headers("admin", la_code="202")
    for content in (b"{bad", b'{"name": "\xff"}', b"\xff\xfe{"):
        response = await client.post(
            "/v1/schools", content=content, headers={**admin, "content-type": "application/json"}
        )
        assert_problem(response, 400, "bad-request")
    marks = await client.post(
        "/v1/attendance/marks", content=b"[", headers={"content-type": "application/json"}
    )
    assert marks.status_code == 401  # the push reads its body after the token is checked
    _, mis = await school_with_roll(world, client)
    marks = await client.post(
        "/v1/attendance/marks", content=b"[", headers={**mis, "content-type": "application/json"}
    )
    assert "not valid JSON" in assert_problem(marks, 400, "bad-request")["detail"]
    # JSON sent as another media type is a 415, not a 422 about a missing object.
    plain = await client.post(
        "/v1/schools", content=b"{}", headers={**admin, "content-type": "text/plain"}
    )
    assert_problem(plain, 415, "unsupported-media-type")


# --- methods and preconditions -------------------------------------------------------------


async def test_405_lists_every_method_of_the_path(client: httpx.AsyncClient, world: World) -> None:
    for method, path, allowed in [
        ("OPTIONS", "/v1/schools", "GET, HEAD, POST"),
        ("DELETE", "/v1/schools", "GET, HEAD, POST"),
        ("DELETE", f"/v1/schools/{uuid.uuid4()}", "GET, HEAD, PATCH"),
        ("DELETE", f"/v1/cases/{uuid.uuid4()}", "GET, HEAD, PATCH"),
        ("PATCH", f"/v1/schools/{uuid.uuid4()}/pupils", "PUT"),
        ("GET", "/oauth/token", "POST"),
        ("POST", "/livez", "GET, HEAD"),
    ]:
        response = await client.request(method, path)
        assert_problem(response, 405, "method-not-allowed")
        assert response.headers["allow"] == allowed, (method, path)
    # HEAD is answered wherever GET is: its headers, no body.
    headers = await world.client_headers("pupils:read", la_code="202")
    head = await client.head("/v1/schools", headers=headers)
    get = await client.get("/v1/schools", headers=headers)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert (await client.head("/v1/schools")).status_code == 401


async def test_a_change_that_needs_if_match_is_428_without_it(
    client: httpx.AsyncClient, world: World
) -> None:
    school = await world.school()
    manager = await world.headers(await world.staff("manager", schools=[school]))
    referral, case = uuid.uuid4(), uuid.uuid4()
    for path, body in [
        (f"/v1/referrals/{referral}/review", None),
        (f"/v1/referrals/{referral}/decision", {"decision": "accept", "reason": "Fits"}),
        (f"/v1/referrals/{referral}/approval", {"approve": True, "note": "Agreed"}),
        (f"/v1/referrals/{referral}/withdrawal", {"reason": "Sent in error"}),
    ]:
        response = await client.post(path, json=body, headers=manager)
        assert_problem(response, 428, "precondition-required")
    patched = await client.patch(
        f"/v1/cases/{case}", json={"level_of_need": "targeted_early_help"}, headers=manager
    )
    assert_problem(patched, 428, "precondition-required")
    # A body that is wrong as well is a 422 that names both.
    both = await client.patch(f"/v1/cases/{case}", json={"nonsense": 1}, headers=manager)
    locations = [e["loc"] for e in assert_problem(both, 422, "validation-failed")["errors"]]
    assert ["header", "If-Match"] in locations and ["body", "nonsense"] in locations
    # Where If-Match is optional, its absence is no precondition failure.
    closure = await client.post(
        f"/v1/cases/{case}/closure", json={"reason": "needs_met", "note": "Done"}, headers=manager
    )
    assert_problem(closure, 404, "not-found")
