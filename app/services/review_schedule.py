"""When each case's family plan is next reviewed (every 6 to 12 weeks), and which are late."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.base import as_utc, utcnow
from app.models.case import Case, CaseStatus
from app.models.plan import Review


@dataclass(frozen=True)
class ReviewTimetable:
    last_review_on: date | None
    next_review_due: date
    review_overdue: bool


async def timetables(
    session: AsyncSession, case_rows: Sequence[Case], weeks: int, today: date | None = None
) -> dict[uuid.UUID, ReviewTimetable]:
    """When each case was last reviewed, when the next review is due, and whether it is late.
    Before any review, the first is due `weeks` after the case opened."""
    today = today or utcnow().date()
    last: dict[uuid.UUID, date] = {}
    if case_rows:
        query = (
            select(Review.case_id, func.max(Review.held_on))
            .where(col(Review.case_id).in_([c.id for c in case_rows]))
            .group_by(col(Review.case_id))
        )
        last = {row[0]: row[1] for row in (await session.exec(query)).all()}
    out = {}
    for c in case_rows:
        since = last.get(c.id) or as_utc(c.opened_at).date()
        due = since + timedelta(weeks=weeks)
        out[c.id] = ReviewTimetable(
            last.get(c.id), due, c.status == CaseStatus.open and due < today
        )
    return out


def overdue_condition(weeks: int, today: date | None = None) -> Any:
    """SQL for "the case is open and its next review is before today"."""
    cutoff = (today or utcnow().date()) - timedelta(weeks=weeks)
    last = select(func.max(Review.held_on)).where(col(Review.case_id) == Case.id).scalar_subquery()
    opened_before = datetime.combine(cutoff, time(), tzinfo=UTC)
    return and_(
        col(Case.status) == CaseStatus.open.value,
        or_(
            and_(last.is_not(None), last < cutoff),
            and_(last.is_(None), col(Case.opened_at) < opened_before),
        ),
    )
