"""Reference lists an LA tunes: referral concerns, outcome categories, measure instruments.

Each list holds national entries (`la_code` ''), seeded by migrations and added by the
operator with the CLI, and each LA's own additions. An LA's additions are seen only within
its reach and written only by its own admins; a code means one thing within an LA, so an
LA cannot add a code it already sees, nationally or of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import add_unique
from app.errors import Conflict
from app.reach import writable_la
from app.security import Principal

NATIONAL = ""

T = TypeVar("T", bound=SQLModel)


async def visible(session: AsyncSession, model: type[T], las: Iterable[str]) -> list[T]:
    """The national entries and those of the given LAs, by code."""
    la_code: Any = col(model.la_code)  # type: ignore[attr-defined]
    code: Any = col(model.code)  # type: ignore[attr-defined]
    query = select(model).where(la_code.in_([NATIONAL, *sorted(set(las))]))
    return list((await session.exec(query.order_by(code, la_code))).all())


async def find(session: AsyncSession, model: type[T], la_code: str, code: str) -> T | None:
    """The entry called `code` that applies in LA `la_code`: its own or the national one."""
    query = select(model).where(
        col(model.code) == code,  # type: ignore[attr-defined]
        col(model.la_code).in_([NATIONAL, la_code]),  # type: ignore[attr-defined]
    )
    return (await session.exec(query)).first()


async def add_own(
    session: AsyncSession, principal: Principal, model: type[T], new: BaseModel, what: str
) -> T:
    """An LA admin's own entry (`new`, with its optional `la_code`), for its own LA only:
    another LA, real or not, is 403 (`reach.writable_la`)."""
    la_code = writable_la(principal, getattr(new, "la_code", None))
    return await add(session, model(**new.model_dump(exclude={"la_code"}), la_code=la_code), what)


async def add(session: AsyncSession, row: T, what: str) -> T:
    """Add an LA's entry (or, from the CLI, a national one), refusing a code that would
    mean two things somewhere: an LA's code may not repeat a national one, and a national
    code may not repeat any LA's."""
    code: str = row.code  # type: ignore[attr-defined]
    la_code: str = row.la_code  # type: ignore[attr-defined]
    model = type(row)
    owners: Any = col(model.la_code)  # type: ignore[attr-defined]
    clash = select(owners).where(col(model.code) == code)  # type: ignore[attr-defined]
    if la_code != NATIONAL:
        clash = clash.where(owners.in_([NATIONAL, la_code]))
    where = f"LA {la_code}" if la_code else "the national list"
    if (await session.exec(clash.limit(1))).first() is not None:
        raise Conflict(f"The {what} {code!r} already exists for {where}.")
    await add_unique(session, row, f"The {what} {code!r} already exists for {where}.")
    return row
