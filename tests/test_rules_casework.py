"""The casework rules on their own, table by table: the 12 months a re-referral looks back,
the review timetable of a family plan, and a child's re-integration timetable.

No database and no HTTP (the review timetable's one query is answered by a stand-in); the
HTTP tests in `test_referrals.py` and `test_plans.py` keep checking the wiring.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from app.models.case import Case, CaseStatus
from app.models.intervention import StepRead
from app.services.cases import RE_REFERRAL_MONTHS, months_before
from app.services.interventions import compute
from app.services.review_schedule import ReviewTimetable, timetables

# --- how far back a re-referral looks --------------------------------------------------------


def test_a_re_referral_looks_back_12_months() -> None:
    """docs/casework.md: a case closed within the 12 months before the referral arrived."""
    assert RE_REFERRAL_MONTHS == 12


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 3, 15), 0, date(2026, 3, 15)),
        (date(2026, 1, 15), 12, date(2025, 1, 15)),
        (date(2026, 1, 10), 13, date(2024, 12, 10)),  # across a year end
        (date(2026, 1, 31), 2, date(2025, 11, 30)),  # no 31 November: its last day
        (date(2026, 3, 31), 1, date(2026, 2, 28)),  # no 31 February in 2026
        (date(2024, 3, 31), 1, date(2024, 2, 29)),  # 2024 is a leap year
        (date(2024, 2, 29), 12, date(2023, 2, 28)),  # a year before 29 February
        (date(2028, 2, 29), 48, date(2024, 2, 29)),  # four years before: 29 February again
        (date(2025, 2, 28), 12, date(2024, 2, 28)),  # not moved to the leap day
        (date(2026, 12, 31), 10, date(2026, 2, 28)),
    ],
)
def test_months_before_keeps_the_day_or_the_months_last(
    day: date, months: int, expected: date
) -> None:
    assert months_before(day, months) == expected


# --- the review timetable ------------------------------------------------------------------


class _LatestReviews:
    """Stands in for the session: answers the one query (each case's latest review) with
    the dates given."""

    def __init__(self, latest: dict[uuid.UUID, date]) -> None:
        self.latest = latest

    async def exec(self, _query: Any, params: Any = None) -> _LatestReviews:
        return self

    def all(self) -> list[tuple[uuid.UUID, date]]:
        return list(self.latest.items())


OPENED = date(2026, 1, 5)  # a Monday


def case_opened(on: date, status: CaseStatus = CaseStatus.open) -> Case:
    return Case(
        id=uuid.uuid4(),
        la_code="202",
        status=status,
        level_of_need="targeted_early_help",
        opened_by="staff:test",
        opened_at=datetime(on.year, on.month, on.day, 9, 30, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("weeks", "reviewed", "status", "today", "expected"),
    [
        pytest.param(
            6, None, CaseStatus.open, date(2026, 2, 16),
            ReviewTimetable(None, date(2026, 2, 16), False),
            id="first review due 6 weeks after opening; not late on the day",
        ),
        pytest.param(
            6, None, CaseStatus.open, date(2026, 2, 17),
            ReviewTimetable(None, date(2026, 2, 16), True),
            id="late the day after",
        ),
        pytest.param(
            12, None, CaseStatus.open, date(2026, 3, 30),
            ReviewTimetable(None, date(2026, 3, 30), False),
            id="every 12 weeks",
        ),
        pytest.param(
            6, date(2026, 2, 10), CaseStatus.open, date(2026, 3, 24),
            ReviewTimetable(date(2026, 2, 10), date(2026, 3, 24), False),
            id="next due 6 weeks after the last review",
        ),
        pytest.param(
            6, date(2026, 2, 10), CaseStatus.open, date(2026, 3, 25),
            ReviewTimetable(date(2026, 2, 10), date(2026, 3, 24), True),
            id="late after the last review too",
        ),
        pytest.param(
            6, None, CaseStatus.closed, date(2026, 6, 1),
            ReviewTimetable(None, date(2026, 2, 16), False),
            id="a closed case is never late",
        ),
    ],
)  # fmt: skip
async def test_when_the_next_review_is_due(
    weeks: int,
    reviewed: date | None,
    status: CaseStatus,
    today: date,
    expected: ReviewTimetable,
) -> None:
    case = case_opened(OPENED, status)
    session = _LatestReviews({case.id: reviewed} if reviewed else {})
    found = await timetables(session, [case], weeks, today)  # type: ignore[arg-type]
    assert found == {case.id: expected}


async def test_no_cases_no_timetables() -> None:
    assert await timetables(_LatestReviews({}), [], 6, OPENED) == {}  # type: ignore[arg-type]


# --- the re-integration timetable -----------------------------------------------------------


def today() -> date:
    """The timetable's own clock: today in UTC."""
    return datetime.now(UTC).date()


def plan(*steps: tuple[int, float]) -> Sequence[dict[str, object]]:
    """Steps starting that many days from today (negative: already started)."""
    return [
        {"starts_on": (today() + timedelta(days=days)).isoformat(), "planned_hours": hours}
        for days, hours in steps
    ]


@pytest.mark.parametrize(
    ("full_time", "steps", "current", "hours", "full", "full_from"),
    [
        pytest.param(32.5, plan((0, 10)), 0, 10.0, False, None, id="the first step starts today"),
        pytest.param(
            32.5, plan((-14, 10), (-7, 20), (7, 32.5)), 1, 20.0, False, 7,
            id="half way: full time next week",
        ),
        pytest.param(32.5, plan((1, 10)), None, 0.0, False, None, id="not started yet"),
        pytest.param(
            32.5, plan((-7, 16.25), (0, 32.5)), 1, 32.5, True, 0, id="full time from today"
        ),
        pytest.param(25, plan((-1, 25)), 0, 25.0, True, -1, id="a shorter full-time week"),
        pytest.param(
            32.5, plan((-7, 32.5), (0, 20)), 1, 20.0, False, -7,
            id="back below full time: full_time_from stays the first step reaching it",
        ),
    ],
)  # fmt: skip
def test_where_the_child_is_on_the_timetable(
    full_time: float,
    steps: Sequence[dict[str, object]],
    current: int | None,
    hours: float,
    full: bool,
    full_from: int | None,
) -> None:
    child = uuid.uuid4()
    answer = compute(child, full_time, steps)
    assert answer.child_id == child
    assert answer.full_time_hours == full_time
    assert answer.current_step == current
    assert answer.current_hours == hours
    assert answer.on_full_timetable is full
    expected_from = None if full_from is None else today() + timedelta(days=full_from)
    assert answer.full_time_from == expected_from
    assert [s.starts_on.isoformat() for s in answer.steps] == [s["starts_on"] for s in steps]


@pytest.mark.parametrize(
    ("full_time", "hours", "percent"),
    [
        (32.5, 10, 30.8),  # 30.769...
        (32.5, 20, 61.5),  # 61.538...
        (32.5, 16.25, 50.0),
        (32.5, 32.5, 100.0),
        (32.5, 0, 0.0),
        (40, 0.5, 1.3),  # 1.25: half up
        (40, 1.5, 3.8),  # 3.75
        (8, 1, 12.5),
    ],
)
def test_each_step_as_a_percent_of_the_full_week(
    full_time: float, hours: float, percent: float
) -> None:
    (step,) = compute(uuid.uuid4(), full_time, plan((0, hours))).steps
    assert step == StepRead(starts_on=today(), planned_hours=hours, percent_of_full_time=percent)
