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
# LA codes by jurisdiction: England and Wales number their LAs with the DfE's three-digit LA
# code (202 Camden, 660 Isle of Anglesey); Scotland's school lists number its 32 councils with
# three digits too (100 Aberdeen City ... 400 West Lothian) [unverified: not in the research].
# The CLI and the API (app/services/schools.py) check these.
LA_CODE_PATTERNS = {
    Jurisdiction.england: re.compile(r"\d{3}"),
    Jurisdiction.wales: re.compile(r"\d{3}"),
    Jurisdiction.scotland: re.compile(r"\d{3}"),
}
# An LA code as any jurisdiction numbers its LAs: what the API takes where the jurisdiction
# is not known (an LA's own reference data), and the first check where it is.
ANY_LA_CODE_PATTERN = (
    "^(?:" + "|".join(sorted({p.pattern for p in LA_CODE_PATTERNS.values()})) + ")$"
)
SCHOOL_CODE_KINDS = {
    Jurisdiction.england: "a six-digit URN",
    Jurisdiction.wales: "a seven-digit LA and establishment number",
    Jurisdiction.scotland: "a seven-digit SEED code",
}
LA_CODE_KINDS = {
    Jurisdiction.england: "the three-digit DfE LA code, e.g. 202",
    Jurisdiction.wales: "the three-digit DfE LA code, e.g. 660",
    Jurisdiction.scotland: "the three-digit council code, e.g. 100",
}
LA_CODE_HELP = (
    "three digits: the DfE LA code in England and Wales (e.g. 202), the council's code in "
    "Scotland (e.g. 100)"
)


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
    la_code: str = Field(
        pattern=ANY_LA_CODE_PATTERN,
        description="The LA's code: the three-digit DfE LA code in England and Wales, the "
        "three-digit council code in Scotland. A Welsh school's code begins with it.",
        examples=["202"],
    )
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
    la_code: str | None = Field(default=None, pattern=ANY_LA_CODE_PATTERN)
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
        raise ValueError(
            f"a school code in {jurisdiction.value} is {SCHOOL_CODE_KINDS[jurisdiction]}"
        )


def check_la_code(jurisdiction: Jurisdiction | None, code: str) -> None:
    """An LA code as `jurisdiction` numbers its LAs (any jurisdiction's form when None)."""
    if jurisdiction is None:
        if not any(pattern.fullmatch(code) for pattern in LA_CODE_PATTERNS.values()):
            raise ValueError(f"an LA code is {LA_CODE_HELP}")
    elif not LA_CODE_PATTERNS[jurisdiction].fullmatch(code):
        raise ValueError(f"an LA code in {jurisdiction.value} is {LA_CODE_KINDS[jurisdiction]}")


def check_school_in_la(jurisdiction: Jurisdiction, code: str, la_code: str) -> None:
    """A Welsh school's code begins with its LA's code (LA + establishment number)."""
    if jurisdiction is Jurisdiction.wales and not code.startswith(la_code):
        raise ValueError(f"a Welsh school code starts with its LA code ({la_code})")
