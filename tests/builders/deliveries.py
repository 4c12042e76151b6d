"""Webhook delivery: a real HTTP receiver that checks every signature, subscriptions with
sealed secrets, outbox events, and a worker allowed to call the receiver on localhost.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from fastapi import FastAPI
from sqlalchemy import text
from standardwebhooks import Webhook, WebhookVerificationError

from app.config import Settings
from app.db import run
from app.models.event import OutboxEvent
from app.models.webhook import WebhookSecret, WebhookSubscription
from app.services.events import SubjectKind, record_event
from app.services.webhook_secrets import new_secret, seal
from app.services.webhook_worker import Worker
from tests.conftest import Credentials

LOCALHOST = ["127.0.0.1/32"]


@dataclass
class Answer:
    """What the receiver answers: status, headers, body, after `delay` seconds."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    webhook_id: str
    event_type: str
    data: dict[str, Any]
    timestamp: str
    verified: bool


class Receiver:
    """A local HTTP server in a thread. Each path is one subscriber with its own secret;
    every message is checked with `standardwebhooks` and kept, and `answer` decides the reply.
    `stop()` takes it down (connections refused), `start()` brings it back on its port."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.received: list[Received] = []
        self.answer: Callable[[str], Answer] = lambda path: Answer()
        self.in_flight: Counter[tuple[str, str]] = Counter()
        self.overlaps = 0  # the same message to the same path while one was in flight
        self.unfinished_writes = 0  # answers the client stopped reading
        self.lock = threading.Lock()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                receiver.handle(self)

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("content-length", "0"))
        body = request.rfile.read(length)
        headers = {k.lower(): v for k, v in request.headers.items()}
        key = (request.path, headers.get("webhook-id", ""))
        with self.lock:
            if self.in_flight[key]:
                self.overlaps += 1
            self.in_flight[key] += 1
        try:
            secret = self.secrets.get(request.path)
            verified = False
            if secret is not None:
                try:
                    Webhook(secret).verify(body, headers)
                    verified = True
                except WebhookVerificationError:
                    verified = False
            message = orjson.loads(body)
            answer = self.answer(request.path)
            with self.lock:
                self.received.append(
                    Received(
                        request.path,
                        headers.get("webhook-id", ""),
                        message["type"],
                        message["data"],
                        message["timestamp"],
                        verified,
                    )
                )
            if answer.delay:
                time.sleep(answer.delay)
            request.send_response(answer.status)
            for name, value in answer.headers.items():
                request.send_header(name, value)
            request.send_header("content-length", str(len(answer.body)))
            request.end_headers()
            try:
                request.wfile.write(answer.body)
                request.wfile.flush()
            except OSError:
                with self.lock:
                    self.unfinished_writes += 1
        finally:
            with self.lock:
                self.in_flight[key] -= 1

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]


def allowing_localhost(settings: Settings, **changes: Any) -> Settings:
    """The app's settings with the receiver's address allowed (tests only)."""
    return settings.model_copy(update={"webhook_allowed_networks": LOCALHOST, **changes})


def worker(application: FastAPI, settings: Settings | None = None, **options: Any) -> Worker:
    """A delivery worker over the app's database, allowed to call the local receiver."""
    return Worker(
        application.state.session_factory,
        settings or allowing_localhost(application.state.settings),
        **options,
    )


async def subject_of(application: FastAPI, credentials: Credentials) -> str:
    """The principal subject (`client:<uuid>`) of a client made by `World.api_client`."""
    async with application.state.engine.connect() as connection:
        found = await connection.execute(
            text("SELECT id FROM api_client WHERE client_id = :client_id"),
            {"client_id": credentials.client_id},
        )
        return f"client:{uuid.UUID(str(found.scalar_one()))}"


async def subscribe(
    application: FastAPI,
    owner: str,
    url: str,
    event_types: list[str],
    la_code: str | None = "202",
) -> tuple[str, str]:
    """A subscription row with a sealed current secret: (its id, the secret)."""
    secret = new_secret()
    async with application.state.session_factory() as session:
        subscription = WebhookSubscription(
            owner=owner, la_code=la_code, url=url, event_types=event_types
        )
        session.add(subscription)
        await session.flush()
        session.add(
            WebhookSecret(
                subscription_id=subscription.id, secret=seal(application.state.settings, secret)
            )
        )
        await session.commit()
        return str(subscription.id), secret


async def emit(
    application: FastAPI,
    event_type: str,
    *,
    kind: SubjectKind,
    subject_id: str,
    la_code: str = "202",
    referrer: str | None = None,
    school_id: str | None = None,
    data: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> str:
    """An outbox event, committed as a change would commit it; its id."""
    async with application.state.session_factory() as session:
        event: OutboxEvent = record_event(
            session,
            event_type,
            subject_kind=kind,
            subject_id=uuid.UUID(subject_id),
            la_code=la_code,
            school_id=uuid.UUID(school_id) if school_id else None,
            referrer=referrer,
            data=data or {"id": subject_id},
            occurred_at=occurred_at,
        )
        await session.commit()
        return str(event.id)


def message_id(event_id: str) -> str:
    return "msg_" + uuid.UUID(event_id).hex


async def read(application: FastAPI, statement: Any) -> list[tuple[Any, ...]]:
    """The rows of a typed select (ids compare as UUIDs on both databases), as tuples."""
    async with application.state.session_factory() as session:
        return [tuple(row) for row in (await run(session, statement)).all()]
