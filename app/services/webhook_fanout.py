"""Fan-out: each new outbox event becomes one delivery per subscription that may receive it.

Events are taken in id (time) order, a batch at a time; on PostgreSQL the batch is locked
with `FOR UPDATE SKIP LOCKED`, so workers on several machines each fan out a different
batch. Who may receive an event is judged once, here, by `webhook_audience` (the owner's
scopes and reach as they stand now); replay judges it again with the same rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import is_postgresql, run, table_of
from app.models.event import OutboxEvent
from app.models.webhook import (
    DeliveryStatus,
    SubscriptionStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from app.security import Principal
from app.services.principals import load_subject
from app.services.webhook_audience import receivable

BATCH = 500


def wants(subscription: WebhookSubscription, event_type: str) -> bool:
    """Whether the subscription asked for this type of event."""
    return event_type in subscription.event_types


async def deliveries_for(
    session: AsyncSession,
    subscriptions: Sequence[WebhookSubscription],
    events: Sequence[OutboxEvent],
    owners: dict[str, Principal | None] | None = None,
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(subscription id, event id) for each event each subscription wants and may receive.
    `owners` caches the owners' principals across calls."""
    owners = {} if owners is None else owners
    pairs: list[tuple[uuid.UUID, uuid.UUID]] = []
    for subscription in subscriptions:
        wanted = [event for event in events if wants(subscription, event.type)]
        if not wanted:
            continue
        if subscription.owner not in owners:
            owners[subscription.owner] = await load_subject(session, subscription.owner)
        principal = owners[subscription.owner]
        if principal is None:
            continue
        allowed = await receivable(session, principal, wanted)
        pairs.extend((subscription.id, event.id) for event in wanted if event.id in allowed)
    return pairs


async def queue_deliveries(
    session: AsyncSession, pairs: Sequence[tuple[uuid.UUID, uuid.UUID]], now: datetime
) -> None:
    """Insert a pending delivery for each pair, due now; a pair that has one already keeps
    it (one statement)."""
    if not pairs:
        return
    rows: list[dict[str, Any]] = [
        {
            "id": uuid.uuid4(),
            "subscription_id": subscription_id,
            "event_id": event_id,
            "status": DeliveryStatus.pending.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for subscription_id, event_id in pairs
    ]
    table = table_of(WebhookDelivery)
    dialect_insert = postgresql.insert if is_postgresql(session) else sqlite.insert
    statement = dialect_insert(table).on_conflict_do_nothing(
        index_elements=["subscription_id", "event_id"]
    )
    await run(session, statement, rows)


async def fan_out(session: AsyncSession, now: datetime, batch: int = BATCH) -> int:
    """Fan out one batch of unpublished events; how many were published. The caller
    commits (and calls again while a full batch came back)."""
    query = (
        select(OutboxEvent)
        .where(col(OutboxEvent.published_at).is_(None))
        .order_by(col(OutboxEvent.id))
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    events = list((await session.exec(query)).all())
    if not events:
        return 0
    types = {event.type for event in events}
    subscriptions = [
        subscription
        for subscription in (
            await session.exec(
                select(WebhookSubscription).where(
                    WebhookSubscription.status == SubscriptionStatus.active
                )
            )
        ).all()
        if any(wants(subscription, event_type) for event_type in types)
    ]
    pairs = await deliveries_for(session, subscriptions, events)
    await queue_deliveries(session, pairs, now)
    await run(
        session,
        update(table_of(OutboxEvent))
        .where(col(OutboxEvent.id).in_([event.id for event in events]))
        .values(published_at=now),
    )
    return len(events)


async def fan_out_all(session: AsyncSession, now: datetime, batch: int = BATCH) -> int:
    """Every unpublished event, batch after batch, in the session's transaction."""
    total = 0
    while True:
        published = await fan_out(session, now, batch)
        total += published
        if published < batch:
            return total
