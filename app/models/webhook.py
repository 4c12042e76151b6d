"""Webhook subscriptions and their deliveries (Standard Webhooks).

An event is written to the outbox (`app/models/event.py`) in the transaction of the change it
describes. Delivery fans each event out to the subscriptions whose owner may read its subject,
one `WebhookDelivery` per (subscription, event), and every try at sending one is a
`WebhookAttempt`. The message id a receiver sees (`webhook-id`) is the event's, the same on
every retry and replay, so a receiver can drop what it has already handled.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import Timestamped, new_id, utcnow


class SubscriptionStatus(StrEnum):
    active = "active"
    disabled = "disabled"


class DeliveryStatus(StrEnum):
    pending = "pending"  # waiting for its next try
    delivered = "delivered"  # a 2xx answer
    failed = "failed"  # every try of the schedule failed, or the subscription went away


class AttemptOutcome(StrEnum):
    delivered = "delivered"
    http_error = "http_error"  # the receiver answered, not with 2xx
    timeout = "timeout"
    connection_error = "connection_error"
    refused = "refused"  # Liaison would not call the address (SSRF guard, not HTTPS)


class WebhookSubscription(Timestamped, table=True):
    """A receiver's URL and the event types it wants. What it receives is limited to what
    its owner (a client, or an LA admin) may read, judged afresh when each event fans out."""

    __tablename__ = "webhook_subscription"
    __table_args__ = (
        Index("ix_webhook_subscription_owner_id", "owner", "id"),
        Index("ix_webhook_subscription_la_code_id", "la_code", "id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    # The principal's subject (`client:<id>` or `staff:<id>`) whose reach and scopes bound
    # what the subscription receives.
    owner: str = Field(max_length=80)
    # The LA the owner works for, so that the LA's admin can manage it.
    la_code: str | None = Field(default=None, max_length=10)
    url: str = Field(max_length=2000)
    event_types: list[str] = Field(default_factory=list, sa_type=JSON)
    description: str | None = Field(default=None, max_length=300)
    status: SubscriptionStatus = Field(default=SubscriptionStatus.active, sa_type=String(16))
    disabled_reason: str | None = Field(default=None, max_length=300)
    disabled_at: datetime | None = None
    # Since when every try has failed (cleared by a success): a subscription that keeps
    # failing for long enough is disabled.
    failing_since: datetime | None = None
    version: int = Field(default=1)


class WebhookSecret(SQLModel, table=True):
    """A signing secret (`whsec_…`, stored encrypted). The newest signs; one replaced by
    rotation keeps signing beside it until `expires_at`, so receivers can switch over."""

    __tablename__ = "webhook_secret"
    __table_args__ = (Index("ix_webhook_secret_subscription_id", "subscription_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    subscription_id: uuid.UUID = Field(foreign_key="webhook_subscription.id", ondelete="CASCADE")
    secret: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None


class WebhookDelivery(SQLModel, table=True):
    """One event owed to one subscription, until it is delivered or given up."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_webhook_delivery_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_event_id", "event_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    subscription_id: uuid.UUID = Field(foreign_key="webhook_subscription.id", ondelete="CASCADE")
    event_id: uuid.UUID = Field(foreign_key="outbox_event.id", ondelete="CASCADE")
    status: DeliveryStatus = Field(default=DeliveryStatus.pending, sa_type=String(16))
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(default_factory=utcnow)
    # A worker that claims a delivery holds it until then; a worker that dies loses it
    # to another once the lease runs out, never while it may still be sending.
    locked_until: datetime | None = None
    locked_by: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None


class WebhookAttempt(SQLModel, table=True):
    """One try at sending a delivery: when, how long, what came back (a short excerpt)."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (
        Index("ix_webhook_attempt_subscription_id_id", "subscription_id", "id"),
        Index("ix_webhook_attempt_delivery_id", "delivery_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    delivery_id: uuid.UUID = Field(foreign_key="webhook_delivery.id", ondelete="CASCADE")
    subscription_id: uuid.UUID = Field(foreign_key="webhook_subscription.id", ondelete="CASCADE")
    event_id: uuid.UUID
    attempt: int
    attempted_at: datetime = Field(default_factory=utcnow)
    latency_ms: int
    outcome: AttemptOutcome = Field(sa_type=String(24))
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=300)
    response_excerpt: str | None = Field(default=None, max_length=200)
