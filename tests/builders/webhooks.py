"""Webhook subscriptions for tests: made through the API, and the outbox events, deliveries
and attempts that delivery would have written, inserted straight into the database (the
delivery worker is not under test here)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from app.models.base import utcnow
from app.models.event import OutboxEvent
from app.models.webhook import AttemptOutcome, DeliveryStatus, WebhookAttempt, WebhookDelivery
from tests.builders.api import created

WEBHOOKS = "/v1/webhooks"
RECEIVER = "https://receiver.example.org/liaison"


async def subscribe(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    event_types: list[str] | None = None,
    url: str = RECEIVER,
    **fields: Any,
) -> dict[str, Any]:
    """A new subscription (with its `secret`), made by the account of `headers`."""
    body = {"url": url, "event_types": event_types or ["referral.decided"], **fields}
    return await created(http, WEBHOOKS, body, headers)


async def sent(
    application: FastAPI,
    subscription_id: str,
    event_type: str = "referral.decided",
    tries: list[tuple[AttemptOutcome, int | None]] | None = None,
    status: DeliveryStatus = DeliveryStatus.pending,
) -> tuple[OutboxEvent, WebhookDelivery, list[WebhookAttempt]]:
    """One event owed to the subscription, and the tries at sending it (outcome, status
    code), one second apart, as the delivery worker records them."""
    tries = tries or []
    start = utcnow() - timedelta(minutes=5)
    async with application.state.session_factory() as session:
        event = OutboxEvent(
            type=event_type,
            subject_kind="referral",
            subject_id=uuid.uuid4(),
            la_code="886",
            payload={"referral_id": str(uuid.uuid4())},
            published_at=start,
        )
        session.add(event)
        await session.flush()
        delivery = WebhookDelivery(
            subscription_id=uuid.UUID(subscription_id),
            event_id=event.id,
            status=status,
            attempts=len(tries),
            next_attempt_at=start + timedelta(hours=1),
            delivered_at=start if status is DeliveryStatus.delivered else None,
        )
        session.add(delivery)
        await session.flush()
        attempts = [
            WebhookAttempt(
                delivery_id=delivery.id,
                subscription_id=delivery.subscription_id,
                event_id=event.id,
                attempt=n,
                attempted_at=start + timedelta(seconds=n),
                latency_ms=40 + n,
                outcome=outcome,
                status_code=code,
                error=None if outcome is AttemptOutcome.delivered else f"{outcome.value}",
                response_excerpt="ok" if code else None,
            )
            for n, (outcome, code) in enumerate(tries, start=1)
        ]
        session.add_all(attempts)
        await session.commit()
    return event, delivery, attempts
