"""Children named on referrals and cases: resolved to pupils within the caller's reach.

A child is named by pupil id, by UPN at a school, or by name and date of birth. The last
is linked to a pupil only when exactly one pupil within reach has those details; otherwise
the child is kept as known by name (children not on a school roll can still be referred).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from sqlalchemy import func
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import ProblemItem, ValidationFailed
from app.models.pupil import Pupil
from app.models.referral import ChildByName, ChildByPupil, ChildByUpn, ChildRef
from app.models.school import School
from app.reach import within_reach
from app.security import Principal

T = TypeVar("T", bound=SQLModel)


@dataclass(frozen=True)
class Child:
    pupil_id: uuid.UUID | None
    school_id: uuid.UUID | None
    la_code: str | None
    upn: str | None
    given_name: str
    family_name: str
    date_of_birth: date | None

    @property
    def identity(self) -> tuple[object, ...]:
        """What makes two mentions the same child."""
        if self.pupil_id is not None:
            return ("pupil", self.pupil_id)
        return (
            "name",
            self.given_name.casefold(),
            self.family_name.casefold(),
            self.date_of_birth,
        )


async def held_by(
    session: AsyncSession, model: type[T], owner: str, owner_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[T]]:
    """The children of each referral or case (`model` is its child table, `owner` the column
    naming the referral or case), in the order they were named."""
    found: dict[uuid.UUID, list[T]] = {o: [] for o in owner_ids}
    if owner_ids:
        owner_column = getattr(model, owner)
        rows = await session.exec(
            select(model)
            .where(col(owner_column).in_(list(owner_ids)))
            .order_by(col(owner_column), col(model.position))  # type: ignore[attr-defined]
        )
        for child in rows:
            found[getattr(child, owner)].append(child)
    return found


def pupil_ids(children: Sequence[SQLModel]) -> list[uuid.UUID]:
    """The pupils among a referral's or case's children (those on a roll)."""
    return [c.pupil_id for c in children if c.pupil_id is not None]  # type: ignore[attr-defined]


def _from_pupil(pupil: Pupil, la_code: str) -> Child:
    return Child(
        pupil.id,
        pupil.school_id,
        la_code,
        pupil.upn,
        pupil.given_name,
        pupil.family_name,
        pupil.date_of_birth,
    )


async def resolve(
    session: AsyncSession, principal: Principal, refs: Sequence[ChildRef], field: str = "children"
) -> list[Child]:
    """Every child, or a 422 naming each one that could not be found within reach."""
    found: list[Child] = []
    errors: list[ProblemItem] = []
    in_reach = within_reach(Pupil.school_id, principal)
    pupils = select(Pupil, School.la_code).join(School, col(School.id) == Pupil.school_id)
    for index, ref in enumerate(refs):
        where = ["body", field, index]
        if isinstance(ref, ChildByPupil):
            row = (await session.exec(pupils.where(Pupil.id == ref.pupil_id, in_reach))).first()
            if row is None:
                errors.append(ProblemItem(loc=where, detail="no such pupil within your reach"))
                continue
            found.append(_from_pupil(*row))
        elif isinstance(ref, ChildByUpn):
            rows = (
                await session.exec(
                    pupils.where(
                        Pupil.upn == ref.upn.upper(), School.code == ref.school_code, in_reach
                    )
                )
            ).all()
            if len(rows) != 1:
                detail = (
                    "no pupil with this UPN at that school within your reach"
                    if not rows
                    else "this UPN and school code match more than one pupil"
                )
                errors.append(ProblemItem(loc=where, detail=detail))
                continue
            found.append(_from_pupil(*rows[0]))
        else:
            assert isinstance(ref, ChildByName)
            rows = (
                await session.exec(
                    pupils.where(
                        func.lower(Pupil.given_name) == ref.given_name.lower(),
                        func.lower(Pupil.family_name) == ref.family_name.lower(),
                        Pupil.date_of_birth == ref.date_of_birth,
                        in_reach,
                    ).limit(2)
                )
            ).all()
            if len(rows) == 1:
                found.append(_from_pupil(*rows[0]))
            else:
                found.append(
                    Child(
                        None,
                        None,
                        None,
                        None,
                        ref.given_name,
                        ref.family_name,
                        ref.date_of_birth,
                    )
                )
    seen: set[tuple[object, ...]] = set()
    for index, child in enumerate(found):
        if child.identity in seen and not errors:
            errors.append(
                ProblemItem(loc=["body", field, index], detail="this child is named twice")
            )
        seen.add(child.identity)
    if errors:
        raise ValidationFailed("Some children could not be identified.", errors=errors)
    return found
