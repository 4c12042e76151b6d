"""Structured logs: JSON lines with the request id, through structlog and the stdlib alike.

What is logged is chosen, never dumped: request lines carry the route template (not the
path or query, which may name a child), and nothing logs headers, tokens or bodies.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from app.config import Settings

_REDACTED = "[redacted]"
_PARAMETER_LOGGERS = ("aiosqlite", "asyncpg", "sqlalchemy", "httpx", "httpcore", "alembic")
_SENSITIVE_KEYS = {"authorization", "password", "client_secret", "secret", "token", "access_token"}


def _redact(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        if key.lower() in _SENSITIVE_KEYS:
            event[key] = _REDACTED
    return event


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
                # children's details, and never reach the log.
                structlog.processors.ExceptionRenderer(
                    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
                ),
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
