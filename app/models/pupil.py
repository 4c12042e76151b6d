"""Pupils on a school's roll, as the school's MIS knows them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field as ColumnField
from sqlmodel import SQLModel

from app.models.base import InputModel, IsoDate, Moment, Timestamped, new_id, utcnow

# Nursery, reception, National Curriculum years 1-14 (England and Wales), and Scotland's
# primary and secondary stages.
YEAR_GROUP_PATTERN = r"^(N1|N2|R|[1-9]|1[0-4]|P[1-7]|S[1-6])$"

PUPIL_FLAGS = ("free_school_meals", "looked_after", "young_carer", "forces_family", "send")
# What identifies a child: a change to any of these is kept in the rectification trail.
IDENTITY_FIELDS = ("given_name", "family_name", "date_of_birth", "upn")

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class Pupil(Timestamped, table=True):
    __tablename__ = "pupil"
    __table_args__ = (
        UniqueConstraint("school_id", "mis_id"),
        Index("ix_pupil_school_id_on_roll", "school_id", "on_roll"),
    )

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    school_id: uuid.UUID = ColumnField(foreign_key="school.id", ondelete="RESTRICT")
    mis_id: str = ColumnField(max_length=64)
    upn: str | None = ColumnField(default=None, max_length=13, index=True)
    given_name: str = ColumnField(max_length=100)
    family_name: str = ColumnField(max_length=100)
    date_of_birth: date
    year_group: str | None = ColumnField(default=None, max_length=4)
    free_school_meals: bool = False
    looked_after: bool = False
    young_carer: bool = False
    forces_family: bool = False
    send: bool = False
    on_roll: bool = True
    off_roll_at: datetime | None = None


class PupilIdentityChange(SQLModel, table=True):
    """One change to how a child is identified (name, date of birth, UPN): the value before
    and after, who made it and when. The rectification trail: nothing is overwritten
    silently, and the trail goes only with the pupil record itself."""

    __tablename__ = "pupil_identity_change"
    __table_args__ = (Index("ix_pupil_identity_change_pupil_id_id", "pupil_id", "id"),)

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    pupil_id: uuid.UUID = ColumnField(foreign_key="pupil.id", ondelete="CASCADE")
    changed_at: datetime = ColumnField(default_factory=utcnow)
    changed_by: str = ColumnField(max_length=300)
    source: str = ColumnField(max_length=16)
    field: str = ColumnField(max_length=32)
    previous: str | None = ColumnField(default=None, max_length=100)
    current: str | None = ColumnField(default=None, max_length=100)


class PupilRecord(InputModel):
    """One row of a roster push. Flags left out keep their current value (false for a new pupil)."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    mis_id: str = Field(
        min_length=1, max_length=64, description="The MIS's own id for the pupil at this school."
    )
    upn: str | None = Field(
        default=None,
        max_length=13,
        description="Unique Pupil Number (England and Wales), check letter included.",
        examples=["B801200005001"],
    )
    given_name: Name
    family_name: Name
    date_of_birth: IsoDate
    year_group: str | None = Field(default=None, pattern=YEAR_GROUP_PATTERN, examples=["7"])
    free_school_meals: bool | None = None
    looked_after: bool | None = None
    young_carer: bool | None = None
    forces_family: bool | None = None
    send: bool | None = Field(
        default=None, description="SEN (England), ALN (Wales) or ASN (Scotland) recorded."
    )


class RosterRejection(BaseModel):
    index: int = Field(description="Position of the rejected row in `pupils`.")
    reason: str


class RosterResult(BaseModel):
    received: int
    created: int
    updated: int
    unchanged: int
    off_roll: int = Field(description="Pupils on roll before this full push and missing from it.")
    rejected: list[RosterRejection]


class PupilRead(BaseModel):
    """A pupil. Names and date of birth are null unless the caller holds `cases:read`."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    school_id: uuid.UUID
    mis_id: str
    upn: str | None
    given_name: str | None
    family_name: str | None
    date_of_birth: date | None
    year_group: str | None
    free_school_meals: bool
    looked_after: bool
    young_carer: bool
    forces_family: bool
    send: bool
    on_roll: bool
    off_roll_at: datetime | None
    updated_at: datetime


class PupilPage(BaseModel):
    items: list[PupilRead]
    next_cursor: str | None


class IdentityChangeRead(BaseModel):
    """A change to how a child is identified. Dates are ISO 8601 text, as recorded."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    changed_at: Moment
    changed_by: str = Field(description="`staff:<id>` or `client:<id>`.")
    source: str = Field(description="`roster`: a push from the school's MIS.")
    field: str = Field(description="`given_name`, `family_name`, `date_of_birth` or `upn`.")
    previous: str | None
    current: str | None


class IdentityChangeList(BaseModel):
    pupil_id: uuid.UUID
    items: list[IdentityChangeRead]
