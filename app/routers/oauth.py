"""`POST /oauth/token`: the RFC 6749 token endpoint.

Its errors follow RFC 6749 §5.2 (`error`, `error_description`), which OAuth clients
parse; they also carry the problem members (`type`, `title`, `status`, `detail`).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.deps import SessionDep, SettingsDep
from app.errors import PROBLEM_TYPE_PREFIX, problem_responses
from app.models.base import UNSTORABLE_TEXT, unstorable
from app.services.oauth import (
    SUPPORTED_GRANTS,
    ClientCredentials,
    OAuthError,
    SlowDown,
    grant_client_credentials,
    grant_password,
)
from app.services.token_attempts import TokenAttempts

router = APIRouter(tags=["oauth"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str


class OAuthErrorResponse(BaseModel):
    error: str
    error_description: str
    type: str
    title: str
    status: int
    detail: str


# The longest value of each field: the columns they are looked up in, with room to spare.
_FORM_LIMITS = {
    "grant_type": 64, "scope": 1000, "client_id": 64, "client_secret": 512, "username": 254,
    "password": 1024,
}  # fmt: skip
_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["grant_type"],
    "properties": {
        "grant_type": {"type": "string", "enum": list(SUPPORTED_GRANTS)},
        "scope": {
            "type": "string",
            "maxLength": _FORM_LIMITS["scope"],
            "description": "Space-separated scopes (default: all granted).",
        },
        **{
            name: {"type": "string", "maxLength": _FORM_LIMITS[name], "description": what}
            for name, what in (
                ("client_id", "When not using HTTP Basic."),
                ("client_secret", "When not using HTTP Basic."),
                ("username", "Staff username (password grant)."),
                ("password", "Staff password (password grant)."),
            )
        },
    },
}


def _body(exc: OAuthError) -> OAuthErrorResponse:
    return OAuthErrorResponse(
        error=exc.error,
        error_description=exc.description,
        type=f"{PROBLEM_TYPE_PREFIX}oauth-{exc.error.replace('_', '-')}",
        title=exc.error,
        status=exc.status,
        detail=exc.description,
    )


def _declared(exc: OAuthError, description: str) -> dict[str, Any]:
    """A declared error response of the token endpoint, its example the body it sends."""
    example = _body(exc).model_dump()
    return {
        "model": OAuthErrorResponse,
        "description": description,
        "content": {"application/json": {"example": example}},
    }


def _error(exc: OAuthError, basic_used: bool) -> JSONResponse:
    body = _body(exc)
    headers = {**NO_STORE, **exc.headers}
    if exc.status == 401:
        scheme = "Basic" if basic_used else "Bearer"
        headers["WWW-Authenticate"] = f'{scheme} realm="liaison"'
    return JSONResponse(body.model_dump(), status_code=exc.status, headers=headers)


def _client_credentials(
    request: Request, form: dict[str, str]
) -> tuple[ClientCredentials | None, bool]:
    """Client authentication from HTTP Basic (RFC 6749 §2.3.1) or the form body, not both."""
    authorization = request.headers.get("authorization", "")
    scheme, _, encoded = authorization.partition(" ")
    in_form = "client_id" in form or "client_secret" in form
    if scheme.lower() == "basic":
        if in_form:
            raise OAuthError("invalid_request", "Use one client authentication method, not two.")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "Malformed Basic credentials.") from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise OAuthError("invalid_client", "Malformed Basic credentials.")
        if not client_id and not secret:
            # `Basic Og==`, an empty id and secret, is what Swagger UI sends for a password
            # grant when no client is filled in: no client at all.
            return None, True
        return ClientCredentials(unquote(client_id), unquote(secret)), True
    if in_form:
        return ClientCredentials(form.get("client_id", ""), form.get("client_secret", "")), False
    return None, False


def _check_values(form: dict[str, str], credentials: ClientCredentials | None) -> None:
    """Refuse, before any lookup, a value no account could hold: text the database cannot
    store (a NUL, a lone surrogate) or longer than its field allows."""
    values = dict(form)
    if credentials is not None:
        values.update(client_id=credentials.client_id, client_secret=credentials.client_secret)
    for name, value in values.items():
        known = name in _FORM_LIMITS
        if unstorable(name) or unstorable(value):
            where = name if known else "a field"
            raise OAuthError("invalid_request", f"{where}: {UNSTORABLE_TEXT}.")
        if known and len(value) > _FORM_LIMITS[name]:
            raise OAuthError("invalid_request", f"{name} is longer than {_FORM_LIMITS[name]}.")


@router.post(
    "/oauth/token",
    operation_id="oauth-token",
    summary="Obtain an access token",
    response_model=TokenResponse,
    responses={
        400: _declared(
            OAuthError("invalid_grant", "The username or password is incorrect."),
            "RFC 6749 §5.2 error; a body that is not form-encoded is `invalid_request`.",
        ),
        401: _declared(
            OAuthError("invalid_client", "Client authentication failed."), "invalid_client."
        ),
        429: {
            **_declared(
                SlowDown(900),
                "slow_down: too many failed attempts for this client id, username or "
                "address; even the right secret is refused until the window ends.",
            ),
            "headers": {
                "Retry-After": {
                    "description": "Seconds until an attempt is let through again.",
                    "schema": {"type": "integer", "minimum": 1},
                }
            },
        },
        **problem_responses(413, 500, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": _FORM_SCHEMA}},
        }
    },
)
async def issue_token(request: Request, session: SessionDep, settings: SettingsDep) -> JSONResponse:
    """Client credentials for systems (HTTP Basic or form fields) and the password grant for
    staff, with or without a client: an empty HTTP Basic (`Og==`) is no client, and the public
    docs client id (`liaison-docs` unless configured otherwise) needs no secret.
    Requested scopes must be a subset of those granted; no scope means all of them.
    Failed attempts are limited per client id, username and address (429 `slow_down`)."""
    attempts: TokenAttempts = request.app.state.token_attempts
    address = request.client.host if request.client else None
    basic_used = request.headers.get("authorization", "").lower().startswith("basic ")
    try:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise OAuthError(
                "invalid_request", "The body must be application/x-www-form-urlencoded."
            )
        raw = await request.form()
        form = {k: v for k, v in raw.items() if isinstance(v, str)}
        credentials, basic_used = _client_credentials(request, form)
        _check_values(form, credentials)
        grant_type = form.get("grant_type")
        if grant_type == "client_credentials":
            token = await grant_client_credentials(
                session, settings, attempts, credentials, form.get("scope"), address
            )
        elif grant_type == "password":
            token = await grant_password(
                session,
                settings,
                attempts,
                credentials,
                form.get("username"),
                form.get("password"),
                form.get("scope"),
                address,
            )
        elif not grant_type:
            raise OAuthError("invalid_request", "grant_type is required.")
        else:
            raise OAuthError("unsupported_grant_type", f"Supported: {', '.join(SUPPORTED_GRANTS)}.")
    except OAuthError as exc:
        return _error(exc, basic_used)
    body = TokenResponse(access_token=token.token, expires_in=token.expires_in, scope=token.scope)
    return JSONResponse(body.model_dump(), headers=NO_STORE)
