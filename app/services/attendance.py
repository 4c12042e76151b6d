"""Attendance marks: the batch upsert from school MIS integrations, and the figures read
back for a pupil or a school.

A push is validated item by item (a bad mark is rejected with its reason, the good ones are
kept), resolved against the code tables, upserted by (pupil, date, session), and the
pupil's weekly running counts move by the difference between old and new marks. Flags are
then brought up to date for the pupils whose marks changed, from those running counts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import and_, bindparam, case, func, text
from sqlalchemy import select as core_select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.config import Settings
from app.db import chunks, is_postgresql, run, table_of
from app.errors import BadRequest, NotFound
from app.models.attendance import (
    ATTENDED,
    CATEGORY_NUMBER,
    SESSION_NUMBER,
    AttendanceMark,
    AttendanceWeek,
    Category,
    IngestResult,
    MarkIn,
    MarkRejection,
    PupilAttendance,
    SchoolAttendance,
    SchoolPupilFigures,
    TermFigures,
    WeekFigures,
)
from app.models.base import UNSTORABLE_TEXT, unstorable, utcnow
from app.models.pupil import Pupil
from app.models.school import Jurisdiction, School
from app.pagination import decode_position, encode_position
from app.reach import reach_condition, reach_params, within_reach
from app.security import Principal
from app.services import attendance_flags, retention
from app.services.attendance_codes import CodeBook, Meaning
from app.services.school_calendar import (
    Term,
    academic_year,
    academic_year_start,
    band,
    rate,
    school_today,
    term_of,
    week_start,
)

MAX_RANGE_DAYS = 3 * 366


_MARKS = TypeAdapter(list[MarkIn])
_MARK = TypeAdapter(MarkIn)


def _reason(exc: ValidationError) -> str:
    # Field paths and messages only, never the input: a comment may name a child.
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "mark"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


# Marks validated at a time: each slice's raw dicts are let go once it is validated, so a
# 50,000-mark push never holds all of its raw and validated marks at once; and between
# slices the worker turns to its other requests (a read waits for one slice, not a push).
VALIDATE_SLICE = 2000
# Marks resolved to their pupils between two turns to the worker's other requests.
RESOLVE_SLICE = 2000


async def validate_shapes(
    items: list[Any],
) -> tuple[list[tuple[int, MarkIn]], list[MarkRejection]]:
    """Check every item's fields, a slice at a time. Each slice is validated at once (fast);
    only when that fails are its items validated one by one to find which to reject. Then a
    mark whose text the database cannot store is rejected, naming the field.

    The raw items of each slice are replaced by None once validated (the list keeps its
    length): the caller's copy of a big push is given up as it is read."""
    shaped: list[tuple[int, MarkIn]] = []
    rejected: list[MarkRejection] = []
    for start in range(0, len(items), VALIDATE_SLICE):
        raw = items[start : start + VALIDATE_SLICE]
        try:
            shaped.extend(enumerate(_MARKS.validate_python(raw), start))
        except ValidationError:
            for index, item in enumerate(raw, start):
                try:
                    shaped.append((index, _MARK.validate_python(item)))
                except ValidationError as exc:
                    rejected.append(MarkRejection(index=index, reason=_reason(exc)))
        items[start : start + len(raw)] = [None] * len(raw)
        del raw
        await asyncio.sleep(0)
    unstorable_at = {
        index: name for index, mark in shaped if (name := _unstorable_field(mark)) is not None
    }
    if unstorable_at:
        rejected += [
            MarkRejection(index=index, reason=f"{name}: {UNSTORABLE_TEXT}")
            for index, name in unstorable_at.items()
        ]
        shaped = [(index, mark) for index, mark in shaped if index not in unstorable_at]
    return shaped, rejected


def _unstorable_field(mark: MarkIn) -> str | None:
    # On the hot path: the ASCII test keeps the surrogate search off almost every string.
    for name, value in mark.items():
        if type(value) is str and ("\x00" in value or (not value.isascii() and unstorable(value))):
            return name
    return None


COLUMNS = (
    "pupil_id",
    "date",
    "session",
    "school_id",
    "code",
    "statutory_code",
    "category",
    "late",
    "unexplained",
    "minutes_late",
    "comment",
    "source_record_id",
)


class _Batch:
    """Accepted marks, one tuple per mark in `COLUMNS` order."""

    def __init__(self) -> None:
        self.marks: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self.marks)


@dataclass
class _Written:
    created: int = 0
    updated: int = 0
    pupil_ids: set[uuid.UUID] = field(default_factory=set)


async def _schools_by_code(
    session: AsyncSession, principal: Principal, codes: set[str]
) -> dict[str, School | str]:
    """Each code's school within reach, or the reason a mark naming it is rejected. Schools
    outside reach read exactly like unknown ones."""
    found: dict[str, list[School]] = defaultdict(list)
    for school in (
        await session.exec(
            select(School).where(col(School.code).in_(codes), within_reach(School.id, principal))
        )
    ).all():
        found[school.code].append(school)
    out: dict[str, School | str] = {}
    for code in codes:
        matches = found.get(code, [])
        if len(matches) == 1:
            out[code] = matches[0]
        elif matches:
            out[code] = f"school_code: {code!r} names schools in more than one jurisdiction"
        else:
            out[code] = f"school_code: no school {code!r} within your reach"
    return out


@dataclass
class _Roll:
    """One school's pupils by MIS id and by UPN. Each pupil also gets a small ordinal, so
    the duplicate check hashes ints rather than UUIDs."""

    school: School
    book: CodeBook
    by_mis: dict[str, tuple[uuid.UUID, int]] = field(default_factory=dict)
    by_upn: dict[str, tuple[uuid.UUID, int]] = field(default_factory=dict)
    meanings: dict[tuple[str, str | None, date], Meaning | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.school_id: uuid.UUID = self.school.id
        self.jurisdiction = Jurisdiction(self.school.jurisdiction).value

    def meaning(self, mark: MarkIn) -> Meaning | str:
        """What the mark's code means on its date, remembered for the rest of the push."""
        code, explicit, day = mark["code"], mark.get("statutory_code"), mark["date"]
        key = (code, explicit, day)
        found = self.meanings.get(key)
        if found is None:
            statutory = explicit or self.book.statutory_for(self.school_id, code)
            found = self.book.meaning(self.jurisdiction, statutory, day)
            if explicit and isinstance(found, str):
                found = "statutory_" + found  # the reason names the field that was sent
            self.meanings[key] = found
        return found

    def find(self, mark: MarkIn) -> tuple[uuid.UUID, int] | str:
        mis_id, upn = mark.get("mis_id"), mark.get("upn")
        if mis_id is None and upn is None:
            return "mis_id or upn is required"
        from_mis = from_upn = None
        if mis_id is not None:
            from_mis = self.by_mis.get(mis_id)
            if from_mis is None:
                return "mis_id: no such pupil at this school"
        if upn is not None:
            from_upn = self.by_upn.get(upn.upper())
            if from_upn is None:
                return "upn: no such pupil at this school"
            if from_mis is not None and from_mis[1] != from_upn[1]:
                return "mis_id and upn name different pupils"
        found = from_mis or from_upn
        assert found is not None
        return found


async def _rolls(
    session: AsyncSession, schools: list[School], book: CodeBook
) -> dict[uuid.UUID, _Roll]:
    rolls = {school.id: _Roll(school, book) for school in schools}
    if not rolls:
        return rolls
    rows = await session.exec(
        select(col(Pupil.id), col(Pupil.school_id), col(Pupil.mis_id), col(Pupil.upn)).where(
            col(Pupil.school_id).in_(list(rolls))
        )
    )
    for ordinal, (pupil_id, school_id, mis_id, upn) in enumerate(rows):
        roll = rolls[school_id]
        roll.by_mis[mis_id] = (pupil_id, ordinal)
        if upn:
            roll.by_upn[upn] = (pupil_id, ordinal)
    return rolls


async def _resolve(
    marks: list[tuple[int, MarkIn]],
    by_code: dict[str, _Roll | str],
    today: date,
    rejected: list[MarkRejection],
) -> _Batch:
    """The marks to write, each resolved to its pupil and statutory meaning; the rest added
    to `rejected` with the reason."""
    batch = _Batch()
    seen: dict[tuple[int, date, str], int] = {}
    for position, (index, mark) in enumerate(marks, 1):
        if position % RESOLVE_SLICE == 0:
            await asyncio.sleep(0)
        roll = by_code[mark["school_code"]]
        if isinstance(roll, str):
            rejected.append(MarkRejection(index=index, reason=roll))
            continue
        found = roll.find(mark)
        if isinstance(found, str):
            rejected.append(MarkRejection(index=index, reason=found))
            continue
        day = mark["date"]
        if day > today:
            rejected.append(MarkRejection(index=index, reason="date: is in the future"))
            continue
        meaning = roll.meaning(mark)
        if isinstance(meaning, str):
            rejected.append(MarkRejection(index=index, reason=meaning))
            continue
        pupil_id, ordinal = found
        key = (ordinal, day, mark["session"])
        first = seen.get(key)
        if first is not None:
            reason = f"a mark for this pupil, date and session is already at index {first}"
            rejected.append(MarkRejection(index=index, reason=reason))
            continue
        seen[key] = index
        batch.marks.append(
            (
                pupil_id,
                day,
                mark["session"],
                roll.school_id,
                mark["code"],
                meaning.code,
                meaning.category,
                meaning.late,
                meaning.unexplained,
                mark.get("minutes_late"),
                mark.get("comment"),
                mark.get("source_record_id"),
            )
        )
    return batch


async def ingest(
    auditor: Auditor,
    settings: Settings,
    items: list[Any],
) -> IngestResult:
    """Upsert a push of marks. Each bad mark is rejected with its reason; the rest are kept."""
    session, principal = auditor.session, auditor.principal
    marks, rejected = await validate_shapes(items)
    schools = await _schools_by_code(session, principal, {m["school_code"] for _, m in marks})
    in_reach = [s for s in schools.values() if isinstance(s, School)]
    book = await CodeBook.load(session, in_reach)
    rolls = await _rolls(session, in_reach, book)
    by_code: dict[str, _Roll | str] = {
        code: school if isinstance(school, str) else rolls[school.id]
        for code, school in schools.items()
    }

    batch = await _resolve(marks, by_code, school_today(), rejected)
    written = _Written()
    if len(batch):
        if is_postgresql(session):
            written = await _upsert_postgresql(session, batch)
        else:
            written = await _upsert_portable(session, batch)
    school_of = {
        pupil_id: roll.school_id for roll in rolls.values() for pupil_id, _ in roll.by_mis.values()
    }
    raised = await attendance_flags.refresh(
        session, settings, {p: school_of[p] for p in written.pupil_ids}
    )
    rejected.sort(key=lambda r: r.index)
    result = IngestResult(
        received=len(items),
        created=written.created,
        updated=written.updated,
        unchanged=len(batch) - written.created - written.updated,
        rejected=rejected,
    )
    await auditor.record(
        "attendance.marks.push",
        "attendance_mark",
        pupil_ids=written.pupil_ids,
        details={
            "received": result.received,
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "rejected": len(rejected),
            "schools": sorted(str(s.id) for s in in_reach),
            "flags_raised": raised,
        },
    )
    return result


# --- the upsert, PostgreSQL: one statement does marks and running counts ------------------

# The marks as a relation. The driver binds arrays element by element, so what repeats is
# sent once: each mark carries the position of its school and of its code's meaning in two
# short lists. Optional columns that are null throughout a push are sent as one null
# rather than an array of them: `unnest` pads the missing values with nulls. Category and
# session travel as the small numbers the table stores (`CATEGORY_NUMBER`, `SESSION_NUMBER`).
_PG_INPUT = """
WITH meaning AS (
    SELECT * FROM unnest(
        CAST(:m_code AS text[]), CAST(:m_category AS smallint[]), CAST(:m_late AS boolean[]),
        CAST(:m_unexplained AS boolean[])
    ) WITH ORDINALITY AS m(statutory_code, category, late, unexplained, k)
),
school AS (
    SELECT * FROM unnest(CAST(:schools AS uuid[])) WITH ORDINALITY AS s(school_id, k)
),
input AS (
    SELECT t.pupil_id, t.date, t.session, s.school_id, t.code, m.statutory_code, m.category,
           m.late, m.unexplained, t.minutes_late, t.comment, t.source_record_id, t.n
    FROM unnest(
        CAST(:pupil_id AS uuid[]), CAST(:date AS date[]), CAST(:session AS smallint[]),
        CAST(:school AS integer[]), CAST(:code AS text[]), CAST(:meaning AS integer[]),
        CAST(:minutes_late AS smallint[]), CAST(:comment AS text[]),
        CAST(:source_record_id AS text[])
    ) WITH ORDINALITY AS t(pupil_id, date, session, school, code, meaning, minutes_late,
           comment, source_record_id, n)
    JOIN school AS s ON s.k = t.school
    JOIN meaning AS m ON m.k = t.meaning
),"""

_NOT_POSSIBLE = CATEGORY_NUMBER[Category.not_possible]
_UNAUTHORISED = CATEGORY_NUMBER[Category.unauthorised_absence]
_ATTENDED_IN = ", ".join(str(CATEGORY_NUMBER[c]) for c in sorted(ATTENDED))

# Moves each pupil's weekly counts by the difference between old and new marks in
# `changes` (pupil_id, date, new category, old category or null).
_PG_WEEKS = f"""
deltas AS (
    SELECT pupil_id, CAST(date_trunc('week', date) AS date) AS week_start,
        sum((new <> {_NOT_POSSIBLE})::int - coalesce((old <> {_NOT_POSSIBLE})::int, 0))
            AS possible,
        sum((new IN ({_ATTENDED_IN}))::int - coalesce((old IN ({_ATTENDED_IN}))::int, 0))
            AS attended,
        sum((new = {_UNAUTHORISED})::int - coalesce((old = {_UNAUTHORISED})::int, 0))
            AS unauthorised
    FROM changes GROUP BY 1, 2
),
weeks AS (
    INSERT INTO attendance_week AS w (pupil_id, week_start, academic_year, possible,
        attended, unauthorised)
    SELECT pupil_id, week_start,
        CASE WHEN extract(month FROM week_start) >= 8 THEN extract(year FROM week_start)
             ELSE extract(year FROM week_start) - 1 END,
        possible, attended, unauthorised
    FROM deltas
    ON CONFLICT (pupil_id, week_start) DO UPDATE SET
        possible = w.possible + EXCLUDED.possible,
        attended = w.attended + EXCLUDED.attended,
        unauthorised = w.unauthorised + EXCLUDED.unauthorised
    RETURNING 1
)"""  # noqa: S608 (numbers from CATEGORY_NUMBER, never input)

# The common case, in one statement: marks not yet held are inserted outright (no
# speculative insertion: pushes of one school take turns, so nobody else can insert them),
# their weekly counts move, and the positions of held marks that differ come back.
_PG_INSERT_NEW_BODY = """
probe AS (
    SELECT i.*, m.differs FROM input i LEFT JOIN LATERAL (
        SELECT (m.school_id, m.code, m.statutory_code, m.category, m.late, m.unexplained,
                m.minutes_late, m.comment, m.source_record_id)
          IS DISTINCT FROM (i.school_id, i.code, i.statutory_code, i.category, i.late,
                i.unexplained, i.minutes_late, i.comment, i.source_record_id) AS differs
        FROM attendance_mark m
        WHERE m.pupil_id = i.pupil_id AND m.date = i.date AND m.session = i.session
        LIMIT 1
    ) AS m ON true
),
inserted AS (
    INSERT INTO attendance_mark (pupil_id, date, session, school_id, code, statutory_code,
        category, late, unexplained, minutes_late, comment, source_record_id, updated_at)
    SELECT pupil_id, date, session, school_id, code, statutory_code, category, late,
        unexplained, minutes_late, comment, source_record_id, :now
    FROM probe WHERE differs IS NULL
    RETURNING pupil_id, date, category
),
changes AS (SELECT pupil_id, date, category AS new, CAST(NULL AS smallint) AS old FROM inserted),
"""
_PG_INSERT_NEW_RESULT = """
SELECT (SELECT count(*) FROM inserted) AS created,
       (SELECT array_agg(DISTINCT pupil_id) FROM inserted) AS pupil_ids,
       (SELECT array_agg(n) FROM probe WHERE differs) AS differing,
       (SELECT count(*) FROM weeks) AS weeks
"""
# Statements are joined from the constants above, never from input.
_PG_INSERT_NEW = text("".join((_PG_INPUT, _PG_INSERT_NEW_BODY, _PG_WEEKS, _PG_INSERT_NEW_RESULT)))
# When none of the push's pupils has a mark in its date range (the daily case), there is
# nothing to probe for.
_PG_INSERT_FRESH = text(
    "".join(
        (
            _PG_INPUT,
            "\nprobe AS (SELECT i.*, CAST(NULL AS boolean) AS differs FROM input i),\n",
            _PG_INSERT_NEW_BODY[_PG_INSERT_NEW_BODY.index("inserted AS") :],
            _PG_WEEKS,
            _PG_INSERT_NEW_RESULT,
        )
    )
)
_PG_ANY_HELD = text(
    "SELECT 1 FROM attendance_mark WHERE pupil_id = ANY(CAST(:ids AS uuid[])) "
    "AND date >= :first AND date <= :last LIMIT 1"
)

# Corrections: an upsert that reads each old mark first, so the counts move by the change.
_PG_UPSERT_BODY = """

old AS (
    -- One primary-key probe per mark; LIMIT keeps the planner from turning this into a
    -- join that hashes the whole table.
    SELECT i.pupil_id, i.date, i.session, m.category
    FROM input i CROSS JOIN LATERAL (
        SELECT category FROM attendance_mark m
        WHERE m.pupil_id = i.pupil_id AND m.date = i.date AND m.session = i.session
        LIMIT 1
    ) AS m
),
written AS (
    INSERT INTO attendance_mark AS m (pupil_id, date, session, school_id, code, statutory_code,
        category, late, unexplained, minutes_late, comment, source_record_id, updated_at)
    SELECT pupil_id, date, session, school_id, code, statutory_code, category, late,
        unexplained, minutes_late, comment, source_record_id, :now
    FROM input
    ON CONFLICT (pupil_id, date, session) DO UPDATE SET
        school_id = EXCLUDED.school_id, code = EXCLUDED.code,
        statutory_code = EXCLUDED.statutory_code, category = EXCLUDED.category,
        late = EXCLUDED.late, unexplained = EXCLUDED.unexplained,
        minutes_late = EXCLUDED.minutes_late, comment = EXCLUDED.comment,
        source_record_id = EXCLUDED.source_record_id, updated_at = EXCLUDED.updated_at
    WHERE (m.school_id, m.code, m.statutory_code, m.category, m.late, m.unexplained,
           m.minutes_late, m.comment, m.source_record_id)
      IS DISTINCT FROM (EXCLUDED.school_id, EXCLUDED.code, EXCLUDED.statutory_code,
           EXCLUDED.category, EXCLUDED.late, EXCLUDED.unexplained, EXCLUDED.minutes_late,
           EXCLUDED.comment, EXCLUDED.source_record_id)
    RETURNING m.pupil_id, m.date, m.session, m.category
),
changes AS (
    SELECT w.pupil_id, w.date, w.category AS new, o.category AS old
    FROM written w LEFT JOIN old o USING (pupil_id, date, session)
),
"""
_PG_UPSERT_RESULT = """
SELECT count(*) FILTER (WHERE old IS NULL) AS created,
       count(*) FILTER (WHERE old IS NOT NULL) AS updated,
       array_agg(DISTINCT pupil_id) AS pupil_ids,
       (SELECT count(*) FROM weeks) AS weeks
FROM changes
"""
_PG_UPSERT = text("".join((_PG_INPUT, _PG_UPSERT_BODY, _PG_WEEKS, _PG_UPSERT_RESULT)))


def _lock_key(school_id: uuid.UUID) -> int:
    return int.from_bytes(school_id.bytes[:8], "big", signed=True)


async def _upsert_postgresql(session: AsyncSession, batch: _Batch) -> _Written:
    # Writers of one school's marks take turns, so the old values read in the upsert are
    # the ones it replaces and the running counts stay exact under concurrent pushes.
    marks = batch.marks
    params = _pg_params(marks)
    keys = sorted({_lock_key(s) for s in params["schools"]})
    await run(
        session,
        text(
            "SELECT count(pg_advisory_xact_lock(k)) FROM "
            "(SELECT k FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) AS ordered"
        ),
        {"keys": keys},
    )
    now = utcnow()
    held = await run(
        session,
        _PG_ANY_HELD,
        {
            "ids": list(set(params["pupil_id"])),
            "first": min(params["date"]),
            "last": max(params["date"]),
        },
    )
    statement = _PG_INSERT_NEW if held.first() else _PG_INSERT_FRESH
    row = (await run(session, statement, {**params, "now": now})).one()
    written = _Written(created=row.created, pupil_ids=set(row.pupil_ids or ()))
    if row.differing:
        subset = _pg_params([marks[n - 1] for n in row.differing])
        corrected = (await run(session, _PG_UPSERT, {**subset, "now": now})).one()
        written.created += corrected.created
        written.updated = corrected.updated
        written.pupil_ids.update(corrected.pupil_ids or ())
    return written


def _pg_params(marks: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Bind parameters for `_PG_INPUT` (positions in the short lists count from 1)."""
    schools: dict[Any, int] = {}
    meanings: dict[tuple[Any, ...], int] = {}
    school_at: list[int] = []
    meaning_at: list[int] = []
    for mark in marks:
        school = schools.get(mark[3])
        if school is None:
            school = schools[mark[3]] = len(schools) + 1
        school_at.append(school)
        key = mark[5:9]
        meaning = meanings.get(key)
        if meaning is None:
            meaning = meanings[key] = len(meanings) + 1
        meaning_at.append(meaning)
    params: dict[str, Any] = {
        "pupil_id": [m[0] for m in marks],
        "date": [m[1] for m in marks],
        "session": [SESSION_NUMBER[m[2]] for m in marks],
        "school": school_at,
        "code": [m[4] for m in marks],
        "meaning": meaning_at,
        "schools": list(schools),
        "m_code": [k[0] for k in meanings],
        "m_category": [CATEGORY_NUMBER[k[1]] for k in meanings],
        "m_late": [k[2] for k in meanings],
        "m_unexplained": [k[3] for k in meanings],
    }
    for position, name in ((9, "minutes_late"), (10, "comment"), (11, "source_record_id")):
        values = [m[position] for m in marks]
        params[name] = values if any(v is not None for v in values) else None
    return params


# --- the upsert anywhere else (SQLite): the same result, computed here --------------------

_COMPARED = COLUMNS[3:]  # every column but the key (pupil, date, session)


_CATEGORY_AT = _COMPARED.index("category")


def _counts(category: str | None) -> tuple[int, int, int]:
    if category is None:
        return 0, 0, 0
    return (
        int(category != Category.not_possible),
        int(category in ATTENDED),
        int(category == Category.unauthorised_absence),
    )


PORTABLE_CHUNK = 5000  # marks compared and written at a time: bounds a big push's memory


async def _upsert_portable(session: AsyncSession, batch: _Batch) -> _Written:
    written = _Written()
    deltas: dict[tuple[uuid.UUID, date], list[int]] = defaultdict(lambda: [0, 0, 0])
    now = utcnow()
    for part in chunks(batch.marks, PORTABLE_CHUNK):
        rows = [dict(zip(COLUMNS, mark, strict=True)) for mark in part]
        old = await _held(session, rows)
        changed: list[dict[str, Any]] = []
        for row in rows:
            before = old.get((row["pupil_id"], row["date"], row["session"]))
            if before is not None and before == tuple(row[c] for c in _COMPARED):
                continue
            if before is None:
                written.created += 1
            else:
                written.updated += 1
            written.pupil_ids.add(row["pupil_id"])
            row["updated_at"] = now
            changed.append(row)
            delta = deltas[(row["pupil_id"], week_start(row["date"]))]
            new = _counts(row["category"])
            prior = _counts(before[_CATEGORY_AT] if before is not None else None)
            for n in range(3):
                delta[n] += new[n] - prior[n]
        if changed:
            statement = sqlite_insert(AttendanceMark)
            statement = statement.on_conflict_do_update(
                index_elements=["pupil_id", "date", "session"],
                set_={c: statement.excluded[c] for c in (*_COMPARED, "updated_at")},
            )
            await session.exec(statement, params=changed)
    if deltas:
        week = sqlite_insert(AttendanceWeek)
        week = week.on_conflict_do_update(
            index_elements=["pupil_id", "week_start"],
            set_={
                name: getattr(AttendanceWeek, name) + week.excluded[name]
                for name in ("possible", "attended", "unauthorised")
            },
        )
        await session.exec(
            week,
            params=[
                {
                    "pupil_id": pupil_id,
                    "week_start": start,
                    "academic_year": academic_year(start),
                    "possible": d[0],
                    "attended": d[1],
                    "unauthorised": d[2],
                }
                for (pupil_id, start), d in deltas.items()
            ],
        )
    return written


async def _held(
    session: AsyncSession, rows: list[dict[str, Any]]
) -> dict[tuple[uuid.UUID, date, str], tuple[Any, ...]]:
    """The compared columns of the marks already held for these rows' keys."""
    wanted = {(r["pupil_id"], r["date"], r["session"]) for r in rows}
    first = min(r["date"] for r in rows)
    last = max(r["date"] for r in rows)
    old: dict[tuple[uuid.UUID, date, str], tuple[Any, ...]] = {}
    mark = table_of(AttendanceMark)
    compared = [mark.c[name] for name in _COMPARED]
    for ids in chunks(sorted({r["pupil_id"] for r in rows})):
        result = await run(
            session,
            core_select(mark.c.pupil_id, mark.c.date, mark.c.session, *compared).where(
                mark.c.pupil_id.in_(ids), mark.c.date >= first, mark.c.date <= last
            ),
        )
        for pupil_id, day, session_name, *values in map(tuple, result):
            key = (pupil_id, day, session_name)
            if key in wanted:
                old[key] = tuple(values)
    return old


# --- figures ------------------------------------------------------------------------------


class _Tally:
    __slots__ = ("approved", "authorised", "late", "possible", "present", "unauthorised")

    def __init__(self) -> None:
        self.possible = self.present = self.approved = 0
        self.authorised = self.unauthorised = self.late = 0

    def add(self, category: str, late: bool) -> None:
        if category == Category.not_possible:
            return
        self.possible += 1
        if category == Category.present:
            self.present += 1
        elif category == Category.approved_activity:
            self.approved += 1
        elif category == Category.authorised_absence:
            self.authorised += 1
        else:
            self.unauthorised += 1
        if late:
            self.late += 1

    def figures(self) -> dict[str, Any]:
        attended = self.present + self.approved
        return {
            "possible_sessions": self.possible,
            "present_sessions": self.present,
            "approved_activity_sessions": self.approved,
            "authorised_absence_sessions": self.authorised,
            "unauthorised_absence_sessions": self.unauthorised,
            "late_sessions": self.late,
            "attendance_rate": rate(self.possible, attended),
            "band": band(self.possible, attended),
        }


class TermTally:
    """Figures by term (`term_of`), added to one mark at a time: a pupil's read and a
    subject access export work them out the same way."""

    def __init__(self, jurisdiction: str) -> None:
        self.jurisdiction = jurisdiction
        self._terms: dict[Term, _Tally] = defaultdict(_Tally)

    def add(self, day: date, category: str, late: bool) -> None:
        self._terms[term_of(day, self.jurisdiction)].add(category, late)

    def figures(self) -> list[TermFigures]:
        return [
            TermFigures(
                academic_year=f"{year}/{(year + 1) % 100:02d}",
                term=name,
                starts=first,
                ends=last,
                **t.figures(),
            )
            for (year, name, first, last), t in sorted(self._terms.items())
        ]


def default_range(start: date | None, end: date | None) -> tuple[date, date]:
    today = school_today()
    end = end or today
    start = start or academic_year_start(end)
    if start > end:
        raise BadRequest("`from` must not be after `to`.")
    if (end - start).days > MAX_RANGE_DAYS:
        raise BadRequest(f"A range covers at most {MAX_RANGE_DAYS} days.")
    return start, end


# The pupil read's statements, built once: the pupil within reach with its school's
# jurisdiction and how far retention has disposed of its marks, then its marks.
_PUPIL_FOR_FIGURES = (
    core_select(
        col(Pupil.school_id),
        col(School.jurisdiction),
        retention.disposed_before_of("attendance_mark", col(School.jurisdiction)),
    )
    .join(School, col(School.id) == col(Pupil.school_id))
    .where(col(Pupil.id) == bindparam("id"), reach_condition(col(Pupil.school_id)))
)
_MARKS_OF_PUPIL = core_select(
    col(AttendanceMark.date), col(AttendanceMark.category), col(AttendanceMark.late)
).where(
    col(AttendanceMark.pupil_id) == bindparam("id"),
    col(AttendanceMark.date) >= bindparam("start"),
    col(AttendanceMark.date) <= bindparam("end"),
)


async def pupil_figures(
    auditor: Auditor,
    pupil_id: uuid.UUID,
    start: date | None,
    end: date | None,
) -> PupilAttendance:
    session, principal = auditor.session, auditor.principal
    start, end = default_range(start, end)
    found: Any = (
        await run(session, _PUPIL_FOR_FIGURES, {"id": pupil_id, **reach_params(principal)})
    ).first()
    if found is None:
        raise NotFound("No such pupil.")
    school_id, jurisdiction, disposed = found
    rows: Any = await run(session, _MARKS_OF_PUPIL, {"id": pupil_id, "start": start, "end": end})
    total = _Tally()
    weeks: dict[date, _Tally] = defaultdict(_Tally)
    terms = TermTally(jurisdiction)
    for day, category, late in rows:
        total.add(category, late)
        weeks[week_start(day)].add(category, late)
        terms.add(day, category, late)
    await auditor.record(
        "pupil.attendance.read",
        "pupil",
        pupil_id,
        pupil_ids=[pupil_id],
        details={"from": start.isoformat(), "to": end.isoformat()},
    )
    return PupilAttendance(
        pupil_id=pupil_id,
        school_id=school_id,
        detail_disposed_before=disposed if disposed is not None and disposed > start else None,
        from_date=start,
        to_date=end,
        **total.figures(),
        weeks=[WeekFigures(week_start=w, **t.figures()) for w, t in sorted(weeks.items())],
        terms=terms.figures(),
    )


async def school_figures(
    auditor: Auditor,
    school: School,
    start: date | None,
    end: date | None,
    after: tuple[int, uuid.UUID] | None,
    limit: int,
) -> SchoolAttendance:
    """The school's pupils with marks in the range, lowest attendance first."""
    session = auditor.session
    start, end = default_range(start, end)
    m = table_of(AttendanceMark).c

    def count(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    rows = await run(
        session,
        core_select(
            m.pupil_id,
            count(m.category == Category.present.value),
            count(m.category == Category.approved_activity.value),
            count(m.category == Category.authorised_absence.value),
            count(m.category == Category.unauthorised_absence.value),
            count(and_(m.late, m.category != Category.not_possible.value)),
        )
        .where(m.school_id == school.id, m.date >= start, m.date <= end)
        .group_by(m.pupil_id),
    )
    tallies: dict[uuid.UUID, _Tally] = {}
    for pupil_id, present, approved, authorised, unauthorised, late in map(tuple, rows):
        tally = tallies[pupil_id] = _Tally()
        tally.present, tally.approved = present, approved
        tally.authorised, tally.unauthorised, tally.late = authorised, unauthorised, late
        tally.possible = present + approved + authorised + unauthorised
    ranked = sorted((_rank(t), pupil_id) for pupil_id, t in tallies.items())
    if after is not None:
        ranked = [r for r in ranked if r > after]
    page = ranked[:limit]
    items = [SchoolPupilFigures(pupil_id=p, **tallies[p].figures()) for _, p in page]
    next_cursor = encode_rank_cursor(page[-1]) if len(ranked) > limit and page else None
    await auditor.record(
        "school.attendance.read",
        "school",
        school.id,
        pupil_ids=[i.pupil_id for i in items],
        details={"from": start.isoformat(), "to": end.isoformat(), "returned": len(items)},
    )
    disposed = await retention.disposed_before(session, "attendance_mark", school.jurisdiction)
    return SchoolAttendance(
        school_id=school.id,
        from_date=start,
        to_date=end,
        detail_disposed_before=disposed if disposed is not None and disposed > start else None,
        items=items,
        next_cursor=next_cursor,
    )


def _rank(tally: _Tally) -> int:
    """Attendance as an exact integer key (parts per million); no marks sort last."""
    if tally.possible == 0:
        return 1_000_001
    return (tally.present + tally.approved) * 1_000_000 // tally.possible


def encode_rank_cursor(position: tuple[int, uuid.UUID]) -> str:
    return encode_position({"rank": position[0], "id": str(position[1])})


def decode_rank_cursor(cursor: str) -> tuple[int, uuid.UUID]:
    position = decode_position(cursor)
    try:
        return int(position["rank"]), uuid.UUID(position["id"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BadRequest("The cursor is not valid; start again without one.") from None
