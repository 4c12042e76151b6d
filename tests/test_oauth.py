"""The token endpoint (RFC 6749): grants, client authentication, scopes and errors."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Credentials, World


async def _token(
    http: httpx.AsyncClient, form: dict[str, str], headers: dict[str, str] | None = None
) -> httpx.Response:
    return await http.post("/oauth/token", data=form, headers=headers or {})


async def test_client_credentials_with_basic_auth(client: httpx.AsyncClient, world: World) -> None:
    credentials = await world.api_client("pupils:write attendance:write")
    response = await _token(client, {"grant_type": "client_credentials"}, credentials.basic)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == "pupils:write attendance:write"
    assert body["access_token"].count(".") == 2
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


async def test_client_credentials_with_form_fields(client: httpx.AsyncClient, world: World) -> None:
    credentials = await world.api_client("referrals:write")
    response = await _token(
        client,
        {
            "grant_type": "client_credentials",
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
        },
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "referrals:write"


async def test_requested_scopes_narrow_the_token(client: httpx.AsyncClient, world: World) -> None:
    credentials = await world.api_client("pupils:write attendance:write")
    response = await _token(
        client, {"grant_type": "client_credentials", "scope": "attendance:write"}, credentials.basic
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "attendance:write"


async def test_scope_beyond_the_grant_is_invalid_scope(
    client: httpx.AsyncClient, world: World
) -> None:
    credentials = await world.api_client("pupils:write")
    response = await _token(
        client,
        {"grant_type": "client_credentials", "scope": "pupils:write admin"},
        credentials.basic,
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_scope"
    assert "admin" in body["error_description"]
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: Credentials(c.client_id, c.client_secret + "x"),
        lambda c: Credentials("lsn_unknown", c.client_secret),
    ],
    ids=["wrong-secret", "unknown-client"],
)
async def test_bad_client_authentication_is_401_invalid_client(
    client: httpx.AsyncClient, world: World, mutate: object
) -> None:
    credentials = mutate(await world.api_client("pupils:write"))  # type: ignore[operator]
    response = await _token(client, {"grant_type": "client_credentials"}, credentials.basic)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_client_credentials_without_client_is_invalid_client(
    client: httpx.AsyncClient,
) -> None:
    response = await _token(client, {"grant_type": "client_credentials"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_malformed_basic_header_is_invalid_client(client: httpx.AsyncClient) -> None:
    response = await _token(
        client, {"grant_type": "client_credentials"}, {"Authorization": "Basic !!!not-base64"}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_two_client_authentication_methods_are_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    credentials = await world.api_client("pupils:write")
    response = await _token(
        client,
        {"grant_type": "client_credentials", "client_id": credentials.client_id},
        credentials.basic,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_unsupported_and_missing_grant_types(client: httpx.AsyncClient) -> None:
    response = await _token(client, {"grant_type": "authorization_code", "code": "x"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    response = await _token(client, {"scope": "admin"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_json_body_is_invalid_request(client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth/token", json={"grant_type": "client_credentials"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_password_grant_for_staff(client: httpx.AsyncClient, world: World) -> None:
    staff = await world.staff("practitioner")
    response = await _token(
        client,
        {
            "grant_type": "password",
            "username": staff["username"].upper(),
            "password": staff["password"],
        },
    )
    assert response.status_code == 200
    scopes = set(response.json()["scope"].split())
    assert {"cases:read", "cases:write", "referrals:decide", "pupils:read"} <= scopes
    assert "cases:approve" not in scopes and "admin" not in scopes


async def test_password_grant_scope_must_be_within_role(
    client: httpx.AsyncClient, world: World
) -> None:
    staff = await world.staff("practitioner")
    form = {"grant_type": "password", "username": staff["username"], "password": staff["password"]}
    response = await _token(client, {**form, "scope": "cases:approve"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    response = await _token(client, {**form, "scope": "cases:read"})
    assert response.json()["scope"] == "cases:read"


async def test_password_grant_with_wrong_password_is_invalid_grant(
    client: httpx.AsyncClient, world: World
) -> None:
    staff = await world.staff("manager")
    for username, password in [
        (staff["username"], "wrong password here"),
        ("nobody@example.org", staff["password"]),
        (staff["username"], ""),
    ]:
        response = await _token(
            client, {"grant_type": "password", "username": username, "password": password}
        )
        assert response.status_code == 400
        assert response.json()["error"] in {"invalid_grant", "invalid_request"}


async def test_password_grant_with_bad_client_is_invalid_client(
    client: httpx.AsyncClient, world: World
) -> None:
    staff = await world.staff("manager")
    credentials = await world.api_client("pupils:read")
    response = await _token(
        client,
        {"grant_type": "password", "username": staff["username"], "password": staff["password"]},
        Credentials(credentials.client_id, "wrong").basic,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_token_error_carries_problem_members(client: httpx.AsyncClient) -> None:
    body = (await _token(client, {"grant_type": "nonsense"})).json()
    assert body["type"] == "urn:liaison:problem:oauth-unsupported-grant-type"
    assert body["status"] == 400
    assert body["detail"] == body["error_description"]
