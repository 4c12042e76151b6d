"""A case's dates, and the records dated within them.

A case opens and closes on a day. A case opened or closed today keeps the moment it
happened; one brought in with a past date (a manager's step: an existing caseload, a closure
recorded late) is stored at the start of that day in UTC, so every reader that takes the
day of `opened_at` or `closed_at` (the review timetable, the reports, retention) reads the
day given. A review, contact or measure is dated within its case's life: not before the case
opened, not after it closed, and not after today in the school's time zone.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import Forbidden, ProblemItem, ValidationFailed
from app.models.base import as_utc, utcnow
from app.models.case import Case
from app.models.intervention import Intervention
from app.models.measure import Measure
from app.models.plan import Review
from app.security import Principal, Scope
from app.services.school_calendar import school_day, school_today


def as_day(moment: datetime) -> date:
    """The day of a case's stored `opened_at` or `closed_at`, as every reader takes it."""
    return as_utc(moment).date()


def opened_on(case: Case) -> date:
    return as_day(case.opened_at)


def closed_on(case: Case) -> date | None:
    return as_day(case.closed_at) if case.closed_at is not None else None


def _problem(field: str, detail: str) -> ValidationFailed:
    return ValidationFailed(
        "The date does not fit the case's dates.",
        errors=[ProblemItem(loc=["body", field], detail=detail)],
    )


def effective_moment(
    principal: Principal, field: str, day: date | None, what: str, now: datetime | None = None
) -> tuple[datetime, bool]:
    """When a step given as of `day` (default today) takes effect, and whether it is
    backdated: 422 for a day after today, 403 for a past day without `cases:approve`."""
    now = now or utcnow()
    today = school_today()
    if day is None or day == today:
        return now, False
    if day > today:
        raise _problem(field, f"{field} {day.isoformat()} is after today ({today.isoformat()})")
    if not principal.has(Scope.cases_approve):
        raise Forbidden(
            f"Only a manager (scope cases:approve) may {what} with a past date: {field} "
            f"{day.isoformat()} is before today ({today.isoformat()})."
        )
    return start_of(day), True


def start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def check_within(case: Case, field: str, day: date) -> None:
    """422 naming both dates when a record's `day` falls outside the case's life (or after
    today)."""
    today = school_today()
    if day > today:
        raise _problem(field, f"{field} {day.isoformat()} is after today ({today.isoformat()})")
    opened = opened_on(case)
    if day < opened:
        raise _problem(
            field, f"{field} {day.isoformat()} is before the case opened ({opened.isoformat()})"
        )
    closed = closed_on(case)
    if closed is not None and day > closed:
        raise _problem(
            field, f"{field} {day.isoformat()} is after the case closed ({closed.isoformat()})"
        )


async def latest_record(session: AsyncSession, case_id: uuid.UUID) -> tuple[str, date] | None:
    """The case's latest dated record (review, contact or measure): what it is and its day."""
    found: list[tuple[str, date]] = []
    held = (
        await session.exec(select(func.max(Review.held_on)).where(Review.case_id == case_id))
    ).one()
    if held is not None:
        found.append(("a review held on", held))
    measured = (
        await session.exec(select(func.max(Measure.measured_on)).where(Measure.case_id == case_id))
    ).one()
    if measured is not None:
        found.append(("a measure taken on", measured))
    occurred = (
        await session.exec(
            select(func.max(Intervention.occurred_at)).where(Intervention.case_id == case_id)
        )
    ).one()
    if occurred is not None:
        found.append(("a contact on", school_day(occurred)))
    return max(found, key=lambda item: item[1]) if found else None


async def closing_day_problem(
    session: AsyncSession, case: Case, field: str, day: date
) -> str | None:
    """Why the case cannot close on `day`, naming the dates: before it opened, or before its
    latest record. None when it can."""
    opened = opened_on(case)
    if day < opened:
        return f"{field} {day.isoformat()} is before the case opened ({opened.isoformat()})"
    latest = await latest_record(session, case.id)
    if latest is not None and day < latest[1]:
        what, on = latest
        return (
            f"{field} {day.isoformat()} is before the case's latest record ({what} "
            f"{on.isoformat()})"
        )
    return None
