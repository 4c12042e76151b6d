"""When each case's family plan is next reviewed, and which are late.

Each case is reviewed every `review_interval_weeks`: its own (2 to 12 weeks, set on the case)
or, when it has none, the service setting (6 to 12 weeks). `interval_weeks` and
`interval_sql` are the one rule for which applies, in Python and in SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.base import as_utc, utcnow
from app.models.case import Case, CaseStatus
from app.models.plan import Review
from app.services.sql_days import day_of, plus_days_of


def interval_weeks(case: Case, default_weeks: int) -> int:
    """The review interval in effect for the case: its own, else the service setting."""
    return case.review_interval_weeks or default_weeks


def interval_sql(default_weeks: int) -> ColumnElement[int]:
    """`interval_weeks` in SQL, for the row's case."""
    return func.coalesce(col(Case.review_interval_weeks), int(default_weeks))


def next_due_sql(last_review: Any, default_weeks: int) -> ColumnElement[date]:
    """The case's next review day in SQL: its last review (else its opening day) plus its
    interval."""
    since = func.coalesce(last_review, day_of(col(Case.opened_at)))
    return plus_days_of(since, interval_sql(default_weeks) * 7)


@dataclass(frozen=True)
class ReviewTimetable:
    last_review_on: date | None
    next_review_due: date
    review_overdue: bool


_LAST_REVIEWS = (
    select(Review.case_id, func.max(Review.held_on))
    .where(col(Review.case_id).in_(bindparam("ids", expanding=True)))
    .group_by(col(Review.case_id))
)


async def timetables(
    session: AsyncSession, case_rows: Sequence[Case], weeks: int, today: date | None = None
) -> dict[uuid.UUID, ReviewTimetable]:
    """When each case was last reviewed, when the next review is due, and whether it is late.
    Before any review, the first is due one interval after the case opened; `weeks` is the
    service setting, for cases without an interval of their own."""
    today = today or utcnow().date()
    last: dict[uuid.UUID, date] = {}
    if case_rows:
        found = await session.exec(_LAST_REVIEWS, params={"ids": [c.id for c in case_rows]})
        last = {row[0]: row[1] for row in found.all()}
    out = {}
    for c in case_rows:
        since = last.get(c.id) or as_utc(c.opened_at).date()
        every = interval_weeks(c, weeks)
        due = since + timedelta(weeks=every)
        out[c.id] = ReviewTimetable(
            last.get(c.id), due, c.status == CaseStatus.open and due < today
        )
    return out


def overdue_condition(weeks: int, today: date | None = None) -> Any:
    """SQL for "the case is open and its next review is before today"."""
    last = select(func.max(Review.held_on)).where(col(Review.case_id) == Case.id).scalar_subquery()
    return and_(
        col(Case.status) == CaseStatus.open.value,
        next_due_sql(last, weeks) < (today or utcnow().date()),
    )
