"""The lists a referral is checked against: concerns, and each LA's levels of need."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import add_unique
from app.errors import ProblemItem, ValidationFailed
from app.models.base import shown_as
from app.models.referral import (
    NeedLevel,
    NeedLevelCreate,
    NeedLevelRead,
    ReferralConcern,
)
from app.reach import writable_la
from app.security import Principal
from app.services import reference

DEFAULT_SET = reference.NATIONAL  # `need_level.la_code` of the default levels


async def concerns(session: AsyncSession, las: Iterable[str]) -> list[ReferralConcern]:
    """The national concerns and those of the given LAs."""
    return await reference.visible(session, ReferralConcern, las)


async def levels(session: AsyncSession, la_code: str | None) -> list[NeedLevel]:
    """The LA's own levels of need, or the default set when it has none."""
    if la_code:
        own = await _levels(session, la_code)
        if own:
            return own
    return await _levels(session, DEFAULT_SET)


async def _levels(session: AsyncSession, la_code: str) -> list[NeedLevel]:
    query = select(NeedLevel).where(NeedLevel.la_code == la_code)
    return list((await session.exec(query.order_by(col(NeedLevel.rank)))).all())


async def add_level(session: AsyncSession, principal: Principal, new: NeedLevelCreate) -> NeedLevel:
    """A level of the admin's own LA's set (the default set is the operator's)."""
    la_code = writable_la(principal, new.la_code)
    return await add_level_for(session, la_code, new)


async def add_level_for(session: AsyncSession, la_code: str, new: NeedLevelCreate) -> NeedLevel:
    """A level of LA `la_code`'s set, or of the default set (''), as the operator adds it."""
    level = NeedLevel(la_code=la_code, code=new.code, label=new.label, rank=new.rank)
    where = f"LA {la_code}" if la_code else "the default set"
    await add_unique(session, level, f"The level of need {new.code!r} already exists in {where}.")
    return level


def present_level(level: NeedLevel) -> NeedLevelRead:
    return shown_as(NeedLevelRead, level)


async def check(
    session: AsyncSession,
    la_code: str,
    level_of_need: str | None,
    concern_codes: Sequence[str] = (),
) -> None:
    """422 naming every concern or level of need that is not in the LA's lists."""
    errors: list[ProblemItem] = []
    if concern_codes:
        active = {c.code for c in await concerns(session, [la_code]) if c.active}
        for index, code in enumerate(concern_codes):
            if code not in active:
                errors.append(
                    ProblemItem(loc=["body", "concerns", index], detail=f"unknown concern {code!r}")
                )
    if level_of_need is not None:
        known = [level.code for level in await levels(session, la_code)]
        if level_of_need not in known:
            errors.append(
                ProblemItem(
                    loc=["body", "level_of_need"],
                    detail=f"unknown level of need {level_of_need!r}; LA {la_code} uses "
                    + ", ".join(known),
                )
            )
    if errors:
        raise ValidationFailed("Some codes are not in the reference lists.", errors=errors)
