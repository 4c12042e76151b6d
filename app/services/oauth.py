"""The OAuth 2.0 grants Liaison issues tokens for (RFC 6749 §4.3 and §4.4)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from app.config import Settings
from app.security import AccessToken, issue_access_token, parse_scopes
from app.services import principals

SUPPORTED_GRANTS = ("client_credentials", "password")


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: `invalid_client` is a 401, the rest are 400s."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description

    @property
    def status(self) -> int:
        return 401 if self.error == "invalid_client" else 400


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str


def _narrow(requested: str | None, granted: list[str]) -> list[str]:
    """The requested scopes if they are all granted; every granted scope if none are asked."""
    wanted = parse_scopes(requested)
    if not wanted:
        return granted
    beyond = [s for s in wanted if s not in granted]
    if beyond:
        raise OAuthError("invalid_scope", f"Scope(s) not granted: {' '.join(beyond)}.")
    return wanted


async def grant_client_credentials(
    session: AsyncSession,
    settings: Settings,
    credentials: ClientCredentials | None,
    scope: str | None,
) -> AccessToken:
    if credentials is None:
        raise OAuthError("invalid_client", "Client authentication is required.")
    client = await principals.authenticate_client(
        session, credentials.client_id, credentials.client_secret
    )
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
    credentials: ClientCredentials | None,
    username: str | None,
    password: str | None,
    scope: str | None,
) -> AccessToken:
    client_id = None
    if credentials is not None:
        # A client that authenticates must do so correctly; staff may also sign in
        # without one (a public client such as the API docs).
        client = await principals.authenticate_client(
            session, credentials.client_id, credentials.client_secret
        )
        if client is None:
            raise OAuthError("invalid_client", "Client authentication failed.")
        client_id = client.client_id
    if not username or not password:
        raise OAuthError("invalid_request", "username and password are required.")
    staff = await principals.authenticate_staff(session, username, password)
    if staff is None:
        raise OAuthError("invalid_grant", "The username or password is incorrect.")
    scopes = _narrow(scope, principals.granted_scopes(staff))
    return issue_access_token(
        settings, kind="staff", subject_id=str(staff.id), scopes=scopes, client_id=client_id
    )
