"""Children named on referrals and cases, and the one rule for who may see who they are.

Children are matched to pupils within the caller's reach in `app.services.access`; this
module holds what a named child is, how the children of a referral or case are loaded, and
how much of a child's identity a caller is shown.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, bindparam, func
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.models.referral import ChildRead, NamedChild
from app.security import Principal, Scope

T = TypeVar("T", bound=SQLModel)


def name_key(entry: type[NamedChild]) -> tuple[Any, Any, Any]:
    """How a child known only by name is recognised on a referral's or a case's list of
    children: given and family names (case ignored) and date of birth."""
    return (
        func.lower(col(entry.given_name)),
        func.lower(col(entry.family_name)),
        col(entry.date_of_birth),
    )


def named_as(
    entry: type[NamedChild], given_name: str, family_name: str, born: date | None
) -> ColumnElement[bool]:
    """An entry naming the child of these names and birth date (`name_key`)."""
    given, family, date_of_birth = name_key(entry)
    return and_(given == given_name.lower(), family == family_name.lower(), date_of_birth == born)


@dataclass(frozen=True)
class Child:
    pupil_id: uuid.UUID | None
    school_id: uuid.UUID | None
    la_code: str | None
    upn: str | None
    given_name: str
    family_name: str
    date_of_birth: date | None
    # How the caller named the child (the reference as given), for referrals.
    supplied: dict[str, Any] | None = None

    def columns(self) -> dict[str, Any]:
        """The child as a referral's or case's child row holds it (`NamedChild`)."""
        return {
            "pupil_id": self.pupil_id,
            "school_id": self.school_id,
            "upn": self.upn,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "date_of_birth": self.date_of_birth,
        }

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


@functools.cache
def _held_by_statement(model: type[T], owner: str) -> SelectOfScalar[T]:
    """Built once per child table: every read of a referral or case runs one."""
    owner_column = getattr(model, owner)
    return (
        select(model)
        .where(col(owner_column).in_(bindparam("owners", expanding=True)))
        .order_by(col(owner_column), col(model.position))  # type: ignore[attr-defined]
    )


async def held_by(
    session: AsyncSession, model: type[T], owner: str, owner_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[T]]:
    """The children of each referral or case (`model` is its child table, `owner` the column
    naming the referral or case), in the order they were named."""
    found: dict[uuid.UUID, list[T]] = {o: [] for o in owner_ids}
    if owner_ids:
        statement = _held_by_statement(model, owner)
        rows = await session.exec(statement, params={"owners": list(owner_ids)})
        for child in rows:
            found[getattr(child, owner)].append(child)
    return found


def pupil_ids(children: Sequence[SQLModel]) -> list[uuid.UUID]:
    """The pupils among a referral's or case's children (those on a roll)."""
    return [c.pupil_id for c in children if c.pupil_id is not None]  # type: ignore[attr-defined]


# --- who may see a child's identity ------------------------------------------------------


class Identity(Enum):
    """How much of a child's identity an answer carries."""

    FULL = "full"  # names, date of birth and UPN, as held
    AS_SUPPLIED = "as_supplied"  # only what the caller itself supplied when naming the child
    NONE = "none"  # ids only (pupil and school)


def identity_for(principal: Principal, referrer: str | None = None) -> Identity:
    """The one rule: `cases:read` identifies children; the referrer who named a child sees it
    as it named it (a hub that referred by UPN cannot turn the UPN into a name and birth
    date); everyone else sees ids only."""
    if principal.has(Scope.cases_read):
        return Identity.FULL
    if referrer is not None and referrer == principal.subject:
        return Identity.AS_SUPPLIED
    return Identity.NONE


def present_child(row: Any, identity: Identity) -> ChildRead:
    """A referral's or case's child as `identity` allows."""
    if identity == Identity.FULL:
        return ChildRead(
            pupil_id=row.pupil_id,
            school_id=row.school_id,
            upn=row.upn,
            given_name=row.given_name,
            family_name=row.family_name,
            date_of_birth=row.date_of_birth,
            on_roll=row.pupil_id is not None,
        )
    if identity == Identity.NONE:
        return ChildRead(
            pupil_id=row.pupil_id,
            school_id=row.school_id,
            upn=None,
            given_name=None,
            family_name=None,
            date_of_birth=None,
            on_roll=row.pupil_id is not None,
        )
    # As supplied: a child named by name is not even said to be on a roll (that would
    # tell the referrer a roster fact it did not give).
    supplied: dict[str, Any] = getattr(row, "supplied", None) or {}
    on_a_roll = "pupil_id" in supplied or "upn" in supplied
    return ChildRead(
        pupil_id=row.pupil_id if on_a_roll else None,
        school_id=row.school_id if on_a_roll else None,
        upn=supplied.get("upn"),
        given_name=supplied.get("given_name"),
        family_name=supplied.get("family_name"),
        date_of_birth=supplied.get("date_of_birth"),
        on_roll=(row.pupil_id is not None) if on_a_roll else None,
    )
