"""The school calendar (issue 13, item 1): one set of thresholds and one set of terms per
jurisdiction, shared by figures, flags and reports. The rate, the bands, the academic year
and England's terms are tabled in tests/test_rules_attendance.py."""

from __future__ import annotations

from datetime import date

import pytest

from app.config import Settings
from app.services import attendance_flags
from app.services.school_calendar import (
    academic_year_start,
    band,
    persistent_absence,
    rate,
    severe_absence,
    term_of,
    week_start,
)


@pytest.mark.parametrize(
    ("possible", "attended", "persistent", "severe", "named"),
    [
        (100, 90, True, False, "persistent_absence"),  # exactly 10% missed
        (100, 91, False, False, "at_risk"),
        (100, 50, True, True, "severe_absence"),  # exactly 50% missed
        (100, 51, True, False, "persistent_absence"),
        (100, 95, False, False, "expected"),  # exactly 95% attended
        (100, 94, False, False, "at_risk"),
        (100, 100, False, False, "full"),
        (0, 0, False, False, None),
    ],
)
def test_thresholds_are_exact(
    possible: int, attended: int, persistent: bool, severe: bool, named: str | None
) -> None:
    assert persistent_absence(possible, attended) is persistent
    assert severe_absence(possible, attended) is severe
    assert band(possible, attended) == named


def test_the_academic_year_starts_on_1_august() -> None:
    assert academic_year_start(date(2026, 7, 31)) == date(2025, 8, 1)
    assert academic_year_start(date(2026, 8, 1)) == date(2026, 8, 1)


@pytest.mark.parametrize(
    ("day", "jurisdiction", "name", "starts", "ends"),
    [
        (date(2025, 9, 3), "england", "autumn", date(2025, 8, 1), date(2025, 12, 31)),
        (date(2026, 4, 5), "england", "spring", date(2026, 1, 1), date(2026, 4, 5)),
        (date(2026, 4, 6), "wales", "summer", date(2026, 4, 6), date(2026, 7, 31)),
        (date(2025, 10, 20), "scotland", "term_1", date(2025, 8, 1), date(2025, 10, 20)),
        (date(2025, 10, 21), "scotland", "term_2", date(2025, 10, 21), date(2025, 12, 31)),
        (date(2026, 2, 2), "scotland", "term_3", date(2026, 1, 1), date(2026, 4, 5)),
        (date(2026, 6, 1), "scotland", "term_4", date(2026, 4, 6), date(2026, 7, 31)),
    ],
)
def test_terms_per_jurisdiction(
    day: date, jurisdiction: str, name: str, starts: date, ends: date
) -> None:
    term = term_of(day, jurisdiction)
    assert (term.academic_year, term.name, term.starts, term.ends) == (2025, name, starts, ends)


def test_weeks_start_on_monday() -> None:
    assert week_start(date(2026, 11, 29)) == date(2026, 11, 23)  # a Sunday
    assert week_start(date(2026, 11, 23)) == date(2026, 11, 23)


def test_a_flag_states_the_rate_the_figures_state() -> None:
    """73 of 80 sessions: the flag's evidence and the figures both say 91.3 (was 91.2)."""
    settings = Settings()
    standing = attendance_flags.Standing(
        year=2025,
        possible=80,
        attended=69,
        recent_possible=0,
        recent_attended=0,
        unexplained_run=False,
    )
    held = attendance_flags.judge(settings, standing)
    assert held[attendance_flags.FlagKind.persistent_absence]["attendance_rate"] == rate(80, 69)
    assert rate(80, 69) == 86.3
