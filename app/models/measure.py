"""Scored instruments over time for a child (reading age, wellbeing, family-star-like
areas): scores only, against instruments kept as reference data."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import Index
from sqlmodel import Field as ColumnField
from sqlmodel import SQLModel

from app.models.base import InputModel, IsoDate, new_id, utcnow
from app.models.referral import Code, Json, LaCodeIn, OwningLa, Text200


class MeasureInstrument(SQLModel, table=True):
    """A scored instrument: national (`la_code` '') or one LA's own."""

    __tablename__ = "measure_instrument"

    la_code: str = ColumnField(default="", primary_key=True, max_length=10)
    code: str = ColumnField(primary_key=True, max_length=64)
    label: str = ColumnField(max_length=200)
    min_score: float
    max_score: float
    unit: str | None = ColumnField(default=None, max_length=32)
    domains: list[str] = ColumnField(default_factory=list, sa_type=Json)
    builtin: bool = False  # seeded by migration, not added by an admin


class Measure(SQLModel, table=True):
    __tablename__ = "measure"
    __table_args__ = (Index("ix_measure_case_id_measured_on", "case_id", "measured_on"),)

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    case_id: uuid.UUID = ColumnField(foreign_key="early_help_case.id", ondelete="CASCADE")
    child_id: uuid.UUID = ColumnField(foreign_key="pupil.id", ondelete="CASCADE", index=True)
    # A code of the national list or of the case's LA (checked when the measure is recorded).
    instrument: str = ColumnField(max_length=64)
    domain: str | None = ColumnField(default=None, max_length=64)
    score: float
    measured_on: date
    created_at: datetime = ColumnField(default_factory=utcnow)
    created_by: str = ColumnField(max_length=300)


# --- API schemas -------------------------------------------------------------------------


class InstrumentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    label: str
    min_score: float
    max_score: float
    unit: str | None
    domains: list[str]
    la_code: OwningLa


class InstrumentCreate(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: Code
    label: Text200
    min_score: float
    max_score: float
    unit: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    domains: list[Code] = Field(default_factory=list, max_length=50)
    la_code: LaCodeIn = None

    @model_validator(mode="after")
    def _range(self) -> InstrumentCreate:
        if self.max_score <= self.min_score:
            raise ValueError("max_score must be above min_score")
        return self


class InstrumentList(BaseModel):
    items: list[InstrumentRead]


class MeasureCreate(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    child_id: uuid.UUID
    instrument: Code
    domain: Code | None = None
    score: float
    measured_on: IsoDate


class MeasureRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    case_id: uuid.UUID
    child_id: uuid.UUID
    instrument: str
    domain: str | None
    score: float
    measured_on: date
    created_at: datetime
    created_by: str


class MeasureList(BaseModel):
    items: list[MeasureRead]
