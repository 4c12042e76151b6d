"""Structured logs: JSON lines with the request id, through structlog and the stdlib alike.

What is logged is chosen, never dumped: request lines carry the route template (not the
path or query, which may name a child), and nothing logs headers, tokens or bodies.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from fastapi.exceptions import RequestValidationError, ResponseValidationError
from pydantic import ValidationError

from app.config import Settings
from app.db_errors import chain, is_driver_error, withheld

_REDACTED = "[redacted]"
_PARAMETER_LOGGERS = ("aiosqlite", "asyncpg", "sqlalchemy", "httpx", "httpcore", "alembic")
_SENSITIVE_KEYS = {"authorization", "password", "client_secret", "secret", "token", "access_token"}


def _redact(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        if key.lower() in _SENSITIVE_KEYS:
            event[key] = _REDACTED
    return event


class WithholdQuotedValues:
    """Renders an exception's frames (never their locals) as structlog does, with the message
    of every exception in the chain that quotes values replaced by a summary without them:
    a database driver's (class and SQLSTATE) and a validation error's (where and why).

    `hide_parameters` keeps values out of SQLAlchemy's own text, but the driver's message
    still quotes them ("invalid input for query argument $1: <value>", a key's value), and
    pydantic's quotes the input it refused. Any other exception in the chain whose message
    repeats one of these is withheld too.
    """

    def __init__(self) -> None:
        self._transform = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)

    def __call__(self, exc_info: Any) -> list[dict[str, Any]]:
        stacks = self._transform(exc_info)
        exc = exc_info[1]
        quoting = {
            (type(error).__name__, str(error)): withheld(error)
            if is_driver_error(error)
            else _validation_summary(error)
            for error in (chain(exc) if isinstance(exc, BaseException) else ())
            if is_driver_error(error) or isinstance(error, _QUOTING_VALIDATION)
        }
        if quoting:
            _withhold(stacks, quoting)
        return stacks


# Validation errors quote the value they refused (a response that failed its model, a
# body): in a log that could be a child's name.
_QUOTING_VALIDATION = (ValidationError, RequestValidationError, ResponseValidationError)


def _validation_summary(error: BaseException) -> str:
    """Where and why validation failed, without the values."""
    found: Any = getattr(error, "errors", list)()
    places = [
        f"{'.'.join(str(p) for p in e.get('loc', ()))} ({e.get('type', '?')})"
        for e in found
        if isinstance(e, dict)
    ]
    return (
        f"{type(error).__name__}: {len(places)} error(s) at "
        + (", ".join(places[:10]) or "?")
        + "; values withheld"
    )


def _withhold(stacks: list[dict[str, Any]], quoting: dict[tuple[str, str], str]) -> None:
    messages = [message for _, message in quoting if message]
    for stack in stacks:
        key = (stack.get("exc_type", ""), stack.get("exc_value", ""))
        if key in quoting:
            stack["exc_value"] = quoting[key]
            stack["exc_notes"] = []
        elif any(message in stack.get("exc_value", "") for message in messages):
            stack["exc_value"] = f"{key[0]}: message withheld (it repeats one that quotes values)"
            stack["exc_notes"] = []
        for member in stack.get("exceptions") or []:  # an exception group's, one list each
            _withhold(member, quoting)


def configure_logging(settings: Settings) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # Frames only: a frame's local variables hold tokens, request bodies and
                # children's details, and never reach the log; nor do messages quoting values.
                structlog.processors.ExceptionRenderer(WithholdQuotedValues()),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level.upper())
    # One access line per request comes from our middleware; uvicorn's would add the raw
    # path and query string.
    logging.getLogger("uvicorn.access").disabled = True
    # Drivers and clients log SQL parameters and URLs (query strings included) at debug
    # and info: those carry children's names, so they never log below WARNING.
    for name in _PARAMETER_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
