"""Legal holds: a data protection officer's order that a child's, a family's or a case's
records are kept, whatever the retention schedule says, until the hold is lifted.

What each kind of hold keeps is decided in one place, `app/services/legal_holds.py`
(`held_pupils`, `held_cases`, `held_referrals`), and documented there.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, model_validator
from sqlalchemy import Index, String, Text
from sqlmodel import Field as ColumnField
from sqlmodel import SQLModel

from app.models.base import InputModel, Moment, new_id, utcnow


class HoldKind(StrEnum):
    child = "child"
    family = "family"
    case = "case"


class LegalHold(SQLModel, table=True):
    __tablename__ = "legal_hold"
    __table_args__ = (
        Index("ix_legal_hold_la_code_id", "la_code", "id"),
        Index("ix_legal_hold_lifted_at", "lifted_at"),
    )

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    la_code: str = ColumnField(max_length=10)
    # The subject's school when the hold was placed (null for an LA-level case or referral).
    school_id: uuid.UUID | None = None
    kind: HoldKind = ColumnField(sa_type=String(16))
    # The subject. No foreign keys: a hold outlives what it held once lifted, as history.
    pupil_id: uuid.UUID | None = ColumnField(default=None, index=True)
    case_id: uuid.UUID | None = ColumnField(default=None, index=True)
    referral_id: uuid.UUID | None = ColumnField(default=None, index=True)
    reason: str = ColumnField(sa_type=Text)
    placed_at: datetime = ColumnField(default_factory=utcnow)
    placed_by: str = ColumnField(max_length=300)
    lifted_at: datetime | None = None
    lifted_by: str | None = ColumnField(default=None, max_length=300)
    lift_reason: str | None = ColumnField(default=None, sa_type=Text)


HoldReason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class LegalHoldCreate(InputModel):
    """A hold on one subject: a child (`pupil_id`), a family (named by one of its cases,
    `case_id`, or one of its referrals, `referral_id`), or a case (`case_id`)."""

    kind: HoldKind
    pupil_id: uuid.UUID | None = None
    case_id: uuid.UUID | None = None
    referral_id: uuid.UUID | None = None
    reason: HoldReason = Field(examples=["Inquiry into the council's early-help services"])

    @model_validator(mode="after")
    def _one_subject(self) -> LegalHoldCreate:
        named = [
            name
            for name in ("pupil_id", "case_id", "referral_id")
            if getattr(self, name) is not None
        ]
        allowed = {
            HoldKind.child: {"pupil_id"},
            HoldKind.case: {"case_id"},
            HoldKind.family: {"case_id", "referral_id"},
        }[self.kind]
        if len(named) != 1 or named[0] not in allowed:
            wanted = " or ".join(f"`{n}`" for n in sorted(allowed))
            raise ValueError(f"a {self.kind.value} hold names exactly one subject: {wanted}")
        return self


class LegalHoldLift(InputModel):
    reason: HoldReason


class LegalHoldRead(BaseModel):
    id: uuid.UUID
    la_code: str
    kind: HoldKind
    pupil_id: uuid.UUID | None
    case_id: uuid.UUID | None
    referral_id: uuid.UUID | None
    reason: str
    placed_at: Moment
    placed_by: str
    lifted_at: Moment | None
    lifted_by: str | None
    lift_reason: str | None
    active: bool = Field(description="Whether the hold still stands.")


class LegalHoldPage(BaseModel):
    items: list[LegalHoldRead]
    next_cursor: str | None
