"""The attendance rules on their own, table by table: the academic year and term of a date,
the attendance rate with its rounding and band, and the absence-flag judgement.

No database and no HTTP: these call the pure functions the marks push and the figures use.
`test_attendance.py` keeps checking that the push and the reads are wired to them.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from app.config import Settings
from app.models.attendance import FlagKind
from app.services.attendance import VALIDATE_SLICE, validate_shapes
from app.services.attendance_flags import Standing, _Week, judge, standing
from app.services.school_calendar import academic_year, band, easter_sunday, rate, term_of
from tests.conftest import settings_for

# The defaults (README): persistent and severe absence are judged from 20 possible sessions;
# 3 unexplained sessions in a row; a decline of 15 points over the last 4 weeks against at
# least 20 earlier sessions.
DEFAULTS = settings_for("sqlite+aiosqlite://")
PERSISTENT, SEVERE = FlagKind.persistent_absence, FlagKind.severe_absence
UNEXPLAINED, DECLINE = FlagKind.unexplained_absence, FlagKind.sharp_decline


# --- the academic year and its terms ------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "year"),
    [
        (date(2025, 7, 31), 2024),  # the last day of a year
        (date(2025, 8, 1), 2025),  # years start on 1 August...
        (date(2025, 8, 18), 2025),  # ...which takes in Scotland's mid-August start
        (date(2025, 9, 1), 2025),  # and England's and Wales's September start
        (date(2025, 12, 31), 2025),
        (date(2026, 1, 1), 2025),  # a new calendar year, the same academic year
        (date(2024, 2, 29), 2023),
    ],
)
def test_the_academic_year_starts_on_1_august(day: date, year: int) -> None:
    assert academic_year(day) == year


@pytest.mark.parametrize(
    ("year", "sunday"),
    [
        (1961, date(1961, 4, 2)),
        (2000, date(2000, 4, 23)),
        (2008, date(2008, 3, 23)),
        (2019, date(2019, 4, 21)),
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2038, date(2038, 4, 25)),  # the latest Easter can be
        (2285, date(2285, 3, 22)),  # the earliest
    ],
)
def test_easter_sunday(year: int, sunday: date) -> None:
    assert easter_sunday(year) == sunday


@pytest.mark.parametrize(
    ("day", "term"),
    [
        (date(2024, 8, 1), (2024, "autumn", date(2024, 8, 1), date(2024, 12, 31))),
        (date(2024, 12, 31), (2024, "autumn", date(2024, 8, 1), date(2024, 12, 31))),
        (date(2024, 2, 29), (2023, "spring", date(2024, 1, 1), date(2024, 3, 31))),
        # Spring ends on Easter Sunday; summer starts on Easter Monday.
        (date(2024, 3, 31), (2023, "spring", date(2024, 1, 1), date(2024, 3, 31))),
        (date(2024, 4, 1), (2023, "summer", date(2024, 4, 1), date(2024, 7, 31))),
        (date(2024, 7, 31), (2023, "summer", date(2024, 4, 1), date(2024, 7, 31))),
        (date(2026, 1, 1), (2025, "spring", date(2026, 1, 1), date(2026, 4, 5))),
        (date(2026, 4, 5), (2025, "spring", date(2026, 1, 1), date(2026, 4, 5))),
        (date(2026, 4, 6), (2025, "summer", date(2026, 4, 6), date(2026, 7, 31))),
    ],
)
def test_the_term_of_a_date(day: date, term: tuple[int, str, date, date]) -> None:
    assert term_of(day, "england") == term
    assert term_of(day, "wales") == term
    year, _, first, last = term
    assert first <= day <= last
    assert academic_year(first) == academic_year(last) == year


# --- the rate and its band -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("possible", "attended", "expected"),
    [
        (0, 0, None),  # no possible session: no rate, not 0%
        (80, 80, 100.0),
        (80, 73, 91.3),  # 91.25: half up, on the exact fraction
        (80, 69, 86.3),  # 86.25: a binary float would round it to 86.2
        (80, 71, 88.8),  # 88.75
        (3, 2, 66.7),
        (8, 1, 12.5),
        (2000, 1, 0.1),  # 0.05
        (2000, 1999, 100.0),  # 99.95 shows as 100.0 (but is not "full", below)
        (40, 36, 90.0),
    ],
)
def test_the_rate_is_a_percent_to_one_decimal_rounded_half_up(
    possible: int, attended: int, expected: float | None
) -> None:
    assert rate(possible, attended) == expected


@pytest.mark.parametrize(
    ("possible", "attended", "expected"),
    [
        (0, 0, None),
        (80, 80, "full"),
        (2000, 1999, "expected"),
        (80, 76, "expected"),  # exactly 95%
        (80, 75, "at_risk"),  # 93.75%
        (80, 73, "at_risk"),  # 91.25%: over 90%
        (80, 72, "persistent_absence"),  # exactly 10% missed
        (20, 18, "persistent_absence"),
        (80, 41, "persistent_absence"),  # 48.75% missed
        (80, 40, "severe_absence"),  # exactly 50% missed
        (1, 0, "severe_absence"),
    ],
)
def test_the_band_of_a_rate(possible: int, attended: int, expected: str | None) -> None:
    assert band(possible, attended) == expected


# --- the absence flags -----------------------------------------------------------------------


def figures(possible: int, attended: int, rate_shown: float) -> dict[str, Any]:
    return {
        "possible_sessions": possible,
        "missed_sessions": possible - attended,
        "attendance_rate": rate_shown,
    }


def decline(earlier: float, recent: float) -> dict[str, Any]:
    return {"earlier_rate": earlier, "recent_rate": recent, "recent_weeks": 4}


@pytest.mark.parametrize(
    ("now", "held"),
    [
        pytest.param(None, {}, id="no marks"),
        pytest.param(Standing(2025, 80, 73, 0, 0, False), {}, id="73 of 80: under 10% missed"),
        pytest.param(
            Standing(2025, 80, 72, 0, 0, False),
            {PERSISTENT: figures(80, 72, 90.0)},
            id="72 of 80: exactly 10% missed",
        ),
        pytest.param(
            Standing(2025, 80, 42, 0, 0, False),
            {PERSISTENT: figures(80, 42, 52.5)},
            id="42 of 80: 47.5% missed",
        ),
        pytest.param(
            Standing(2025, 80, 40, 0, 0, False),
            {PERSISTENT: figures(80, 40, 50.0), SEVERE: figures(80, 40, 50.0)},
            id="40 of 80: exactly 50% missed",
        ),
        pytest.param(Standing(2025, 19, 0, 0, 0, False), {}, id="19 sessions: too few to judge"),
        pytest.param(
            Standing(2025, 20, 18, 0, 0, False),
            {PERSISTENT: figures(20, 18, 90.0)},
            id="20 sessions: judged",
        ),
        pytest.param(
            Standing(2025, 20, 0, 0, 0, False),
            {PERSISTENT: figures(20, 0, 0.0), SEVERE: figures(20, 0, 0.0)},
            id="20 sessions, none attended",
        ),
        pytest.param(
            Standing(2025, 3, 0, 0, 0, True),
            {UNEXPLAINED: {"consecutive_unexplained_sessions": 3}},
            id="an unexplained run needs no minimum",
        ),
        pytest.param(
            Standing(2025, 50, 47, 20, 17, False),
            {DECLINE: decline(100.0, 85.0)},
            id="100% then 85%: a decline of exactly 15 points",
        ),
        pytest.param(
            Standing(2025, 80, 73, 50, 43, False),
            {},
            id="100% then 86%: 14 points",
        ),
        pytest.param(
            Standing(2025, 60, 33, 20, 9, False),
            {PERSISTENT: figures(60, 33, 55.0), DECLINE: decline(60.0, 45.0)},
            id="60% then 45%: 15 points from a low rate",
        ),
        pytest.param(
            Standing(2025, 39, 29, 20, 10, False),
            {PERSISTENT: figures(39, 29, 74.4)},
            id="19 earlier sessions: too few to compare against",
        ),
        pytest.param(
            Standing(2025, 40, 36, 20, 16, False),
            {PERSISTENT: figures(40, 36, 90.0), DECLINE: decline(100.0, 80.0)},
            id="20 earlier sessions: compared",
        ),
        pytest.param(
            Standing(2025, 30, 30, 0, 0, False), {}, id="nothing recent: nothing to compare"
        ),
        pytest.param(
            Standing(2025, 40, 30, 20, 20, False),
            {PERSISTENT: figures(40, 30, 75.0)},
            id="a rise is no decline",
        ),
    ],
)
def test_which_flags_hold(now: Standing | None, held: dict[FlagKind, dict[str, Any]]) -> None:
    assert judge(DEFAULTS, now) == held


@pytest.mark.parametrize(
    ("overrides", "now", "kinds"),
    [
        ({"flag_min_sessions": 10}, Standing(2025, 10, 9, 0, 0, False), {PERSISTENT}),
        ({"flag_min_sessions": 11}, Standing(2025, 10, 9, 0, 0, False), set()),
        ({"unexplained_run_sessions": 5}, Standing(2025, 5, 0, 0, 0, True), {UNEXPLAINED}),
        # 100% then 87.5%: 12.5 points, a decline only where 12.5 is the threshold.
        ({"sharp_decline_points": 12.5}, Standing(2025, 36, 34, 16, 14, False), {DECLINE}),
        ({"sharp_decline_points": 12.6}, Standing(2025, 36, 34, 16, 14, False), set()),
        ({"sharp_decline_min_sessions": 21}, Standing(2025, 40, 36, 20, 16, False), {PERSISTENT}),
    ],
)
def test_the_thresholds_come_from_the_settings(
    overrides: dict[str, Any], now: Standing, kinds: set[FlagKind]
) -> None:
    settings = settings_for("sqlite+aiosqlite://", **overrides)
    assert set(judge(settings, now)) == kinds
    if UNEXPLAINED in kinds:
        assert judge(settings, now)[UNEXPLAINED] == {
            "consecutive_unexplained_sessions": overrides["unexplained_run_sessions"]
        }


def weeks(first: date, *counts: tuple[int, int], year: int = 2025) -> list[_Week]:
    """Consecutive school weeks from `first`, each (possible, attended)."""
    return [
        _Week(first + timedelta(weeks=n), year, possible, attended)
        for n, (possible, attended) in enumerate(counts)
    ]


SEPTEMBER = date(2025, 9, 1)  # a Monday
FULL_WEEK = (10, 10)


@pytest.mark.parametrize(
    ("history", "trailing", "expected"),
    [
        pytest.param([], [], None, id="no weeks: no standing"),
        pytest.param(
            weeks(SEPTEMBER, FULL_WEEK, FULL_WEEK, FULL_WEEK, FULL_WEEK, (10, 6), (10, 5)),
            [],
            Standing(2025, 60, 51, 40, 31, False),
            id="six weeks: the last four are recent",
        ),
        pytest.param(
            weeks(date(2025, 6, 2), (10, 2), year=2024) + weeks(SEPTEMBER, (10, 9)),
            [],
            Standing(2025, 10, 9, 10, 9, False),
            id="only the latest academic year counts",
        ),
        pytest.param(
            weeks(SEPTEMBER, FULL_WEEK, FULL_WEEK, FULL_WEEK, FULL_WEEK, FULL_WEEK, (0, 0)),
            [],
            Standing(2025, 50, 50, 40, 40, False),
            id="a week with no possible session does not move the recent weeks",
        ),
        pytest.param(
            # Half term: no marks for the weeks of 20 and 27 October. The recent weeks are
            # the four calendar weeks up to the latest week with marks, so only two of them
            # have marks.
            weeks(date(2025, 9, 29), FULL_WEEK, FULL_WEEK, FULL_WEEK)
            + weeks(date(2025, 11, 3), (10, 5)),
            [],
            Standing(2025, 40, 35, 20, 15, False),
            id="recent weeks are calendar weeks",
        ),
        pytest.param(
            weeks(SEPTEMBER, (6, 3)),
            [True, True, True],
            Standing(2025, 6, 3, 6, 3, True),
            id="three unexplained sessions, newest first",
        ),
        pytest.param(
            weeks(SEPTEMBER, (6, 4)),
            [True, True],
            Standing(2025, 6, 4, 6, 4, False),
            id="two are not a run",
        ),
        pytest.param(
            weeks(SEPTEMBER, (6, 2)),
            [True, True, False, True],
            Standing(2025, 6, 2, 6, 2, False),
            id="a run is broken by an explained session",
        ),
        pytest.param(
            weeks(SEPTEMBER, (6, 2)),
            [True, True, True, False],
            Standing(2025, 6, 2, 6, 2, True),
            id="only the latest sessions count",
        ),
    ],
)
def test_a_pupils_standing(
    history: list[_Week], trailing: list[bool], expected: Standing | None
) -> None:
    assert standing(DEFAULTS, history, trailing) == expected


def test_the_default_thresholds_are_the_documented_ones() -> None:
    """README: 20 sessions, a run of 3, 15 points over 4 weeks against 20 sessions."""
    defaults: Settings = DEFAULTS
    assert (
        defaults.flag_min_sessions,
        defaults.unexplained_run_sessions,
        defaults.sharp_decline_points,
        defaults.sharp_decline_weeks,
        defaults.sharp_decline_min_sessions,
    ) == (20, 3, 15.0, 4, 20)


async def test_a_big_push_is_validated_a_slice_at_a_time_with_every_index_kept() -> None:
    """Bad marks in any slice are rejected by their index in the whole push, the good ones
    keep theirs, and the caller's raw items are let go as they are read."""
    good = {
        "school_code": "100000",
        "mis_id": "1",
        "date": "2026-11-16",
        "session": "AM",
        "code": "/",
    }
    items: list[object] = [dict(good, mis_id=str(n)) for n in range(2 * VALIDATE_SLICE + 7)]
    bad_at = [3, VALIDATE_SLICE + 1, 2 * VALIDATE_SLICE + 6]
    for index in bad_at:
        items[index] = dict(good, session="XX")
    items[VALIDATE_SLICE + 2] = dict(good, comment="nul \x00 here")
    shaped, rejected = await validate_shapes(items)
    assert sorted(r.index for r in rejected) == sorted([*bad_at, VALIDATE_SLICE + 2])
    assert [r.reason.split(":")[0] for r in sorted(rejected, key=lambda r: r.index)] == [
        "session",
        "session",
        "comment",
        "session",
    ]
    assert [index for index, _ in shaped] == [
        n for n in range(len(items)) if n not in {*bad_at, VALIDATE_SLICE + 2}
    ]
    assert all(mark["mis_id"] == str(index) for index, mark in shaped)
    assert items == [None] * len(items)
