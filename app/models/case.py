"""Early-help cases (an episode of help for a family) and the casework event record.

`casework_event` is the chronology's source of truth for referrals and cases: every change
of either writes one row in the same transaction, so the evidence record can never miss a
step that happened.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Index, String, Text
from sqlmodel import Field as ColumnField
from sqlmodel import SQLModel

from app.models.base import InputModel, IsoDate, Moment, new_id, utcnow
from app.models.referral import ChildRead, ChildRef, Code, Consent, Json, NamedChild, Reason


class CaseStatus(StrEnum):
    open = "open"
    closed = "closed"


# Where a family went on closure: an organisation or a team, e.g. "Family Partnership Team",
# "Oak Primary as lead".
Destination = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class ClosureReason(StrEnum):
    stepped_up_to_social_care = "stepped_up_to_social_care"
    stepped_down_to_school = "stepped_down_to_school"
    transferred = "transferred"
    needs_met = "needs_met"
    moved_out_of_area = "moved_out_of_area"
    disengaged = "disengaged"
    consent_withdrawn = "consent_withdrawn"
    other = "other"


class Case(SQLModel, table=True):
    __tablename__ = "early_help_case"
    __table_args__ = (
        Index("ix_early_help_case_la_code_id", "la_code", "id"),
        Index("ix_early_help_case_school_id_id", "school_id", "id"),
        Index("ix_early_help_case_status_id", "status", "id"),
    )

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    la_code: str = ColumnField(max_length=10)
    school_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="school.id", ondelete="RESTRICT"
    )
    status: CaseStatus = ColumnField(sa_type=String(16))
    version: int = 1
    level_of_need: str = ColumnField(max_length=64)
    lead_practitioner_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="staff_member.id", ondelete="SET NULL", index=True
    )
    consent: dict[str, Any] = ColumnField(default_factory=dict, sa_type=Json)
    consent_given: bool = True
    summary: str | None = ColumnField(default=None, sa_type=Text)
    opened_at: datetime = ColumnField(default_factory=utcnow)
    opened_by: str = ColumnField(max_length=300)
    closed_at: datetime | None = ColumnField(default=None, index=True)
    closure_reason: ClosureReason | None = ColumnField(default=None, sa_type=String(32))
    closure_note: str | None = ColumnField(default=None, sa_type=Text)
    # Where the family went (an organisation, never a person): kept when the case is
    # de-identified, so the closures report can say where cases were transferred or
    # stepped down to.
    closure_destination: str | None = ColumnField(default=None, max_length=300)
    # When the retention run de-identified the case (names, narratives, consent gone; the
    # figures reports count kept). Null while the case holds its full record.
    deidentified_at: datetime | None = None
    pending_closure: dict[str, Any] | None = ColumnField(default=None, sa_type=Json)
    reopened_count: int = 0
    # The due date of the last review whose lateness `case.review_overdue` announced: each
    # lapse is announced once (app/services/review_overdue.py).
    review_overdue_notified_due: date | None = None
    # The case's own review interval in weeks (2-12); null follows the service setting
    # (`LIAISON_REVIEW_INTERVAL_WEEKS`), so a change of that setting moves these cases too.
    review_interval_weeks: int | None = None
    updated_at: datetime = ColumnField(default_factory=utcnow)


class CaseChild(NamedChild, table=True):
    __tablename__ = "case_child"
    __table_args__ = (Index("ix_case_child_case_id_position", "case_id", "position"),)

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    case_id: uuid.UUID = ColumnField(foreign_key="early_help_case.id", ondelete="CASCADE")
    position: int


class CaseworkEvent(SQLModel, table=True):
    """One step in a referral's or a case's life: who did what, when, and why."""

    __tablename__ = "casework_event"
    __table_args__ = (
        Index("ix_casework_event_case_id_id", "case_id", "id"),
        Index("ix_casework_event_referral_id_id", "referral_id", "id"),
    )

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    occurred_at: datetime = ColumnField(default_factory=utcnow)
    actor: str = ColumnField(max_length=300)
    case_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="early_help_case.id", ondelete="CASCADE"
    )
    referral_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="referral.id", ondelete="CASCADE"
    )
    event: str = ColumnField(max_length=64)
    summary: str = ColumnField(max_length=500)
    details: dict[str, Any] = ColumnField(default_factory=dict, sa_type=Json)


# --- API schemas -------------------------------------------------------------------------


# A case's own review interval: monthly reviews for some families, up to the 12 weeks the
# guidance allows.
MIN_REVIEW_WEEKS, MAX_REVIEW_WEEKS = 2, 12
ReviewWeeks = Annotated[int, Field(ge=MIN_REVIEW_WEEKS, le=MAX_REVIEW_WEEKS)]


class CaseCreate(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    children: list[ChildRef] = Field(min_length=1, max_length=20)
    level_of_need: Code
    consent: Consent
    lead_practitioner_id: uuid.UUID | None = None
    summary: str | None = Field(default=None, min_length=1, max_length=10_000)
    attendance_flag_id: uuid.UUID | None = None
    opened_on: IsoDate | None = Field(
        default=None,
        description="The day the case opened; default today. A past day (bringing an "
        "existing caseload in) needs `cases:approve`; a future day is refused.",
    )
    review_interval_weeks: ReviewWeeks | None = Field(
        default=None,
        description="The case's own review interval in weeks (2-12); omitted or null follows "
        "the service setting.",
    )


class CaseUpdate(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    lead_practitioner_id: uuid.UUID | None = None
    level_of_need: Code | None = None
    children: list[ChildRef] | None = Field(default=None, min_length=1, max_length=20)
    consent: Consent | None = None
    review_interval_weeks: ReviewWeeks | None = Field(
        default=None,
        description="The case's own review interval in weeks (2-12); null returns the case to "
        "the service setting.",
    )


class ClosureRequest(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: ClosureReason
    note: Reason
    closed_on: IsoDate | None = Field(
        default=None,
        description="The day the case closed; default today (for a pending closure, the day "
        "a manager approves it). A past day needs `cases:approve`; it may not be in the "
        "future, before the case opened, or before the case's latest review, contact or "
        "measure.",
    )
    destination: Destination | None = Field(
        default=None,
        description="Where the family went: the team or school now leading "
        "(e.g. `Family Partnership Team`, `Oak Primary as lead`). Required when the reason is "
        "`transferred` or `stepped_down_to_school`; optional otherwise (for "
        "`stepped_up_to_social_care` it is the LA's children's social care unless stated).",
    )


class Reopen(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: Reason


class PendingClosure(BaseModel):
    reason: ClosureReason
    note: str
    closed_on: date | None = None
    destination: str | None = None
    requested_by: str
    requested_at: datetime


class CaseRead(BaseModel):
    id: uuid.UUID
    status: CaseStatus
    version: int
    la_code: str
    school_id: uuid.UUID | None
    level_of_need: str
    lead_practitioner_id: uuid.UUID | None
    children: list[ChildRead]
    consent: Consent
    consent_given: bool
    summary: str | None
    opened_on: date = Field(description="The day the case opened (past when backdated).")
    opened_at: Moment
    opened_by: str
    closed_on: date | None
    closed_at: Moment | None
    closure_reason: ClosureReason | None
    closure_note: str | None
    closure_destination: str | None = Field(
        description="Where the family went on closure (a team or school); kept when the case "
        "is de-identified."
    )
    pending_closure: PendingClosure | None
    reopened_count: int
    deidentified_at: Moment | None = Field(
        description="When the retention run de-identified the closed case (names, narratives "
        "and contact records gone; reasons, dates and scores kept). Such a case is not reopened."
    )
    referral_ids: list[uuid.UUID]
    last_review_on: date | None
    review_interval_weeks: int = Field(
        description="The review interval in effect for this case, in weeks: its own (2-12) or "
        "the service setting."
    )
    review_interval_is_default: bool = Field(
        description="True when the case follows the service setting (it has no interval of its "
        "own)."
    )
    next_review_due: date = Field(
        description="The last review (or the opening) plus the case's review interval."
    )
    review_overdue: bool
    updated_at: Moment


class CasePage(BaseModel):
    items: list[CaseRead]
    next_cursor: str | None


class ChronologyItem(BaseModel):
    at: datetime
    actor: str
    source: str = Field(description="`referral`, `case` or `attendance_flag`.")
    event: str
    summary: str
    referral_id: uuid.UUID | None = None
    flag_id: uuid.UUID | None = None
    pupil_id: uuid.UUID | None = None


class Chronology(BaseModel):
    case_id: uuid.UUID
    items: list[ChronologyItem]
