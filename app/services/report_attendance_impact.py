"""The attendance-impact report: did the children of the cases in scope attend more once
their case opened?

Each child (on a roll) has two windows: **before**, the `before_weeks` latest school weeks
(weeks with a possible session) wholly before the week their first case in scope opened; and
**after**, from the day it opened to the day their last case in scope closed, or `to`. The
terms of the period give the same children's attendance term by term.

Marks are summed in the database, never loaded: whole weeks from `attendance_week` (the
running counts every push keeps), and single marks only for the days of a part week at the
edge of a window, so a child's year costs some fifty rows, not four hundred.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Date, Integer, String, and_, case, func, literal, select, union_all
from sqlalchemy.sql import Select, Subquery
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.db import run, table_of
from app.models.attendance import AttendanceMark, AttendanceWeek, Category
from app.models.case import Case, CaseChild
from app.models.pupil import Pupil
from app.models.report import Report
from app.models.report_attendance_impact import AttendanceImpactRow
from app.models.school import School
from app.services import retention
from app.services.report_tables import Period, Table, check_school, envelope, period
from app.services.reports import scope_query
from app.services.school_calendar import Term, rate, term_of, week_start
from app.services.sql_days import day_of, plus_days, week_of

DEFAULT_BEFORE_WEEKS = 12
# The before window looks for its school weeks this many calendar weeks (plus the weeks
# asked for) back from the opening, at most: a year's holidays are fewer.
LOOK_BACK_WEEKS = 52
_ATTENDED = (Category.present.value, Category.approved_activity.value)


@dataclass
class _Child:
    pupil_id: uuid.UUID
    jurisdiction: str
    opened_on: date
    after_to: date
    before_weeks: int
    before_from: date | None
    possible_before: int
    attended_before: int
    possible_after: int
    attended_after: int


def _windows(scope: Subquery, end: date) -> Subquery:
    """Each child on a roll in the cases in scope: the day their first case opened (`lo`)
    and the last day of the after window (`hi`): their last case's closure, or `end`."""
    to = literal(end, Date)
    last = func.max(func.coalesce(day_of(col(Case.closed_at)), to))
    return (
        select(
            col(CaseChild.pupil_id).label("pupil_id"),
            func.min(day_of(col(Case.opened_at))).label("lo"),
            case((last < to, last), else_=to).label("hi"),
        )
        .join(Case, col(Case.id) == col(CaseChild.case_id))
        .where(col(Case.id).in_(select(scope.c.id)), col(CaseChild.pupil_id).is_not(None))
        .group_by(col(CaseChild.pupil_id))
        .subquery("windows")
    )


def _sessions(spans: Subquery) -> Subquery:
    """Possible and attended sessions of each (`key`, `pupil_id`) span from `lo` to `hi`:
    the weeks wholly inside from `attendance_week`, the days of part weeks from the marks."""
    w = table_of(AttendanceWeek).c
    m = table_of(AttendanceMark).c
    first_full = week_of(plus_days(spans.c.lo, 6))  # the first Monday on or after lo
    last_full_end = plus_days(week_of(plus_days(spans.c.hi, 1)), -1)  # last Sunday by hi
    weeks = select(spans.c.key, spans.c.pupil_id, w.possible, w.attended).join_from(
        spans,
        table_of(AttendanceWeek),
        and_(
            w.pupil_id == spans.c.pupil_id,
            w.week_start >= first_full,
            w.week_start <= plus_days(last_full_end, -6),
        ),
    )
    possible = case((m.category != Category.not_possible.value, 1), else_=0)
    attended = case((m.category.in_(_ATTENDED), 1), else_=0)

    def marks(*days: Any) -> Select[Any]:
        return select(spans.c.key, spans.c.pupil_id, possible, attended).join_from(
            spans,
            table_of(AttendanceMark),
            and_(m.pupil_id == spans.c.pupil_id, m.date >= spans.c.lo, m.date <= spans.c.hi, *days),
        )

    parts = union_all(
        weeks,
        marks(m.date < first_full),
        marks(m.date > last_full_end, m.date >= first_full),
    ).subquery("parts")
    return (
        select(
            parts.c.key,
            parts.c.pupil_id,
            func.sum(parts.c.possible).label("possible"),
            func.sum(parts.c.attended).label("attended"),
        )
        .group_by(parts.c.key, parts.c.pupil_id)
        .subquery("sessions")
    )


def _before(windows: Subquery, weeks: int) -> Subquery:
    """Each child's `weeks` latest school weeks wholly before the week their case opened."""
    w = table_of(AttendanceWeek).c
    opening_week = week_of(windows.c.lo)
    ranked = (
        select(
            windows.c.pupil_id,
            w.week_start,
            w.possible,
            w.attended,
            func.row_number()
            .over(partition_by=windows.c.pupil_id, order_by=w.week_start.desc())
            .label("n"),
        )
        .join_from(
            windows,
            table_of(AttendanceWeek),
            and_(
                w.pupil_id == windows.c.pupil_id,
                w.possible > 0,
                w.week_start < opening_week,
                w.week_start >= plus_days(opening_week, -7 * (LOOK_BACK_WEEKS + weeks)),
            ),
        )
        .subquery("ranked")
    )
    return (
        select(
            ranked.c.pupil_id,
            func.count().label("weeks"),
            func.min(ranked.c.week_start).label("first_week"),
            func.sum(ranked.c.possible).label("possible"),
            func.sum(ranked.c.attended).label("attended"),
        )
        .where(ranked.c.n <= weeks)
        .group_by(ranked.c.pupil_id)
        .subquery("before")
    )


async def _children(
    session: AsyncSession, scope: Subquery, span: Period, weeks: int
) -> list[_Child]:
    windows = _windows(scope, span.end)
    before = _before(windows, weeks)
    after = _sessions(
        select(literal(0).label("key"), windows.c.pupil_id, windows.c.lo, windows.c.hi).subquery(
            "after_spans"
        )
    )
    query = (
        select(
            windows.c.pupil_id,
            col(School.jurisdiction),
            windows.c.lo,
            windows.c.hi,
            before.c.weeks,
            before.c.first_week,
            before.c.possible,
            before.c.attended,
            after.c.possible,
            after.c.attended,
        )
        .select_from(windows)
        .join(Pupil, col(Pupil.id) == windows.c.pupil_id)
        .join(School, col(School.id) == col(Pupil.school_id))
        .outerjoin(before, before.c.pupil_id == windows.c.pupil_id)
        .outerjoin(after, after.c.pupil_id == windows.c.pupil_id)
    )
    found = []
    for row in await run(session, query):
        pupil_id, jurisdiction, lo, hi, n, first, pb, ab, pa, aa = tuple(row)
        found.append(
            _Child(
                pupil_id, jurisdiction, lo, hi, n or 0, first, pb or 0, ab or 0, pa or 0, aa or 0
            )
        )
    return sorted(found, key=lambda c: str(c.pupil_id))


def terms_in(span: Period, jurisdiction: str) -> list[Term]:
    """The terms of `jurisdiction` the period meets, each cut to the period."""
    assert span.start is not None
    found = []
    day = span.start
    while day <= span.end:
        term = term_of(day, jurisdiction)
        found.append(term._replace(starts=max(term.starts, day), ends=min(term.ends, span.end)))
        day = term.ends + timedelta(days=1)
    return found


@dataclass
class _TermFigures:
    jurisdictions: set[str] = field(default_factory=set)
    children: int = 0
    possible: int = 0
    attended: int = 0


async def _terms(
    session: AsyncSession, scope: Subquery, span: Period, jurisdictions: set[str]
) -> dict[Term, _TermFigures]:
    """Each term's children with a possible session, and their sessions, pooled."""
    terms: list[tuple[str, Term]] = [
        (j, t) for j in sorted(jurisdictions) for t in terms_in(span, j)
    ]
    if not terms:
        return {}
    listed = union_all(
        *(
            select(
                literal(i, Integer).label("key"),
                literal(j, String).label("jurisdiction"),
                literal(t.starts, Date).label("lo"),
                literal(t.ends, Date).label("hi"),
            )
            for i, (j, t) in enumerate(terms)
        )
    ).subquery("terms")
    windows = _windows(scope, span.end)
    spans = (
        select(listed.c.key, windows.c.pupil_id, listed.c.lo, listed.c.hi)
        .select_from(windows)
        .join(Pupil, col(Pupil.id) == windows.c.pupil_id)
        .join(School, col(School.id) == col(Pupil.school_id))
        .join(listed, listed.c.jurisdiction == col(School.jurisdiction))
        .subquery("term_spans")
    )
    sessions = _sessions(spans)
    query = select(
        sessions.c.key,
        func.sum(case((sessions.c.possible > 0, 1), else_=0)),
        func.sum(sessions.c.possible),
        func.sum(sessions.c.attended),
    ).group_by(sessions.c.key)
    # England and Wales share their terms: one row for both.
    figures: dict[Term, _TermFigures] = defaultdict(_TermFigures)
    for jurisdiction, term in terms:
        figures[term].jurisdictions.add(jurisdiction)
    for key, children, possible, attended in map(tuple, await run(session, query)):
        found = figures[terms[key][1]]
        found.children += children or 0
        found.possible += possible or 0
        found.attended += attended or 0
    return dict(figures)


async def _entries(session: AsyncSession, scope: Subquery) -> tuple[int, int, set[str]]:
    """Children of the cases in scope (a child on a roll once however many cases), of them
    those known only by name, and the jurisdictions of the schools of those on a roll."""
    query = (
        select(col(CaseChild.pupil_id), col(CaseChild.id), col(School.jurisdiction))
        .outerjoin(Pupil, col(Pupil.id) == col(CaseChild.pupil_id))
        .outerjoin(School, col(School.id) == col(Pupil.school_id))
        .where(col(CaseChild.case_id).in_(select(scope.c.id)))
    )
    children: set[uuid.UUID] = set()
    by_name = 0
    jurisdictions: set[str] = set()
    for pupil_id, entry_id, jurisdiction in map(tuple, await run(session, query)):
        children.add(pupil_id or entry_id)
        if pupil_id is None:
            by_name += 1
        elif jurisdiction is not None:
            jurisdictions.add(jurisdiction)
    return len(children), by_name, jurisdictions


def _incomplete(child: _Child, weeks: int, disposed: date | None) -> bool:
    """Whether the before window reaches back past the marks disposed of: its first week,
    or, short of `weeks` school weeks, as far as it looked."""
    if disposed is None:
        return False
    reach = child.before_from
    if child.before_weeks < weeks or reach is None:
        reach = week_start(child.opened_on) - timedelta(weeks=LOOK_BACK_WEEKS + weeks)
    return disposed > reach


def _improved(child: _Child) -> bool:
    before = rate(child.possible_before, child.attended_before)
    after = rate(child.possible_after, child.attended_after)
    return before is not None and after is not None and after > before


_CHILD_FIGURES = [
    "improved",
    "before_weeks",
    "possible_before",
    "attended_before",
    "rate_before",
    "possible_after",
    "attended_after",
    "rate_after",
]
_ADDED_UP = ["improved", "possible_before", "attended_before", "possible_after", "attended_after"]


def _sessions_row(
    possible_before: int, attended_before: int, possible_after: int, attended_after: int
) -> dict[str, Any]:
    return {
        "possible_before": possible_before,
        "attended_before": attended_before,
        "rate_before": rate(possible_before, attended_before),
        "possible_after": possible_after,
        "attended_after": attended_after,
        "rate_after": rate(possible_after, attended_after),
    }


def _rates_rest(table: Table, row: int) -> None:
    table.rests(row, "rate_before", "possible_before", "attended_before")
    table.rests(row, "rate_after", "possible_after", "attended_after")


async def attendance_impact(
    auditor: Auditor,
    start: date | None,
    end: date | None,
    school_id: uuid.UUID | None,
    before_weeks: int = DEFAULT_BEFORE_WEEKS,
    suppress_below: int | None = None,
) -> Report[Any]:
    """The children of the cases open in the period: their attendance in the school weeks
    before their case opened and since, pooled and child by child, and term by term."""
    session, principal = auditor.session, auditor.principal
    span = period(start, end)
    await check_school(session, principal, school_id)
    scope = scope_query(principal, span, school_id).subquery("scope")
    in_scope, by_name, jurisdictions = await _entries(session, scope)
    children = await _children(session, scope, span, before_weeks)
    terms = await _terms(session, scope, span, jurisdictions)
    disposed = {
        j: await retention.disposed_before(session, "attendance_mark", j) for j in jurisdictions
    }
    incomplete = {
        c.pupil_id: _incomplete(c, before_weeks, disposed[c.jurisdiction]) for c in children
    }
    with_both = [c for c in children if c.possible_before and c.possible_after]
    table = Table(AttendanceImpactRow)
    total = table.add(
        row_type="total",
        children=in_scope,
        children_without_marks=by_name
        + sum(1 for c in children if not c.possible_before and not c.possible_after),
        children_known_by_name=by_name,
        children_with_both=len(with_both),
        improved=sum(1 for c in with_both if _improved(c)),
        children_before_incomplete=sum(incomplete.values()),
        **_sessions_row(
            sum(c.possible_before for c in children),
            sum(c.attended_before for c in children),
            sum(c.possible_after for c in children),
            sum(c.attended_after for c in children),
        ),
    )
    _rates_rest(table, total)
    for column in [*_ADDED_UP, "rate_before", "rate_after"]:
        table.rests(total, column, "children")
    for term in sorted(terms, key=lambda t: (t.starts, t.name)):
        figures = terms[term]
        row = table.add(
            row_type="term",
            academic_year=f"{term.academic_year}/{(term.academic_year + 1) % 100:02d}",
            term=term.name,
            starts=term.starts,
            ends=term.ends,
            incomplete=any(
                (d := disposed[j]) is not None and d > term.starts for j in figures.jurisdictions
            ),
            children=figures.children,
            possible=figures.possible,
            attended=figures.attended,
            rate=rate(figures.possible, figures.attended),
        )
        table.rests(row, "rate", "possible", "attended")
        table.rests(row, "possible", "children")
        table.rests(row, "attended", "children")
    rows = []
    for child in children:
        row = table.add(
            row_type="child",
            pupil_id=child.pupil_id,
            opened_on=child.opened_on,
            before_from=child.before_from,
            after_to=child.after_to,
            incomplete=incomplete[child.pupil_id],
            children=1,
            improved=int(child in with_both and _improved(child)),
            before_weeks=child.before_weeks,
            **_sessions_row(
                child.possible_before,
                child.attended_before,
                child.possible_after,
                child.attended_after,
            ),
        )
        for column in _CHILD_FIGURES:
            table.rests(row, column, "children")
        rows.append(row)
    table.adds_up(total, rows, _ADDED_UP)
    report = envelope("attendance-impact", table, principal, span, school_id, suppress_below)
    await _audit(auditor, report, school_id, [c.pupil_id for c in children], before_weeks)
    return report


async def _audit(
    auditor: Auditor,
    report: Report[Any],
    school_id: uuid.UUID | None,
    pupil_ids: list[uuid.UUID],
    before_weeks: int,
) -> None:
    """As `report_tables.audit`, naming the children whose rows the report carries: their
    attendance by pupil id is child-level data."""
    await auditor.record(
        f"report.{report.report}",
        "report",
        pupil_ids=pupil_ids,
        details={
            "from": report.period.from_.isoformat() if report.period.from_ else None,
            "to": report.period.to.isoformat(),
            "school_id": str(school_id) if school_id else None,
            "suppress_below": report.suppress_below,
            "rows": len(report.rows),
            "before_weeks": before_weeks,
        },
    )
