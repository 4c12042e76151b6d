"""Dependencies every route shares: the request's session, its principal, its audit trail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Query, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlowPassword, OAuthFlows
from fastapi.security import OAuth2, SecurityScopes
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.config import Settings
from app.db import SessionFactory
from app.errors import (
    IF_MATCH_REQUIRED,
    InsufficientScope,
    PreconditionRequired,
    ProblemItem,
    Unauthenticated,
    ValidationFailed,
)
from app.etags import Expected
from app.models.base import UNSTORABLE_TEXT, unstorable
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from app.security import (
    CLIENT_SCHEME,
    SCOPE_DESCRIPTIONS,
    STAFF_SCHEME,
    InvalidToken,
    JwksCache,
    Principal,
    Scope,
    decode_access_token,
    decode_external_token,
    is_own_token,
)
from app.services import principals
from app.services.document_store import DocumentStore

TOKEN_URL = "/oauth/token"

# Two schemes, so the docs show which identity a token is for: a system's (client
# credentials) or a member of staff's (password grant). Both read the same bearer token;
# every operation lists both, each with its scopes, as alternatives.
client_scheme = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_URL, scopes=SCOPE_DESCRIPTIONS)
    ),
    scheme_name=CLIENT_SCHEME,
    description="Systems (MIS integrations, hubs): OAuth2 client credentials.",
    auto_error=False,
)
staff_scheme = OAuth2(
    flows=OAuthFlows(password=OAuthFlowPassword(tokenUrl=TOKEN_URL, scopes=SCOPE_DESCRIPTIONS)),
    scheme_name=STAFF_SCHEME,
    description=(
        "Staff accounts: OAuth2 password grant. From the docs, leave client_id and "
        "client_secret empty, or give the public docs client id (`LIAISON_DOCS_CLIENT_ID`, "
        "by default `liaison-docs`) with no secret."
    ),
    auto_error=False,
)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_page(
    settings: SettingsDep,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` from the previous page.")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Items per page (capped by the server).")
    ] = DEFAULT_LIMIT,
) -> Page:
    return Page.from_query(cursor, limit, settings.page_max_limit)


PageDep = Annotated[Page, Depends(get_page)]

# Reference lists by LA: one the caller works in.
LaCodeQuery = Annotated[
    str | None,
    Query(
        max_length=10,
        pattern=r"^[0-9A-Z]{1,10}$",
        description="One LA the caller works in (default: every one of them).",
    ),
]


async def get_document_store(request: Request) -> DocumentStore:
    store: DocumentStore = request.app.state.document_store
    return store


DocumentStoreDep = Annotated[DocumentStore, Depends(get_document_store)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, committed when the route returns and before the response
    is sent, so a client never reads a 2xx for work that was not committed."""
    async with request.app.state.session_factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_session_factory(request: Request) -> SessionFactory:
    """The app's session factory, for a streamed answer that reads after the request's own
    session has been committed and closed."""
    factory: SessionFactory = request.app.state.session_factory
    return factory


SessionFactoryDep = Annotated[SessionFactory, Depends(get_session_factory)]


async def authenticate(
    security_scopes: SecurityScopes,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Depends(client_scheme)],
    _staff_authorization: Annotated[str | None, Depends(staff_scheme)],
) -> Principal:
    """The request's principal, checked for the scopes this use of it declares.

    FastAPI caches a dependency per set of declared scopes, so a route asking for a scoped
    principal and an auditor would call this twice; the token is verified and the account
    loaded once per request, and only the scope check repeats. The two schemes read the
    same `Authorization` header; the staff one is declared only for the docs.
    """
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        principal = await _identify(request, session, settings, authorization)
        request.state.principal = principal
    missing = [scope for scope in security_scopes.scopes if not principal.has(scope)]
    if missing:
        raise InsufficientScope(missing)
    return principal


async def _identify(
    request: Request, session: AsyncSession, settings: Settings, authorization: str | None
) -> Principal:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated()
    token = token.strip()
    try:
        if settings.external_issuer and not is_own_token(settings, token):
            jwks: JwksCache = request.app.state.jwks
            claims = await decode_external_token(settings, jwks, token)
        else:
            claims = decode_access_token(settings, token)
    except InvalidToken:
        raise Unauthenticated("The bearer token is invalid or has expired.") from None
    principal = await principals.load_principal(session, claims)
    if principal is None:
        raise Unauthenticated("The token's account is unknown or disabled.")
    return principal


AnyPrincipal = Annotated[Principal, Security(authenticate)]
Admin = Annotated[Principal, Security(authenticate, scopes=[Scope.admin])]
PupilsReader = Annotated[Principal, Security(authenticate, scopes=[Scope.pupils_read])]
PupilsWriter = Annotated[Principal, Security(authenticate, scopes=[Scope.pupils_write])]
AuditReader = Annotated[Principal, Security(authenticate, scopes=[Scope.audit_read])]
HoldWriter = Annotated[Principal, Security(authenticate, scopes=[Scope.holds_write])]
CaseReader = Annotated[Principal, Security(authenticate, scopes=[Scope.cases_read])]
CaseWriter = Annotated[
    Principal, Security(authenticate, scopes=[Scope.cases_read, Scope.cases_write])
]
CaseApprover = Annotated[
    Principal, Security(authenticate, scopes=[Scope.cases_read, Scope.cases_approve])
]
# A step-up is approved on the referral, which the approver may read without cases:read.
StepUpApprover = Annotated[Principal, Security(authenticate, scopes=[Scope.cases_approve])]
ReferralReader = Annotated[Principal, Security(authenticate, scopes=[Scope.referrals_read])]
ReferralWriter = Annotated[Principal, Security(authenticate, scopes=[Scope.referrals_write])]
ReferralDecider = Annotated[Principal, Security(authenticate, scopes=[Scope.referrals_decide])]
AttendanceReader = Annotated[Principal, Security(authenticate, scopes=[Scope.attendance_read])]
AttendanceWriter = Annotated[Principal, Security(authenticate, scopes=[Scope.attendance_write])]
FlagHandler = Annotated[
    Principal, Security(authenticate, scopes=[Scope.attendance_read, Scope.cases_write])
]
DirectoryWriter = Annotated[Principal, Security(authenticate, scopes=[Scope.directory_write])]
ReportReader = Annotated[Principal, Security(authenticate, scopes=[Scope.reports_read])]


async def get_auditor(session: SessionDep, principal: AnyPrincipal) -> Auditor:
    return Auditor(session, principal)


AuditorDep = Annotated[Auditor, Depends(get_auditor)]


async def storable_parameters(request: Request) -> None:
    """Query and path parameters hold text the database can store (no NUL, no lone
    surrogate), for every route at once: a `?name=a%00b` is a 422 naming the parameter,
    never a driver error. Bodies are checked by their models (`InputModel`)."""
    refused = [
        ProblemItem(loc=[where, name], detail=UNSTORABLE_TEXT)
        for where, pairs in (
            ("query", request.query_params.multi_items()),
            ("path", request.path_params.items()),
        )
        for name, value in pairs
        if unstorable(name) or (isinstance(value, str) and unstorable(value))
    ]
    if refused:
        raise ValidationFailed("The request is not valid.", errors=refused)


# --- If-Match ----------------------------------------------------------------------------

_IF_MATCH = "The `ETag` of the version this change is based on"


async def _expected(
    if_match: Annotated[
        str | None, Header(alias="If-Match", description=f"{_IF_MATCH}.", max_length=100)
    ] = None,
) -> Expected:
    return Expected.parse(if_match)


async def _expected_required(
    # Declared required; its absence is answered with 428 by the validation handler
    # (app/errors.py), not 422.
    if_match: Annotated[
        str, Header(alias="If-Match", description=f"{_IF_MATCH} (required).", max_length=100)
    ],
) -> Expected:
    if not if_match.strip():
        raise PreconditionRequired(IF_MATCH_REQUIRED)
    return Expected.parse(if_match)


# The versions a change may apply to: where the change needs `If-Match`, and where it may
# go without (then it applies to whatever version is current).
ExpectedVersion = Annotated[Expected, Depends(_expected_required)]
OptionalExpectedVersion = Annotated[Expected, Depends(_expected)]
