"""Bearer tokens on API routes: 401 for a bad token, 403 for a missing scope, and tokens
from the LA's identity provider mapped onto staff accounts."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from jose import jwt

from app.models.principal import ApiClient
from app.security import JwksCache
from tests.builders.keys import pems, public_jwk
from tests.conftest import TEST_SIGNING_KEY, World


async def test_missing_token_is_401_with_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/schools")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["type"] == "urn:liaison:problem:unauthenticated"


async def test_garbage_and_non_bearer_tokens_are_401(client: httpx.AsyncClient) -> None:
    for header in ["Bearer not.a.jwt", "Bearer ", "Basic Zm9vOmJhcg==", "Token abc"]:
        response = await client.get("/v1/schools", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_expired_token_is_401(client: httpx.AsyncClient, world: World) -> None:
    credentials = await world.api_client("pupils:read", la_code="202")
    token = await world.token(credentials)
    claims = jwt.get_unverified_claims(token)
    header = jwt.get_unverified_header(token)
    claims.update(iat=int(time.time()) - 3600, exp=int(time.time()) - 1800)
    expired = jwt.encode(
        claims, TEST_SIGNING_KEY, algorithm="HS256", headers={"kid": header["kid"]}
    )
    response = await client.get("/v1/schools", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401


async def test_missing_scope_is_403_insufficient_scope(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = await world.client_headers("pupils:write", la_code="202")
    response = await client.get("/v1/pupils", headers=headers)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert 'scope="pupils:read"' in response.headers["www-authenticate"]
    assert response.json()["required_scopes"] == ["pupils:read"]


async def test_disabled_client_loses_access_at_once(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    credentials = await world.api_client("pupils:read", la_code="202")
    headers = await world.headers(credentials)
    assert (await client.get("/v1/pupils", headers=headers)).status_code == 200
    async with fresh_app.state.session_factory() as session:
        from sqlmodel import select

        row = (
            await session.exec(
                select(ApiClient).where(ApiClient.client_id == credentials.client_id)
            )
        ).one()
        row.is_active = False
        await session.commit()
    assert (await client.get("/v1/pupils", headers=headers)).status_code == 401
    response = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=credentials.basic
    )
    assert response.status_code == 401


async def test_scope_revoked_from_client_is_gone_from_its_tokens(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    credentials = await world.api_client("pupils:read pupils:write", la_code="202")
    headers = await world.headers(credentials)
    async with fresh_app.state.session_factory() as session:
        from sqlmodel import select

        row = (
            await session.exec(
                select(ApiClient).where(ApiClient.client_id == credentials.client_id)
            )
        ).one()
        row.scopes = "pupils:write"
        await session.commit()
    assert (await client.get("/v1/pupils", headers=headers)).status_code == 403


class _IdentityProvider:
    """An RSA-signing identity provider whose JWKS is served through httpx.MockTransport."""

    issuer = "https://idp.example.org/realms/la"

    def __init__(self) -> None:
        self.private_pem, public_pem = pems(rsa.generate_private_key(65537, 2048))
        self.jwk = public_jwk(public_pem, "RS256", "idp-key-1", use="sig")

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(lambda request: httpx.Response(200, json={"keys": [self.jwk]}))

    def token(self, subject: str, audience: str = "liaison-api", **extra: object) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "exp": now + 300,
            "azp": "la-portal",
            **extra,
        }
        return jwt.encode(claims, self.private_pem, algorithm="RS256", headers={"kid": "idp-key-1"})


async def test_external_identity_provider_tokens_map_to_staff(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    idp = _IdentityProvider()
    settings = fresh_app.state.settings
    original = (
        settings.external_issuer,
        settings.external_jwks_url,
        getattr(fresh_app.state, "jwks", None),
    )
    object.__setattr__(settings, "external_issuer", idp.issuer)
    object.__setattr__(settings, "external_jwks_url", "https://idp.example.org/jwks")
    fresh_app.state.jwks = JwksCache(
        "https://idp.example.org/jwks", 600, client=httpx.AsyncClient(transport=idp.transport())
    )
    try:
        school = await world.school()
        await world.staff("practitioner", schools=[school], external_subject="idp-user-42")
        good = {"Authorization": f"Bearer {idp.token('idp-user-42')}"}
        response = await client.get("/v1/schools", headers=good)
        assert response.status_code == 200
        assert [s["id"] for s in response.json()["items"]] == [school["id"]]
        # Role scopes apply: a practitioner may not read the audit trail.
        assert (await client.get("/v1/audit-events", headers=good)).status_code == 403
        # Unknown person, wrong audience, and our own tokens still work beside them.
        for token in [idp.token("stranger"), idp.token("idp-user-42", audience="other-api")]:
            response = await client.get("/v1/schools", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401
        own = await world.client_headers("pupils:read", la_code="202")
        assert (await client.get("/v1/pupils", headers=own)).status_code == 200
    finally:
        object.__setattr__(settings, "external_issuer", original[0])
        object.__setattr__(settings, "external_jwks_url", original[1])
        fresh_app.state.jwks = original[2]


async def test_token_for_deleted_subject_is_401(client: httpx.AsyncClient) -> None:
    from app.security import issue_access_token
    from tests.conftest import settings_for

    token = issue_access_token(
        settings_for("sqlite+aiosqlite://"),
        kind="client",
        subject_id=str(uuid.uuid4()),
        scopes=["pupils:read"],
        client_id="lsn_gone",
    )
    response = await client.get("/v1/pupils", headers={"Authorization": f"Bearer {token.token}"})
    assert response.status_code == 401


async def test_principal_is_loaded_once_per_request(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A route asking for a scoped principal and an auditor authenticates once."""
    from app.services import principals

    loads: list[object] = []
    original = principals.load_principal

    async def counting(session: object, claims: object) -> object:
        loads.append(claims)
        return await original(session, claims)  # type: ignore[arg-type]

    monkeypatch.setattr(principals, "load_principal", counting)
    headers = await world.client_headers("pupils:read", la_code="202")
    assert (await client.get("/v1/pupils", headers=headers)).status_code == 200
    assert len(loads) == 1
