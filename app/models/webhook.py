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
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import InputModel, Moment, Timestamped, new_id, utcnow


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


# --- the subscription API (`/v1/webhooks`) ---------------------------------------------------

WebhookUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    PydanticField(
        description="Where events are POSTed: an absolute `https://` URL (`http://` is "
        "accepted outside production), with no user name or password in it.",
        examples=["https://hub.example.org/liaison/events"],
    ),
]
EventTypes = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=64)]],
    PydanticField(
        min_length=1,
        max_length=20,
        description="The event types wanted, each once (see `GET /v1/webhooks/event-types`).",
        examples=[["referral.decided", "referral.withdrawn"]],
    ),
]
WebhookDescription = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)
]


class WebhookCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl
    event_types: EventTypes
    description: WebhookDescription | None = None


class WebhookUpdate(InputModel):
    """Only the fields sent change. `status: active` re-enables a disabled subscription
    (clearing why it was disabled); `status: disabled` stops deliveries until then."""

    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl | None = None
    event_types: EventTypes | None = None
    description: WebhookDescription | None = None
    status: SubscriptionStatus | None = None


class SecretRotation(InputModel):
    model_config = ConfigDict(extra="forbid")

    grace_hours: float | None = PydanticField(
        default=None,
        ge=0,
        le=24 * 30,
        description="How long the replaced secret keeps signing beside the new one (default "
        "`LIAISON_WEBHOOK_SECRET_GRACE_HOURS`, at most 30 days; 0 retires it at once).",
    )


class WebhookRead(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None
    status: SubscriptionStatus
    disabled_reason: str | None = PydanticField(
        description="Why the subscription is disabled: by whom, or after how long failing."
    )
    disabled_at: Moment | None
    failing_since: Moment | None = PydanticField(
        description="Since when every try has failed (null once one succeeds)."
    )
    owner: str = PydanticField(
        description="The account (`client:<id>` or `staff:<id>`) whose scopes and reach "
        "bound what this subscription receives."
    )
    la_code: str | None
    version: int
    created_at: Moment
    updated_at: Moment


class WebhookCreated(WebhookRead):
    secret: str = PydanticField(
        description="The signing secret (`whsec_…`). Shown only in this answer: keep it.",
    )


class WebhookPage(BaseModel):
    items: list[WebhookRead]
    next_cursor: str | None


class RotatedSecret(BaseModel):
    secret: str = PydanticField(
        description="The new signing secret (`whsec_…`). Shown only in this answer."
    )
    previous_expires_at: Moment | None = PydanticField(
        description="Until when the replaced secret still signs beside the new one (null if "
        "there was none)."
    )


class AttemptRead(BaseModel):
    id: uuid.UUID
    attempt: int
    event_id: uuid.UUID
    webhook_id: str = PydanticField(description="The `webhook-id` header sent: `msg_<event>`.")
    attempted_at: Moment
    latency_ms: int
    outcome: AttemptOutcome
    status_code: int | None
    error: str | None
    response_excerpt: str | None


class AttemptPage(BaseModel):
    items: list[AttemptRead]
    next_cursor: str | None


class DeliveryRead(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str | None = PydanticField(description="Null once the event has been pruned.")
    webhook_id: str = PydanticField(description="The `webhook-id` header sent: `msg_<event>`.")
    status: DeliveryStatus
    attempts: int
    next_attempt_at: Moment | None = PydanticField(
        description="When the next try is due (pending deliveries only)."
    )
    created_at: Moment
    delivered_at: Moment | None


class DeliveryPage(BaseModel):
    items: list[DeliveryRead]
    next_cursor: str | None


def message_id(event_id: uuid.UUID) -> str:
    """The `webhook-id` of an event's message: the same on every retry and replay."""
    return "msg_" + event_id.hex
