"""The webhook event catalogue: every event type, the `data` each carries, and the message.

Payloads are thin on purpose: ids, codes and statuses, never a child's name, UPN or date of
birth and never text a person wrote (reasons, notes, narratives). A receiver that wants more
fetches the subject with its own token, through its own reach. Each payload model forbids
extra fields, so its JSON Schema says exactly what a receiver can rely on.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from app.models.action import OwnerKind
from app.models.attendance import FlagKind
from app.models.case import ClosureReason
from app.models.referral import DecisionKind, ReferralSource, Urgency
from app.models.signpost import SignpostStatus


class EventType(StrEnum):
    referral_received = "referral.received"
    referral_decided = "referral.decided"
    referral_withdrawn = "referral.withdrawn"
    case_opened = "case.opened"
    case_closed = "case.closed"
    case_stepped_up = "case.stepped_up"
    case_review_overdue = "case.review_overdue"
    case_action_overdue = "case.action_overdue"
    attendance_flag_raised = "attendance.flag.raised"
    attendance_flag_resolved = "attendance.flag.resolved"
    signpost_status_changed = "signpost.status_changed"


class EventData(BaseModel):
    """The `data` of a message."""

    model_config = ConfigDict(extra="forbid", frozen=True)


_SCHOOL = Field(
    description="The school the subject belongs to; null when it has none (or, on a referral, "
    "when the referrer named its children only by name)."
)


# --- referrals ------------------------------------------------------------------------------


class ReferralReceived(EventData):
    referral_id: uuid.UUID
    la_code: str
    school_id: uuid.UUID | None = _SCHOOL
    source: ReferralSource
    urgency: Urgency


class SignpostRef(EventData):
    service_id: uuid.UUID = Field(description="A directory service (`/oruk/services/{id}`).")


class ReferralDecided(EventData):
    referral_id: uuid.UUID
    la_code: str
    school_id: uuid.UUID | None = _SCHOOL
    decision: DecisionKind
    reason_category: str | None = Field(
        description="Why, as a code from the decision's fixed list (null for an acceptance "
        "or when none was given); the reason itself is read from the referral."
    )
    signposts: list[SignpostRef] = Field(
        description="On a decline, the services the family was signposted to; else empty."
    )


class ReferralWithdrawn(EventData):
    referral_id: uuid.UUID
    la_code: str
    school_id: uuid.UUID | None = _SCHOOL


# --- cases ----------------------------------------------------------------------------------


class CaseOpened(EventData):
    case_id: uuid.UUID
    la_code: str
    school_id: uuid.UUID | None = _SCHOOL
    level_of_need: str
    referral_id: uuid.UUID | None = Field(
        description="The accepted referral the case was opened from; null for a direct open."
    )
    opened_on: date


class CaseClosed(EventData):
    case_id: uuid.UUID
    la_code: str
    school_id: uuid.UUID | None = _SCHOOL
    reason: ClosureReason
    closed_on: date


class CaseSteppedUp(EventData):
    case_id: uuid.UUID
    la_code: str
    school_id: uuid.UUID | None = _SCHOOL
    stepped_up_on: date


class CaseReviewOverdue(EventData):
    case_id: uuid.UUID
    la_code: str
    school_id: uuid.UUID | None = _SCHOOL
    review_due_on: date = Field(description="The day the missed review was due.")
    last_review_on: date | None = Field(description="The last review held; null if none yet.")


class CaseActionOverdue(EventData):
    case_id: uuid.UUID
    action_id: uuid.UUID
    la_code: str
    school_id: uuid.UUID | None = _SCHOOL
    due_on: date = Field(description="The day the action was due.")
    owner_kind: OwnerKind = Field(
        description="Who owns it, by kind; the owner and the action's text are read from "
        "the action."
    )
    owner_staff_id: uuid.UUID | None = Field(
        description="The staff member who owns it, when the owner is a member of staff."
    )


# --- attendance flags -----------------------------------------------------------------------


class FlagRaised(EventData):
    flag_id: uuid.UUID
    pupil_id: uuid.UUID
    school_id: uuid.UUID
    kind: FlagKind
    academic_year: int = Field(description="The year the academic year starts in.")


class FlagResolved(FlagRaised):
    pass


# --- signposts ------------------------------------------------------------------------------


class SignpostStatusChanged(EventData):
    signpost_id: uuid.UUID
    case_id: uuid.UUID
    service_id: uuid.UUID
    status: SignpostStatus
    previous_status: SignpostStatus


EVENT_DATA: dict[EventType, type[EventData]] = {
    EventType.referral_received: ReferralReceived,
    EventType.referral_decided: ReferralDecided,
    EventType.referral_withdrawn: ReferralWithdrawn,
    EventType.case_opened: CaseOpened,
    EventType.case_closed: CaseClosed,
    EventType.case_stepped_up: CaseSteppedUp,
    EventType.case_review_overdue: CaseReviewOverdue,
    EventType.case_action_overdue: CaseActionOverdue,
    EventType.attendance_flag_raised: FlagRaised,
    EventType.attendance_flag_resolved: FlagResolved,
    EventType.signpost_status_changed: SignpostStatusChanged,
}


def message_schema(event_type: EventType) -> dict[str, Any]:
    """The JSON Schema of the whole message a receiver gets for this type."""
    data = EVENT_DATA[event_type]
    message = create_model(
        data.__name__ + "Message",
        __config__=ConfigDict(extra="forbid"),
        type=(Literal[event_type.value], ...),  # type: ignore[arg-type]
        timestamp=(datetime, Field(description="When it happened (RFC 3339, UTC).")),
        data=(data, ...),
    )
    schema: dict[str, Any] = message.model_json_schema()
    return schema


# --- the catalogue route --------------------------------------------------------------------


class EventTypeRead(BaseModel):
    type: EventType
    description: str
    subject_kind: Literal["referral", "case", "flag", "signpost"] = Field(
        description="What the event is about; a receiver gets it only if its owner may read "
        "that subject."
    )
    scope: str = Field(description="The scope the subscription's owner needs to receive it.")
    message_schema: dict[str, Any] = Field(
        description="JSON Schema (2020-12) of the message body: `type`, `timestamp`, `data`."
    )


class EventTypeList(BaseModel):
    items: list[EventTypeRead]
