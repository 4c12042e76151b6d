"""Planned contacts and meetings: a contact or meeting scheduled ahead (when, where, the
agenda, who is invited), then held, rescheduled, or marked as not having happened.

A meeting is the plan; what happened is the contact record (`intervention`) written when
it is held, so the contact list and everything that reads it (closure dates, subject
access, retention) see a held meeting as any other contact. The meeting keeps the plan's
history (each earlier time), who was invited and who attended, a visit's outcome, and why a
meeting did not happen.

    scheduled --held--> held
    scheduled --did-not-happen--> did_not_happen
    scheduled --reschedule--> scheduled (the earlier time kept in `previous_times`)
    scheduled --the case closes--> did_not_happen (`cancelled_by_service`, "case closed")
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import Index, String, Text
from sqlmodel import Field as ColumnField
from sqlmodel import SQLModel

from app.models.base import InputModel, IsoDatetime, Moment, as_utc, new_id, utcnow
from app.models.intervention import (
    FORMAL_MEETINGS,
    HOME_TYPES,
    Action,
    InterventionType,
    Location,
    LongText,
)
from app.models.referral import Json, Reason, Text200

# A plan is made ahead: one recorded late may be up to a week old (a visit planned last
# week and missed is still worth marking as not having happened); older is a contact to
# record as held, not a plan. Nothing is planned more than two years out.
SCHEDULE_PAST = timedelta(days=7)
SCHEDULE_AHEAD = timedelta(days=2 * 366)


class MeetingStatus(StrEnum):
    scheduled = "scheduled"
    held = "held"
    did_not_happen = "did_not_happen"


class NotHappenedReason(StrEnum):
    no_answer = "no_answer"  # nobody at the door, or on the phone
    family_declined = "family_declined"
    cancelled_by_family = "cancelled_by_family"
    cancelled_by_service = "cancelled_by_service"
    other = "other"


class VisitOutcome(StrEnum):
    """What came of a doorstep or home visit that took place."""

    seen = "seen"
    not_seen = "not_seen"
    refused = "refused"


class PersonKind(StrEnum):
    team_member = "team_member"  # on the case's team around the family
    child = "child"  # a child on the case
    family_member = "family_member"  # an adult in the family lists of the case's referrals
    named = "named"  # anyone else, by name and role


class Meeting(SQLModel, table=True):
    __tablename__ = "meeting"
    __table_args__ = (Index("ix_meeting_case_id_scheduled_at", "case_id", "scheduled_at"),)

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    case_id: uuid.UUID = ColumnField(foreign_key="early_help_case.id", ondelete="CASCADE")
    type: InterventionType = ColumnField(sa_type=String(32))
    status: MeetingStatus = ColumnField(sa_type=String(16))
    scheduled_at: datetime
    minutes: int | None = None  # planned length
    location: Location = ColumnField(sa_type=String(16))
    place: str | None = ColumnField(default=None, max_length=300)
    agenda: str | None = ColumnField(default=None, sa_type=Text)
    child_ids: list[str] = ColumnField(default_factory=list, sa_type=Json)
    invitees: list[dict[str, Any]] = ColumnField(default_factory=list, sa_type=Json)
    attendees: list[dict[str, Any]] = ColumnField(default_factory=list, sa_type=Json)
    parent_consent_recorded: bool = False
    risk_assessment_done: bool = False
    # Each earlier time and place, with when and by whom it was moved and why.
    previous_times: list[dict[str, Any]] = ColumnField(default_factory=list, sa_type=Json)
    visit_outcome: VisitOutcome | None = ColumnField(default=None, sa_type=String(16))
    not_happened_reason: NotHappenedReason | None = ColumnField(default=None, sa_type=String(32))
    not_happened_note: str | None = ColumnField(default=None, sa_type=Text)
    # The contact record written when the meeting was held.
    intervention_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="intervention.id", ondelete="SET NULL"
    )
    created_at: datetime = ColumnField(default_factory=utcnow)
    created_by: str = ColumnField(max_length=300)
    updated_at: datetime = ColumnField(default_factory=utcnow)


# --- API schemas -------------------------------------------------------------------------

Place = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class TeamMemberPerson(InputModel):
    model_config = ConfigDict(extra="forbid")

    team_member_id: uuid.UUID = Field(description="A member of the case's team.")


class ChildPerson(InputModel):
    model_config = ConfigDict(extra="forbid")

    child_id: uuid.UUID = Field(description="A child on the case (pupil id).")


class FamilyPerson(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    family_member: Text200 = Field(
        description="An adult's name as in the family list of a referral that led to the case "
        "(case and spacing ignored)."
    )


class NamedPerson(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Text200
    role: Text200 = Field(examples=["grandmother", "interpreter", "SENCo"])


PersonRef = TeamMemberPerson | ChildPerson | FamilyPerson | NamedPerson


def _check_schedule(scheduled_at: datetime, field: str) -> None:
    moment = as_utc(scheduled_at)
    now = utcnow()
    if moment < now - SCHEDULE_PAST:
        raise ValueError(
            f"{field}: a plan is made ahead; one more than {SCHEDULE_PAST.days} days ago is a "
            "contact to record as held (POST /v1/cases/{id}/interventions)"
        )
    if moment > now + SCHEDULE_AHEAD:
        raise ValueError(f"{field}: nothing is planned more than two years ahead")


class MeetingSchedule(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: InterventionType
    scheduled_at: IsoDatetime = Field(description="When it is planned (a time zone, or UTC).")
    minutes: int | None = Field(default=None, ge=0, le=1440, description="Planned length.")
    location: Location
    place: Place | None = Field(default=None, description="Where: an address, a room.")
    agenda: LongText | None = Field(
        default=None, description="Needed for a formal meeting (multi-agency, Signs of Safety)."
    )
    child_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)
    invitees: list[PersonRef] = Field(default_factory=list, max_length=50)
    parent_consent_recorded: bool = False
    risk_assessment_done: bool = False

    @model_validator(mode="after")
    def _a_plan(self) -> MeetingSchedule:
        _check_schedule(self.scheduled_at, "scheduled_at")
        if self.type in FORMAL_MEETINGS and not self.agenda:
            raise ValueError("agenda: a formal meeting is planned with its agenda")
        return self


class MeetingReschedule(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    scheduled_at: IsoDatetime
    location: Location | None = Field(default=None, description="Default: unchanged.")
    place: Place | None = Field(default=None, description="Default: unchanged.")
    reason: Reason | None = None

    @model_validator(mode="after")
    def _a_plan(self) -> MeetingReschedule:
        _check_schedule(self.scheduled_at, "scheduled_at")
        return self


class MeetingHeld(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    occurred_at: IsoDatetime | None = Field(
        default=None,
        description="When it took place; default the planned time, or now if that is still "
        "ahead. Not in the future.",
    )
    minutes: int | None = Field(default=None, ge=0, le=1440, description="Default: as planned.")
    record: LongText | None = Field(
        default=None, description="The written record; needed for a formal meeting."
    )
    actions: list[Action] = Field(default_factory=list, max_length=100)
    attendees: list[PersonRef] = Field(default_factory=list, max_length=50)
    visit_outcome: VisitOutcome | None = Field(
        default=None, description="Needed for a doorstep or home visit: seen, not_seen, refused."
    )
    child_seen: bool | None = Field(
        default=None,
        description="Default: a visit's outcome is `seen`, or a child on the case attended.",
    )
    parent_consent_recorded: bool | None = Field(default=None, description="Default: as planned.")
    risk_assessment_done: bool | None = Field(default=None, description="Default: as planned.")

    @model_validator(mode="after")
    def _not_ahead(self) -> MeetingHeld:
        if self.occurred_at is not None and as_utc(self.occurred_at) > utcnow():
            raise ValueError("occurred_at: a meeting is recorded as held once it has happened")
        return self


class MeetingNotHappened(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: NotHappenedReason
    note: Reason | None = Field(default=None, description="Needed when the reason is `other`.")

    @model_validator(mode="after")
    def _explained(self) -> MeetingNotHappened:
        if self.reason == NotHappenedReason.other and not self.note:
            raise ValueError("note: say why, when the reason is `other`")
        return self


class PersonRead(BaseModel):
    """Someone invited to or attending a meeting. `name` and `role` are as recorded (a team
    member's, a family member's relationship); a child is named by `child_id` alone."""

    kind: PersonKind
    team_member_id: uuid.UUID | None = None
    child_id: uuid.UUID | None = None
    name: str | None = None
    role: str | None = None
    invited: bool | None = Field(
        default=None, description="For an attendee: whether they were invited."
    )


class PreviousTime(BaseModel):
    scheduled_at: Moment
    location: Location
    place: str | None
    rescheduled_at: Moment
    rescheduled_by: str
    reason: str | None


class MeetingRead(BaseModel):
    id: uuid.UUID = Field(description="What an action names as its source (`meeting`).")
    case_id: uuid.UUID
    type: InterventionType
    status: MeetingStatus
    scheduled_at: Moment
    minutes: int | None
    location: Location
    place: str | None
    agenda: str | None
    child_ids: list[uuid.UUID]
    invitees: list[PersonRead]
    attendees: list[PersonRead]
    parent_consent_recorded: bool
    risk_assessment_done: bool
    previous_times: list[PreviousTime]
    visit_outcome: VisitOutcome | None
    not_happened_reason: NotHappenedReason | None
    not_happened_note: str | None
    intervention_id: uuid.UUID | None = Field(
        description="Once held: the contact record (in `/interventions`) with the written "
        "record and action plan."
    )
    occurred_at: Moment | None = Field(description="Once held: when it took place.")
    record: str | None = Field(description="Once held: the written record.")
    actions: list[Action] = Field(description="Once held: the action plan.")
    created_at: Moment
    created_by: str
    updated_at: Moment


class MeetingList(BaseModel):
    items: list[MeetingRead]


def home_visit(type: InterventionType, location: Location) -> bool:
    return type in HOME_TYPES or location == Location.home
