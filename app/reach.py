"""The one place that decides which schools' children a principal may see.

Every query of child-level data passes its school column through `within_reach`; nothing
filters by school inline. Objects outside reach are simply not found (404), so a caller
never learns that they exist.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, or_, select
from sqlmodel import col

from app.models.school import School
from app.security import Principal, Reach


def within_reach(school_column: Any, reach: Reach | Principal) -> ColumnElement[bool]:
    if isinstance(reach, Principal):
        reach = reach.reach
    conditions: list[ColumnElement[bool]] = []
    if reach.school_ids:
        conditions.append(school_column.in_(sorted(reach.school_ids)))
    if reach.la_code is not None:
        la_schools = select(col(School.id)).where(col(School.la_code) == reach.la_code)
        conditions.append(school_column.in_(la_schools.scalar_subquery()))
    if not conditions:
        return false()
    return or_(*conditions)


def la_in_reach(la_code: str, reach: Reach | Principal) -> bool:
    if isinstance(reach, Principal):
        reach = reach.reach
    return reach.la_code == la_code
