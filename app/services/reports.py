"""The outcome report: what changed for families, in the 0-10 scaling of their goals."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_
from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.audit import Auditor
from app.db import run
from app.models.case import Case, CaseChild
from app.models.plan import Goal, Review, ReviewScore
from app.models.report import BANDS, OutcomeRow, Report
from app.security import Principal
from app.services import access, plans
from app.services.report_tables import (
    Period,
    Table,
    audit,
    check_school,
    children_by,
    envelope,
    period,
)

# The counts of a row that add up across categories into the total row: each goal is in one
# category. Families, children and cases are not: one case has goals in several.
_PER_GOAL = ["goals", "goals_scaled", "positive_impacts", *(f"band_{b}" for b in BANDS)]


def open_in(span: Period) -> ColumnElement[bool]:
    """A case open at some time in the period: opened by its end, not closed before it
    began."""
    opened_by = datetime.combine(span.end + timedelta(days=1), time(), tzinfo=UTC)
    condition = col(Case.opened_at) < opened_by
    if span.start is None:
        return condition
    closed_from = datetime.combine(span.start, time(), tzinfo=UTC)
    return condition & or_(col(Case.closed_at).is_(None), col(Case.closed_at) >= closed_from)


def scope_query(
    principal: Principal, span: Period, school_id: uuid.UUID | None
) -> SelectOfScalar[uuid.UUID]:
    """The ids of the cases in scope: within reach (and of `school_id`), open in the period.
    Used as a subquery, so no report sends thousands of ids back to the database."""
    query = select(Case.id).where(access.case_in_reach(principal), open_in(span))
    if school_id is not None:
        query = query.where(Case.school_id == school_id)
    return query


async def cases_in_scope(
    session: AsyncSession, principal: Principal, span: Period, school_id: uuid.UUID | None
) -> list[uuid.UUID]:
    return list((await session.exec(scope_query(principal, span, school_id))).all())


async def first_and_latest(
    session: AsyncSession, in_scope: ColumnElement[bool], until: date
) -> list[tuple[uuid.UUID, str, int | None, int | None]]:
    """Every goal of the cases in scope: its case, its category, and its first and latest
    score by `until`, in review order (held_on, then when recorded); None when unscored.
    The database picks the two scores, so one row per goal comes back, not one per score."""
    order = (col(Review.held_on), col(Review.id))
    ranked = (
        core_select(
            col(ReviewScore.goal_id).label("goal_id"),
            col(ReviewScore.score).label("score"),
            func.row_number()
            .over(partition_by=col(ReviewScore.goal_id), order_by=order)
            .label("up"),
            func.row_number()
            .over(partition_by=col(ReviewScore.goal_id), order_by=[c.desc() for c in order])
            .label("down"),
        )
        .join(Review, col(Review.id) == col(ReviewScore.review_id))
        .join(Goal, col(Goal.id) == col(ReviewScore.goal_id))
        .where(in_scope, col(Review.held_on) <= until)
        .subquery("ranked")
    )
    ends = (
        core_select(
            ranked.c.goal_id,
            func.max(case((ranked.c.up == 1, ranked.c.score))).label("first"),
            func.max(case((ranked.c.down == 1, ranked.c.score))).label("latest"),
        )
        .where(or_(ranked.c.up == 1, ranked.c.down == 1))
        .group_by(ranked.c.goal_id)
        .subquery("ends")
    )
    query = (
        core_select(col(Goal.case_id), col(Goal.outcome_category), ends.c.first, ends.c.latest)
        .outerjoin(ends, ends.c.goal_id == col(Goal.id))
        .where(in_scope)
    )
    rows: list[Any] = list(await run(session, query))
    return [(case_id, category, first, latest) for case_id, category, first, latest in rows]


@dataclass
class _Tally:
    """One row's figures, gathered goal by goal."""

    goals: int = 0
    goals_scaled: int = 0
    bands: list[int] = field(default_factory=lambda: [0] * len(BANDS))
    cases: set[uuid.UUID] = field(default_factory=set)
    scaled_cases: set[uuid.UUID] = field(default_factory=set)

    def row(self, children: dict[uuid.UUID, set[uuid.UUID]], **keys: Any) -> dict[str, Any]:
        kids: set[uuid.UUID] = set()
        for case_id in self.scaled_cases:
            kids.update(children.get(case_id, ()))
        return {
            **keys,
            "goals": self.goals,
            "goals_scaled": self.goals_scaled,
            "positive_impacts": sum(self.bands),
            **{f"band_{band}": n for band, n in zip(BANDS, self.bands, strict=True)},
            "families": len(self.scaled_cases),
            "children": len(kids),
            "cases_in_scope": len(self.cases),
            "too_early_to_scale": len(self.cases - self.scaled_cases),
        }


async def outcomes(
    auditor: Auditor,
    start: date | None,
    end: date | None,
    school_id: uuid.UUID | None,
    suppress_below: int | None = None,
) -> Report[Any]:
    """Each goal of the cases open in the period, counted once in the band of its latest
    score (score x 10%), where that score is above the goal's first: a positive impact.
    Families are the cases with a goal scaled by `to`; the rest are too early to scale."""
    session, principal = auditor.session, auditor.principal
    span = period(start, end)
    await check_school(session, principal, school_id)
    scope = scope_query(principal, span, school_id)
    case_ids = await cases_in_scope(session, principal, span, school_id)
    in_scope = col(Goal.case_id).in_(scope.scalar_subquery())
    total = _Tally(cases=set(case_ids))
    by_category: dict[str, _Tally] = defaultdict(_Tally)
    for case_id, category, first, latest in await first_and_latest(session, in_scope, span.end):
        tallies = (total, by_category[category])
        for tally in tallies:
            tally.goals += 1
            tally.cases.add(case_id)
        if latest is None or first is None:
            continue
        for tally in tallies:
            tally.goals_scaled += 1
            tally.scaled_cases.add(case_id)
            if latest > first:
                tally.bands[latest - 1] += 1
    children = await children_by(
        session,
        CaseChild,
        col(CaseChild.case_id),
        Case,
        [col(Case.id).in_(scope.scalar_subquery())],
    )
    labels = {c.code: c.label for c in await plans.categories(session, principal.reach.las)}
    table = Table(OutcomeRow)
    table.add(**total.row(children, category=None, label="All outcome categories"))
    for code in sorted(by_category):
        table.add(**by_category[code].row(children, category=code, label=labels.get(code, code)))
    parts = range(1, len(table.rows))
    table.adds_up(0, parts, _PER_GOAL)
    for i in range(len(table.rows)):
        table.adds_across(i, "positive_impacts", [f"band_{band}" for band in BANDS])
        table.adds_across(i, "cases_in_scope", ["families", "too_early_to_scale"])
    report = envelope("outcomes", table, principal, span, school_id, suppress_below)
    await audit(auditor, report, school_id, cases=len(case_ids))
    return report
