"""Sending deliveries: claim what is due, send it signed, record what happened.

A worker claims a batch of due deliveries by writing a lease on them (`locked_until`,
`locked_by`) and commits the claim before sending anything, so no transaction stays open
while a receiver takes its time. On PostgreSQL the claim is one `UPDATE ... WHERE id IN
(SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`, so any number of workers claim disjoint
batches; a claim takes at most `per_subscription` deliveries of one subscription, so one
busy receiver cannot fill a worker. The lease outlasts any send (several timeouts), and a
result is recorded only while the lease is still the worker's: a delivery is never sent by
two workers at once, and one whose worker died is claimed again once its lease runs out
(at-least-once; the receiver drops repeats by `webhook-id`).

Each failed try is retried with exponential backoff and full jitter until
`webhook_retry_hours` after the delivery was queued; the last try is at that deadline, and
if it fails too the delivery has failed. A subscription whose every try has failed for
`webhook_disable_after_hours` is disabled, with the reason, and its pending deliveries fail
(its owner replays them once the receiver is fixed).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import and_, func, insert, or_, select, tuple_, update
from sqlalchemy.sql.functions import coalesce
from sqlmodel import col
from sqlmodel import select as model_select
from sqlmodel.ext.asyncio.session import AsyncSession
from standardwebhooks import Webhook

from app.config import Settings
from app.db import run, table_of
from app.models.base import new_id, utcnow
from app.models.event import OutboxEvent
from app.models.webhook import (
    AttemptOutcome,
    DeliveryStatus,
    SubscriptionStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
    message_id,
)
from app.services.outbound import UnresolvableDestination, UnsafeDestination, parse_destination
from app.services.webhook_metrics import WebhookMetrics
from app.services.webhook_secrets import signing_secrets

# The first retry waits up to this long; each further one up to twice as long as the last.
BASE_DELAY_SECONDS = 5.0
# No single wait is longer than this (nor than an eighth of the whole schedule).
MAX_DELAY_SECONDS = 6 * 3600.0
# How much of a receiver's answer is read (the rest is never downloaded), and kept.
READ_CAP_BYTES = 1024
EXCERPT_CHARS = 200
ERROR_CHARS = 300
USER_AGENT = "Liaison-Webhooks/1"


def message_body(event: OutboxEvent) -> str:
    """The JSON a receiver gets, serialised once and signed as sent."""
    occurred = event.occurred_at.isoformat().replace("+00:00", "Z")
    return orjson.dumps({"type": event.type, "timestamp": occurred, "data": event.payload}).decode()


def lease_seconds(settings: Settings) -> float:
    """Long enough for a delivery to wait its turn behind a subscription's other claimed
    sends (a worker holds at most four rounds of them) and then take the full timeout
    itself, with room to record the result."""
    return 6 * settings.webhook_timeout_seconds + 30


def retry_ceiling(attempt: int, settings: Settings) -> float:
    """The longest wait after the `attempt`-th failed try (1-based)."""
    step_cap = max(BASE_DELAY_SECONDS, min(MAX_DELAY_SECONDS, settings.webhook_retry_hours * 450))
    return float(min(step_cap, BASE_DELAY_SECONDS * 2 ** min(attempt - 1, 40)))


def next_attempt(
    queued_at: datetime,
    attempted_at: datetime,
    attempt: int,
    settings: Settings,
    rng: random.Random | None = None,
) -> datetime | None:
    """When to try again after the `attempt`-th try failed at `attempted_at`, or None when
    the schedule is over. Full jitter: a uniform wait up to the ceiling, so receivers that
    all came back at once are not all retried at once; the last try is at the deadline."""
    deadline = queued_at + timedelta(hours=settings.webhook_retry_hours)
    if attempted_at >= deadline:
        return None
    wait = max(1.0, (rng or random).uniform(0, retry_ceiling(attempt, settings)))
    return min(attempted_at + timedelta(seconds=wait), deadline)


@dataclass(frozen=True)
class Message:
    """A claimed delivery, ready to send: where, what, signed with which secrets."""

    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    attempt: int  # the number this try will have (1-based)
    queued_at: datetime
    lease: str
    url: str
    body: str
    secrets: tuple[str, ...]
    occurred_at: datetime


@dataclass(frozen=True)
class Outcome:
    message: Message
    attempted_at: datetime
    latency_ms: int
    outcome: AttemptOutcome
    status_code: int | None = None
    error: str | None = None
    excerpt: str | None = None

    @property
    def delivered(self) -> bool:
        return self.outcome is AttemptOutcome.delivered


async def claim(
    session: AsyncSession,
    settings: Settings,
    *,
    now: datetime,
    worker: str,
    limit: int,
    per_subscription: int | None = None,
    busy: frozenset[uuid.UUID] = frozenset(),
) -> list[Message]:
    """Lease up to `limit` due deliveries of active subscriptions (none of those in `busy`,
    at most `per_subscription` of any one) to this worker, and load what sending them
    needs. The caller commits before sending."""
    if limit <= 0:
        return []
    per_subscription = per_subscription or settings.webhook_concurrency_per_subscription
    lease = f"{worker}/{uuid.uuid4().hex[:12]}"[-100:]
    delivery = table_of(WebhookDelivery)
    subscription = table_of(WebhookSubscription)

    def due(table: Any) -> Any:
        return and_(
            table.c.status == DeliveryStatus.pending.value,
            table.c.next_attempt_at <= now,
            or_(table.c.locked_until.is_(None), table.c.locked_until < now),
        )

    # Lock a window of the oldest due deliveries (skipping those another worker is
    # claiming this instant), then lease the first few of each subscription in it; the rest
    # of the window is unlocked again at commit, for the next claim.
    scanned = delivery.alias("scanned")
    active = select(subscription.c.id).where(
        subscription.c.status == SubscriptionStatus.active.value
    )
    window = (
        select(scanned.c.id, scanned.c.subscription_id, scanned.c.next_attempt_at)
        .where(
            due(scanned),
            scanned.c.subscription_id.in_(active),
            scanned.c.subscription_id.not_in(list(busy)),
        )
        .order_by(scanned.c.next_attempt_at)
        .limit(limit * 4)
        .with_for_update(skip_locked=True)
        .subquery()
    )
    ranked = select(
        window.c.id,
        window.c.next_attempt_at,
        func.row_number()
        .over(partition_by=window.c.subscription_id, order_by=window.c.next_attempt_at)
        .label("rank"),
    ).subquery()
    chosen = (
        select(ranked.c.id)
        .where(ranked.c.rank <= per_subscription)
        .order_by(ranked.c.next_attempt_at)
        .limit(limit)
    )
    claimed = (
        await run(
            session,
            update(delivery)
            .where(delivery.c.id.in_(chosen))
            .values(locked_until=now + timedelta(seconds=lease_seconds(settings)), locked_by=lease)
            .returning(
                delivery.c.id,
                delivery.c.subscription_id,
                delivery.c.event_id,
                delivery.c.attempts,
                delivery.c.created_at,
            ),
        )
    ).all()
    if not claimed:
        return []
    event_ids = list({row.event_id for row in claimed})
    subscription_ids = list({row.subscription_id for row in claimed})
    events = {
        event.id: event
        for event in (
            await session.exec(model_select(OutboxEvent).where(col(OutboxEvent.id).in_(event_ids)))
        ).all()
    }
    urls = dict(
        (
            await session.exec(
                model_select(WebhookSubscription.id, WebhookSubscription.url).where(
                    col(WebhookSubscription.id).in_(subscription_ids)
                )
            )
        ).all()
    )
    secrets = await signing_secrets(session, settings, subscription_ids, now)
    return [
        Message(
            delivery_id=row.id,
            subscription_id=row.subscription_id,
            event_id=row.event_id,
            attempt=row.attempts + 1,
            queued_at=row.created_at,
            lease=lease,
            url=urls[row.subscription_id],
            body=message_body(events[row.event_id]),
            secrets=tuple(secrets.get(row.subscription_id, ())),
            occurred_at=events[row.event_id].occurred_at,
        )
        for row in claimed
    ]


def sign(message: Message, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers: one `v1` signature per signing secret."""
    msg_id = message_id(message.event_id)
    signatures = [Webhook(secret).sign(msg_id, at, message.body) for secret in message.secrets]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def _short(text: str, limit: int = ERROR_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def send(http: httpx.AsyncClient, settings: Settings, message: Message) -> Outcome:
    """One try: POST the message (from outside any transaction), reading at most
    READ_CAP_BYTES of the answer, within `webhook_timeout_seconds` in all."""
    attempted_at = utcnow()
    started = time.perf_counter()

    def done(outcome: AttemptOutcome, **fields: Any) -> Outcome:
        latency = round((time.perf_counter() - started) * 1000)
        return Outcome(message, attempted_at, latency, outcome, **fields)

    if not message.secrets:
        return done(AttemptOutcome.refused, error="No signing secret can be read: rotate it.")
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        # Compressed answers are not unpacked: the cap is on bytes received.
        "accept-encoding": "identity",
        **sign(message, attempted_at),
    }
    try:
        async with asyncio.timeout(settings.webhook_timeout_seconds):
            parse_destination(settings, message.url)
            async with http.stream(
                "POST", message.url, content=message.body.encode(), headers=headers
            ) as response:
                received = bytearray()
                async for chunk in response.aiter_raw():
                    received.extend(chunk)
                    if len(received) >= READ_CAP_BYTES:
                        break
    except UnresolvableDestination as exc:
        return done(AttemptOutcome.connection_error, error=_short(exc.detail or exc.title))
    except UnsafeDestination as exc:
        return done(AttemptOutcome.refused, error=_short(exc.detail or exc.title))
    except (TimeoutError, httpx.TimeoutException):
        return done(
            AttemptOutcome.timeout,
            error=f"No answer within {settings.webhook_timeout_seconds:g} s.",
        )
    except httpx.HTTPError as exc:
        return done(
            AttemptOutcome.connection_error,
            error=_short(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__),
        )
    excerpt = bytes(received[:READ_CAP_BYTES]).decode("utf-8", errors="replace")[:EXCERPT_CHARS]
    status = response.status_code
    if 200 <= status < 300:
        return done(AttemptOutcome.delivered, status_code=status, excerpt=excerpt or None)
    error = f"HTTP {status}"
    if response.is_redirect:
        error += ": redirects are not followed"
    return done(AttemptOutcome.http_error, status_code=status, error=error, excerpt=excerpt or None)


async def record(
    session: AsyncSession,
    settings: Settings,
    results: Sequence[Outcome],
    *,
    metrics: WebhookMetrics | None = None,
    rng: random.Random | None = None,
) -> list[bool]:
    """Write down tries: the attempts, each delivery's next state (only while its lease is
    still ours: False where it was not) and each subscription's failing streak, in a few
    statements for the whole batch. The caller commits."""
    if not results:
        return []
    # Subscriptions' rows first, in id order, then deliveries': every writer takes them in
    # this order (disabling a subscription fails its other deliveries), so none deadlock.
    by_subscription: dict[uuid.UUID, list[Outcome]] = {}
    for result in results:
        by_subscription.setdefault(result.message.subscription_id, []).append(result)
    for subscription_id in sorted(by_subscription):
        await _track_failing(session, settings, subscription_id, by_subscription[subscription_id])
    delivery = table_of(WebhookDelivery)
    held: set[uuid.UUID] = set()
    delivered = [r.message for r in results if r.delivered]
    if delivered:
        returned = await run(
            session,
            update(delivery)
            .where(
                tuple_(delivery.c.id, delivery.c.locked_by).in_(
                    [(m.delivery_id, m.lease) for m in delivered]
                ),
                delivery.c.status == DeliveryStatus.pending.value,
            )
            .values(
                status=DeliveryStatus.delivered.value,
                delivered_at=utcnow(),
                attempts=delivery.c.attempts + 1,
                locked_until=None,
                locked_by=None,
            )
            .returning(delivery.c.id),
        )
        held.update(returned.scalars().all())
    for result in results:
        if result.delivered:
            continue
        message = result.message
        changes: dict[str, Any] = {
            "locked_until": None,
            "locked_by": None,
            "attempts": message.attempt,
        }
        retry_at = next_attempt(
            message.queued_at, result.attempted_at, message.attempt, settings, rng
        )
        if retry_at is None:
            changes["status"] = DeliveryStatus.failed.value
        else:
            changes["next_attempt_at"] = retry_at
        ours = and_(
            delivery.c.id == message.delivery_id,
            delivery.c.locked_by == message.lease,
            delivery.c.status == DeliveryStatus.pending.value,
        )
        if (await run(session, update(delivery).where(ours).values(**changes))).rowcount == 1:
            held.add(message.delivery_id)
    await run(
        session,
        insert(table_of(WebhookAttempt)),
        [
            {
                "id": new_id(),
                "delivery_id": r.message.delivery_id,
                "subscription_id": r.message.subscription_id,
                "event_id": r.message.event_id,
                "attempt": r.message.attempt,
                "attempted_at": r.attempted_at,
                "latency_ms": r.latency_ms,
                "outcome": r.outcome.value,
                "status_code": r.status_code,
                "error": r.error,
                "response_excerpt": r.excerpt,
            }
            for r in results
        ],
    )
    if metrics is not None:
        now = utcnow()
        for r in results:
            metrics.observe(r.outcome, r.latency_ms, r.message.occurred_at, now)
    return [r.message.delivery_id in held for r in results]


async def _track_failing(
    session: AsyncSession,
    settings: Settings,
    subscription_id: uuid.UUID,
    results: Sequence[Outcome],
) -> None:
    """A success ends a subscription's failing streak; a failure after the last success
    starts one (or continues it); one that has lasted `webhook_disable_after_hours`
    disables the subscription and fails its pending deliveries."""
    subscription = table_of(WebhookSubscription)
    this = subscription.c.id == subscription_id
    ordered = sorted(results, key=lambda r: r.attempted_at)
    succeeded = [n for n, r in enumerate(ordered) if r.delivered]
    failures = ordered[succeeded[-1] + 1 :] if succeeded else ordered
    if not failures:
        await run(
            session,
            update(subscription)
            .where(this, subscription.c.failing_since.is_not(None))
            .values(failing_since=None),
        )
        return
    first, last = failures[0], failures[-1]
    streak = update(subscription).where(this).values(failing_since=first.attempted_at)
    if not succeeded:
        streak = streak.where(subscription.c.failing_since.is_(None))
    await run(session, streak)
    now = last.attempted_at
    cutoff = now - timedelta(hours=settings.webhook_disable_after_hours)
    reason = _short(
        f"Every delivery failed for {settings.webhook_disable_after_hours:g} hours "
        f"(last: {last.outcome.value}, {last.error or last.outcome.value}).",
        300,
    )
    disabled = (
        await run(
            session,
            update(subscription)
            .where(
                this,
                subscription.c.status == SubscriptionStatus.active.value,
                subscription.c.failing_since <= cutoff,
            )
            .values(
                status=SubscriptionStatus.disabled.value,
                disabled_reason=reason,
                disabled_at=now,
                version=coalesce(subscription.c.version, 0) + 1,
                updated_at=now,
            ),
        )
    ).rowcount
    if disabled:
        delivery = table_of(WebhookDelivery)
        await run(
            session,
            update(delivery)
            .where(
                delivery.c.subscription_id == subscription_id,
                delivery.c.status == DeliveryStatus.pending.value,
            )
            .values(status=DeliveryStatus.failed.value, locked_until=None, locked_by=None),
        )
