"""The attendance mark table's partitions on PostgreSQL: one per academic year (1 August to
31 July, `school_calendar.academic_year`), named `attendance_mark_<year it starts in>`, and a
DEFAULT partition that takes any mark no year's partition holds, so a push never fails for
want of one. Migration 0013 makes the years held marks need plus the current and the next;
`liaison attendance-partitions` makes later ones ahead of time.

SQLite keeps marks in one table: there is nothing to make there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import is_postgresql, run
from app.errors import ValidationFailed
from app.services.school_calendar import academic_year, school_today

PARENT = "attendance_mark"
DEFAULT = "attendance_mark_default"
FIRST_YEAR, LAST_YEAR = 2000, 2099  # a four-digit year, and a sane one


@dataclass(frozen=True)
class YearPartition:
    year: int
    name: str
    starts: date
    ends: date  # the first day after it
    created: bool
    moved: int  # marks moved out of the DEFAULT partition into it


def name_of(year: int) -> str:
    return f"{PARENT}_{year}"


def bounds(year: int) -> tuple[date, date]:
    return date(year, 8, 1), date(year + 1, 8, 1)


def years_ahead(ahead: int, today: date | None = None) -> list[int]:
    """The current academic year and the `ahead` after it."""
    current = academic_year(today or school_today())
    return list(range(current, current + ahead + 1))


def _check(year: int) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValidationFailed(f"year: {year} is not between {FIRST_YEAR} and {LAST_YEAR}.")


async def partitioned(session: AsyncSession) -> bool:
    if not is_postgresql(session):
        return False
    found = await run(
        session,
        text("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(:parent)"),
        {"parent": PARENT},
    )
    return found.first() is not None


async def existing(session: AsyncSession) -> set[str]:
    """The names of the mark table's partitions."""
    rows = await run(
        session,
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:parent)"
        ),
        {"parent": PARENT},
    )
    return {name for (name,) in rows}


async def ensure(session: AsyncSession, years: list[int]) -> list[YearPartition]:
    """Make each year's partition unless it exists (so running again changes nothing).

    A year whose marks already sit in the DEFAULT partition (PostgreSQL refuses to make a
    partition whose range has rows there) is made detached, the marks are moved into it,
    and it is attached. The DEFAULT partition is locked meanwhile: a push writing into it
    waits, one writing into any year's partition goes on."""
    for year in years:
        _check(year)
    if not await partitioned(session):
        raise ValidationFailed(
            "The attendance mark table is not partitioned on this database "
            "(SQLite keeps one table; on PostgreSQL run `liaison migrate`)."
        )
    have = await existing(session)
    out: list[YearPartition] = []
    for year in sorted(set(years)):
        name = name_of(year)
        starts, ends = bounds(year)
        if name in have:
            out.append(YearPartition(year, name, starts, ends, created=False, moved=0))
            continue
        moved = await _make(session, name, starts, ends, with_default=DEFAULT in have)
        out.append(YearPartition(year, name, starts, ends, created=True, moved=moved))
    return out


async def _make(
    session: AsyncSession, name: str, starts: date, ends: date, *, with_default: bool
) -> int:
    """Make the partition detached, move in what the DEFAULT partition holds of its range,
    then attach it: attaching locks the parent less than `CREATE TABLE ... PARTITION OF`
    (pushes into other years go on), and builds the parent's key and indexes on it."""
    # Names and bounds are made here from an int year, never taken from input.
    await run(
        session,
        text(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"),
    )
    moved = 0
    if with_default:
        # Writers into the DEFAULT partition wait until the new year is attached.
        await run(session, text(f"LOCK TABLE {DEFAULT} IN SHARE ROW EXCLUSIVE MODE"))
        result = await run(
            session,
            text(
                f"WITH moved AS (DELETE FROM {DEFAULT} "  # noqa: S608
                "WHERE date >= :starts AND date < :ends RETURNING *) "
                f"INSERT INTO {name} SELECT * FROM moved"
            ),
            {"starts": starts, "ends": ends},
        )
        moved = result.rowcount
    span = f"FROM ('{starts.isoformat()}') TO ('{ends.isoformat()}')"
    await run(session, text(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES {span}"))
    return moved
