"""Day arithmetic inside SQL, the same on SQLite and PostgreSQL, so that reports can work out
each child's own date windows in the database instead of sending it thousands of dates.

- `day_of(moment)`: the UTC day of a stored moment (as `case_dates.as_day` reads a case's
  `opened_at` and `closed_at`).
- `week_of(day)`: the Monday of the day's week (as `school_calendar.week_start`).
- `plus_days(day, n)`: the day `n` days later (earlier for a negative `n`).
- `plus_days_of(day, days)`: the same with the count an SQL expression (a column), for
  intervals that differ row by row (a case's own review interval).

SQLite keeps a date as `YYYY-MM-DD` text, which compares as dates do; its `date()` function
answers in the same form.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Date, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement


class day_of(FunctionElement[date]):
    type = Date()
    inherit_cache = True
    name = "day_of"


class week_of(FunctionElement[date]):
    type = Date()
    inherit_cache = True
    name = "week_of"


class plus_days(FunctionElement[date]):
    type = Date()
    inherit_cache = True
    name = "plus_days"

    def __init__(self, day: ColumnElement[Any], days: int) -> None:
        # The count is part of the statement's text (and so of its cache key).
        super().__init__(day, literal_column(str(int(days))))


class plus_days_of(FunctionElement[date]):
    type = Date()
    inherit_cache = True
    name = "plus_days_of"

    def __init__(self, day: ColumnElement[Any], days: ColumnElement[Any]) -> None:
        super().__init__(day, days)


def _day_and_count(element: plus_days, compiler: SQLCompiler, **kw: Any) -> tuple[str, int]:
    day, days = list(element.clauses)
    return compiler.process(day, **kw), int(days.name)


def _only(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    [argument] = list(element.clauses)
    return compiler.process(argument, **kw)


@compiles(day_of)
def _day_of(element: day_of, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({_only(element, compiler, **kw)})"


@compiles(day_of, "postgresql")
def _day_of_pg(element: day_of, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(timezone('UTC', {_only(element, compiler, **kw)}) AS DATE)"


@compiles(week_of)
def _week_of(element: week_of, compiler: SQLCompiler, **kw: Any) -> str:
    # 'weekday 0' moves on to the Sunday ending the (Monday-first) week, or stays on it.
    return f"date({_only(element, compiler, **kw)}, 'weekday 0', '-6 days')"


@compiles(week_of, "postgresql")
def _week_of_pg(element: week_of, compiler: SQLCompiler, **kw: Any) -> str:
    day = _only(element, compiler, **kw)
    return f"(CAST({day} AS DATE) - CAST(EXTRACT(ISODOW FROM {day}) AS INTEGER) + 1)"


@compiles(plus_days)
def _plus_days(element: plus_days, compiler: SQLCompiler, **kw: Any) -> str:
    day, days = _day_and_count(element, compiler, **kw)
    return f"date({day}, '{days:+d} days')"


@compiles(plus_days, "postgresql")
def _plus_days_pg(element: plus_days, compiler: SQLCompiler, **kw: Any) -> str:
    day, days = _day_and_count(element, compiler, **kw)
    return f"(CAST({day} AS DATE) + ({days:d}))"


def _day_and_expression(element: plus_days_of, compiler: SQLCompiler, **kw: Any) -> tuple[str, str]:
    day, days = list(element.clauses)
    return compiler.process(day, **kw), compiler.process(days, **kw)


@compiles(plus_days_of)
def _plus_days_of(element: plus_days_of, compiler: SQLCompiler, **kw: Any) -> str:
    day, days = _day_and_expression(element, compiler, **kw)
    return f"date({day}, printf('%+d days', {days}))"


@compiles(plus_days_of, "postgresql")
def _plus_days_of_pg(element: plus_days_of, compiler: SQLCompiler, **kw: Any) -> str:
    day, days = _day_and_expression(element, compiler, **kw)
    return f"(CAST({day} AS DATE) + CAST({days} AS INTEGER))"
