"""Pure ASGI middleware: request ids, access logs and metrics, and the body size limit."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.context import bind_request, unbind_request
from app.errors import LiaisonError, PayloadTooLarge, database_fault, render

REQUEST_ID_HEADER = b"x-request-id"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

access_log = structlog.get_logger("liaison.access")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "liaison_http_requests_total",
            "HTTP requests by route template, method and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "liaison_http_request_duration_seconds",
            "HTTP request duration by route template and method.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestContextMiddleware:
    """Gives every request an id (the caller's `X-Request-ID` if well-formed), echoes it,
    binds it to logs and audit events, and records one access line and its metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                candidate = value.decode("latin-1")
                if _VALID_REQUEST_ID.fullmatch(candidate):
                    request_id = candidate
                break
        request_id = request_id or uuid.uuid4().hex
        client = scope.get("client")
        tokens = bind_request(request_id, client[0] if client else None)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        response_started = False
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k != REQUEST_ID_HEADER]
                headers.append((REQUEST_ID_HEADER, request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Rendered here, inside the request's context, so the 500 carries its request
            # id; the traceback goes to the log, never to the client. A database fault behind
            # an exception no handler knows is still a 503 (or a 422), never a 500.
            error = None if response_started else database_fault(exc)
            if error is None:
                access_log.error("unhandled_exception", error=type(exc).__name__, exc_info=exc)
                if response_started:
                    raise
                error = LiaisonError("An unexpected error occurred.")
            await render(error, scope["path"])(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            if route not in ("/metrics", "/livez", "/readyz"):
                self.metrics.requests.labels(method, route, str(status)).inc()
                self.metrics.duration.labels(method, route).observe(elapsed)
            principal = getattr(scope.get("state", {}).get("principal"), "subject", None)
            log_fields: dict[str, Any] = {
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 1),
                "principal": principal,
            }
            if status >= 500:
                access_log.warning("request", **log_fields)
            else:
                access_log.info("request", **log_fields)
            structlog.contextvars.unbind_contextvars("request_id")
            unbind_request(tokens)


@dataclass(frozen=True)
class BodyLimit:
    """A lower limit for the requests of one route (a document upload), with what to say."""

    method: str
    path: re.Pattern[str]
    max_bytes: int
    detail: str


class BodySizeLimitMiddleware:
    """Refuses bodies over the limit with 413 before they are read into memory: at once
    when `Content-Length` says so, otherwise as soon as the bytes read pass it. A route may
    have a lower limit of its own (`narrower`); none is higher than `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int, narrower: Sequence[BodyLimit] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.narrower = [n for n in narrower if n.max_bytes < max_bytes]

    def _limit(self, scope: Scope) -> tuple[int, str]:
        for rule in self.narrower:
            if scope["method"] == rule.method and rule.path.fullmatch(scope["path"]):
                return rule.max_bytes, rule.detail
        return self.max_bytes, f"The request body exceeds the limit of {self.max_bytes} bytes."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes, detail = self._limit(scope)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > max_bytes:
                    await render(PayloadTooLarge(detail), instance=scope["path"])(
                        scope, receive, send
                    )
                    return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _BodyTooLarge(413, detail)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await render(PayloadTooLarge(detail), instance=scope["path"])(scope, receive, send)


class _BodyTooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body parsing passes it on rather than calling
    it a malformed body, and the problem handlers render it as a 413."""


class HeadMiddleware:
    """Answers HEAD wherever GET is answered, as GET without its body (RFC 9110 §9.3.2):
    FastAPI's routes answer only the methods they declare, and `Allow` lists HEAD beside
    every GET."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)
