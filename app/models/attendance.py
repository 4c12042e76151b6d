"""Session attendance: code tables, marks, running figures and the absence flags they raise."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field, with_config
from sqlalchemy import (
    JSON,
    Index,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlmodel import Field as ColumnField
from sqlmodel import SQLModel
from typing_extensions import TypedDict

from app.models.base import InputModel, IsoDate, new_id, utcnow
from app.models.school import Jurisdiction


class Category(StrEnum):
    """How a statutory code counts. Only `not_possible` leaves the possible sessions."""

    present = "present"
    approved_activity = "approved_activity"
    authorised_absence = "authorised_absence"
    unauthorised_absence = "unauthorised_absence"
    not_possible = "not_possible"


ATTENDED = frozenset({Category.present, Category.approved_activity})
ABSENT = frozenset({Category.authorised_absence, Category.unauthorised_absence})

Session = Literal["AM", "PM"]

# How a mark row stores its category and session: a fixed small number each, never the
# text (a national feed writes 18 million marks a school day). The numbers are part of the
# stored data: never renumber, only add. Raw SQL uses them through these mappings.
CATEGORY_NUMBER: dict[str, int] = {
    Category.not_possible: 0,
    Category.present: 1,
    Category.approved_activity: 2,
    Category.authorised_absence: 3,
    Category.unauthorised_absence: 4,
}
CATEGORY_OF_NUMBER: dict[int, Category] = {n: Category(c) for c, n in CATEGORY_NUMBER.items()}
SESSION_NUMBER: dict[str, int] = {"AM": 0, "PM": 1}
SESSION_OF_NUMBER: dict[int, str] = {n: s for s, n in SESSION_NUMBER.items()}


class CategoryNumber(TypeDecorator[Category]):
    """A `Category` stored as its number in `CATEGORY_NUMBER`; compared, bound and read
    back as the category, so queries through the table read as if it held the text."""

    impl = SmallInteger
    cache_ok = True

    def process_bind_param(self, value: str | int | None, dialect: Dialect) -> int | None:
        if value is None or isinstance(value, int):
            return value
        return CATEGORY_NUMBER[value]

    def process_result_value(self, value: int | None, dialect: Dialect) -> Category | None:
        return None if value is None else CATEGORY_OF_NUMBER[value]


class SessionNumber(TypeDecorator[str]):
    """A session (`AM`, `PM`) stored as its number in `SESSION_NUMBER` (AM sorts first)."""

    impl = SmallInteger
    cache_ok = True

    def process_bind_param(self, value: str | int | None, dialect: Dialect) -> int | None:
        if value is None or isinstance(value, int):
            return value
        return SESSION_NUMBER[value]

    def process_result_value(self, value: int | None, dialect: Dialect) -> str | None:
        return None if value is None else SESSION_OF_NUMBER[value]


class AttendanceCode(SQLModel, table=True):
    """One code of one jurisdiction's statutory table, valid from `effective_from` until the
    day before `effective_to`. Statutory rows come from migrations; admins add local rows."""

    __tablename__ = "attendance_code"
    __table_args__ = (UniqueConstraint("jurisdiction", "code", "effective_from"),)

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    jurisdiction: Jurisdiction = ColumnField(sa_type=String(16))
    code: str = ColumnField(max_length=4)
    description: str = ColumnField(max_length=300)
    category: Category = ColumnField(sa_type=String(24))
    late: bool = False
    unexplained: bool = False
    effective_from: date
    effective_to: date | None = None
    code_set: str = ColumnField(max_length=40)
    statutory: bool = True
    created_at: datetime = ColumnField(default_factory=utcnow)


class SchoolCodeMapping(SQLModel, table=True):
    """A school's own display code and the statutory code it stands for."""

    __tablename__ = "school_attendance_code"
    __table_args__ = (PrimaryKeyConstraint("school_id", "display_code"),)

    school_id: uuid.UUID = ColumnField(foreign_key="school.id", ondelete="CASCADE")
    display_code: str = ColumnField(max_length=8)
    statutory_code: str = ColumnField(max_length=4)
    description: str | None = ColumnField(default=None, max_length=200)
    updated_at: datetime = ColumnField(default_factory=utcnow)


class AttendanceMark(SQLModel, table=True):
    """One pupil's mark for one session. The statutory meaning is resolved on the way in and
    kept beside the school's own code, so figures never reinterpret a letter.

    The row is kept narrow (category and session as small numbers, one timestamp) and, on
    PostgreSQL, the table is partitioned by academic year (`app/services/
    attendance_partitions.py`); the key includes the partition key, `date`."""

    __tablename__ = "attendance_mark"
    __table_args__ = (
        PrimaryKeyConstraint("pupil_id", "date", "session"),
        Index("ix_attendance_mark_school_id_date", "school_id", "date"),
    )

    # No foreign keys: marks are written only for pupils read from the table in the same
    # transaction, and a trigger on `pupil` deletes a pupil's marks with it (see migration
    # 0002). A per-row key check and its lock on the pupil row cost a fifth of every push.
    # Fields in the order a subject access export has always shown them; on disk fixed
    # widths come first (migration 0013 decides the physical order).
    pupil_id: uuid.UUID
    date: date
    session: str = ColumnField(sa_type=SessionNumber)
    # The pupil's school when the mark was taken, for school-wide reads.
    school_id: uuid.UUID
    code: str = ColumnField(max_length=8)
    statutory_code: str = ColumnField(max_length=4)
    category: Category = ColumnField(sa_type=CategoryNumber)
    late: bool = False
    unexplained: bool = False
    minutes_late: int | None = ColumnField(default=None, sa_type=SmallInteger)
    comment: str | None = ColumnField(default=None, max_length=500)
    source_record_id: str | None = ColumnField(default=None, max_length=64)
    # When the mark was last written (created or changed): the one time kept.
    updated_at: datetime = ColumnField(default_factory=utcnow)


# On PostgreSQL the mark table's partitions (`attendance_mark_2026`, `attendance_mark_default`)
# are storage, made by migrations and `liaison attendance-partitions`, not models.
MARK_PARTITION = re.compile(r"attendance_mark_(?:\d{4}|default)")


def in_models(name: str | None, type_: str, parent_names: Any) -> bool:  # noqa: ARG001
    """Alembic's `include_name`: what schema comparison looks at (not mark partitions)."""
    return not (type_ == "table" and name is not None and MARK_PARTITION.fullmatch(name))


class AttendanceWeek(SQLModel, table=True):
    """Running counts per pupil per week (Monday), kept in step with the marks by every push,
    so flags never rescan a pupil's whole year."""

    __tablename__ = "attendance_week"
    __table_args__ = (PrimaryKeyConstraint("pupil_id", "week_start"),)

    pupil_id: uuid.UUID = ColumnField(foreign_key="pupil.id", ondelete="CASCADE")
    week_start: date
    academic_year: int
    possible: int = 0
    attended: int = 0
    unauthorised: int = 0


class FlagKind(StrEnum):
    persistent_absence = "persistent_absence"
    severe_absence = "severe_absence"
    unexplained_absence = "unexplained_absence"
    sharp_decline = "sharp_decline"


class FlagStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class AttendanceFlag(SQLModel, table=True):
    """One episode of a flag: raised when its condition became true, resolved when it no
    longer holds. A condition that comes back raises a new episode; old ones are kept."""

    __tablename__ = "attendance_flag"
    __table_args__ = (
        # At most one live episode per pupil and kind.
        Index(
            "uq_attendance_flag_live",
            "pupil_id",
            "kind",
            unique=True,
            postgresql_where=text("status <> 'resolved'"),
            sqlite_where=text("status <> 'resolved'"),
        ),
        Index("ix_attendance_flag_status_id", "status", "id"),
        Index("ix_attendance_flag_school_id_status", "school_id", "status"),
    )

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    pupil_id: uuid.UUID = ColumnField(foreign_key="pupil.id", ondelete="CASCADE")
    school_id: uuid.UUID = ColumnField(foreign_key="school.id", ondelete="RESTRICT")
    kind: FlagKind = ColumnField(sa_type=String(32))
    status: FlagStatus = ColumnField(sa_type=String(16))
    academic_year: int
    raised_at: datetime
    evidence: dict[str, Any] = ColumnField(
        default_factory=dict, sa_type=JSON().with_variant(JSONB(), "postgresql")
    )
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = ColumnField(default=None, max_length=200)
    note: str | None = ColumnField(default=None, max_length=2000)
    # The case opened for (or acknowledged into) this flag, if any.
    case_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="early_help_case.id", ondelete="SET NULL"
    )
    resolved_at: datetime | None = None
    updated_at: datetime = ColumnField(default_factory=utcnow)


class AttendanceFlagEvent(SQLModel, table=True):
    """The history of a flag: raised, acknowledged, resolved, with who and the figures."""

    __tablename__ = "attendance_flag_event"

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    flag_id: uuid.UUID = ColumnField(foreign_key="attendance_flag.id", ondelete="CASCADE")
    event: str = ColumnField(max_length=16)
    occurred_at: datetime
    actor: str | None = ColumnField(default=None, max_length=200)
    evidence: dict[str, Any] = ColumnField(
        default_factory=dict, sa_type=JSON().with_variant(JSONB(), "postgresql")
    )


# --- API schemas -------------------------------------------------------------------------


@with_config(ConfigDict(extra="forbid", str_strip_whitespace=True))
class MarkIn(TypedDict):
    """One session mark as a school's MIS sends it. A typed dict rather than a model: a
    push holds up to 50,000 of them, and dicts validate several times faster."""

    school_code: Annotated[str, Field(min_length=1, max_length=16, examples=["990001"])]
    mis_id: NotRequired[Annotated[str, Field(min_length=1, max_length=64)] | None]
    upn: NotRequired[Annotated[str, Field(min_length=13, max_length=13)] | None]
    date: IsoDate
    session: Session
    code: Annotated[
        str, Field(min_length=1, max_length=8, description="The school's display code.")
    ]
    statutory_code: NotRequired[
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=4,
                description="The statutory code, when the display code is the school's own.",
            ),
        ]
        | None
    ]
    minutes_late: NotRequired[Annotated[int, Field(ge=0, le=300)] | None]
    comment: NotRequired[Annotated[str, Field(max_length=500)] | None]
    source_record_id: NotRequired[Annotated[str, Field(min_length=1, max_length=64)] | None]


class MarkRejection(BaseModel):
    index: int = Field(description="Position of the rejected mark in the push (from 0).")
    reason: str


class IngestResult(BaseModel):
    received: int
    created: int
    updated: int
    unchanged: int
    rejected: list[MarkRejection]


class CodeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    jurisdiction: Jurisdiction
    code: str
    description: str
    category: Category
    counts_as_possible: bool
    late: bool
    unexplained: bool
    effective_from: date
    effective_to: date | None
    code_set: str
    statutory: bool


class CodeList(BaseModel):
    on: date = Field(description="The date the codes are valid on.")
    items: list[CodeRead]


class CodeCreate(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    jurisdiction: Jurisdiction
    code: str = Field(min_length=1, max_length=4, pattern=r"^[!-~]{1,4}$")
    description: str = Field(min_length=1, max_length=300)
    category: Category
    late: bool = False
    unexplained: bool = False
    effective_from: IsoDate
    effective_to: IsoDate | None = None
    code_set: str = Field(min_length=1, max_length=40)


class SchoolCodeIn(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    display_code: str = Field(min_length=1, max_length=8)
    statutory_code: str = Field(min_length=1, max_length=4)
    description: str | None = Field(default=None, max_length=200)


class SchoolCodeMap(InputModel):
    codes: list[SchoolCodeIn] = Field(max_length=500)


class SchoolCodeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    display_code: str
    statutory_code: str
    description: str | None


class SchoolCodeList(BaseModel):
    school_id: uuid.UUID
    items: list[SchoolCodeRead]


class Figures(BaseModel):
    possible_sessions: int
    present_sessions: int
    approved_activity_sessions: int
    authorised_absence_sessions: int
    unauthorised_absence_sessions: int
    late_sessions: int
    attendance_rate: float | None = Field(
        description="(present + approved activity) / possible, percent to one decimal."
    )
    band: str | None = Field(
        description="`full` (100%), `expected` (95% and over), `at_risk` (over 90%), "
        "`persistent_absence` (10% or more missed), `severe_absence` (50% or more missed)."
    )


class WeekFigures(Figures):
    week_start: date


class TermFigures(Figures):
    academic_year: str = Field(examples=["2026/27"])
    term: Literal["autumn", "spring", "summer", "term_1", "term_2", "term_3", "term_4"] = Field(
        description="England and Wales: autumn, spring (to Easter), summer. Scotland: "
        "term_1 (to 20 October), term_2, term_3 (to Easter), term_4."
    )
    starts: date
    ends: date


class PupilAttendance(Figures):
    pupil_id: uuid.UUID
    school_id: uuid.UUID
    from_date: date = Field(alias="from")
    to_date: date = Field(alias="to")
    weeks: list[WeekFigures]
    terms: list[TermFigures]
    detail_disposed_before: date | None = Field(
        default=None,
        description="Marks dated before this day have been disposed of under the retention "
        "schedule (a held child's apart): figures for earlier dates count only what is left.",
    )

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class SchoolPupilFigures(Figures):
    pupil_id: uuid.UUID


class SchoolAttendance(BaseModel):
    school_id: uuid.UUID
    from_date: date = Field(alias="from")
    to_date: date = Field(alias="to")
    detail_disposed_before: date | None = Field(
        default=None,
        description="Marks dated before this day have been disposed of under the retention "
        "schedule (held children's apart): figures for earlier dates count only what is left.",
    )
    items: list[SchoolPupilFigures]
    next_cursor: str | None

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class FlagRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    pupil_id: uuid.UUID
    school_id: uuid.UUID
    kind: FlagKind
    status: FlagStatus
    academic_year: int = Field(description="The year the academic year starts in.")
    raised_at: datetime
    evidence: dict[str, Any] = Field(description="The figures that raised the flag.")
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    note: str | None
    case_id: uuid.UUID | None
    resolved_at: datetime | None


class FlagEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    event: str
    occurred_at: datetime
    actor: str | None
    evidence: dict[str, Any]


class FlagDetail(FlagRead):
    history: list[FlagEventRead]


class FlagPage(BaseModel):
    items: list[FlagRead]
    next_cursor: str | None


class FlagAcknowledge(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    note: str = Field(min_length=1, max_length=2000, description="What was done or decided.")
    case_id: uuid.UUID | None = Field(
        default=None, description="A case within reach that this flag is being handled in."
    )
