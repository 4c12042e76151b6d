"""The attendance-impact report: did the children of the cases in scope attend more once
their case opened?

Each child (on a roll) has two windows: **before**, the `before_weeks` latest school weeks
(weeks with a possible session) wholly before the week their first case in scope opened; and
**after**, from the day it opened to the day their last case in scope closed, or `to`. The
terms of the period give the same children's attendance term by term.

The sessions are summed in the database (app/services/report_attendance_sessions.py); this
module lays them out as the report's table.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.sql import Subquery
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.db import run
from app.models.case import CaseChild
from app.models.pupil import Pupil
from app.models.report import Report
from app.models.report_attendance_impact import AttendanceImpactRow
from app.models.school import School
from app.services import report_attendance_sessions as sessions
from app.services import retention
from app.services.report_attendance_sessions import LOOK_BACK_WEEKS, ChildSessions, Segment
from app.services.report_tables import Period, Table, audit, check_school, envelope, period
from app.services.reports import scope_query
from app.services.school_calendar import Term, rate, term_of, week_start

DEFAULT_BEFORE_WEEKS = 12


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
    """Each term's children with a possible session, and their sessions, pooled. England
    and Wales share their terms: one row for both."""
    terms = [(j, t) for j in sorted(jurisdictions) for t in terms_in(span, j)]
    segments = [Segment(i, j, t.starts, t.ends) for i, (j, t) in enumerate(terms)]
    found = await sessions.term_sessions(session, scope, span.end, segments)
    figures: dict[Term, _TermFigures] = defaultdict(_TermFigures)
    for key, (jurisdiction, term) in enumerate(terms):
        children, possible, attended = found.get(key, (0, 0, 0))
        figures[term].jurisdictions.add(jurisdiction)
        figures[term].children += children
        figures[term].possible += possible
        figures[term].attended += attended
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


def _incomplete(child: ChildSessions, weeks: int, disposed: date | None) -> bool:
    """Whether the before window reaches back past the marks disposed of: its first week,
    or, short of `weeks` school weeks, as far as it looked."""
    if disposed is None:
        return False
    reach = child.before_from
    if child.before_weeks < weeks or reach is None:
        reach = week_start(child.opened_on) - timedelta(weeks=LOOK_BACK_WEEKS + weeks)
    return disposed > reach


def _improved(child: ChildSessions) -> bool:
    before = rate(child.possible_before, child.attended_before)
    after = rate(child.possible_after, child.attended_after)
    return before is not None and after is not None and after > before


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
    children = await sessions.children(session, scope, span.end, before_weeks)
    terms = await _terms(session, scope, span, jurisdictions)
    disposed = {
        j: await retention.disposed_before(session, "attendance_mark", j) for j in jurisdictions
    }
    incomplete = {
        c.pupil_id: _incomplete(c, before_weeks, disposed[c.jurisdiction]) for c in children
    }
    with_both = [c for c in children if c.possible_before and c.possible_after]
    improved = {c.pupil_id for c in with_both if _improved(c)}
    table = Table(AttendanceImpactRow)
    total = table.add(
        row_type="total",
        children=in_scope,
        children_without_marks=by_name
        + sum(1 for c in children if not c.possible_before and not c.possible_after),
        children_known_by_name=by_name,
        children_with_both=len(with_both),
        improved=len(improved),
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
    # A table for publication (`suppress_below`) carries no child's row at all: a row about
    # one child is child-level data however its figures are withheld.
    shown = [] if suppress_below else children
    for child in shown:
        table.add(
            row_type="child",
            pupil_id=child.pupil_id,
            opened_on=child.opened_on,
            before_from=child.before_from,
            after_to=child.after_to,
            incomplete=incomplete[child.pupil_id],
            children=1,
            improved=int(child.pupil_id in improved),
            before_weeks=child.before_weeks,
            **_sessions_row(
                child.possible_before,
                child.attended_before,
                child.possible_after,
                child.attended_after,
            ),
        )
    report = envelope("attendance-impact", table, principal, span, school_id, suppress_below)
    # Its child rows are child-level data: the event names those children.
    await audit(
        auditor,
        report,
        school_id,
        pupil_ids=[c.pupil_id for c in shown],
        before_weeks=before_weeks,
    )
    return report
