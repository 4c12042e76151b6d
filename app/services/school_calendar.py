"""The school calendar and the attendance arithmetic that every figure, flag and report
shares, so that they can never disagree: "today" in Europe/London, the academic year, weeks
and terms per jurisdiction, the attendance rate with its one rounding rule, and the
persistent (10%) and severe (50%) absence thresholds.

- The academic year runs from 1 August to 31 July: it takes in Scotland's mid-August start
  as well as September starts in England and Wales.
- Terms: England and Wales have three (autumn to 31 December, spring to Easter Sunday,
  summer from Easter Monday). Scotland has four (term 1 to 20 October, around the October
  break; term 2 to 31 December; term 3 to Easter Sunday; term 4 from Easter Monday). Term
  dates differ by school and council; these boundaries fall in holidays, where no marks are.
- The attendance rate is (present + approved activity) / possible sessions, as a percentage
  to one decimal place rounded half up on the exact fraction (73 of 80 is 91.3, never the
  91.2 a binary float gives).
- Persistent absence is 10% or more of possible sessions missed; severe absence 50% or more
  (the DfE's definitions), compared exactly in integers.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from app.models.base import as_utc

SCHOOL_TIME = ZoneInfo("Europe/London")
# Missed sessions as a share of possible ones, as (numerator, denominator).
PERSISTENT_ABSENCE = (1, 10)
SEVERE_ABSENCE = (1, 2)
# Attended share at or above which attendance is as expected (below it, at risk).
EXPECTED_ATTENDANCE = (95, 100)
SCOTTISH_TERM_1_ENDS = (10, 20)  # month, day


class Term(NamedTuple):
    academic_year: int  # the calendar year the academic year starts in
    name: str
    starts: date
    ends: date


def school_today() -> date:
    return datetime.now(SCHOOL_TIME).date()


def school_day(moment: datetime) -> date:
    """The day `moment` falls on in the school's time zone (a naive moment is UTC, as
    SQLite hands stored times back)."""
    return as_utc(moment).astimezone(SCHOOL_TIME).date()


def academic_year(day: date) -> int:
    """The calendar year the academic year of `day` starts in."""
    return day.year if day.month >= 8 else day.year - 1


def academic_year_start(day: date) -> date:
    return date(academic_year(day), 8, 1)


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


@functools.cache
def easter_sunday(year: int) -> date:
    """Gregorian Easter (the anonymous algorithm): spring term ends at Easter."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    n = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * n) // 451
    month, day = divmod(h + n - 7 * m + 114, 31)
    return date(year, month, day + 1)


def term_of(day: date, jurisdiction: str) -> Term:
    """The term `day` falls in, in the school calendar of `jurisdiction`."""
    year = academic_year(day)
    easter = easter_sunday(year + 1)
    scotland = jurisdiction == "scotland"
    if day.month >= 8:
        if scotland:
            split = date(year, *SCOTTISH_TERM_1_ENDS)
            if day <= split:
                return Term(year, "term_1", date(year, 8, 1), split)
            return Term(year, "term_2", split + timedelta(days=1), date(year, 12, 31))
        return Term(year, "autumn", date(year, 8, 1), date(year, 12, 31))
    if day <= easter:
        return Term(year, "term_3" if scotland else "spring", date(year + 1, 1, 1), easter)
    name = "term_4" if scotland else "summer"
    return Term(year, name, easter + timedelta(days=1), date(year + 1, 7, 31))


def rate(possible: int, attended: int) -> float | None:
    """Attendance as a percentage to one place, rounded half up on the exact fraction."""
    if possible <= 0:
        return None
    tenths = (attended * 1000 * 2 + possible) // (possible * 2)
    return tenths / 10


def missed_at_least(possible: int, attended: int, share: tuple[int, int]) -> bool:
    """Whether the sessions missed are at least `share` of those possible (exactly)."""
    numerator, denominator = share
    return possible > 0 and (possible - attended) * denominator >= possible * numerator


def persistent_absence(possible: int, attended: int) -> bool:
    return missed_at_least(possible, attended, PERSISTENT_ABSENCE)


def severe_absence(possible: int, attended: int) -> bool:
    return missed_at_least(possible, attended, SEVERE_ABSENCE)


def band(possible: int, attended: int) -> str | None:
    """`severe_absence`, `persistent_absence`, `full`, `expected` (95%+) or `at_risk`."""
    if possible <= 0:
        return None
    if severe_absence(possible, attended):
        return "severe_absence"
    if persistent_absence(possible, attended):
        return "persistent_absence"
    if attended == possible:
        return "full"
    numerator, denominator = EXPECTED_ATTENDANCE
    if attended * denominator >= possible * numerator:
        return "expected"
    return "at_risk"
