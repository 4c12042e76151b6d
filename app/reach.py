"""The one place that decides which schools' children a principal may see.

Every query of child-level data passes its school column through `within_reach`; nothing
filters by school inline. Objects outside reach are simply not found (404), so a caller
never learns that they exist.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BindParameter, ColumnElement, bindparam, false, or_, select
from sqlmodel import col

from app.errors import Forbidden, NotFound
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


def reach_condition(school_column: Any) -> ColumnElement[bool]:
    """`within_reach` for a statement built once, at import, for any principal: the reach
    comes in as the parameters `reach_params` gives (an empty school list and a null LA
    match nothing). For the hot reads, which then pay neither for building the statement
    nor for its cache key."""
    la_schools = select(col(School.id)).where(col(School.la_code) == bindparam("reach_la"))
    return or_(
        school_column.in_(bindparam("reach_schools", expanding=True)),
        school_column.in_(la_schools.scalar_subquery()),
    )


def reach_params(reach: Reach | Principal) -> dict[str, Any]:
    if isinstance(reach, Principal):
        reach = reach.reach
    return {"reach_schools": sorted(reach.school_ids), "reach_la": reach.la_code}


def casework_in_reach(
    principal: Principal,
    *,
    la_column: Any,
    school_column: Any,
    id_column: Any,
    child_owner_column: Any,
    child_school_column: Any,
) -> ColumnElement[bool]:
    """A referral or case is within reach when it belongs to the principal's LA, or its
    school or any of its children's schools is one of the principal's schools."""
    reach = principal.reach
    conditions: list[ColumnElement[bool]] = []
    if reach.la_code is not None:
        conditions.append(la_column == reach.la_code)
    if reach.school_ids:
        schools = sorted(reach.school_ids)
        conditions.append(school_column.in_(schools))
        with_child = select(child_owner_column).where(child_school_column.in_(schools))
        conditions.append(id_column.in_(with_child.scalar_subquery()))
    if not conditions:
        return false()
    return or_(*conditions)


def casework_reach_condition(
    *,
    la_column: Any,
    school_column: Any,
    id_column: Any,
    child_owner_column: Any,
    child_school_column: Any,
) -> ColumnElement[bool]:
    """`casework_in_reach` for a statement built once, with the reach as the parameters
    `reach_params` gives (an empty school list and a null LA match nothing)."""
    schools: BindParameter[Any] = bindparam("reach_schools", expanding=True)
    with_child = select(child_owner_column).where(child_school_column.in_(schools))
    return or_(
        la_column == bindparam("reach_la"),
        school_column.in_(schools),
        id_column.in_(with_child.scalar_subquery()),
    )


def writable_la(principal: Principal, requested: str | None = None) -> str:
    """The LA whose own records (reference data, directory entries) the principal writes:
    its own LA and no other. Any other LA, real or not, gets the same answer; the national
    lists belong to the operator, who writes them with the CLI."""
    own = principal.reach.la_code
    if requested is not None and requested != own:
        raise Forbidden(f"LA {requested} is outside your reach.")
    if own is None:
        raise Forbidden(
            "An LA's own records are written by an account bound to that LA; this one is not."
        )
    return own


def readable_las(principal: Principal, requested: str | None = None) -> frozenset[str]:
    """The LAs whose own reference lists the principal reads: those it works in, or the one
    it asks for if it works there. Any other LA, real or not, is not found."""
    if requested is None:
        return principal.reach.las
    if requested not in principal.reach.las:
        raise NotFound("No such LA within your reach.")
    return frozenset({requested})
