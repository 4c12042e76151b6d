"""Replaying webhook events: what to send again, and how much was queued."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from app.models.base import InputModel, IsoAwareDatetime


class ReplayRequest(InputModel):
    """One event (`event_id`), or every event from `since` (up to `until`, if given)."""

    event_id: uuid.UUID | None = None
    since: IsoAwareDatetime | None = None
    until: IsoAwareDatetime | None = None


class ReplayResult(BaseModel):
    queued: int = Field(description="Deliveries queued to be sent again (or for the first time).")
