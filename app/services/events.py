"""Recording events: one outbox row, in the transaction of the change it describes.

Because the row commits or rolls back with the change, no event is sent for work that rolled
back and none is lost for work that committed. The payload is the `data` of the message a
receiver gets: ids, codes and statuses only, never a name, a UPN or a date of birth; the
receiver fetches details with its own token, through its own reach.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.base import utcnow
from app.models.event import OutboxEvent


class SubjectKind(StrEnum):
    """What an event is about; delivery asks whether a subscriber may read it."""

    referral = "referral"
    case = "case"
    flag = "flag"
    signpost = "signpost"


def record_event(
    session: AsyncSession,
    event_type: str,
    *,
    subject_kind: SubjectKind,
    subject_id: uuid.UUID,
    la_code: str | None,
    school_id: uuid.UUID | None = None,
    referrer: str | None = None,
    data: dict[str, Any],
    occurred_at: datetime | None = None,
) -> OutboxEvent:
    event = OutboxEvent(
        type=event_type,
        occurred_at=occurred_at or utcnow(),
        subject_kind=subject_kind.value,
        subject_id=subject_id,
        la_code=la_code,
        school_id=school_id,
        referrer=referrer,
        payload=data,
    )
    session.add(event)
    return event
