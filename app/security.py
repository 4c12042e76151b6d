"""Tokens, secrets, scopes and the authenticated principal.

JWTs are made and checked here and nowhere else. Our own access tokens are HS256 with an
explicit allow-list, a required type claim and every registered claim we rely on; tokens
from an external identity provider are checked against its JWKS with asymmetric
algorithms only, so a public key can never be used as an HMAC secret.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx
from jose import JWTError, jwk, jwt
from jose.exceptions import JOSEError
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.config import Settings
from app.models.principal import StaffRole

ACCESS_TOKEN_TYPE = "access"
OWN_ALGORITHMS = ["HS256"]
LEEWAY_SECONDS = 10


class Scope(StrEnum):
    pupils_read = "pupils:read"
    pupils_write = "pupils:write"
    attendance_read = "attendance:read"
    attendance_write = "attendance:write"
    referrals_read = "referrals:read"
    referrals_write = "referrals:write"
    referrals_decide = "referrals:decide"
    cases_read = "cases:read"
    cases_write = "cases:write"
    cases_approve = "cases:approve"
    directory_write = "directory:write"
    reports_read = "reports:read"
    audit_read = "audit:read"
    holds_write = "holds:write"
    admin = "admin"


# The OpenAPI security schemes of the two kinds of caller (app/deps.py declares them).
CLIENT_SCHEME = "Client"
STAFF_SCHEME = "Staff"

SCOPE_DESCRIPTIONS: dict[str, str] = {
    Scope.pupils_read: "Read pupil rosters (names only with cases:read)",
    Scope.pupils_write: "Push a school's pupil roster",
    Scope.attendance_read: "Read attendance figures and flags",
    Scope.attendance_write: "Push attendance marks",
    Scope.referrals_read: "Read referrals",
    Scope.referrals_write: "Make referrals",
    Scope.referrals_decide: "Decide referrals",
    Scope.cases_read: "Read cases and identify children",
    Scope.cases_write: "Run cases",
    Scope.cases_approve: "Approve step-ups and closures",
    Scope.directory_write: "Maintain the service directory",
    Scope.reports_read: "Read reports",
    Scope.audit_read: "Read the audit trail",
    Scope.holds_write: "Place and lift legal holds",
    Scope.admin: "Administer schools and accounts",
}

_CASEWORK = {
    Scope.pupils_read,
    Scope.attendance_read,
    Scope.referrals_read,
    Scope.referrals_write,
    Scope.referrals_decide,
    Scope.cases_read,
    Scope.cases_write,
}
ROLE_SCOPES: dict[StaffRole, frozenset[str]] = {
    StaffRole.practitioner: frozenset(_CASEWORK),
    StaffRole.manager: frozenset(_CASEWORK | {Scope.cases_approve, Scope.reports_read}),
    StaffRole.dpo: frozenset(
        {
            Scope.pupils_read,
            Scope.attendance_read,
            Scope.referrals_read,
            Scope.cases_read,
            Scope.reports_read,
            Scope.audit_read,
            Scope.holds_write,
        }
    ),
    StaffRole.admin: frozenset({Scope.admin, Scope.directory_write, Scope.reports_read}),
}


def parse_scopes(value: str | None) -> list[str]:
    """Scopes from a space-separated string, de-duplicated, order kept."""
    return list(dict.fromkeys((value or "").split()))


def unknown_scopes(scopes: Iterable[str]) -> list[str]:
    known = {s.value for s in Scope}
    return [s for s in scopes if s not in known]


# --- Reach -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reach:
    """The schools a principal may touch: those named, and every school of its LA.

    `school_las` are the LAs of the named schools: whose reference lists (levels of need,
    concerns, ...) apply to the principal's work, never a grant of the whole LA's data.
    """

    school_ids: frozenset[uuid.UUID] = frozenset()
    la_code: str | None = None
    school_las: frozenset[str] = frozenset()

    @property
    def is_empty(self) -> bool:
        return not self.school_ids and self.la_code is None

    @property
    def las(self) -> frozenset[str]:
        """Every LA whose reference data the principal works with."""
        own = {self.la_code} if self.la_code is not None else set()
        return frozenset(own | self.school_las)

    @property
    def home_la(self) -> str | None:
        """The one LA the principal works for: its own, or that of all its schools."""
        if self.la_code is not None:
            return self.la_code
        return next(iter(self.school_las)) if len(self.school_las) == 1 else None


@dataclass(frozen=True)
class Principal:
    """The caller of a request, as proved by its token and looked up afresh in the database."""

    kind: str  # "client" or "staff"
    id: uuid.UUID
    name: str
    scopes: frozenset[str]
    reach: Reach
    client_id: str | None = None
    role: StaffRole | None = None

    @property
    def subject(self) -> str:
        return f"{self.kind}:{self.id}"

    def has(self, scope: str) -> bool:
        return scope in self.scopes


# --- Secrets -----------------------------------------------------------------------------


class _Secrets:
    """The Argon2 hasher new secrets are hashed with, and a hash to verify against when an
    account does not exist, so that a miss takes as long as a hit. Verifying reads the cost
    from the hash itself, so hashes of either cost verify whichever is in use."""

    def __init__(self, hasher: Argon2Hasher) -> None:
        self.hash = PasswordHash((hasher,))
        self.dummy = self.hash.hash(secrets.token_urlsafe(16))


# pwdlib's defaults (Argon2id, 3 passes over 64 MiB): about 0.1 s a hash here.
_STANDARD = _Secrets(Argon2Hasher())
_secrets = _STANDARD


def use_test_hashing(enabled: bool) -> None:
    """Hash new secrets with a token cost (1 pass over 1 MiB) when `enabled`: for the test
    environment only (`create_app` turns it on there), where thousands of accounts are made
    and a strong hash buys nothing. Production always hashes at the standard cost."""
    global _secrets
    if enabled:
        _secrets = _Secrets(Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1))
    else:
        _secrets = _STANDARD


def hash_secret(secret: str) -> str:
    return _secrets.hash.hash(secret)


def verify_secret(secret: str, secret_hash: str | None) -> bool:
    if secret_hash is None:
        _secrets.hash.verify(secret, _secrets.dummy)
        return False
    try:
        return _secrets.hash.verify(secret, secret_hash)
    except Exception:
        return False


def new_client_credentials() -> tuple[str, str]:
    return f"lsn_{secrets.token_urlsafe(12)}", secrets.token_urlsafe(32)


# --- Our own access tokens ---------------------------------------------------------------


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int
    scope: str


@dataclass(frozen=True)
class TokenClaims:
    kind: str
    subject_id: str
    scopes: frozenset[str]
    client_id: str | None
    external: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class InvalidToken(Exception):
    """The token is missing, malformed, expired, or not one of ours."""


def _key_id(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def _signing_keys(settings: Settings) -> dict[str, str]:
    return _keys_by_id(
        settings.signing_key.get_secret_value(),
        *(k.get_secret_value() for k in settings.previous_signing_keys),
    )


@functools.lru_cache(maxsize=16)
def _keys_by_id(*values: str) -> dict[str, str]:
    return {_key_id(value): value for value in values}


def issue_access_token(
    settings: Settings,
    *,
    kind: str,
    subject_id: str,
    scopes: Iterable[str],
    client_id: str | None,
) -> AccessToken:
    now = int(time.time())
    scope = " ".join(scopes)
    claims = {
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
        "sub": f"{kind}:{subject_id}",
        "iat": now,
        "nbf": now,
        "exp": now + settings.token_lifetime_seconds,
        "jti": uuid.uuid4().hex,
        "type": ACCESS_TOKEN_TYPE,
        "scope": scope,
    }
    if client_id:
        claims["client_id"] = client_id
    secret = settings.signing_key.get_secret_value()
    token = jwt.encode(
        claims,
        secret,
        algorithm=OWN_ALGORITHMS[0],
        headers={"typ": "at+jwt", "kid": _key_id(secret)},
    )
    return AccessToken(token=token, expires_in=settings.token_lifetime_seconds, scope=scope)


_REQUIRED = {
    "require_exp": True,
    "require_iat": True,
    "require_sub": True,
    "require_aud": True,
    "require_iss": True,
    "require_jti": True,
    "leeway": LEEWAY_SECONDS,
}


def decode_access_token(settings: Settings, token: str) -> TokenClaims:
    """The claims of one of our own access tokens, verified.

    A token is verified once and then known by its text until it expires: an integration
    presents the same token on every request for its lifetime, and checking the signature
    and claims again each time is most of the cost of a small read. Only verified tokens
    are kept, so forged ones cannot fill the cache; each is kept under the keys, audience
    and issuer it was verified with, so a rotated-out key or another configuration verifies
    afresh. The account behind the token is still loaded on every request (`principals`),
    so disabling it or narrowing its reach takes effect at once."""
    verifier = _verifier(settings)
    known = _VERIFIED.get((token, verifier))
    if known is not None:
        claims, expires = known
        if time.time() < expires:
            return claims
    claims, expires = _verify_access_token(settings, token)
    _VERIFIED.put((token, verifier), (claims, expires))
    return claims


def _verifier(settings: Settings) -> tuple[str, ...]:
    return (*_signing_keys(settings), settings.token_audience, settings.token_issuer)


class _Verified:
    """A bounded map, least recently used first out: token and verifier → claims and the
    moment they stop being good."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[tuple[str, tuple[str, ...]], tuple[TokenClaims, float]] = (
            OrderedDict()
        )

    def get(self, key: tuple[str, tuple[str, ...]]) -> tuple[TokenClaims, float] | None:
        found = self.entries.get(key)
        if found is not None:
            self.entries.move_to_end(key)
        return found

    def put(self, key: tuple[str, tuple[str, ...]], value: tuple[TokenClaims, float]) -> None:
        self.entries[key] = value
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


_VERIFIED = _Verified(4096)


def _verify_access_token(settings: Settings, token: str) -> tuple[TokenClaims, float]:
    try:
        header = jwt.get_unverified_header(token)
    except JWTError as exc:
        raise InvalidToken("malformed token") from exc
    kid = header.get("kid")
    secret = _signing_keys(settings).get(kid) if isinstance(kid, str) else None
    if secret is None or header.get("alg") not in OWN_ALGORITHMS:
        raise InvalidToken("unknown signing key or algorithm")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=OWN_ALGORITHMS,
            audience=settings.token_audience,
            issuer=settings.token_issuer,
            options=_REQUIRED,
        )
    except JWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if claims.get("type") != ACCESS_TOKEN_TYPE:
        raise InvalidToken("not an access token")
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise InvalidToken("scope must be a string")
    kind, _, subject_id = str(claims["sub"]).partition(":")
    if kind not in ("client", "staff") or not subject_id:
        raise InvalidToken("unexpected subject")
    verified = TokenClaims(
        kind=kind,
        subject_id=subject_id,
        scopes=frozenset(parse_scopes(scope)),
        client_id=claims.get("client_id"),
    )
    # Good until its expiry as `jwt.decode` judges it (with the same leeway).
    return verified, float(claims["exp"]) + LEEWAY_SECONDS


# --- Tokens from an external identity provider ------------------------------------------


class JwksCache:
    """The external issuer's signing keys, fetched with httpx and kept for a while.

    Keys are fetched when the cache is older than its TTL, or when a token names a key we
    do not hold, but never more than once a minute, whatever the identity provider answers:
    a stream of forged tokens or a failing provider cannot become a stream of requests.
    """

    MIN_REFETCH_SECONDS = 60.0

    def __init__(self, url: str, ttl_seconds: float, client: httpx.AsyncClient | None = None):
        self.url = url
        self.ttl_seconds = ttl_seconds
        self._client = client
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    def _due(self, kid: str | None) -> bool:
        if self._fetched_at is None:
            return True
        age = time.monotonic() - self._fetched_at
        if age > self.ttl_seconds:
            return True
        return (kid is None or kid not in self._keys) and age > self.MIN_REFETCH_SECONDS

    async def key(self, kid: str | None) -> dict[str, Any] | None:
        if self._due(kid):
            async with self._lock:
                if self._due(kid):  # another request may have refreshed while we waited
                    await self._refresh()
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        try:
            self._keys = await self._fetch() or self._keys
        finally:
            # Stamped when the fetch ends, so requests waiting on the lock see the result.
            self._fetched_at = time.monotonic()

    async def _fetch(self) -> dict[str, dict[str, Any]] | None:
        """The published keys by id, or None when the provider gives nothing usable (we
        keep what we had; tokens naming unknown keys then fail as invalid)."""
        try:
            if self._client is not None:
                response = await self._client.get(self.url, timeout=5.0)
            else:
                async with httpx.AsyncClient() as client:
                    response = await client.get(self.url, timeout=5.0)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            return None
        return {k["kid"]: k for k in keys if isinstance(k, dict) and isinstance(k.get("kid"), str)}


async def decode_external_token(settings: Settings, jwks: JwksCache, token: str) -> TokenClaims:
    try:
        header = jwt.get_unverified_header(token)
    except JWTError as exc:
        raise InvalidToken("malformed token") from exc
    algorithm = header.get("alg")
    if algorithm not in settings.external_algorithms:
        raise InvalidToken("algorithm not allowed")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidToken("malformed key id")
    key_data = await jwks.key(kid)
    if key_data is None:
        raise InvalidToken("unknown signing key")
    if key_data.get("alg") not in (None, algorithm) or key_data.get("use") not in (None, "sig"):
        raise InvalidToken("key does not match the token's algorithm")
    try:
        key = jwk.construct(key_data, algorithm)
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=settings.external_audience or settings.token_audience,
            issuer=settings.external_issuer,
            options={**_REQUIRED, "require_jti": False},
        )
    except (JOSEError, TypeError, ValueError, KeyError) as exc:
        # JWKError (a key of another type, a malformed key) is not a JWTError.
        raise InvalidToken("the token does not verify against the issuer's key") from exc
    subject = claims.get(settings.external_subject_claim)
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("token has no subject")
    return TokenClaims(
        kind="staff",
        subject_id=subject,
        scopes=frozenset(),
        client_id=claims.get("azp") or claims.get("client_id"),
        external=True,
    )


def is_own_token(settings: Settings, token: str) -> bool:
    try:
        return jwt.get_unverified_claims(token).get("iss") == settings.token_issuer
    except JWTError:
        return False
