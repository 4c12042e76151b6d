"""Schools: the unit of tenancy. Every child-level record hangs off one."""

from __future__ import annotations

import re
import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field as ColumnField

from app.models.base import InputModel, Timestamped, new_id


class Jurisdiction(StrEnum):
    england = "england"
    wales = "wales"
    scotland = "scotland"


class Phase(StrEnum):
    nursery = "nursery"
    primary = "primary"
    middle = "middle"
    secondary = "secondary"
    all_through = "all_through"
    special = "special"
    alternative_provision = "alternative_provision"
    post_16 = "post_16"


# England: six-digit URN; Wales: LA + establishment number (7 digits); Scotland: SEED code.
SCHOOL_CODE_PATTERNS = {
    Jurisdiction.england: re.compile(r"\d{6}"),
    Jurisdiction.wales: re.compile(r"\d{7}"),
    Jurisdiction.scotland: re.compile(r"\d{7}"),
}
LA_CODE_PATTERN = r"^[0-9A-Z]{1,10}$"


class School(Timestamped, table=True):
    __tablename__ = "school"
    __table_args__ = (UniqueConstraint("jurisdiction", "code"),)

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    code: str = ColumnField(max_length=16)
    name: str = ColumnField(max_length=200)
    la_code: str = ColumnField(max_length=10, index=True)
    jurisdiction: Jurisdiction = ColumnField(sa_type=String(16))
    phase: Phase = ColumnField(sa_type=String(32))


class SchoolCreate(InputModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    code: str = Field(
        min_length=1,
        max_length=16,
        description="URN (England), LA + establishment number (Wales) or SEED code (Scotland).",
        examples=["100000"],
    )
    name: str = Field(min_length=1, max_length=200, examples=["Riverside Primary School"])
    la_code: str = Field(pattern=LA_CODE_PATTERN, examples=["202"])
    jurisdiction: Jurisdiction
    phase: Phase

    @model_validator(mode="after")
    def _code_fits_jurisdiction(self) -> SchoolCreate:
        check_school_code(self.jurisdiction, self.code)
        return self


class SchoolUpdate(InputModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    code: str | None = Field(default=None, min_length=1, max_length=16)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    la_code: str | None = Field(default=None, pattern=LA_CODE_PATTERN)
    jurisdiction: Jurisdiction | None = None
    phase: Phase | None = None


class SchoolRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    la_code: str
    jurisdiction: Jurisdiction
    phase: Phase


class SchoolPage(BaseModel):
    items: list[SchoolRead]
    next_cursor: str | None


def check_school_code(jurisdiction: Jurisdiction, code: str) -> None:
    if not SCHOOL_CODE_PATTERNS[jurisdiction].fullmatch(code):
        kinds = {
            Jurisdiction.england: "a six-digit URN",
            Jurisdiction.wales: "a seven-digit LA and establishment number",
            Jurisdiction.scotland: "a seven-digit SEED code",
        }
        raise ValueError(f"a school code in {jurisdiction.value} is {kinds[jurisdiction]}")
