"""Attendance marks for scale (issue 16): a narrower row (category and session as small
numbers, one timestamp, fixed widths first) and, on PostgreSQL, a table partitioned by
academic year (1 August to 31 July, as `school_calendar.academic_year`), with one partition
for every year that held marks need, the current and the next year, and a DEFAULT partition
so that no push ever fails for want of one (`liaison attendance-partitions` makes later
years and moves any rows out of the default).

Every mark is kept: the old table is renamed, the new one filled from it with the mapping,
and the old one dropped. The downgrade does the reverse (a mark's `created_at` becomes its
`updated_at`, the only time kept).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 12:00:00.000000
"""

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Fixed here, as stored: app.models.attendance.CATEGORY_NUMBER and SESSION_NUMBER.
CATEGORIES = {
    "not_possible": 0,
    "present": 1,
    "approved_activity": 2,
    "authorised_absence": 3,
    "unauthorised_absence": 4,
}
SESSIONS = {"AM": 0, "PM": 1}

OLD = "attendance_mark_0012"
NEW = "attendance_mark_0013"


def _case(column: str, mapping: dict[str, int], reverse: bool = False) -> str:
    pairs = ((n, f"'{t}'") if reverse else (f"'{t}'", n) for t, n in mapping.items())
    return f"CASE {column} " + " ".join(f"WHEN {a} THEN {b}" for a, b in pairs) + " END"


def _narrow_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("pupil_id", sa.Uuid(), nullable=False),
        sa.Column("school_id", sa.Uuid(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("session", sa.SmallInteger(), nullable=False),
        sa.Column("category", sa.SmallInteger(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("unexplained", sa.Boolean(), nullable=False),
        sa.Column("minutes_late", sa.SmallInteger(), nullable=True),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("statutory_code", sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
        sa.Column("comment", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("source_record_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.PrimaryKeyConstraint("pupil_id", "date", "session", name="pk_attendance_mark"),
    ]


def _wide_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("pupil_id", sa.Uuid(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("session", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
        sa.Column("school_id", sa.Uuid(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("statutory_code", sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
        sa.Column("category", sa.String(length=24), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("unexplained", sa.Boolean(), nullable=False),
        sa.Column("minutes_late", sa.Integer(), nullable=True),
        sa.Column("comment", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("source_record_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pupil_id", "date", "session", name="pk_attendance_mark"),
    ]


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _set_aside(name: str) -> None:
    """Rename today's table out of the way, with the names its key and index hold (both
    databases keep index names per schema), so the new table can take them."""
    op.drop_index("ix_attendance_mark_school_id_date", table_name="attendance_mark")
    if _postgresql():
        op.execute(f"ALTER TABLE attendance_mark RENAME TO {name}")
        op.execute(f"ALTER TABLE {name} RENAME CONSTRAINT pk_attendance_mark TO pk_{name}")
    else:
        # SQLite rewrites a trigger's body when a table it names is renamed: the pupil
        # trigger is put back once the new table holds the name.
        op.execute("DROP TRIGGER pupil_erases_marks")
        op.execute(f"ALTER TABLE attendance_mark RENAME TO {name}")


def _finish(name: str) -> None:
    op.create_index("ix_attendance_mark_school_id_date", "attendance_mark", ["school_id", "date"])
    op.drop_table(name)
    if not _postgresql():
        op.execute(
            "CREATE TRIGGER pupil_erases_marks AFTER DELETE ON pupil "
            "BEGIN DELETE FROM attendance_mark WHERE pupil_id = OLD.id; END"
        )
    # On PostgreSQL the trigger's function names the table at run time: nothing to redo.


def _academic_year(day: date) -> int:
    return day.year if day.month >= 8 else day.year - 1


def _create_partitions() -> None:
    """One partition per academic year the held marks need, plus this year and the next,
    and the DEFAULT partition for anything else."""
    held = op.get_bind().execute(
        sa.text(
            "SELECT DISTINCT CAST(CASE WHEN extract(month FROM date) >= 8 "
            "THEN extract(year FROM date) ELSE extract(year FROM date) - 1 END AS integer) "
            "FROM attendance_mark_0012"
        )
    )
    this_year = _academic_year(date.today())
    years = {int(year) for (year,) in held} | {this_year, this_year + 1}
    for year in sorted(years):
        op.execute(
            f"CREATE TABLE attendance_mark_{year} PARTITION OF attendance_mark "
            f"FOR VALUES FROM ('{year}-08-01') TO ('{year + 1}-08-01')"
        )
    op.execute("CREATE TABLE attendance_mark_default PARTITION OF attendance_mark DEFAULT")


def upgrade() -> None:
    _set_aside(OLD)
    partitioned = {"postgresql_partition_by": "RANGE (date)"} if _postgresql() else {}
    op.create_table("attendance_mark", *_narrow_columns(), **partitioned)
    if _postgresql():
        _create_partitions()
    op.execute(
        f"""
        INSERT INTO attendance_mark (pupil_id, school_id, date, session, category, late,
            unexplained, minutes_late, updated_at, code, statutory_code, comment,
            source_record_id)
        SELECT pupil_id, school_id, date, {_case("session", SESSIONS)},
            {_case("category", CATEGORIES)}, late, unexplained,
            CAST(minutes_late AS smallint), updated_at, code, statutory_code, comment,
            source_record_id
        FROM {OLD}
        """  # noqa: S608 (names and numbers fixed above, never input)
    )
    # The index is built once over the loaded rows (on PostgreSQL a partitioned index: one
    # per partition, and on every partition made later).
    _finish(OLD)


def downgrade() -> None:
    _set_aside(NEW)
    op.create_table("attendance_mark", *_wide_columns())
    op.execute(
        f"""
        INSERT INTO attendance_mark (pupil_id, date, session, school_id, code,
            statutory_code, category, late, unexplained, minutes_late, comment,
            source_record_id, created_at, updated_at)
        SELECT pupil_id, date, {_case("session", SESSIONS, reverse=True)}, school_id, code,
            statutory_code, {_case("category", CATEGORIES, reverse=True)}, late, unexplained,
            minutes_late, comment, source_record_id, updated_at, updated_at
        FROM {NEW}
        """  # noqa: S608 (names and numbers fixed above, never input)
    )
    # Dropping the partitioned table drops its partitions with it.
    _finish(NEW)
