"""Pure unit tests for app.security and the security checks in app.config.

No database and no HTTP app: Settings are built directly, and the external identity
provider's JWKS endpoint is an httpx.MockTransport.

Several tests pin down defects found and fixed in review (unhashable key ids, JWK errors
escaping, unthrottled JWKS refetches, a cold-cache stampede, malformed JWKS documents).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwt
from pydantic import SecretStr, ValidationError

from app import security
from app.config import DEVELOPMENT_SIGNING_KEY, Settings
from app.security import (
    ROLE_SCOPES,
    SCOPE_DESCRIPTIONS,
    InvalidToken,
    JwksCache,
    Scope,
    decode_access_token,
    decode_external_token,
    hash_secret,
    is_own_token,
    issue_access_token,
    new_client_credentials,
    parse_scopes,
    unknown_scopes,
    verify_secret,
)
from tests.builders.keys import pems, public_jwk

SECRET = "s" * 40
OTHER_SECRET = "o" * 40
EXTERNAL_ISSUER = "https://idp.example.test"
JWKS_URL = "https://idp.example.test/.well-known/jwks.json"
EXTERNAL_KID = "idp-key-1"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep LIAISON_* variables of the developer's shell or CI out of every Settings."""
    for name in [n for n in os.environ if n.upper().startswith("LIAISON_")]:
        monkeypatch.delenv(name)


# --- Helpers -----------------------------------------------------------------------------


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": "sqlite+aiosqlite://",
        "signing_key": SecretStr(SECRET),
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def external_settings(**overrides: Any) -> Settings:
    return make_settings(external_issuer=EXTERNAL_ISSUER, external_jwks_url=JWKS_URL, **overrides)


def key_id(secret: str) -> str:
    """Computed independently of app.security._key_id, so a change there is noticed."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def own_claims(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Claims exactly as issue_access_token makes them; a value of None drops the claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
        "sub": "client:0f6a3c1e",
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "jti": "a1b2c3d4",
        "type": "access",
        "scope": "cases:read pupils:read",
        "client_id": "lsn_test",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign_own(
    claims: dict[str, Any],
    secret: str = SECRET,
    *,
    algorithm: str = "HS256",
    kid: Any = None,
) -> str:
    headers = {"typ": "at+jwt", "kid": key_id(secret) if kid is None else kid}
    return jwt.encode(claims, secret, algorithm=algorithm, headers=headers)


def unsigned_token(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64url_json(header)}.{b64url_json(claims)}."


def hmac_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 JWT built by hand: jose itself refuses to use a PEM key as an HMAC secret."""
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def flip_first_char(segment: str) -> str:
    """Change a base64url segment in its first character, which always changes the bytes."""
    return ("B" if segment[0] == "A" else "A") + segment[1:]


def assert_rejected(settings: Settings, token: str) -> None:
    with pytest.raises(InvalidToken):
        decode_access_token(settings, token)


# --- External identity provider helpers --------------------------------------------------


RSA_PRIVATE_PEM, RSA_PUBLIC_PEM = pems(rsa.generate_private_key(65537, 2048))
OTHER_RSA_PRIVATE_PEM, OTHER_RSA_PUBLIC_PEM = pems(rsa.generate_private_key(65537, 2048))
_, EC_PUBLIC_PEM = pems(ec.generate_private_key(ec.SECP256R1()))


def external_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": EXTERNAL_ISSUER,
        "aud": "liaison-api",
        "sub": "staff-user-42",
        "iat": now,
        "exp": now + 300,
        "azp": "la-portal",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign_external(
    claims: dict[str, Any],
    *,
    private_pem: str = RSA_PRIVATE_PEM,
    algorithm: str = "RS256",
    kid: Any = EXTERNAL_KID,
) -> str:
    headers = {} if kid is None else {"kid": kid}
    return jwt.encode(claims, private_pem, algorithm=algorithm, headers=headers)


class FakeJwksEndpoint:
    """The identity provider's JWKS URL: serves `document` with `status`, counts requests."""

    def __init__(self, document: Any = None, status: int = 200, delay_seconds: float = 0.0) -> None:
        if document is None:
            document = {"keys": [public_jwk(RSA_PUBLIC_PEM, "RS256", EXTERNAL_KID)]}
        self.document = document
        self.status = status
        self.delay_seconds = delay_seconds
        self.requests = 0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        self.requests += 1
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        return httpx.Response(self.status, json=self.document)


@asynccontextmanager
async def jwks_cache(
    endpoint: FakeJwksEndpoint | httpx.MockTransport, ttl_seconds: float = 600
) -> AsyncIterator[JwksCache]:
    transport = (
        endpoint
        if isinstance(endpoint, httpx.MockTransport)
        else httpx.MockTransport(endpoint.handle)
    )
    async with httpx.AsyncClient(transport=transport) as client:
        yield JwksCache(JWKS_URL, ttl_seconds, client=client)


def age_cache(cache: JwksCache, seconds: float) -> None:
    """Pretend the last fetch happened `seconds` earlier than it did."""
    cache._fetched_at -= seconds


async def assert_external_rejected(settings: Settings, cache: JwksCache, token: str) -> None:
    with pytest.raises(InvalidToken):
        await decode_external_token(settings, cache, token)


# --- Own access tokens: issuing ----------------------------------------------------------


def test_round_trip_client_token() -> None:
    settings = make_settings()
    issued = issue_access_token(
        settings,
        kind="client",
        subject_id="0f6a3c1e",
        scopes=["cases:read", "pupils:read"],
        client_id="lsn_abc",
    )
    claims = decode_access_token(settings, issued.token)
    assert claims.kind == "client"
    assert claims.subject_id == "0f6a3c1e"
    assert claims.scopes == frozenset({"cases:read", "pupils:read"})
    assert claims.client_id == "lsn_abc"
    assert claims.external is False
    assert issued.scope == "cases:read pupils:read"
    assert issued.expires_in == settings.token_lifetime_seconds


def test_round_trip_staff_token_without_client_id() -> None:
    settings = make_settings()
    issued = issue_access_token(
        settings, kind="staff", subject_id="9d1e", scopes=[], client_id=None
    )
    claims = decode_access_token(settings, issued.token)
    assert (claims.kind, claims.subject_id, claims.client_id) == ("staff", "9d1e", None)
    assert claims.scopes == frozenset()
    assert "client_id" not in jwt.get_unverified_claims(issued.token)


def test_issued_token_header() -> None:
    settings = make_settings()
    token = issue_access_token(
        settings, kind="client", subject_id="1", scopes=[], client_id=None
    ).token
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "HS256"
    assert header["kid"] == key_id(SECRET)


def test_issued_token_claims() -> None:
    settings = make_settings(token_lifetime_seconds=120)
    token = issue_access_token(
        settings, kind="client", subject_id="1", scopes=["admin"], client_id="c"
    ).token
    claims = jwt.get_unverified_claims(token)
    assert claims["iss"] == settings.token_issuer
    assert claims["aud"] == settings.token_audience
    assert claims["sub"] == "client:1"
    assert claims["type"] == "access"
    assert claims["exp"] - claims["iat"] == 120
    assert claims["nbf"] == claims["iat"]
    assert abs(claims["iat"] - time.time()) < 5
    other = issue_access_token(
        settings, kind="client", subject_id="1", scopes=["admin"], client_id="c"
    ).token
    assert jwt.get_unverified_claims(other)["jti"] != claims["jti"]


def test_hand_made_token_is_accepted() -> None:
    """The baseline for the rejection tests below: only the one thing they change is wrong."""
    settings = make_settings()
    claims = decode_access_token(settings, sign_own(own_claims(settings)))
    assert (claims.kind, claims.subject_id, claims.client_id) == ("client", "0f6a3c1e", "lsn_test")


def test_is_own_token() -> None:
    settings = make_settings()
    own = issue_access_token(settings, kind="client", subject_id="1", scopes=[], client_id=None)
    assert is_own_token(settings, own.token)
    assert not is_own_token(settings, sign_external(external_claims()))
    assert not is_own_token(settings, "not a token")


# --- Own access tokens: rejection --------------------------------------------------------


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "a.b", "...."])
def test_malformed_token_rejected(token: str) -> None:
    assert_rejected(make_settings(), token)


def test_expired_token_rejected() -> None:
    settings = make_settings()
    now = int(time.time())
    token = sign_own(own_claims(settings, iat=now - 7200, nbf=now - 7200, exp=now - 3600))
    assert_rejected(settings, token)


def test_a_verified_token_is_known_until_it_expires_and_no_longer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Verified once, then known by its text: the signature is not checked again...
    settings = make_settings()
    now = int(time.time())
    token = sign_own(own_claims(settings, iat=now, nbf=now, exp=now + 60))
    first = decode_access_token(settings, token)
    calls: list[str] = []
    real_decode = security.jwt.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        calls.append("decode")
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(security.jwt, "decode", counting_decode)
    assert decode_access_token(settings, token) == first
    assert calls == []
    # ...but past its expiry (and the leeway) it is verified afresh, and refused.
    later = now + 60 + security.LEEWAY_SECONDS + 1
    monkeypatch.setattr(security.time, "time", lambda: float(later))
    monkeypatch.setattr("jose.jwt.timegm", lambda _moment: later)  # python-jose's clock
    assert_rejected(settings, token)
    assert calls == ["decode"]


def test_a_known_token_is_verified_afresh_under_other_keys() -> None:
    settings = make_settings()
    token = sign_own(own_claims(settings))
    decode_access_token(settings, token)
    rotated = make_settings(signing_key=SecretStr("another-signing-key-0123456789abcdefgh"))
    assert_rejected(rotated, token)
    elsewhere = make_settings(token_audience="another-audience")
    assert_rejected(elsewhere, token)


def test_refused_tokens_are_not_remembered() -> None:
    settings = make_settings()
    forged = sign_own(own_claims(settings), secret="not-our-signing-key-0123456789abcdef")
    before = len(security._VERIFIED.entries)
    for _ in range(3):
        assert_rejected(settings, forged)
    assert len(security._VERIFIED.entries) == before


def test_expiry_allows_small_clock_skew_only() -> None:
    settings = make_settings()
    now = int(time.time())
    just_expired = own_claims(settings, iat=now - 900, nbf=now - 900, exp=now - 3)
    decode_access_token(settings, sign_own(just_expired))
    long_expired = own_claims(settings, iat=now - 900, nbf=now - 900, exp=now - 60)
    assert_rejected(settings, sign_own(long_expired))


def test_not_yet_valid_token_rejected() -> None:
    settings = make_settings()
    now = int(time.time())
    assert_rejected(settings, sign_own(own_claims(settings, nbf=now + 600)))


def test_wrong_audience_rejected() -> None:
    settings = make_settings()
    assert_rejected(settings, sign_own(own_claims(settings, aud="someone-else")))


def test_wrong_issuer_rejected() -> None:
    settings = make_settings()
    assert_rejected(settings, sign_own(own_claims(settings, iss="urn:someone-else")))


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "aud", "iss", "jti"])
def test_missing_required_claim_rejected(claim: str) -> None:
    settings = make_settings()
    assert_rejected(settings, sign_own(own_claims(settings, **{claim: None})))


@pytest.mark.parametrize("token_type", ["refresh", "id", "ACCESS", "", None])
def test_wrong_or_missing_type_claim_rejected(token_type: str | None) -> None:
    settings = make_settings()
    assert_rejected(settings, sign_own(own_claims(settings, type=token_type)))


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_unsigned_token_rejected(alg: str) -> None:
    settings = make_settings()
    header = {"alg": alg, "typ": "at+jwt", "kid": key_id(SECRET)}
    assert_rejected(settings, unsigned_token(header, own_claims(settings)))


@pytest.mark.parametrize("algorithm", ["HS512", "HS384"])
def test_algorithm_outside_allow_list_rejected_even_with_right_key(algorithm: str) -> None:
    settings = make_settings()
    assert_rejected(settings, sign_own(own_claims(settings), algorithm=algorithm))


def test_tampered_payload_rejected() -> None:
    settings = make_settings()
    header, _, signature = sign_own(own_claims(settings)).split(".")
    forged = b64url_json(own_claims(settings, scope="admin audit:read"))
    assert_rejected(settings, f"{header}.{forged}.{signature}")


def test_tampered_signature_rejected() -> None:
    settings = make_settings()
    header, payload, signature = sign_own(own_claims(settings)).split(".")
    assert_rejected(settings, f"{header}.{payload}.{flip_first_char(signature)}")
    assert_rejected(settings, f"{header}.{payload}.")


def test_unknown_kid_rejected() -> None:
    settings = make_settings()
    assert_rejected(settings, sign_own(own_claims(settings), kid="0" * 16))


def test_missing_kid_rejected() -> None:
    settings = make_settings()
    token = jwt.encode(own_claims(settings), SECRET, algorithm="HS256")
    assert_rejected(settings, token)


def test_right_kid_with_wrong_key_rejected() -> None:
    settings = make_settings()
    assert_rejected(settings, sign_own(own_claims(settings), OTHER_SECRET, kid=key_id(SECRET)))


@pytest.mark.parametrize(
    "subject", ["0f6a3c1e", "client:", "staff:", ":0f6a3c1e", "robot:1", "Client:1", "clients:1"]
)
def test_subject_of_unexpected_form_rejected(subject: str) -> None:
    settings = make_settings()
    assert_rejected(settings, sign_own(own_claims(settings, sub=subject)))


@pytest.mark.parametrize("kid", [["a"], {"k": "v"}])
def test_non_string_kid_rejected_as_invalid_token(kid: Any) -> None:
    settings = make_settings()
    assert_rejected(settings, sign_own(own_claims(settings), kid=kid))


def test_non_string_scope_claim_rejected_as_invalid_token() -> None:
    settings = make_settings()
    assert_rejected(settings, sign_own(own_claims(settings, scope=["admin"])))


# --- Own access tokens: key rotation -----------------------------------------------------


def test_token_signed_with_previous_key_still_verifies() -> None:
    before = make_settings(signing_key=SecretStr(OTHER_SECRET))
    token = issue_access_token(
        before, kind="staff", subject_id="7", scopes=["cases:read"], client_id=None
    ).token
    after = make_settings(
        signing_key=SecretStr(SECRET), previous_signing_keys=[SecretStr(OTHER_SECRET)]
    )
    claims = decode_access_token(after, token)
    assert (claims.kind, claims.subject_id) == ("staff", "7")
    new_token = issue_access_token(
        after, kind="staff", subject_id="7", scopes=[], client_id=None
    ).token
    assert jwt.get_unverified_header(new_token)["kid"] == key_id(SECRET)


def test_token_signed_with_retired_key_rejected() -> None:
    retired = "r" * 40
    settings = make_settings(previous_signing_keys=[SecretStr(OTHER_SECRET)])
    assert_rejected(settings, sign_own(own_claims(settings), retired))
    assert_rejected(settings, sign_own(own_claims(settings), retired, kid=key_id(OTHER_SECRET)))


# --- Settings ----------------------------------------------------------------------------


def production(**overrides: Any) -> Settings:
    return make_settings(environment="production", **overrides)


def test_production_refuses_default_signing_key() -> None:
    with pytest.raises(ValidationError, match="LIAISON_SIGNING_KEY"):
        Settings(environment="production", database_url="sqlite+aiosqlite://", _env_file=None)


@pytest.mark.parametrize("key", [DEVELOPMENT_SIGNING_KEY, ""])
def test_production_refuses_development_or_empty_key(key: str) -> None:
    with pytest.raises(ValidationError):
        production(signing_key=SecretStr(key))


def test_production_refuses_short_keys() -> None:
    with pytest.raises(ValidationError, match="32 bytes"):
        production(signing_key=SecretStr("k" * 31))
    with pytest.raises(ValidationError, match="32 bytes"):
        production(previous_signing_keys=[SecretStr("k" * 31)])


def test_production_accepts_long_enough_keys() -> None:
    settings = production(
        signing_key=SecretStr("k" * 32), previous_signing_keys=[SecretStr("é" * 16)]
    )
    assert not settings.uses_development_key


def test_development_key_allowed_outside_production() -> None:
    settings = make_settings(signing_key=SecretStr(DEVELOPMENT_SIGNING_KEY))
    assert settings.uses_development_key


def test_external_issuer_and_jwks_url_go_together() -> None:
    with pytest.raises(ValidationError, match="EXTERNAL_JWKS_URL"):
        make_settings(external_issuer=EXTERNAL_ISSUER)
    with pytest.raises(ValidationError, match="EXTERNAL_ISSUER"):
        make_settings(external_jwks_url=JWKS_URL)
    assert external_settings().external_issuer == EXTERNAL_ISSUER


@pytest.mark.parametrize("algorithms", [["HS256"], ["RS256", "HS256"], ["HS512"], ["none"]])
def test_symmetric_external_algorithms_refused(algorithms: list[str]) -> None:
    with pytest.raises(ValidationError, match="asymmetric"):
        external_settings(external_algorithms=algorithms)


def test_asymmetric_external_algorithms_accepted() -> None:
    settings = external_settings(external_algorithms=["RS256", "ES256", "PS256"])
    assert settings.external_algorithms == ["RS256", "ES256", "PS256"]


# --- External tokens ---------------------------------------------------------------------


async def test_valid_external_token_accepted() -> None:
    endpoint = FakeJwksEndpoint()
    async with jwks_cache(endpoint) as cache:
        claims = await decode_external_token(
            external_settings(), cache, sign_external(external_claims())
        )
    assert claims.kind == "staff"
    assert claims.external is True
    assert claims.subject_id == "staff-user-42"
    assert claims.scopes == frozenset()
    assert claims.client_id == "la-portal"
    assert endpoint.requests == 1


async def test_external_subject_comes_from_configured_claim() -> None:
    settings = external_settings(external_subject_claim="oid")
    token = sign_external(external_claims(oid="4c1d-object-id"))
    async with jwks_cache(FakeJwksEndpoint()) as cache:
        claims = await decode_external_token(settings, cache, token)
        assert claims.subject_id == "4c1d-object-id"
        await assert_external_rejected(settings, cache, sign_external(external_claims()))


async def test_external_token_without_subject_rejected() -> None:
    async with jwks_cache(FakeJwksEndpoint()) as cache:
        for sub in (None, ""):
            token = sign_external(external_claims(sub=sub))
            await assert_external_rejected(external_settings(), cache, token)


async def test_external_token_without_kid_uses_the_only_key() -> None:
    async with jwks_cache(FakeJwksEndpoint()) as cache:
        token = sign_external(external_claims(), kid=None)
        claims = await decode_external_token(external_settings(), cache, token)
    assert claims.subject_id == "staff-user-42"


async def test_external_audience_setting_is_enforced() -> None:
    settings = external_settings(external_audience="la-idp-audience")
    async with jwks_cache(FakeJwksEndpoint()) as cache:
        ok = sign_external(external_claims(aud="la-idp-audience"))
        assert (await decode_external_token(settings, cache, ok)).external
        await assert_external_rejected(settings, cache, sign_external(external_claims()))


async def test_external_token_wrong_issuer_rejected() -> None:
    token = sign_external(external_claims(iss="https://evil.example.test"))
    async with jwks_cache(FakeJwksEndpoint()) as cache:
        await assert_external_rejected(external_settings(), cache, token)


async def test_external_token_wrong_audience_rejected() -> None:
    token = sign_external(external_claims(aud="another-api"))
    async with jwks_cache(FakeJwksEndpoint()) as cache:
        await assert_external_rejected(external_settings(), cache, token)


async def test_external_token_expired_rejected() -> None:
    now = int(time.time())
    token = sign_external(external_claims(iat=now - 7200, exp=now - 3600))
    async with jwks_cache(FakeJwksEndpoint()) as cache:
        await assert_external_rejected(external_settings(), cache, token)


async def test_external_token_signed_by_another_key_rejected() -> None:
    token = sign_external(external_claims(), private_pem=OTHER_RSA_PRIVATE_PEM)
    async with jwks_cache(FakeJwksEndpoint()) as cache:
        await assert_external_rejected(external_settings(), cache, token)


async def test_hmac_with_public_key_as_secret_rejected() -> None:
    """The algorithm-confusion attack: the JWKS public key must never act as an HMAC secret."""
    header = {"alg": "HS256", "typ": "JWT", "kid": EXTERNAL_KID}
    token = hmac_token(header, external_claims(), RSA_PUBLIC_PEM)
    endpoint = FakeJwksEndpoint()
    async with jwks_cache(endpoint) as cache:
        await assert_external_rejected(external_settings(), cache, token)


async def test_unsigned_external_token_rejected() -> None:
    token = unsigned_token({"alg": "none", "kid": EXTERNAL_KID}, external_claims())
    async with jwks_cache(FakeJwksEndpoint()) as cache:
        await assert_external_rejected(external_settings(), cache, token)


async def test_own_token_is_not_an_external_token() -> None:
    settings = external_settings()
    own = issue_access_token(settings, kind="staff", subject_id="1", scopes=[], client_id=None)
    async with jwks_cache(FakeJwksEndpoint()) as cache:
        await assert_external_rejected(settings, cache, own.token)


@pytest.mark.parametrize("key_fields", [{"alg": "RS512"}, {"use": "enc"}])
async def test_jwk_restricted_to_other_use_or_algorithm_rejected(
    key_fields: dict[str, str],
) -> None:
    settings = external_settings(external_algorithms=["RS256", "RS512"])
    key = public_jwk(RSA_PUBLIC_PEM, "RS256", EXTERNAL_KID, **key_fields)
    async with jwks_cache(FakeJwksEndpoint({"keys": [key]})) as cache:
        await assert_external_rejected(settings, cache, sign_external(external_claims()))


async def test_unknown_kid_rejected_without_hammering_the_idp() -> None:
    endpoint = FakeJwksEndpoint()
    settings = external_settings()
    forged = sign_external(external_claims(), private_pem=OTHER_RSA_PRIVATE_PEM, kid="forged")
    async with jwks_cache(endpoint) as cache:
        await decode_external_token(settings, cache, sign_external(external_claims()))
        for _ in range(5):
            await assert_external_rejected(settings, cache, forged)
        assert endpoint.requests == 1

        age_cache(cache, JwksCache.MIN_REFETCH_SECONDS + 1)
        for _ in range(5):
            await assert_external_rejected(settings, cache, forged)
        assert endpoint.requests == 2


async def test_key_rotated_in_at_the_idp_is_picked_up_after_refetch_interval() -> None:
    endpoint = FakeJwksEndpoint()
    settings = external_settings()
    rotated = sign_external(external_claims(), private_pem=OTHER_RSA_PRIVATE_PEM, kid="idp-key-2")
    async with jwks_cache(endpoint) as cache:
        await decode_external_token(settings, cache, sign_external(external_claims()))
        endpoint.document = {
            "keys": [
                public_jwk(RSA_PUBLIC_PEM, "RS256", EXTERNAL_KID),
                public_jwk(OTHER_RSA_PUBLIC_PEM, "RS256", "idp-key-2"),
            ]
        }
        await assert_external_rejected(settings, cache, rotated)
        age_cache(cache, JwksCache.MIN_REFETCH_SECONDS + 1)
        claims = await decode_external_token(settings, cache, rotated)
    assert claims.subject_id == "staff-user-42"
    assert endpoint.requests == 2


async def test_jwks_refetched_after_ttl() -> None:
    endpoint = FakeJwksEndpoint()
    settings = external_settings()
    token = sign_external(external_claims())
    async with jwks_cache(endpoint, ttl_seconds=600) as cache:
        await decode_external_token(settings, cache, token)
        await decode_external_token(settings, cache, token)
        assert endpoint.requests == 1
        age_cache(cache, 601)
        await decode_external_token(settings, cache, token)
    assert endpoint.requests == 2


async def test_jwks_server_error_rejects_token() -> None:
    endpoint = FakeJwksEndpoint({"error": "boom"}, status=500)
    async with jwks_cache(endpoint) as cache:
        await assert_external_rejected(external_settings(), cache, sign_external(external_claims()))


async def test_jwks_unreachable_rejects_token() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with jwks_cache(httpx.MockTransport(refuse)) as cache:
        await assert_external_rejected(external_settings(), cache, sign_external(external_claims()))


async def test_jwks_not_json_rejects_token() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text="<html>"))
    async with jwks_cache(transport) as cache:
        await assert_external_rejected(external_settings(), cache, sign_external(external_claims()))


# --- External tokens: known defects ------------------------------------------------------


@pytest.mark.parametrize(("status", "document"), [(500, {}), (200, {"keys": []})])
async def test_failing_or_empty_jwks_is_not_refetched_for_every_token(
    status: int, document: Any
) -> None:
    endpoint = FakeJwksEndpoint(document, status=status)
    token = sign_external(external_claims(), kid="forged")
    async with jwks_cache(endpoint) as cache:
        for _ in range(5):
            await assert_external_rejected(external_settings(), cache, token)
    assert endpoint.requests == 1


async def test_concurrent_cold_cache_fetches_jwks_once() -> None:
    endpoint = FakeJwksEndpoint(delay_seconds=0.01)
    token = sign_external(external_claims())
    async with jwks_cache(endpoint) as cache:
        results = await asyncio.gather(
            *(decode_external_token(external_settings(), cache, token) for _ in range(5))
        )
    assert all(r.subject_id == "staff-user-42" for r in results)
    assert endpoint.requests == 1


async def test_non_string_external_kid_rejected_as_invalid_token() -> None:
    token = sign_external(external_claims(), kid=["idp-key-1"])
    async with jwks_cache(FakeJwksEndpoint()) as cache:
        await assert_external_rejected(external_settings(), cache, token)


async def test_token_naming_a_key_of_another_type_rejected_as_invalid_token() -> None:
    """An IdP publishing an EC key without "alg"; an RS256 token naming it must fail cleanly."""
    settings = external_settings(external_algorithms=["RS256", "ES256"])
    ec_key = public_jwk(EC_PUBLIC_PEM, "ES256", "ec-1")
    del ec_key["alg"]
    token = sign_external(external_claims(), kid="ec-1")
    async with jwks_cache(FakeJwksEndpoint({"keys": [ec_key]})) as cache:
        await assert_external_rejected(settings, cache, token)


@pytest.mark.parametrize("document", [[], {"keys": None}, "keys"])
async def test_malformed_jwks_document_rejects_token(document: Any) -> None:
    async with jwks_cache(FakeJwksEndpoint(document)) as cache:
        await assert_external_rejected(external_settings(), cache, sign_external(external_claims()))


# --- Secrets -----------------------------------------------------------------------------


def test_hash_and_verify_secret() -> None:
    hashed = hash_secret("correct horse battery staple")
    assert "correct horse" not in hashed
    assert hashed.startswith("$argon2")
    assert verify_secret("correct horse battery staple", hashed)
    assert not verify_secret("correct horse battery stapler", hashed)
    assert not verify_secret("", hashed)


def test_only_the_test_environment_hashes_at_a_token_cost() -> None:
    """Tests make thousands of accounts, so their secrets are hashed cheaply; every other
    environment hashes at pwdlib's standard Argon2id cost, and hashes of either cost verify."""
    from app.main import create_app

    security.use_test_hashing(True)
    cheap = hash_secret("correct horse battery staple")
    assert cheap.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    try:
        for environment in ("production", "development"):
            create_app(Settings(environment=environment, signing_key=SecretStr("k" * 48)))
            standard = hash_secret("correct horse battery staple")
            assert standard.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), environment
            assert verify_secret("correct horse battery staple", cheap)
        create_app(Settings(environment="test", signing_key=SecretStr("k" * 48)))
        assert hash_secret("x").startswith("$argon2id$v=19$m=1024,t=1,p=1$")
        assert verify_secret("correct horse battery staple", standard)
    finally:
        security.use_test_hashing(True)


def test_hashes_are_salted() -> None:
    assert hash_secret("same") != hash_secret("same")


def test_verify_secret_without_hash_is_false() -> None:
    assert verify_secret("anything", None) is False


@pytest.mark.parametrize(
    "bad_hash", ["", "not-a-hash", "$argon2id$v=19$m=65536,t=3,p=4$garbage", "$2b$12$abc"]
)
def test_verify_secret_with_malformed_hash_is_false(bad_hash: str) -> None:
    assert verify_secret("secret", bad_hash) is False


def test_new_client_credentials() -> None:
    client_id, secret = new_client_credentials()
    assert client_id.startswith("lsn_")
    assert len(secret) >= 40
    assert new_client_credentials() != (client_id, secret)


# --- Scopes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("cases:read pupils:read cases:read", ["cases:read", "pupils:read"]),
        ("b a b a c", ["b", "a", "c"]),
        ("  admin\t audit:read\nadmin ", ["admin", "audit:read"]),
        ("", []),
        (None, []),
    ],
)
def test_parse_scopes(value: str | None, expected: list[str]) -> None:
    assert parse_scopes(value) == expected


def test_unknown_scopes() -> None:
    scopes = ["cases:read", "cases:delete", "admin", "CASES:READ", "cases:read "]
    assert unknown_scopes(scopes) == ["cases:delete", "CASES:READ", "cases:read "]
    assert unknown_scopes(s.value for s in Scope) == []


def test_role_scopes_and_descriptions_name_only_known_scopes() -> None:
    for scopes in ROLE_SCOPES.values():
        assert unknown_scopes(scopes) == []
    assert set(SCOPE_DESCRIPTIONS) == {s.value for s in Scope}


def test_key_id_matches_independent_computation() -> None:
    assert security._key_id(SECRET) == key_id(SECRET)
