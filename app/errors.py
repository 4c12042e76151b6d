"""Typed errors, rendered centrally as RFC 9457 `application/problem+json`.

Every error a client sees comes through here, including the framework's own 404, 405 and
422 and any unexpected exception, so clients parse one shape. Problem `type`s are stable
URNs; `title` is constant per type and `detail` says what happened this time.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any, ClassVar

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from app.context import current_request_id
from app.db_errors import Fault, classify

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:liaison:problem:"
DATABASE_RETRY_AFTER_SECONDS = 5
IF_MATCH_REQUIRED = (
    "Send If-Match with the ETag of the version you read; changes to this record are checked "
    "against it."
)

log = structlog.get_logger("liaison.errors")


class ProblemItem(BaseModel):
    """One reason a payload was refused: where (`loc`) and why (`detail`)."""

    loc: list[str | int] = Field(description="Path to the offending value.")
    detail: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[f"{PROBLEM_TYPE_PREFIX}not-found"])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[ProblemItem] | None = None


class LiaisonError(Exception):
    """A failure with a place in the API contract: its status, type and title are fixed."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        errors: list[ProblemItem] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = headers or {}
        self.errors = errors
        self.extra = extra or {}


class BadRequest(LiaisonError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthenticated(LiaisonError):
    status, slug, title = 401, "unauthenticated", "Authentication required"

    def __init__(self, detail: str = "A valid bearer token is required.") -> None:
        error = 'Bearer realm="liaison", error="invalid_token"'
        super().__init__(detail, headers={"WWW-Authenticate": error})


class InsufficientScope(LiaisonError):
    status, slug, title = 403, "insufficient-scope", "Insufficient scope"

    def __init__(self, required: list[str], alternatives: list[str] | None = None) -> None:
        scope = " ".join(required)
        otherwise = f" (or: {' '.join(alternatives)})" if alternatives else ""
        super().__init__(
            f"This operation needs the scope(s): {scope}{otherwise}.",
            headers={
                "WWW-Authenticate": (
                    f'Bearer realm="liaison", error="insufficient_scope", scope="{scope}"'
                )
            },
            extra={"required_scopes": required},
        )


class Forbidden(LiaisonError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(LiaisonError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(LiaisonError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class NotAcceptable(LiaisonError):
    status, slug, title = 406, "not-acceptable", "Not acceptable"


class Conflict(LiaisonError):
    status, slug, title = 409, "conflict", "Conflict"


class PreconditionFailed(LiaisonError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PreconditionRequired(LiaisonError):
    status, slug, title = 428, "precondition-required", "Precondition required"


class PayloadTooLarge(LiaisonError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(LiaisonError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(LiaisonError):
    status, slug, title = 422, "validation-failed", "Request validation failed"


class ServiceUnavailable(LiaisonError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"

    def __init__(self, detail: str = "The database is unavailable; retry shortly.") -> None:
        super().__init__(detail, headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)})


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[ProblemItem] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body = Problem(
        type=PROBLEM_TYPE_PREFIX + slug,
        title=title,
        status=status,
        detail=detail,
        instance=instance,
        request_id=current_request_id(),
        errors=errors,
        **(extra or {}),
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def render(error: LiaisonError, instance: str | None = None) -> JSONResponse:
    return problem_response(
        error.status,
        error.slug,
        error.title,
        error.detail,
        instance=instance,
        headers=error.headers,
        errors=error.errors,
        extra=error.extra,
    )


def validation_items(errors: Any) -> list[ProblemItem]:
    """Pydantic errors without their `input`, which may carry a child's details."""
    return [
        ProblemItem(
            loc=[str(p) if not isinstance(p, int) else p for p in e["loc"]], detail=e["msg"]
        )
        for e in errors
    ]


async def _liaison_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LiaisonError)
    return render(exc, instance=request.url.path)


async def _request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 for a payload that does not validate; but a body that is not JSON at all is a 400,
    one sent as another media type a 415, and a missing `If-Match` where a change needs one
    a 428, as the contract declares."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    error: LiaisonError
    unparsed = [e for e in errors if e["type"] == "json_invalid"]
    if unparsed:
        where = unparsed[0]["loc"][-1]
        reason = unparsed[0].get("ctx", {}).get("error", "malformed")
        error = BadRequest(
            "The body is not valid JSON.",
            errors=[ProblemItem(loc=["body"], detail=f"{reason} (at character {where})")],
        )
    elif isinstance(exc.body, bytes) and any(e["loc"][:1] == ("body",) for e in errors):
        # FastAPI parses a body as JSON only when its Content-Type says JSON.
        error = UnsupportedMediaType("Send the body as application/json.")
    elif errors and all(_missing_if_match(e) for e in errors):
        error = PreconditionRequired(IF_MATCH_REQUIRED)
    else:
        error = ValidationFailed("The request is not valid.", errors=validation_items(errors))
    return render(error, instance=request.url.path)


def _missing_if_match(error: Any) -> bool:
    loc = tuple(error["loc"])
    return error["type"] == "missing" and loc[:1] == ("header",) and loc[-1].lower() == "if-match"


_HTTP_ERRORS: dict[int, type[LiaisonError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    412: PreconditionFailed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationFailed,
    503: ServiceUnavailable,
}


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = _HTTP_ERRORS.get(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers or {})
    if kind is None:
        return problem_response(
            exc.status_code, f"http-{exc.status_code}", detail or "HTTP error", detail,
            instance=request.url.path, headers=headers,
        )  # fmt: skip
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No such resource."
    if exc.status_code == 400 and detail == "There was an error parsing the body":
        detail = "The body is not valid JSON (or not UTF-8)."
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request, headers.get("Allow", ""))
    return problem_response(
        kind.status, kind.slug, kind.title, detail, instance=request.url.path, headers=headers
    )


_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request, named: str) -> str:
    """Every method of the request's path, in a stable order. The router names only the
    methods of the first route whose template matched; other routes may share the path
    (`GET` and `POST /v1/schools`). HEAD is served wherever GET is (see middleware)."""
    methods = {m.strip().upper() for m in named.split(",") if m.strip()}
    for pattern, allowed in _method_table(request):
        if pattern.fullmatch(request.scope["path"]):
            methods |= allowed
    if "GET" in methods:
        methods.add("HEAD")
    rank = {method: n for n, method in enumerate(_METHOD_ORDER)}
    return ", ".join(sorted(methods, key=lambda m: (rank.get(m, len(rank)), m)))


def _method_table(request: Request) -> list[tuple[re.Pattern[str], set[str]]]:
    """Path templates and their methods, from the app's own OpenAPI (built once): the one
    public list of every route with its full path. Routes left out of the schema (health,
    docs) have one route per path, so the router's own `Allow` is already whole for them."""
    state = request.app.state
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(state, "method_table", None)
    if table is None:
        table = [
            (compile_path(path)[0], {method.upper() for method in operations})
            for path, operations in request.app.openapi()["paths"].items()
        ]
        state.method_table = table
    return table


def database_fault(exc: BaseException) -> LiaisonError | None:
    """The answer to a database fault anywhere in `exc`'s chain, or None when there is none:
    503 with Retry-After while the database cannot serve (down, starting, shutting down, out
    of connections, a connection killed, a timeout, a deadlock), 422 for a value it cannot
    store. The log names the class and SQLSTATE only: driver messages quote values."""
    fault = classify(exc)
    if fault is None:
        return None
    if fault.kind is Fault.unavailable:
        log.warning("database_unavailable", error=fault.error, sqlstate=fault.sqlstate)
        return ServiceUnavailable()
    # Validation should have refused the value first; this is the net under it.
    log.warning("database_refused_value", error=fault.error, sqlstate=fault.sqlstate)
    return ValidationFailed("A value in the request cannot be stored.")


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    error = database_fault(exc)
    if error is None:
        return await _unexpected(request, exc)
    return render(error, instance=request.url.path)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled_exception", error=type(exc).__name__, exc_info=exc)
    return render(LiaisonError("An unexpected error occurred."), instance=request.url.path)


def install_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LiaisonError, _liaison_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    # Database errors, wrapped by SQLAlchemy or not, and the socket errors of a connection
    # refused or dropped; what each means is read from its whole chain (app/db_errors.py).
    # An exception of another type with a database fault behind it is answered the same
    # way by the middleware.
    database_errors = (
        DBAPIError, PoolTimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
        sqlite3.Error,
    )  # fmt: skip
    for database_error in database_errors:
        app.add_exception_handler(database_error, _database_error)
    app.add_exception_handler(Exception, _unexpected)


# The error each declared status stands for in the docs' examples. 403 is most often a
# missing scope; a caller outside its reach is told 404, never 403.
_EXAMPLE_ERRORS: dict[int, type[LiaisonError]] = {
    **_HTTP_ERRORS,
    403: InsufficientScope,
    406: NotAcceptable,
    428: PreconditionRequired,
    500: LiaisonError,
}


def problem_example(status: int, detail: str) -> dict[str, Any]:
    """A problem document as the handlers would send it for `status`."""
    error = _EXAMPLE_ERRORS[status]
    assert error.status == status, (error, status)
    return {
        "type": PROBLEM_TYPE_PREFIX + error.slug,
        "title": error.title,
        "status": status,
        "detail": detail,
    }


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries declaring problem+json bodies for `statuses`, each with
    an example of its own status and type."""
    descriptions = {
        400: "Bad request.",
        401: "Missing, invalid or expired bearer token.",
        403: "The token lacks a required scope.",
        404: "No such resource within the caller's reach.",
        405: "Method not allowed.",
        406: "None of the media types in `Accept` can be given.",
        409: "Conflict with the resource's current state.",
        412: "The If-Match precondition failed.",
        413: "The request body is larger than the configured limit.",
        415: "Unsupported media type.",
        422: "The payload failed validation.",
        428: "An If-Match precondition is required.",
        500: "Unexpected server error.",
        503: "The database is unavailable; retry after the given delay.",
    }
    return {
        status: {
            "description": descriptions[status],
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "example": problem_example(status, descriptions[status]),
                }
            },
        }
        for status in statuses
    }
