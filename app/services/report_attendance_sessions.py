"""The sessions the attendance-impact report counts, summed in the database: each child's
before and after windows, and the terms of the period.

Whole weeks (Monday to Sunday) come from `attendance_week`, the running counts every push
keeps; only the days of a part week at the edge of a window or a term come from the marks.
A child's figures are a few short index range scans of that child's own rows (a LATERAL
join on PostgreSQL, correlated subqueries on SQLite), so the cost follows the children in
scope, never the marks held; the terms read the children's weeks in one pass.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, cast

from sqlalchemy import Date, Integer, and_, case, func, literal, select, true, union_all
from sqlalchemy import cast as sql_cast
from sqlalchemy.sql import Select, Subquery
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import is_postgresql, run, table_of
from app.models.attendance import AttendanceMark, AttendanceWeek, Category
from app.models.case import Case, CaseChild
from app.models.pupil import Pupil
from app.models.school import School
from app.services.school_calendar import school_today, week_start
from app.services.sql_days import day_of, plus_days, week_of

# The before window looks for its school weeks this many calendar weeks (plus the weeks
# asked for) back from the opening, at most: a year's holidays are fewer.
LOOK_BACK_WEEKS = 52
_ATTENDED = (Category.present.value, Category.approved_activity.value)
_WEEK = table_of(AttendanceWeek)
_MARK = table_of(AttendanceMark)


@dataclass(frozen=True)
class ChildSessions:
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


@dataclass(frozen=True)
class Segment:
    """A term cut to the period, in one jurisdiction's calendar; `key` names it."""

    key: int
    jurisdiction: str
    starts: date
    ends: date


def _earlier(a: Any, b: Any) -> Any:
    return case((a < b, a), else_=b)


def _later(a: Any, b: Any) -> Any:
    return case((a > b, a), else_=b)


def _marks_sums(pupil_id: Any, first: Any, last: Any) -> Select[Any]:
    """Possible and attended sessions among one pupil's marks from `first` to `last`."""
    m = _MARK.c
    query = select(
        func.count().filter(m.category != Category.not_possible.value).label("possible"),
        func.count().filter(m.category.in_(_ATTENDED)).label("attended"),
    )
    return cast(Select[Any], query.where(m.pupil_id == pupil_id, m.date >= first, m.date <= last))


def _per_row(
    query: Select[Any], inner: Select[Any], name: str, lateral: bool
) -> tuple[Select[Any], dict[str, Any]]:
    """`inner` (one row of aggregates, correlated to the rows of `query`) for each row: a
    LATERAL join on PostgreSQL, whose planner would otherwise hash a whole table; on SQLite,
    which has no LATERAL, one correlated subquery per column."""
    names = [c.name for c in inner.selected_columns]
    if lateral:
        joined = inner.lateral(name)
        return query.join(joined, true()), {n: joined.c[n] for n in names}
    return query, {
        n: inner.with_only_columns(c).scalar_subquery()
        for n, c in zip(names, inner.selected_columns, strict=True)
    }


def _windows(scope: Subquery, end: date) -> Subquery:
    """Each child on a roll in the cases in scope, with their school's jurisdiction: the day
    their first case opened (`lo`) and the after window's last day (`hi`): their last case's
    closure, or `end`."""
    to = literal(end, Date)
    last = func.max(func.coalesce(day_of(col(Case.closed_at)), to))
    windows = (
        select(
            col(CaseChild.pupil_id).label("pupil_id"),
            func.min(day_of(col(Case.opened_at))).label("lo"),
            _earlier(last, to).label("hi"),
        )
        .join(Case, col(Case.id) == col(CaseChild.case_id))
        .where(col(Case.id).in_(select(scope.c.id)), col(CaseChild.pupil_id).is_not(None))
        .group_by(col(CaseChild.pupil_id))
        .subquery("windows")
    )
    return (
        select(windows, col(School.jurisdiction).label("jurisdiction"))
        .join(Pupil, col(Pupil.id) == windows.c.pupil_id)
        .join(School, col(School.id) == col(Pupil.school_id))
        .subquery("children")
    )


async def children(
    session: AsyncSession, scope: Subquery, end: date, weeks: int
) -> list[ChildSessions]:
    """Each child's before window (the `weeks` latest weeks with a possible session wholly
    before the week their case opened) and after window (`lo` to `hi`)."""
    kids = _windows(scope, end)
    opening_week = week_of(kids.c.lo)
    first_full = week_of(plus_days(kids.c.lo, 6))  # the first Monday on or after lo
    # The Monday of the last whole week by hi; or, when the window runs to today or later,
    # of hi's own week: no mark is dated after today, so that week's counts hold only days
    # of the window.
    last_full = case(
        (kids.c.hi >= literal(school_today(), Date), week_of(kids.c.hi)),
        else_=week_of(plus_days(kids.c.hi, -6)),
    )
    bounds = select(
        kids,
        opening_week.label("opening_week"),
        first_full.label("weeks_from"),
        last_full.label("weeks_to"),
        _earlier(plus_days(first_full, -1), kids.c.hi).label("head_to"),
        _later(plus_days(last_full, 7), first_full).label("tail_from"),
    ).subquery("bounds")
    w = _WEEK.c
    recent = (
        select(w.week_start, w.possible, w.attended)
        .where(
            w.pupil_id == bounds.c.pupil_id,
            w.possible > 0,
            w.week_start < bounds.c.opening_week,
            w.week_start >= plus_days(bounds.c.opening_week, -7 * (LOOK_BACK_WEEKS + weeks)),
        )
        .order_by(w.week_start.desc())
        .limit(weeks)
        .correlate(bounds)
        .subquery("recent")
    )
    before = select(
        func.count(recent.c.week_start).label("weeks"),
        func.min(recent.c.week_start).label("first_week"),
        func.coalesce(func.sum(recent.c.possible), 0).label("possible"),
        func.coalesce(func.sum(recent.c.attended), 0).label("attended"),
    ).select_from(recent)
    whole = select(
        func.coalesce(func.sum(w.possible), 0).label("possible"),
        func.coalesce(func.sum(w.attended), 0).label("attended"),
    ).where(
        w.pupil_id == bounds.c.pupil_id,
        w.week_start >= bounds.c.weeks_from,
        w.week_start <= bounds.c.weeks_to,
    )
    # The part weeks' days, where there are any (a condition on the child alone: PostgreSQL
    # skips the index scan when it is false).
    head = _marks_sums(bounds.c.pupil_id, bounds.c.lo, bounds.c.head_to).where(
        bounds.c.lo <= bounds.c.head_to
    )
    tail = _marks_sums(bounds.c.pupil_id, bounds.c.tail_from, bounds.c.hi).where(
        bounds.c.tail_from <= bounds.c.hi
    )
    lateral = is_postgresql(session)
    query = select(bounds.c.pupil_id).select_from(bounds)
    query, b = _per_row(query, before, "before", lateral)
    query, a = _per_row(query, whole, "whole", lateral)
    query, h = _per_row(query, head, "head", lateral)
    query, t = _per_row(query, tail, "tail", lateral)
    query = query.with_only_columns(
        bounds.c.pupil_id,
        bounds.c.jurisdiction,
        bounds.c.lo,
        bounds.c.hi,
        b["weeks"],
        b["first_week"],
        b["possible"],
        b["attended"],
        a["possible"] + h["possible"] + t["possible"],
        a["attended"] + h["attended"] + t["attended"],
    )
    found = [ChildSessions(*row) for row in map(tuple, await run(session, query))]
    return sorted(found, key=lambda c: str(c.pupil_id))


def _part_weeks(segment: Segment) -> list[tuple[date, date]]:
    """The days of `segment` in weeks it does not wholly hold: at most one run at each end."""
    first_full = week_start(segment.starts + timedelta(days=6))
    last_full = week_start(segment.ends - timedelta(days=6))
    runs = [
        (segment.starts, min(first_full - timedelta(days=1), segment.ends)),
        (max(last_full + timedelta(days=7), first_full), segment.ends),
    ]
    return [(a, b) for a, b in runs if a <= b]


async def term_sessions(
    session: AsyncSession, scope: Subquery, end: date, segments: list[Segment]
) -> dict[int, tuple[int, int, int]]:
    """Per segment: the children with a possible session in it, and their possible and
    attended sessions.

    One pass over the children's weeks of the period, grouped by child: each segment's
    whole weeks summed in a column of its own, and for each part week (a run of its days at
    a segment's edge) whether the child had a possible session that week at all (most part
    weeks are holidays). Only those part weeks' days are then read from the marks."""
    if not segments:
        return {}
    kids = _windows(scope, end)
    w = _WEEK.c
    whole = [
        (s, first, last)
        for s in segments
        if (first := week_start(s.starts + timedelta(days=6)))
        <= (last := week_start(s.ends - timedelta(days=6)))
    ]
    runs = []
    today = school_today()
    for segment in segments:
        for a, b in _part_weeks(segment):
            if a == week_start(a) and b >= today:
                # From a Monday to today or later: no mark is dated after today, so the
                # week's counts are those of these days.
                whole.append((segment, a, a))
            else:
                runs.append((segment, a, b))
    if not whole and not runs:
        return {}
    # Each child's weeks summed by week range alone (a segment's jurisdiction is matched
    # below, on one row per child): one hash aggregate of the children's weeks.
    columns: list[Any] = []
    for i, (_, first, last) in enumerate(whole):
        inside = and_(w.week_start >= first, w.week_start <= last)
        columns += [
            func.sum(w.possible).filter(inside).label(f"possible_{i}"),
            func.sum(w.attended).filter(inside).label(f"attended_{i}"),
        ]
    for i, (_, a, _) in enumerate(runs):
        columns.append(func.max(w.possible).filter(w.week_start == week_start(a)).label(f"run_{i}"))
    # A week with no possible session adds nothing: left out.
    per_pupil = (
        select(w.pupil_id, *columns)
        .where(
            w.pupil_id.in_(select(kids.c.pupil_id)),
            w.week_start >= week_start(min(s.starts for s in segments)),
            w.week_start <= week_start(max(s.ends for s in segments)),
            w.possible > 0,
        )
        .group_by(w.pupil_id)
        .subquery("per_pupil")
    )
    per_child = (
        select(per_pupil, kids.c.jurisdiction)
        .join_from(kids, per_pupil, per_pupil.c.pupil_id == kids.c.pupil_id)
        .cte("per_child_weeks")
    )
    c = per_child.c
    parts: list[Select[Any]] = [
        select(
            c.pupil_id,
            literal(s.key, Integer).label("key"),
            sql_cast(c[f"possible_{i}"], Integer).label("possible"),
            sql_cast(c[f"attended_{i}"], Integer).label("attended"),
        ).where(c.jurisdiction == s.jurisdiction, c[f"possible_{i}"].is_not(None))
        for i, (s, _, _) in enumerate(whole)
    ]
    if runs:
        spans = union_all(
            *(
                select(
                    c.pupil_id,
                    literal(s.key, Integer).label("key"),
                    literal(a, Date).label("first"),
                    literal(b, Date).label("last"),
                ).where(c.jurisdiction == s.jurisdiction, c[f"run_{i}"] > 0)
                for i, (s, a, b) in enumerate(runs)
            )
        ).subquery("spans")
        inner = _marks_sums(spans.c.pupil_id, spans.c.first, spans.c.last)
        query, m = _per_row(
            select(spans.c.pupil_id).select_from(spans), inner, "days", is_postgresql(session)
        )
        parts.append(
            query.with_only_columns(
                spans.c.pupil_id,
                spans.c.key,
                sql_cast(m["possible"], Integer),
                sql_cast(m["attended"], Integer),
            )
        )
    joined = union_all(*parts).subquery("parts")
    per_segment = (
        select(
            joined.c.key,
            func.sum(joined.c.possible).label("possible"),
            func.sum(joined.c.attended).label("attended"),
        )
        .group_by(joined.c.key, joined.c.pupil_id)
        .subquery("per_segment")
    )
    query = select(
        per_segment.c.key,
        func.count().filter(per_segment.c.possible > 0),
        func.sum(per_segment.c.possible),
        func.sum(per_segment.c.attended),
    ).group_by(per_segment.c.key)
    return {
        key: (children or 0, int(possible or 0), int(attended or 0))
        for key, children, possible, attended in map(tuple, await run(session, query))
    }
