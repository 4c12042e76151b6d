"""`Idempotency-Key` for creates that clients retry.

The same key with the same request replays the stored answer; the same key with a
different request is a 422; a key whose first request is still running is a 409. The key
row is written in the request's own transaction, so the stored answer commits (or rolls
back) with the work it describes: a retry after a failure simply runs again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated

from fastapi import Header, Request, Response
from sqlalchemy import delete, insert, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.db import is_postgresql, run
from app.errors import BadRequest, Conflict, ValidationFailed
from app.models.base import utcnow
from app.models.idempotency import IdempotentRequest
from app.security import Principal

MAX_KEY_LENGTH = 255

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Send the same key when retrying; the first answer is replayed.",
        max_length=MAX_KEY_LENGTH,
    ),
]


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    body: str


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


class Idempotency:
    def __init__(self, session: AsyncSession, principal: Principal, key: str, print_: str) -> None:
        self.session = session
        self.owner = principal.subject
        self.key = key
        self.fingerprint = print_

    @classmethod
    async def claim(
        cls,
        session: AsyncSession,
        principal: Principal,
        key: str | None,
        print_: str,
        hours: int,
    ) -> tuple[Idempotency | None, StoredAnswer | None]:
        """Claim `key` for this request, or find the answer already given for it.

        Returns (claim, None) to go ahead, or (None, answer) to replay. Without a key there is
        nothing to claim: (None, None).
        """
        if key is None:
            return None, None
        key = key.strip()
        if not key or not key.isprintable():
            raise BadRequest("Idempotency-Key must be printable text.")
        claim = cls(session, principal, key, print_)
        if is_postgresql(session):
            # A concurrent request holding the same key would make the insert below wait
            # for it; say so at once instead.
            locked = (
                await run(
                    session,
                    text("SELECT pg_try_advisory_xact_lock(hashtextextended(:k, 0))"),
                    {"k": f"{claim.owner} {key}"},
                )
            ).scalar_one()
            if not locked:
                raise Conflict("A request with this Idempotency-Key is still in progress.")
        now = utcnow()
        existing = (
            await session.exec(
                select(IdempotentRequest).where(
                    col(IdempotentRequest.owner) == claim.owner,
                    col(IdempotentRequest.key) == key,
                )
            )
        ).first()
        if existing is not None and existing.expires_at.replace(tzinfo=now.tzinfo) <= now:
            await session.exec(
                delete(IdempotentRequest).where(
                    col(IdempotentRequest.owner) == claim.owner, col(IdempotentRequest.key) == key
                )
            )
            existing = None
        if existing is not None:
            if existing.fingerprint != print_:
                raise ValidationFailed(
                    "This Idempotency-Key was used with a different request; use a new key."
                )
            if existing.status_code is None:
                raise Conflict("A request with this Idempotency-Key is still in progress.")
            return None, StoredAnswer(existing.status_code, existing.body or "")
        try:
            await session.exec(
                insert(IdempotentRequest).values(
                    owner=claim.owner,
                    key=key,
                    fingerprint=print_,
                    created_at=now,
                    expires_at=now + timedelta(hours=hours),
                )
            )
        except IntegrityError:
            # Another request with this key got there between our read and our insert.
            raise Conflict("A request with this Idempotency-Key is still in progress.") from None
        return claim, None

    @classmethod
    async def for_request(
        cls,
        request: Request,
        session: AsyncSession,
        principal: Principal,
        key: str | None,
        hours: int,
        body: bytes | None = None,
    ) -> tuple[Idempotency | None, Response | None]:
        """`claim` for a route: the claim to finish, or the stored answer to send again."""
        raw = body if body is not None else await request.body()
        claim, answer = await cls.claim(
            session, principal, key, fingerprint(request.method, request.url.path, raw), hours
        )
        if answer is None:
            return claim, None
        return None, Response(
            answer.body,
            status_code=answer.status_code,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )

    async def finish(self, status_code: int, body: str) -> None:
        await self.session.exec(
            update(IdempotentRequest)
            .where(
                col(IdempotentRequest.owner) == self.owner, col(IdempotentRequest.key) == self.key
            )
            .values(status_code=status_code, body=body)
        )


@dataclass(frozen=True)
class Answer:
    """What a create answers: its status and JSON body (kept, and replayed for a retry with
    the same key) and headers for the first answer (`Location`, `ETag`)."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


async def create_once(
    request: Request,
    auditor: Auditor,
    key: str | None,
    hours: int,
    create: Callable[[], Awaitable[Answer]],
    *,
    body: bytes | None = None,
) -> Response:
    """The one recipe of a create a client may retry: claim `key` (or find the answer already
    given for it and send that again), run `create`, and keep its answer with the claim, in
    the same transaction as the work."""
    claim, replay = await Idempotency.for_request(
        request, auditor.session, auditor.principal, key, hours, body
    )
    if replay is not None:
        return replay
    answer = await create()
    if claim is not None:
        await claim.finish(answer.status, answer.body)
    return Response(
        answer.body,
        status_code=answer.status,
        media_type="application/json",
        headers=answer.headers,
    )
