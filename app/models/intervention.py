"""Contacts and interventions with a family, and a child's re-integration timetable.

This record is the evidence an attendance officer needs before any formal step, so the
rules that make a contact safe and lawful (consent for online contact with a child, a
risk assessment before a home visit) are checked as it is written.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import Index, String, Text
from sqlmodel import Field as ColumnField
from sqlmodel import SQLModel

from app.models.base import InputModel, IsoDate, IsoDatetime, Moment, as_utc, new_id, utcnow
from app.models.referral import Json, Text200

FULL_TIME_HOURS = 32.5  # a typical full school week


class InterventionType(StrEnum):
    planned_home_visit = "planned_home_visit"
    doorstep_visit = "doorstep_visit"
    telephone_meeting = "telephone_meeting"
    video_meeting = "video_meeting"
    one_to_one_session = "one_to_one_session"
    group_session = "group_session"
    school_pick_up = "school_pick_up"
    reintegration_step = "reintegration_step"
    therapeutic_session = "therapeutic_session"
    enrichment_activity = "enrichment_activity"
    practical_support = "practical_support"
    multi_agency_meeting = "multi_agency_meeting"
    signs_of_safety_meeting = "signs_of_safety_meeting"
    letter = "letter"


class Location(StrEnum):
    home = "home"
    school = "school"
    community = "community"
    phone = "phone"
    online = "online"


REMOTE_TYPES = {InterventionType.telephone_meeting, InterventionType.video_meeting}
REMOTE_LOCATIONS = {Location.phone, Location.online}
HOME_TYPES = {InterventionType.planned_home_visit, InterventionType.doorstep_visit}
FORMAL_MEETINGS = {InterventionType.multi_agency_meeting, InterventionType.signs_of_safety_meeting}


class Intervention(SQLModel, table=True):
    __tablename__ = "intervention"
    __table_args__ = (Index("ix_intervention_case_id_occurred_at", "case_id", "occurred_at"),)

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    case_id: uuid.UUID = ColumnField(foreign_key="early_help_case.id", ondelete="CASCADE")
    type: InterventionType = ColumnField(sa_type=String(32))
    occurred_at: datetime
    minutes: int
    location: Location = ColumnField(sa_type=String(16))
    participants: list[str] = ColumnField(default_factory=list, sa_type=Json)
    child_ids: list[str] = ColumnField(default_factory=list, sa_type=Json)
    child_seen: bool = False
    agenda: str | None = ColumnField(default=None, sa_type=Text)
    record: str | None = ColumnField(default=None, sa_type=Text)
    actions: list[dict[str, Any]] = ColumnField(default_factory=list, sa_type=Json)
    parent_consent_recorded: bool = False
    risk_assessment_done: bool = False
    created_at: datetime = ColumnField(default_factory=utcnow)
    created_by: str = ColumnField(max_length=300)


class Timetable(SQLModel, table=True):
    """A child's phased return to full-time school: one row per child per case."""

    __tablename__ = "reintegration_timetable"

    case_id: uuid.UUID = ColumnField(
        foreign_key="early_help_case.id", ondelete="CASCADE", primary_key=True
    )
    child_id: uuid.UUID = ColumnField(foreign_key="pupil.id", ondelete="CASCADE", primary_key=True)
    full_time_hours: float
    steps: list[dict[str, Any]] = ColumnField(default_factory=list, sa_type=Json)
    updated_at: datetime = ColumnField(default_factory=utcnow)
    updated_by: str = ColumnField(max_length=300)


# --- API schemas -------------------------------------------------------------------------

LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]


class Action(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
    owner: Text200
    due: IsoDate | None = None
    done: bool = False


class InterventionCreate(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: InterventionType
    occurred_at: IsoDatetime
    minutes: int = Field(ge=0, le=1440)
    location: Location
    participants: list[Text200] = Field(default_factory=list, max_length=50)
    child_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)
    child_seen: bool = False
    agenda: LongText | None = None
    record: LongText | None = None
    actions: list[Action] = Field(default_factory=list, max_length=100)
    parent_consent_recorded: bool = Field(
        default=False, description="Needed for a phone or online contact with a child."
    )
    risk_assessment_done: bool = Field(default=False, description="Needed for a home visit.")

    @model_validator(mode="after")
    def _safe_and_complete(self) -> InterventionCreate:
        if as_utc(self.occurred_at) > utcnow():
            raise ValueError("occurred_at: a contact cannot be recorded before it happens")
        problem = safety_problem(
            self.type,
            self.location,
            with_child=bool(self.child_ids),
            parent_consent_recorded=self.parent_consent_recorded,
            risk_assessment_done=self.risk_assessment_done,
        )
        if problem:
            raise ValueError(problem)
        if self.type in FORMAL_MEETINGS and (not self.agenda or not self.record):
            raise ValueError("agenda and record: a formal meeting carries both")
        return self


def safety_problem(
    type: InterventionType,
    location: Location,
    *,
    with_child: bool,
    parent_consent_recorded: bool,
    risk_assessment_done: bool,
) -> str | None:
    """Why a contact may not take place as recorded: a phone or online contact with a child
    without the parent's recorded consent, or a home visit without a risk assessment."""
    remote = type in REMOTE_TYPES or location in REMOTE_LOCATIONS
    if remote and with_child and not parent_consent_recorded:
        return (
            "parent_consent_recorded: a phone or online contact with a child needs the "
            "parent's recorded consent"
        )
    home = type in HOME_TYPES or location == Location.home
    if home and not risk_assessment_done:
        return "risk_assessment_done: a home visit records that a risk assessment was done"
    return None


class InterventionRead(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    type: InterventionType
    occurred_at: Moment
    minutes: int
    location: Location
    participants: list[str]
    child_ids: list[uuid.UUID]
    child_seen: bool
    agenda: str | None
    record: str | None
    actions: list[Action]
    parent_consent_recorded: bool
    risk_assessment_done: bool
    created_at: Moment
    created_by: str


class InterventionList(BaseModel):
    items: list[InterventionRead]


class StepIn(InputModel):
    model_config = ConfigDict(extra="forbid")

    starts_on: IsoDate
    planned_hours: float = Field(ge=0, le=60)


class TimetableSet(InputModel):
    model_config = ConfigDict(extra="forbid")

    full_time_hours: float = Field(default=FULL_TIME_HOURS, ge=1, le=60)
    steps: list[StepIn] = Field(min_length=1, max_length=52)

    @model_validator(mode="after")
    def _phased(self) -> TimetableSet:
        for before, after in zip(self.steps, self.steps[1:], strict=False):
            if after.starts_on <= before.starts_on:
                raise ValueError("steps: each step starts after the one before")
        if any(s.planned_hours > self.full_time_hours for s in self.steps):
            raise ValueError("steps: planned hours cannot exceed the full-time week")
        return self


class StepRead(BaseModel):
    starts_on: date
    planned_hours: float
    percent_of_full_time: float


class TimetableRead(BaseModel):
    child_id: uuid.UUID
    full_time_hours: float
    steps: list[StepRead]
    current_step: int | None = Field(description="The latest step started on or before today.")
    current_hours: float
    on_full_timetable: bool
    full_time_from: date | None = Field(description="When the plan reaches the full week.")
