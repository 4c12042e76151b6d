"""The OAuth 2.0 grants Liaison issues tokens for (RFC 6749 §4.3 and §4.4)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from app.config import Settings
from app.models.principal import ApiClient, StaffMember
from app.security import AccessToken, issue_access_token, parse_scopes
from app.services import principals
from app.services.token_attempts import Reservation, TokenAttempts, TooManyAttempts

SUPPORTED_GRANTS = ("client_credentials", "password")


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: `invalid_client` is a 401, the rest are 400s."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.headers: dict[str, str] = {}

    @property
    def status(self) -> int:
        return 401 if self.error == "invalid_client" else 400


class SlowDown(OAuthError):
    """Too many failed attempts for this identity or address: 429 with `Retry-After`.

    `slow_down` is the registered token endpoint error (RFC 8628 §3.5) for "wait before
    you try again"; clients that do not know it still have the 429 and `Retry-After`.
    """

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "slow_down",
            f"Too many failed attempts; try again in {retry_after} seconds.",
        )
        self.headers = {"Retry-After": str(retry_after)}

    @property
    def status(self) -> int:
        return 429


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str


def is_public_docs_client(settings: Settings, credentials: ClientCredentials | None) -> bool:
    """The API docs' registered public client (RFC 6749 §2.1): its id with no secret."""
    return (
        credentials is not None
        and bool(settings.docs_client_id)
        and credentials.client_id == settings.docs_client_id
        and not credentials.client_secret
    )


def _narrow(requested: str | None, granted: list[str]) -> list[str]:
    """The requested scopes if they are all granted; every granted scope if none are asked."""
    wanted = parse_scopes(requested)
    if not wanted:
        return granted
    beyond = [s for s in wanted if s not in granted]
    if beyond:
        raise OAuthError("invalid_scope", f"Scope(s) not granted: {' '.join(beyond)}.")
    return wanted


async def _reserve(
    session: AsyncSession, attempts: TokenAttempts, identities: list[str], address: str | None
) -> Reservation:
    try:
        return await attempts.reserve(session, identities, address)
    except TooManyAttempts as exc:
        raise SlowDown(exc.retry_after) from None


async def grant_client_credentials(
    session: AsyncSession,
    settings: Settings,
    attempts: TokenAttempts,
    credentials: ClientCredentials | None,
    scope: str | None,
    address: str | None,
) -> AccessToken:
    if credentials is None:
        raise OAuthError("invalid_client", "Client authentication is required.")
    if is_public_docs_client(settings, credentials):
        raise OAuthError(
            "unauthorized_client",
            f"{credentials.client_id} is a public client: it may use the password grant only.",
        )
    identity = attempts.client(credentials.client_id)
    reservation = await _reserve(session, attempts, [identity], address)
    client = await principals.authenticate_client(
        session, credentials.client_id, credentials.client_secret
    )
    await attempts.settle(session, reservation, failed=[identity] if client is None else [])
    if client is None:
        raise OAuthError("invalid_client", "Client authentication failed.")
    scopes = _narrow(scope, principals.granted_scopes(client))
    return issue_access_token(
        settings,
        kind="client",
        subject_id=str(client.id),
        scopes=scopes,
        client_id=client.client_id,
    )


async def grant_password(
    session: AsyncSession,
    settings: Settings,
    attempts: TokenAttempts,
    credentials: ClientCredentials | None,
    username: str | None,
    password: str | None,
    scope: str | None,
    address: str | None,
) -> AccessToken:
    # A client that authenticates must do so correctly; staff may also sign in without one
    # (a public client such as the API docs). The password is checked only after the client.
    public_client: str | None = None
    if credentials is not None and is_public_docs_client(settings, credentials):
        public_client, credentials = credentials.client_id, None
    identities: dict[str, str] = {}
    if credentials is not None:
        identities["client"] = attempts.client(credentials.client_id)
    if username and password:
        identities["user"] = attempts.user(username)
    reservation = await _reserve(session, attempts, list(identities.values()), address)
    failed: list[str] = []
    client: ApiClient | None = None
    staff: StaffMember | None = None
    if credentials is not None:
        client = await principals.authenticate_client(
            session, credentials.client_id, credentials.client_secret
        )
        if client is None:
            failed.append(identities["client"])
    if not failed and username and password:
        staff = await principals.authenticate_staff(session, username, password)
        if staff is None:
            failed.append(identities["user"])
    await attempts.settle(session, reservation, failed)
    if credentials is not None and client is None:
        raise OAuthError("invalid_client", "Client authentication failed.")
    if not username or not password:
        raise OAuthError("invalid_request", "username and password are required.")
    if staff is None:
        raise OAuthError("invalid_grant", "The username or password is incorrect.")
    scopes = _narrow(scope, principals.granted_scopes(staff))
    return issue_access_token(
        settings,
        kind="staff",
        subject_id=str(staff.id),
        scopes=scopes,
        client_id=client.client_id if client else public_client,
    )
