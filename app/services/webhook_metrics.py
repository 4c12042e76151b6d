"""Prometheus metrics for webhook delivery.

The queue's state is a fact of the database, so any process reports it: its gauges are
read afresh at each scrape (`refresh`). Attempts and their latency are counted by the
process that made them, so a `liaison deliver` worker serves its own (`--metrics-port`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import run, table_of
from app.models.event import OutboxEvent
from app.models.webhook import AttemptOutcome, DeliveryStatus, WebhookDelivery


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.pending = Gauge(
            "liaison_webhook_pending_deliveries",
            "Deliveries waiting to be sent (due now or retrying later).",
            registry=registry,
        )
        self.unpublished = Gauge(
            "liaison_webhook_unpublished_events",
            "Outbox events not yet fanned out to subscriptions.",
            registry=registry,
        )
        self.oldest_age = Gauge(
            "liaison_webhook_oldest_undelivered_event_age_seconds",
            "Age of the oldest event not yet fanned out or with a delivery still pending.",
            registry=registry,
        )
        self.attempts = Counter(
            "liaison_webhook_attempts_total",
            "Delivery attempts made by this process, by outcome.",
            ["outcome"],
            registry=registry,
        )
        for outcome in AttemptOutcome:
            self.attempts.labels(outcome.value)
        self.latency = Histogram(
            "liaison_webhook_attempt_duration_seconds",
            "How long a receiver took to answer (or to fail), per attempt.",
            registry=registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.delivery_latency = Histogram(
            "liaison_webhook_delivery_latency_seconds",
            "From the event to its delivery (2xx), retries included.",
            registry=registry,
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 21600, 86400, 259200),
        )

    def observe(
        self, outcome: AttemptOutcome, latency_ms: int, occurred_at: datetime, now: datetime
    ) -> None:
        """One attempt: its outcome, how long it took, and (when delivered) how long after
        its event."""
        self.attempts.labels(outcome.value).inc()
        self.latency.observe(latency_ms / 1000)
        if outcome is AttemptOutcome.delivered:
            self.delivery_latency.observe(max(0.0, (now - occurred_at).total_seconds()))

    async def refresh(self, session: AsyncSession, now: datetime) -> None:
        """Read the queue's depth and its oldest undelivered event from the database."""
        event = table_of(OutboxEvent)
        delivery = table_of(WebhookDelivery)
        pending = delivery.c.status == DeliveryStatus.pending.value
        unpublished = event.c.published_at.is_(None)
        counts: Any = (
            await run(
                session,
                select(
                    select(func.count()).select_from(delivery).where(pending).scalar_subquery(),
                    select(func.count()).select_from(event).where(unpublished).scalar_subquery(),
                    select(func.min(event.c.occurred_at)).where(unpublished).scalar_subquery(),
                    select(func.min(event.c.occurred_at))
                    .select_from(event.join(delivery, delivery.c.event_id == event.c.id))
                    .where(pending)
                    .scalar_subquery(),
                ),
            )
        ).one()
        self.pending.set(counts[0])
        self.unpublished.set(counts[1])
        oldest = [moment for moment in counts[2:] if moment is not None]
        self.oldest_age.set(max(0.0, (now - min(oldest)).total_seconds()) if oldest else 0)
