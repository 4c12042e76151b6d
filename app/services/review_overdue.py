"""The `case.review_overdue` sweep: announce each missed family-plan review once.

A case's next review is due one review interval (the case's own, else the service's
`review_interval_weeks`) after its last review (or after it opened, before any), and is
overdue from the day after (`review_schedule`). The sweep records the event for every open
case whose review is overdue and whose missed due date was not announced yet, and remembers
that date on the case; holding a review moves the due date on, so a later lapse is
announced again. One conditional UPDATE claims the cases, so two workers sweeping at once
never announce one lapse twice.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.config import Settings
from app.models.case import Case, CaseStatus
from app.models.plan import Review
from app.services import review_schedule, webhook_events


async def record_overdue_reviews(session: AsyncSession, settings: Settings, now: datetime) -> int:
    """Record `case.review_overdue` for each lapse not yet announced; how many were."""
    last = (
        select(func.max(Review.held_on))
        .where(col(Review.case_id) == col(Case.id))
        .correlate(Case)
        .scalar_subquery()
    )
    due = review_schedule.next_due_sql(last, settings.review_interval_weeks)
    announced = col(Case.review_overdue_notified_due)
    claimed = (
        await session.exec(
            update(Case)
            .where(
                col(Case.status) == CaseStatus.open.value,
                due < now.date(),
                # A due date moved (by a review held, or a change of interval) is a new one.
                or_(announced.is_(None), announced != due),
            )
            .values(review_overdue_notified_due=due)
            .returning(col(Case.id), col(Case.la_code), col(Case.school_id), announced)
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not claimed:
        return 0
    ids = [row[0] for row in claimed]
    reviews: dict[uuid.UUID, date] = dict(
        (
            await session.exec(
                select(Review.case_id, func.max(Review.held_on))
                .where(col(Review.case_id).in_(ids))
                .group_by(col(Review.case_id))
            )
        ).all()
    )
    for case_id, la_code, school_id, due_on in claimed:
        webhook_events.case_review_overdue(
            session, case_id, la_code, school_id, due_on, reviews.get(case_id), now
        )
    await session.flush()
    return len(claimed)
