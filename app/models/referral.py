"""Referrals for early help: who asked, about which children and why, and what was decided.

The reference data a referral is checked against (concerns, levels of need) lives here
too: both are lists an LA tunes, seeded with sensible defaults by migration 0003.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlalchemy import JSON, Index, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field as ColumnField
from sqlmodel import SQLModel

from app.models.base import InputModel, IsoDate, Moment, new_id, utcnow
from app.models.school import ANY_LA_CODE_PATTERN

Json = JSON().with_variant(JSONB(), "postgresql")
Code = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z][a-z0-9_]{0,63}$")]
# Reference data is national (stored as '') or one LA's own.
OwningLa = Annotated[
    str | None,
    BeforeValidator(lambda value: value or None),
    Field(description="The LA whose own entry this is; null for a national one."),
]
LaCodeIn = Annotated[
    str | None,
    Field(
        default=None,
        pattern=ANY_LA_CODE_PATTERN,
        description="The LA the entry is for: the caller's own (the default). National "
        "entries are added by the operator with the CLI.",
    ),
]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class ReferralStatus(StrEnum):
    received = "received"
    under_review = "under_review"
    awaiting_approval = "awaiting_approval"
    accepted = "accepted"
    declined = "declined"
    stepped_up = "stepped_up"
    redirected = "redirected"
    withdrawn = "withdrawn"


UNDECIDED = (ReferralStatus.received, ReferralStatus.under_review)


class ReferralSource(StrEnum):
    hub = "hub"
    school = "school"
    attendance_flag = "attendance_flag"


class Urgency(StrEnum):
    routine = "routine"
    priority = "priority"
    urgent = "urgent"


class DecisionKind(StrEnum):
    accept = "accept"
    decline = "decline"
    step_up = "step_up"
    redirect = "redirect"


# The reason category a decision may carry (`reason_category`), from a fixed list per kind,
# so that reports can count why referrals were declined, stepped up or redirected. An
# acceptance takes none: its reason is that the family gets early help.
DECISION_CATEGORIES: dict[DecisionKind, tuple[str, ...]] = {
    DecisionKind.accept: (),
    DecisionKind.decline: (
        "threshold_not_met",
        "needs_met_elsewhere",
        "already_supported",
        "consent_withdrawn",
        "out_of_area",
        "other",
    ),
    DecisionKind.step_up: ("risk_of_significant_harm", "needs_beyond_early_help", "other"),
    DecisionKind.redirect: ("out_of_area", "another_service_better_placed", "other"),
}
# What the report calls a decision recorded without a category.
NOT_GIVEN = "not_given"

DECISION_STATUS = {
    DecisionKind.accept: ReferralStatus.accepted,
    DecisionKind.decline: ReferralStatus.declined,
    DecisionKind.step_up: ReferralStatus.stepped_up,
    DecisionKind.redirect: ReferralStatus.redirected,
}


# --- tables ------------------------------------------------------------------------------


class ReferralConcern(SQLModel, table=True):
    """A concern a referral may name: national (`la_code` '') or one LA's own."""

    __tablename__ = "referral_concern"

    la_code: str = ColumnField(default="", primary_key=True, max_length=10)
    code: str = ColumnField(primary_key=True, max_length=64)
    label: str = ColumnField(max_length=200)
    active: bool = True
    builtin: bool = False  # seeded by migration, not added by an admin


class NeedLevel(SQLModel, table=True):
    """A level of need. `la_code` '' is the default set, used by LAs with none of their own."""

    __tablename__ = "need_level"
    __table_args__ = (UniqueConstraint("la_code", "code"),)

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    la_code: str = ColumnField(default="", max_length=10)
    code: str = ColumnField(max_length=64)
    label: str = ColumnField(max_length=200)
    rank: int
    builtin: bool = False  # seeded by migration, not added by an admin


class Referral(SQLModel, table=True):
    __tablename__ = "referral"
    __table_args__ = (
        # Retrying with the same reference finds the first referral; NULLs never collide.
        UniqueConstraint("referrer", "external_reference"),
        Index("ix_referral_la_code_id", "la_code", "id"),
        Index("ix_referral_school_id_id", "school_id", "id"),
        Index("ix_referral_status_id", "status", "id"),
    )

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    la_code: str = ColumnField(max_length=10)
    # The school of the first child on a roll, if any.
    school_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="school.id", ondelete="RESTRICT"
    )
    referrer: str = ColumnField(max_length=300)
    source: ReferralSource = ColumnField(sa_type=String(16))
    external_reference: str | None = ColumnField(default=None, max_length=100)
    status: ReferralStatus = ColumnField(sa_type=String(24))
    version: int = 1
    level_of_need: str = ColumnField(max_length=64)
    urgency: Urgency = ColumnField(sa_type=String(16))
    summary: str = ColumnField(sa_type=Text)
    concerns: list[str] = ColumnField(default_factory=list, sa_type=Json)
    family: list[dict[str, Any]] = ColumnField(default_factory=list, sa_type=Json)
    consent: dict[str, Any] = ColumnField(default_factory=dict, sa_type=Json)
    re_referral: bool = False
    previous_case_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="early_help_case.id", ondelete="SET NULL"
    )
    attendance_flag_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="attendance_flag.id", ondelete="SET NULL"
    )
    received_at: datetime = ColumnField(default_factory=utcnow)
    updated_at: datetime = ColumnField(default_factory=utcnow)
    decision: DecisionKind | None = ColumnField(default=None, sa_type=String(16))
    decision_reason: str | None = ColumnField(default=None, sa_type=Text)
    # The decision's reason category (`DECISION_CATEGORIES`): kept on de-identification.
    decision_category: str | None = ColumnField(default=None, max_length=32)
    decided_by: str | None = ColumnField(default=None, max_length=300)
    decided_at: datetime | None = None
    decision_seconds: int | None = None
    signposted_service_ids: list[str] = ColumnField(default_factory=list, sa_type=Json)
    redirected_to: str | None = ColumnField(default=None, max_length=300)
    lead_practitioner_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="staff_member.id", ondelete="SET NULL"
    )
    case_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="early_help_case.id", ondelete="SET NULL", index=True
    )
    pending_decision: dict[str, Any] | None = ColumnField(default=None, sa_type=Json)
    withdrawn_at: datetime | None = None
    withdrawal_reason: str | None = ColumnField(default=None, max_length=2000)
    # When the retention run de-identified the referral (see `Case.deidentified_at`).
    deidentified_at: datetime | None = None


class NamedChild(SQLModel):
    """A child as a referral or case names them: a pupil on a roll (`pupil_id`), or a child
    known only by name. Names are kept either way: the record outlives a roll change."""

    pupil_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="pupil.id", ondelete="SET NULL", index=True
    )
    school_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="school.id", ondelete="RESTRICT", index=True
    )
    upn: str | None = ColumnField(default=None, max_length=13)
    given_name: str = ColumnField(max_length=100)
    family_name: str = ColumnField(max_length=100)
    date_of_birth: date | None = None


class ReferralChild(NamedChild, table=True):
    __tablename__ = "referral_child"
    __table_args__ = (UniqueConstraint("referral_id", "position"),)

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    referral_id: uuid.UUID = ColumnField(foreign_key="referral.id", ondelete="CASCADE")
    position: int
    # The reference exactly as the referrer gave it (pupil id, UPN and school code, or name
    # and date of birth): all a referrer without `cases:read` is shown of the child.
    supplied: dict[str, Any] | None = ColumnField(default=None, sa_type=Json)


# --- API schemas -------------------------------------------------------------------------

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class ChildByPupil(InputModel):
    model_config = ConfigDict(extra="forbid")

    pupil_id: uuid.UUID


class ChildByUpn(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    upn: str = Field(min_length=13, max_length=13)
    school_code: str = Field(min_length=1, max_length=16)


class ChildByName(InputModel):
    model_config = ConfigDict(extra="forbid")

    given_name: Name
    family_name: Name
    date_of_birth: IsoDate


ChildRef = ChildByPupil | ChildByUpn | ChildByName


class ChildRead(BaseModel):
    """A child on a referral or case. Callers without `cases:read` see only what they
    supplied themselves (a referrer) or nothing but ids; what they may not see is null."""

    model_config = ConfigDict(from_attributes=True)

    pupil_id: uuid.UUID | None
    school_id: uuid.UUID | None
    upn: str | None
    given_name: str | None
    family_name: str | None
    date_of_birth: date | None
    on_roll: bool | None = Field(
        description="Whether the child is linked to a pupil on a roll (null when not shown)."
    )


class FamilyMember(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Text200
    relationship: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
    ]
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    preferred_contact: Literal["phone", "text", "email", "letter", "in_person"] | None = None
    language: str | None = Field(default=None, max_length=100)
    interpreter_needed: bool = False


class Consent(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    given: bool
    given_by: Text200
    date: IsoDate
    share_with: list[Text200] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _not_in_future(self) -> Consent:
        if self.date > utcnow().date():
            raise ValueError("consent date may not be in the future")
        return self


class ReferralCreate(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_reference: str | None = Field(
        default=None, min_length=1, max_length=100, description="The referrer's own reference."
    )
    children: list[ChildRef] = Field(min_length=1, max_length=20)
    family: list[FamilyMember] = Field(default_factory=list, max_length=20)
    concerns: list[Code] = Field(min_length=1, max_length=30)
    level_of_need: Code
    consent: Consent
    urgency: Urgency
    summary: str = Field(min_length=1, max_length=10_000)
    attendance_flag_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _consented(self) -> ReferralCreate:
        if not self.consent.given:
            raise ValueError(
                "early help needs the family's consent; without it, refer to children's social care"
            )
        return self


class DecisionRead(BaseModel):
    decision: DecisionKind
    reason: str
    reason_category: str | None = Field(
        description="The reason's category (see `ReferralDecide.reason_category`); null when "
        "none was given."
    )
    decided_by: str
    decided_at: Moment
    decision_seconds: int
    signposted_service_ids: list[str]
    redirected_to: str | None
    lead_practitioner_id: uuid.UUID | None
    case_id: uuid.UUID | None


class PendingDecision(BaseModel):
    decision: DecisionKind
    reason: str
    reason_category: str | None = None
    requested_by: str
    requested_at: Moment


class HistoryItem(BaseModel):
    at: Moment
    actor: str
    event: str
    from_status: str | None
    to_status: str | None
    reason: str | None


class ReferralRead(BaseModel):
    id: uuid.UUID
    status: ReferralStatus
    version: int
    external_reference: str | None
    source: ReferralSource
    referrer: str
    la_code: str
    school_id: uuid.UUID | None
    children: list[ChildRead]
    family: list[FamilyMember] | None
    concerns: list[str]
    level_of_need: str
    consent: Consent
    urgency: Urgency
    summary: str
    re_referral: bool | None = Field(
        description="A child's case closed within the last 12 months (with `cases:read` only)."
    )
    previous_case_id: uuid.UUID | None = Field(
        description="That case, when it is within the caller's reach."
    )
    attendance_flag_id: uuid.UUID | None
    received_at: Moment
    updated_at: Moment
    decision: DecisionRead | None
    pending_decision: PendingDecision | None
    withdrawn_at: Moment | None
    withdrawal_reason: str | None
    deidentified_at: Moment | None = Field(
        description="When the retention run de-identified the referral (names, narrative "
        "and family gone; source, status, reasons and dates kept)."
    )
    history: list[HistoryItem] | None = Field(
        default=None, description="On the single-referral read only."
    )


class ReferralPage(BaseModel):
    items: list[ReferralRead]
    next_cursor: str | None


class ReferralDecide(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    decision: DecisionKind
    reason: Reason
    reason_category: Code | None = Field(
        default=None,
        description="Recommended: the reason's category, for the referrals report. decline: "
        + ", ".join(DECISION_CATEGORIES[DecisionKind.decline])
        + "; step_up: "
        + ", ".join(DECISION_CATEGORIES[DecisionKind.step_up])
        + "; redirect: "
        + ", ".join(DECISION_CATEGORIES[DecisionKind.redirect])
        + "; accept: none. A decision without one is counted as `not_given`.",
    )
    lead_practitioner_id: uuid.UUID | None = None
    signposted_service_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50)
    redirected_to: str | None = Field(default=None, min_length=1, max_length=300)

    @model_validator(mode="after")
    def _redirect_names_where(self) -> ReferralDecide:
        if self.decision == DecisionKind.redirect and not self.redirected_to:
            raise ValueError("a redirect names where the referral went (redirected_to)")
        return self

    @field_validator("reason_category")
    @classmethod
    def _category_of_the_kind(cls, category: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("decision")
        if category is None or kind is None:
            return category
        allowed = DECISION_CATEGORIES[kind]
        if category not in allowed:
            if not allowed:
                raise ValueError(f"a decision to {kind} takes no reason_category")
            raise ValueError(f"for a decision to {kind}, one of: " + ", ".join(allowed))
        return category


class Approval(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    approve: bool
    note: Reason


class Withdrawal(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: Reason


class ConcernRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    label: str
    active: bool
    la_code: OwningLa


class ConcernCreate(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: Code
    label: Text200
    la_code: LaCodeIn = None


class ConcernList(BaseModel):
    items: list[ConcernRead]


class NeedLevelRead(BaseModel):
    code: str
    label: str
    rank: int
    la_code: OwningLa


class NeedLevelCreate(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: Code
    label: Text200
    rank: int = Field(ge=0, le=100)
    la_code: LaCodeIn = None


class NeedLevelList(BaseModel):
    items: list[NeedLevelRead]
