"""Replay: send a subscription one event, or a time range of events, again.

Each event the subscription wants and may receive now (`webhook_audience`, as at fan-out)
gets its delivery queued afresh: pending, due now, its retry schedule restarted. An event
that was never fanned out to the subscription (it subscribed later, or its reach grew) gets
a new delivery. The message keeps its `webhook-id`, so a receiver that handled it before
can tell. A delivery being sent at that moment is left to that send.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import chunks, run, table_of
from app.errors import Conflict, NotFound, ValidationFailed
from app.models.event import OutboxEvent
from app.models.webhook import (
    DeliveryStatus,
    SubscriptionStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from app.services.webhook_fanout import deliveries_for, queue_deliveries

# Events replayed by one call at most: a wider range is replayed in parts.
MAX_EVENTS = 10_000


async def replay(
    session: AsyncSession,
    subscription: WebhookSubscription,
    *,
    now: datetime,
    event_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Queue the chosen events for the subscription again; how many were queued."""
    if subscription.status != SubscriptionStatus.active:
        raise Conflict("The subscription is disabled: enable it, then replay.")
    if event_id is None and since is None:
        raise ValidationFailed("Name an event_id, or a time range starting at since.")
    if event_id is not None and (since is not None or until is not None):
        raise ValidationFailed("Name an event_id or a time range, not both.")
    if since is not None and until is not None and until <= since:
        raise ValidationFailed("until must be after since.")
    query = select(OutboxEvent).where(col(OutboxEvent.type).in_(subscription.event_types))
    if event_id is not None:
        query = query.where(OutboxEvent.id == event_id)
    else:
        query = query.where(col(OutboxEvent.occurred_at) >= since)
        if until is not None:
            query = query.where(col(OutboxEvent.occurred_at) < until)
    events = list(
        (await session.exec(query.order_by(col(OutboxEvent.id)).limit(MAX_EVENTS + 1))).all()
    )
    if len(events) > MAX_EVENTS:
        raise ValidationFailed(
            f"The range holds more than {MAX_EVENTS} events: replay it in shorter parts."
        )
    pairs = await deliveries_for(session, [subscription], events)
    if event_id is not None and not pairs:
        raise NotFound("No such event for this subscription.")
    delivery = table_of(WebhookDelivery)
    for part in chunks([event for _, event in pairs]):
        await run(
            session,
            update(delivery)
            .where(
                delivery.c.subscription_id == subscription.id,
                delivery.c.event_id.in_(part),
                # Not one a worker holds: its send is under way.
                or_(
                    delivery.c.locked_until.is_(None),
                    delivery.c.locked_until < now,
                    delivery.c.status != DeliveryStatus.pending.value,
                ),
            )
            .values(
                status=DeliveryStatus.pending.value,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                delivered_at=None,
                locked_until=None,
                locked_by=None,
            ),
        )
    await queue_deliveries(session, pairs, now)
    return len(pairs)
