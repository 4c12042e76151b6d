"""The delivery worker: fan out, claim, send, record, sweep and prune, until told to stop.

One worker runs in `liaison serve` (unless `webhook_worker_in_serve` is off) and one in each
`liaison deliver`; on PostgreSQL any number run at once on any number of machines (claims
never overlap, see `webhook_delivery`); on SQLite only one process should deliver.

Sends run as asyncio tasks: at most `webhook_concurrency_per_subscription` in flight to one
subscription and `max_in_flight` in all, so a slow or dead receiver holds only its own
slots while the others' deliveries keep flowing. A database that goes away is logged and
waited out with growing pauses; the worker carries on when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

import httpx
import structlog
from sqlalchemy import and_, delete, exists, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.config import Settings
from app.db import SessionFactory, is_postgresql, run, table_of
from app.models.base import utcnow
from app.models.event import OutboxEvent
from app.models.webhook import DeliveryStatus, WebhookDelivery
from app.services import action_overdue, review_overdue
from app.services.outbound import safe_client
from app.services.webhook_delivery import Message, Outcome, claim, record, send
from app.services.webhook_fanout import BATCH, fan_out
from app.services.webhook_metrics import WebhookMetrics

log = structlog.get_logger("liaison.webhooks")

Sweep = Callable[[AsyncSession, Settings, datetime], Awaitable[object]]

# Periodic jobs that record the events the passing of time makes: a review falling overdue.
# Each runs in its own transaction, committed, once per `SWEEP_SECONDS` per worker (each
# records an event once however many workers sweep).
SWEEPS: tuple[Sweep, ...] = (
    review_overdue.record_overdue_reviews,
    action_overdue.record_overdue_actions,
)
SWEEP_SECONDS = 60.0
PRUNE_BATCH = 5000
MAX_BACKOFF_SECONDS = 30.0
# Claimed-and-unsent deliveries of one subscription a worker holds at most, in multiples of
# its send limit (webhook_delivery.lease_seconds allows for the wait this makes).
QUEUED = 4


async def prune(session: AsyncSession, settings: Settings, now: datetime) -> int:
    """Delete one batch of events fanned out more than `webhook_event_keep_days` ago with no
    delivery still pending (their deliveries and attempts go with them); how many went."""
    event = table_of(OutboxEvent)
    delivery = table_of(WebhookDelivery)
    cutoff = now - timedelta(days=settings.webhook_event_keep_days)
    still_owed = exists().where(
        and_(delivery.c.event_id == event.c.id, delivery.c.status == DeliveryStatus.pending.value)
    )
    old = select(event.c.id).where(event.c.published_at < cutoff, ~still_owed).limit(PRUNE_BATCH)
    if is_postgresql(session):
        old = old.with_for_update(skip_locked=True)
    result = await run(session, delete(event).where(event.c.id.in_(old)))
    return int(result.rowcount or 0)


def worker_name() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """One delivery worker over a session factory. `run` loops until `stop` is set;
    `deliver_due` is one pass of it (fan out, claim, send, record), for tests and tools."""

    def __init__(
        self,
        session_factory: SessionFactory,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        metrics: WebhookMetrics | None = None,
        max_in_flight: int = 64,
        sweeps: Sequence[Sweep] = SWEEPS,
        name: str | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.http = http or safe_client(settings, max_connections=max_in_flight)
        self._owns_http = http is None
        self.metrics = metrics
        self.max_in_flight = max_in_flight
        self.sweeps = tuple(sweeps)
        self.name = name or worker_name()
        self._tasks: set[asyncio.Task[None]] = set()
        # Per subscription: claimed and not yet sent (waiting for a slot, or sending).
        self._unsent: Counter[uuid.UUID] = Counter()
        self._slots: dict[uuid.UUID, asyncio.Semaphore] = {}
        self._wake = asyncio.Event()
        self._unrecorded: list[tuple[Outcome, asyncio.Future[bool]]] = []
        self._recorder: asyncio.Task[None] | None = None
        self._refill = True  # claim at the next turn of the loop rather than the next poll

    async def close(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    # --- the steps ----------------------------------------------------------------------

    async def fan_out(self, now: datetime) -> int:
        """Fan out every unpublished event, one committed batch at a time."""
        total = 0
        while True:
            async with self.session_factory() as session:
                published = await fan_out(session, now)
                await session.commit()
            total += published
            if published < BATCH:
                return total

    async def claim(self, now: datetime, limit: int) -> list[Message]:
        """Claim up to `limit` due deliveries. A subscription may have up to QUEUED times
        its send limit claimed and unsent here, so its slots never wait for a claim; one
        with more than half that in hand is not topped up yet (left to other workers)."""
        each = self.settings.webhook_concurrency_per_subscription
        queued_each = QUEUED * each // 2
        busy = frozenset(s for s, n in self._unsent.items() if n > queued_each)
        return await self._claim(now, limit, per_subscription=queued_each, busy=busy)

    async def deliver(self, message: Message, sent: Callable[[], None] | None = None) -> Outcome:
        """Send one claimed message (holding one of its subscription's slots), call `sent`,
        and record what happened."""
        slots = self._slots.setdefault(
            message.subscription_id,
            asyncio.Semaphore(self.settings.webhook_concurrency_per_subscription),
        )
        try:
            async with slots:
                result = await send(self.http, self.settings, message)
        finally:
            if sent is not None:
                sent()
        held = await self._record(result)
        if not held:
            log.warning(
                "webhook_lease_lost",
                delivery_id=str(message.delivery_id),
                subscription_id=str(message.subscription_id),
            )
        elif not result.delivered:
            log.info(
                "webhook_attempt_failed",
                delivery_id=str(message.delivery_id),
                subscription_id=str(message.subscription_id),
                attempt=message.attempt,
                outcome=result.outcome.value,
                status_code=result.status_code,
            )
        return result

    async def _record(self, result: Outcome) -> bool:
        """Record a try, together with the others finished meanwhile: one transaction per
        batch rather than per send. Whether the lease was still ours."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._unrecorded.append((result, done))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_batches())
        return await done

    async def _record_batches(self) -> None:
        await asyncio.sleep(0)  # let the sends finishing in this moment join the batch
        while self._unrecorded:
            batch, self._unrecorded = self._unrecorded, []
            try:
                async with self.session_factory() as session:
                    held = await record(
                        session,
                        self.settings,
                        [result for result, _ in batch],
                        metrics=self.metrics,
                    )
                    await session.commit()
            except Exception as exc:
                for _, done in batch:
                    done.set_exception(exc)
                continue
            for (_, done), was_held in zip(batch, held, strict=True):
                done.set_result(was_held)

    async def sweep(self, now: datetime) -> None:
        """Time-driven events, pruning, and the queue gauges."""
        for job in self.sweeps:
            async with self.session_factory() as session:
                await job(session, self.settings, now)
                await session.commit()
        while True:
            async with self.session_factory() as session:
                pruned = await prune(session, self.settings, now)
                await session.commit()
            if pruned < PRUNE_BATCH:
                break
        if self.metrics is not None:
            async with self.session_factory() as session:
                await self.metrics.refresh(session, now)

    async def deliver_due(self, now: datetime | None = None, limit: int = 1000) -> list[Outcome]:
        """One pass: fan out, claim what is due at `now` (up to `limit`), send it all
        concurrently within the per-subscription limit, record; the outcomes."""
        now = now or utcnow()
        await self.fan_out(now)
        messages = await self._claim(now, limit, per_subscription=limit)
        return list(await asyncio.gather(*(self.deliver(m) for m in messages)))

    async def _claim(
        self,
        now: datetime,
        limit: int,
        *,
        per_subscription: int,
        busy: frozenset[uuid.UUID] = frozenset(),
    ) -> list[Message]:
        """Claim due deliveries in a transaction of their own, committed before any is sent."""
        async with self.session_factory() as session:
            messages = await claim(
                session,
                self.settings,
                now=now,
                worker=self.name,
                limit=limit,
                per_subscription=per_subscription,
                busy=busy,
            )
            await session.commit()
        return messages

    # --- the loop -----------------------------------------------------------------------

    def _start(self, message: Message) -> None:
        subscription_id = message.subscription_id
        self._unsent[subscription_id] += 1

        def sent() -> None:
            self._unsent[subscription_id] -= 1
            left = self._unsent[subscription_id]
            if left <= 0:
                del self._unsent[subscription_id]
                self._slots.pop(subscription_id, None)
            if left <= QUEUED * self.settings.webhook_concurrency_per_subscription // 2:
                # Half its queue or less left: claim more for it now, not at the poll.
                self._refill = True
                self._wake.set()

        async def go() -> None:
            try:
                await self.deliver(message, sent)
            except Exception as exc:
                # The lease runs out and the delivery is tried again: nothing is lost.
                log.warning(
                    "webhook_record_failed",
                    delivery_id=str(message.delivery_id),
                    error=type(exc).__name__,
                )

        task = asyncio.create_task(go())
        self._tasks.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            self._tasks.discard(done)
            if not self._tasks:
                self._refill = True
                self._wake.set()

        task.add_done_callback(finished)

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        """Wait until `stop`, a finished send, or `seconds`."""
        self._wake.clear()
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set, then finish the sends in flight."""
        log.info("webhook_worker_started", worker=self.name)
        failures = 0
        next_sweep = next_fan_out = next_claim = 0.0
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                try:
                    now = utcnow()
                    published = 0
                    if loop.time() >= next_fan_out:
                        published = await self.fan_out(now)
                        if published:
                            self._refill = True
                        # Again at once while there is more; else at the next poll.
                        next_fan_out = loop.time() + (
                            0 if published else self.settings.webhook_poll_seconds
                        )
                    free = self.max_in_flight - len(self._tasks)
                    messages = []
                    if free > 0 and (self._refill or loop.time() >= next_claim):
                        self._refill = False
                        messages = await self.claim(now, free)
                        # A full claim may leave more due: claim again at once.
                        full = len(messages) == free
                        next_claim = loop.time() + (
                            0 if full else self.settings.webhook_poll_seconds
                        )
                    for message in messages:
                        self._start(message)
                    if loop.time() >= next_sweep:
                        await self.sweep(now)
                        next_sweep = loop.time() + SWEEP_SECONDS
                except Exception as exc:
                    failures += 1
                    pause = min(
                        MAX_BACKOFF_SECONDS, self.settings.webhook_poll_seconds * 2**failures
                    )
                    log.warning(
                        "webhook_worker_error",
                        worker=self.name,
                        error=type(exc).__name__,
                        retry_in_seconds=round(pause, 1),
                    )
                    await self._pause(stop, pause)
                    continue
                if failures:
                    log.info("webhook_worker_recovered", worker=self.name)
                    failures = 0
                if self._refill or (messages and len(messages) == free) or published:
                    await asyncio.sleep(0)
                else:
                    await self._pause(stop, self.settings.webhook_poll_seconds)
        finally:
            if self._tasks:
                done = asyncio.gather(*self._tasks, return_exceptions=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done, timeout=self.settings.webhook_timeout_seconds + 5)
            await self.close()
            log.info("webhook_worker_stopped", worker=self.name)


async def run_worker(
    session_factory: SessionFactory,
    settings: Settings,
    stop: asyncio.Event,
    *,
    metrics: WebhookMetrics | None = None,
    max_in_flight: int = 64,
) -> None:
    """Run one delivery worker until `stop` is set."""
    worker = Worker(session_factory, settings, metrics=metrics, max_in_flight=max_in_flight)
    await worker.run(stop)
