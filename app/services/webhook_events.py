"""The event catalogue and the one way to record a catalogued event.

Every event is recorded from its typed payload (`app/models/webhook_events.py`), so what
goes into the outbox is exactly what the catalogue's JSON Schema promises. Each event names
its subject (what a receiver must be able to read to get it) and the subject's owners.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.action import CaseAction
from app.models.base import new_id
from app.models.case import Case, ClosureReason
from app.models.event import OutboxEvent
from app.models.referral import DecisionKind, Referral, ReferralChild
from app.models.signpost import Signpost, SignpostStatus
from app.models.webhook_events import (
    EVENT_DATA,
    CaseActionOverdue,
    CaseClosed,
    CaseOpened,
    CaseReviewOverdue,
    CaseSteppedUp,
    EventData,
    EventType,
    EventTypeRead,
    ReferralDecided,
    ReferralReceived,
    ReferralWithdrawn,
    SignpostRef,
    SignpostStatusChanged,
    message_schema,
)
from app.services import case_dates
from app.services.events import SubjectKind, record_event
from app.services.webhook_audience import READ_SCOPE


@dataclass(frozen=True)
class Spec:
    subject_kind: SubjectKind
    subject_field: str  # the payload field holding the subject's id
    description: str


CATALOGUE: dict[EventType, Spec] = {
    EventType.referral_received: Spec(
        SubjectKind.referral,
        "referral_id",
        "A referral was received: posted by a hub or a school, or made from an attendance flag.",
    ),
    EventType.referral_decided: Spec(
        SubjectKind.referral,
        "referral_id",
        "A referral was decided: accepted, declined (with the services the family was "
        "signposted to), stepped up to children's social care (when the step-up takes "
        "effect: at once for a manager, else on a manager's approval) or redirected.",
    ),
    EventType.referral_withdrawn: Spec(
        SubjectKind.referral, "referral_id", "The referrer withdrew a referral."
    ),
    EventType.case_opened: Spec(
        SubjectKind.case,
        "case_id",
        "A case was opened: directly, from an attendance flag, or by accepting a referral "
        "(not when an accepted referral joins a case already open).",
    ),
    EventType.case_closed: Spec(
        SubjectKind.case,
        "case_id",
        "A case was closed: when the closure takes effect (at once for a manager, else on a "
        "manager's approval).",
    ),
    EventType.case_stepped_up: Spec(
        SubjectKind.case,
        "case_id",
        "A case was stepped up to children's social care: its closure as "
        "`stepped_up_to_social_care` took effect (`case.closed` is sent too).",
    ),
    EventType.case_review_overdue: Spec(
        SubjectKind.case,
        "case_id",
        "An open case's family-plan review is overdue: sent once per missed due date.",
    ),
    EventType.case_action_overdue: Spec(
        SubjectKind.case,
        "case_id",
        "An action on an open case is overdue (still open after its due day): sent once per "
        "action.",
    ),
    EventType.attendance_flag_raised: Spec(
        SubjectKind.flag, "flag_id", "An absence flag was raised by a marks push."
    ),
    EventType.attendance_flag_resolved: Spec(
        SubjectKind.flag,
        "flag_id",
        "An absence flag was resolved: its condition stopped holding after a marks push.",
    ),
    EventType.signpost_status_changed: Spec(
        SubjectKind.signpost,
        "signpost_id",
        "A signpost to a partner service moved to a new status.",
    ),
}
_TYPE_OF: dict[type[EventData], EventType] = {model: t for t, model in EVENT_DATA.items()}


@cache
def catalogue() -> tuple[EventTypeRead, ...]:
    return tuple(
        EventTypeRead(
            type=event_type,
            description=spec.description,
            subject_kind=spec.subject_kind.value,
            scope=READ_SCOPE[spec.subject_kind].value,
            message_schema=message_schema(event_type),
        )
        for event_type, spec in CATALOGUE.items()
    )


def _subject(data: EventData) -> tuple[EventType, Spec, uuid.UUID]:
    event_type = _TYPE_OF[type(data)]
    spec = CATALOGUE[event_type]
    subject_id: uuid.UUID = getattr(data, spec.subject_field)
    return event_type, spec, subject_id


def record(
    session: AsyncSession,
    data: EventData,
    *,
    la_code: str | None,
    school_id: uuid.UUID | None = None,
    referrer: str | None = None,
    occurred_at: datetime | None = None,
) -> OutboxEvent:
    """Add the event to the session: it commits or rolls back with the change."""
    event_type, spec, subject_id = _subject(data)
    return record_event(
        session,
        event_type.value,
        subject_kind=spec.subject_kind,
        subject_id=subject_id,
        la_code=la_code,
        school_id=school_id,
        referrer=referrer,
        data=data.model_dump(mode="json"),
        occurred_at=occurred_at,
    )


def outbox_row(
    data: EventData, *, la_code: str | None, school_id: uuid.UUID | None, occurred_at: datetime
) -> dict[str, Any]:
    """The same event as a row for a bulk insert (the flag refresh writes thousands)."""
    event_type, spec, subject_id = _subject(data)
    return {
        "id": new_id(),
        "type": event_type.value,
        "occurred_at": occurred_at,
        "subject_kind": spec.subject_kind.value,
        "subject_id": subject_id,
        "la_code": la_code,
        "school_id": school_id,
        "referrer": None,
        "payload": data.model_dump(mode="json"),
    }


# --- referrals ------------------------------------------------------------------------------


def _referral_school(referral: Referral, held: Sequence[ReferralChild]) -> uuid.UUID | None:
    """The referral's school as its referrer reads it: only a client that sent a referral
    receives its events, and a referrer that named the children by name alone is not told
    that they are on a roll (see `children.present_child`)."""
    for child in held:
        if child.school_id is not None and child.school_id == referral.school_id:
            supplied = child.supplied or {}
            if "pupil_id" in supplied or "upn" in supplied:
                return referral.school_id
    return None


def _referral_owners(referral: Referral, school_id: uuid.UUID | None) -> dict[str, Any]:
    return {"la_code": referral.la_code, "school_id": school_id, "referrer": referral.referrer}


def referral_received(
    session: AsyncSession, referral: Referral, held: Sequence[ReferralChild]
) -> OutboxEvent:
    school_id = _referral_school(referral, held)
    data = ReferralReceived(
        referral_id=referral.id,
        la_code=referral.la_code,
        school_id=school_id,
        source=referral.source,
        urgency=referral.urgency,
    )
    return record(
        session, data, occurred_at=referral.received_at, **_referral_owners(referral, school_id)
    )


def referral_decided(
    session: AsyncSession, referral: Referral, held: Sequence[ReferralChild]
) -> OutboxEvent:
    assert referral.decision is not None
    school_id = _referral_school(referral, held)
    declined = referral.decision == DecisionKind.decline
    data = ReferralDecided(
        referral_id=referral.id,
        la_code=referral.la_code,
        school_id=school_id,
        decision=referral.decision,
        reason_category=referral.decision_category,
        signposts=[
            SignpostRef(service_id=uuid.UUID(str(s)))
            for s in (referral.signposted_service_ids if declined else [])
        ],
    )
    return record(
        session, data, occurred_at=referral.decided_at, **_referral_owners(referral, school_id)
    )


def referral_withdrawn(
    session: AsyncSession, referral: Referral, held: Sequence[ReferralChild]
) -> OutboxEvent:
    school_id = _referral_school(referral, held)
    data = ReferralWithdrawn(referral_id=referral.id, la_code=referral.la_code, school_id=school_id)
    return record(
        session, data, occurred_at=referral.withdrawn_at, **_referral_owners(referral, school_id)
    )


# --- cases ----------------------------------------------------------------------------------


def case_opened(
    session: AsyncSession, case: Case, referral_id: uuid.UUID | None = None
) -> OutboxEvent:
    data = CaseOpened(
        case_id=case.id,
        la_code=case.la_code,
        school_id=case.school_id,
        level_of_need=case.level_of_need,
        referral_id=referral_id,
        opened_on=case_dates.as_day(case.opened_at),
    )
    return record(session, data, la_code=case.la_code, school_id=case.school_id)


def case_closed(session: AsyncSession, case: Case) -> list[OutboxEvent]:
    """`case.closed`, and `case.stepped_up` too when the family went to social care."""
    assert case.closed_at is not None and case.closure_reason is not None
    day = case_dates.as_day(case.closed_at)
    owners: dict[str, Any] = {"la_code": case.la_code, "school_id": case.school_id}
    recorded = [
        record(
            session,
            CaseClosed(case_id=case.id, reason=case.closure_reason, closed_on=day, **owners),
            **owners,
        )
    ]
    if case.closure_reason == ClosureReason.stepped_up_to_social_care:
        recorded.append(
            record(session, CaseSteppedUp(case_id=case.id, stepped_up_on=day, **owners), **owners)
        )
    return recorded


def case_review_overdue(
    session: AsyncSession,
    case_id: uuid.UUID,
    la_code: str,
    school_id: uuid.UUID | None,
    due: date,
    last_review: date | None,
    now: datetime,
) -> OutboxEvent:
    data = CaseReviewOverdue(
        case_id=case_id,
        la_code=la_code,
        school_id=school_id,
        review_due_on=due,
        last_review_on=last_review,
    )
    return record(session, data, la_code=la_code, school_id=school_id, occurred_at=now)


def case_action_overdue(
    session: AsyncSession,
    action: CaseAction,
    la_code: str,
    school_id: uuid.UUID | None,
    now: datetime,
) -> OutboxEvent:
    assert action.due_on is not None
    data = CaseActionOverdue(
        case_id=action.case_id,
        action_id=action.id,
        la_code=la_code,
        school_id=school_id,
        due_on=action.due_on,
        owner_kind=action.owner_kind,
        owner_staff_id=action.owner_staff_id,
    )
    return record(session, data, la_code=la_code, school_id=school_id, occurred_at=now)


# --- signposts ------------------------------------------------------------------------------


def signpost_status_changed(
    session: AsyncSession, signpost: Signpost, case: Case, previous: SignpostStatus
) -> OutboxEvent:
    data = SignpostStatusChanged(
        signpost_id=signpost.id,
        case_id=case.id,
        service_id=signpost.service_id,
        status=signpost.status,
        previous_status=previous,
    )
    return record(session, data, la_code=case.la_code, school_id=case.school_id)
