"""Staff sign-in from the API docs: Swagger UI's defaults and the public docs client."""

from __future__ import annotations

import httpx
from jose import jwt

from tests.conftest import Credentials, World

# What Swagger UI sends on a password grant when client_id and secret are left empty.
SWAGGER_EMPTY_BASIC = {"Authorization": "Basic Og=="}
DOCS_CLIENT = Credentials("liaison-docs", "")


async def _token(
    http: httpx.AsyncClient, form: dict[str, str], headers: dict[str, str]
) -> httpx.Response:
    return await http.post("/oauth/token", data=form, headers=headers)


async def _password_form(world: World) -> dict[str, str]:
    staff = await world.staff("practitioner")
    return {
        "grant_type": "password",
        "username": staff["username"],
        "password": staff["password"],
        "scope": "cases:read",
    }


async def test_password_grant_with_an_empty_basic_header_signs_in(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await _token(client, await _password_form(world), SWAGGER_EMPTY_BASIC)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 900, "cases:read")
    claims = jwt.get_unverified_claims(body["access_token"])
    assert "client_id" not in claims
    me = await client.get(
        "/v1/schools", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200


async def test_the_public_docs_client_signs_staff_in(
    client: httpx.AsyncClient, world: World
) -> None:
    form = await _password_form(world)
    for how, headers, fields in [
        ("basic", DOCS_CLIENT.basic, {}),
        ("form", {}, {"client_id": "liaison-docs"}),
    ]:
        response = await _token(client, {**form, **fields}, headers)
        assert response.status_code == 200, (how, response.text)
        claims = jwt.get_unverified_claims(response.json()["access_token"])
        assert claims["client_id"] == "liaison-docs"


async def test_the_public_docs_client_cannot_use_client_credentials(
    client: httpx.AsyncClient,
) -> None:
    response = await _token(client, {"grant_type": "client_credentials"}, DOCS_CLIENT.basic)
    assert response.status_code == 400
    detail = "liaison-docs is a public client: it may use the password grant only."
    assert response.json() == {
        "error": "unauthorized_client",
        "error_description": detail,
        "type": "urn:liaison:problem:oauth-unauthorized-client",
        "title": "unauthorized_client",
        "status": 400,
        "detail": detail,
    }


async def test_an_empty_basic_header_is_no_client_for_client_credentials(
    client: httpx.AsyncClient,
) -> None:
    response = await _token(client, {"grant_type": "client_credentials"}, SWAGGER_EMPTY_BASIC)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.json()["detail"] == "Client authentication is required."


async def test_the_docs_client_with_a_secret_or_a_wrong_secret_is_401(
    client: httpx.AsyncClient, world: World
) -> None:
    form = await _password_form(world)
    registered = await world.api_client("pupils:read")
    for credentials in [
        Credentials("liaison-docs", "a secret it does not have"),
        Credentials(registered.client_id, "wrong"),
    ]:
        response = await _token(client, form, credentials.basic)
        assert response.status_code == 401, credentials
        assert response.json()["error"] == "invalid_client"
        assert response.headers["www-authenticate"] == 'Basic realm="liaison"'
