"""Internal events, written in the same transaction as the change they describe.

Rows wait here (an outbox) until webhook delivery publishes them, so an event is never
lost and never sent for work that rolled back. Payloads carry ids, never personal data.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from app.models.base import new_id, utcnow


class OutboxEvent(SQLModel, table=True):
    """One event. `subject_kind` and `subject_id` name what it is about (a referral, case,
    flag or signpost), so delivery can ask whether a subscriber may read that subject through
    the same reach rules as the API; `la_code`, `school_id` and `referrer` are its owners.
    `published_at` is when it was fanned out to the subscriptions that may receive it."""

    __tablename__ = "outbox_event"
    __table_args__ = (
        Index("ix_outbox_event_published_at_id", "published_at", "id"),
        Index("ix_outbox_event_occurred_at", "occurred_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    type: str = Field(max_length=64)
    occurred_at: datetime = Field(default_factory=utcnow)
    subject_kind: str | None = Field(default=None, max_length=16)
    subject_id: uuid.UUID | None = None
    la_code: str | None = Field(default=None, max_length=10)
    school_id: uuid.UUID | None = None
    referrer: str | None = Field(default=None, max_length=300)
    payload: dict[str, Any] = Field(
        default_factory=dict, sa_type=JSON().with_variant(JSONB(), "postgresql")
    )
    published_at: datetime | None = None
