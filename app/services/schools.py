"""Schools: admins create and edit them within their reach; everyone reads within reach."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import add_unique
from app.errors import NotFound, ProblemItem, ValidationFailed
from app.models.base import utcnow
from app.models.school import (
    Jurisdiction,
    School,
    SchoolCreate,
    SchoolUpdate,
    check_la_code,
    check_school_code,
    check_school_in_la,
)
from app.pagination import Page, keyset
from app.reach import within_reach, writable_la
from app.security import Principal


async def get(session: AsyncSession, principal: Principal, school_id: uuid.UUID) -> School:
    school = (
        await session.exec(
            select(School).where(School.id == school_id, within_reach(School.id, principal))
        )
    ).first()
    if school is None:
        raise NotFound("No such school.")
    return school


async def get_all(
    session: AsyncSession,
    principal: Principal,
    page: Page,
    *,
    la_code: str | None = None,
    jurisdiction: Jurisdiction | None = None,
) -> tuple[list[School], str | None]:
    query = select(School).where(within_reach(School.id, principal))
    if la_code is not None:
        query = query.where(School.la_code == la_code)
    if jurisdiction is not None:
        query = query.where(School.jurisdiction == jurisdiction)
    return await keyset(session, query, col(School.id), page)


def check_codes(jurisdiction: Jurisdiction, code: str, la_code: str) -> None:
    """The school's code and its LA's code as `jurisdiction` numbers them, a Welsh school's
    code beginning with its LA's (the CLI checks the same before it gets here)."""
    problems = [
        ProblemItem(loc=["body", field], detail=reason)
        for field, reason in (
            ("code", _reason(check_school_code, jurisdiction, code)),
            ("la_code", _reason(check_la_code, jurisdiction, la_code)),
        )
        if reason
    ]
    if not problems:
        reason = _reason(check_school_in_la, jurisdiction, code, la_code)
        if reason:
            problems.append(ProblemItem(loc=["body", "code"], detail=reason))
    if problems:
        raise ValidationFailed("; ".join(p.detail for p in problems) + ".", errors=problems)


def _reason(check: Callable[..., None], *args: Any) -> str | None:
    try:
        check(*args)
    except ValueError as exc:
        return str(exc)
    return None


def _check_la(principal: Principal | None, la_code: str) -> None:
    """A school belongs to its LA: only that LA's accounts put one there (the operator's CLI,
    with no principal, anywhere)."""
    if principal is not None:
        writable_la(principal, la_code)


async def create(
    session: AsyncSession, principal: Principal | None, school_in: SchoolCreate
) -> School:
    """Create a school. `principal` is None for the operator's CLI, which has no reach."""
    check_codes(school_in.jurisdiction, school_in.code, school_in.la_code)
    _check_la(principal, school_in.la_code)
    school = School(**school_in.model_dump())
    await add_unique(
        session,
        school,
        f"A school with code {school_in.code} already exists in {school_in.jurisdiction}.",
    )
    return school


async def update(
    session: AsyncSession, principal: Principal, school: School, changes: SchoolUpdate
) -> School:
    values = changes.model_dump(exclude_unset=True)
    if any(value is None for value in values.values()):
        raise ValidationFailed("Fields of a school cannot be set to null.")
    jurisdiction = Jurisdiction(values.get("jurisdiction", school.jurisdiction))
    code = values.get("code", school.code)
    if values.keys() & {"jurisdiction", "code", "la_code"}:
        # Judged together: a new jurisdiction can make the unchanged codes wrong.
        check_codes(jurisdiction, code, values.get("la_code", school.la_code))
    if "la_code" in values:
        _check_la(principal, values["la_code"])
    for field, value in values.items():
        setattr(school, field, value)
    school.updated_at = utcnow()
    await add_unique(
        session, school, f"A school with code {code} already exists in {jurisdiction}."
    )
    return school
