"""Reach for casework: every lookup of a case, a referral, a flag, a staff member or a named
child that one service makes on behalf of another, in one module.

Each function here takes the principal (or, for rules of an LA, the LA) and applies reach
itself, so no side path (a matcher, a report, a lookup by an id found in a body) can forget
it. Something outside reach is answered exactly as something that does not exist: the same
status and the same words, so a caller cannot learn that it exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, bindparam, false, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.audit import Auditor
from app.errors import Conflict, NotFound, ProblemItem, ValidationFailed
from app.models.attendance import AttendanceFlag
from app.models.case import Case, CaseChild, CaseStatus
from app.models.principal import StaffMember, StaffMemberSchool, StaffRole
from app.models.pupil import Pupil
from app.models.referral import (
    ChildByName,
    ChildByPupil,
    ChildByUpn,
    ChildRef,
    Referral,
    ReferralChild,
)
from app.models.school import School
from app.pagination import Page, keyset
from app.reach import casework_in_reach, casework_reach_condition, reach_params, within_reach
from app.security import Principal
from app.services.children import Child, held_by, named_as, pupil_ids

ChildLoader = Callable[[AsyncSession, Sequence[uuid.UUID]], Awaitable[dict[uuid.UUID, list[Any]]]]

T = TypeVar("T")

# --- cases -------------------------------------------------------------------------------


def case_in_reach(principal: Principal) -> ColumnElement[bool]:
    """A case is within reach when it is of the principal's LA, or its school or one of its
    children's schools is one of the principal's schools."""
    return casework_in_reach(
        principal,
        la_column=Case.la_code,
        school_column=Case.school_id,
        id_column=Case.id,
        child_owner_column=CaseChild.case_id,
        child_school_column=CaseChild.school_id,
    )


async def _one(session: AsyncSession, query: SelectOfScalar[T], what: str) -> T:
    """The row `query` finds within reach, or 404: the same words whether it does not exist
    or is someone else's."""
    found = (await session.exec(query)).first()
    if found is None:
        raise NotFound(f"No such {what}.")
    return found


# Built once: every route about one case starts here.
_CASE_IN_REACH = select(Case).where(
    Case.id == bindparam("case_id"),
    casework_reach_condition(
        la_column=Case.la_code,
        school_column=Case.school_id,
        id_column=Case.id,
        child_owner_column=CaseChild.case_id,
        child_school_column=CaseChild.school_id,
    ),
)


async def get_case(session: AsyncSession, principal: Principal, case_id: uuid.UUID) -> Case:
    found = (
        await session.exec(_CASE_IN_REACH, params={"case_id": case_id, **reach_params(principal)})
    ).first()
    if found is None:
        raise NotFound("No such case.")
    return found


async def get_case_for_work(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID
) -> Case:
    """A case within reach that casework may still be added to: 409 once it is closed."""
    case = await get_case(session, principal, case_id)
    require_open(case)
    return case


def require_open(case: Case) -> None:
    if case.status == CaseStatus.closed:
        raise Conflict("This case is closed; reopen it to add to its record.")


async def cases_in_reach(
    session: AsyncSession, principal: Principal, case_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of these cases the principal may see (say, before naming one in an answer)."""
    if not case_ids:
        return set()
    query = select(Case.id).where(col(Case.id).in_(list(case_ids)), case_in_reach(principal))
    return set((await session.exec(query)).all())


async def case_children(
    session: AsyncSession, case_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[CaseChild]]:
    """The children of cases already found within reach, in the order they were named."""
    return await held_by(session, CaseChild, "case_id", case_ids)


async def pupils_of(session: AsyncSession, case_id: uuid.UUID) -> list[uuid.UUID]:
    """The case's children on a roll: who an audit event about the case concerns."""
    return pupil_ids((await case_children(session, [case_id]))[case_id])


async def check_children(
    session: AsyncSession, case: Case, child_ids: Sequence[uuid.UUID | None], field: str
) -> list[uuid.UUID]:
    """The case's pupils, after a 422 for any `child_id` that is not a child on the case
    (whoever else that id may belong to)."""
    held = await pupils_of(session, case.id)
    for index, child_id in enumerate(child_ids):
        if child_id is not None and child_id not in held:
            loc: list[str | int] = (
                ["body", field, index] if field.endswith("_ids") else ["body", field]
            )
            raise ValidationFailed(
                "The child is not on this case.",
                errors=[ProblemItem(loc=loc, detail="not a child on this case")],
            )
    return held


def require_consent(case: Case) -> None:
    """Contact records need the family's consent: refused while it is withdrawn."""
    if not case.consent_given:
        raise Conflict(
            "Consent for this case has been withdrawn; record consent again before adding contacts."
        )


async def last_closed_within(
    session: AsyncSession, la_code: str, children: Sequence[Child], since: datetime
) -> uuid.UUID | None:
    """The most recently closed case of the LA, closed after `since`, that any of the
    children was on. Only the LA's own cases count: a child's history in another LA is
    that LA's business, and an answer here would tell one LA about another's casework."""
    linked = [c.pupil_id for c in children if c.pupil_id is not None]
    by_name = [c for c in children if c.pupil_id is None and c.date_of_birth is not None]
    conditions: list[Any] = []
    if linked:
        conditions.append(col(CaseChild.pupil_id).in_(linked))
    for c in by_name:
        conditions.append(named_as(CaseChild, c.given_name, c.family_name, c.date_of_birth))
    if not conditions:
        return None
    query = (
        select(Case.id)
        .join(CaseChild, col(CaseChild.case_id) == Case.id)
        .where(
            Case.la_code == la_code,
            Case.status == CaseStatus.closed,
            col(Case.closed_at) >= since,
            or_(false(), *conditions),
        )
        .order_by(col(Case.closed_at).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


# --- referrals ---------------------------------------------------------------------------


def referral_visible_to(principal: Principal) -> ColumnElement[bool]:
    """A client sees only the referrals it sent; staff those of their LA, or about a child
    at one of their schools."""
    if principal.kind == "client":
        return col(Referral.referrer) == principal.subject
    return casework_in_reach(
        principal,
        la_column=Referral.la_code,
        school_column=Referral.school_id,
        id_column=Referral.id,
        child_owner_column=ReferralChild.referral_id,
        child_school_column=ReferralChild.school_id,
    )


async def get_referral(
    session: AsyncSession, principal: Principal, referral_id: uuid.UUID
) -> Referral:
    query = select(Referral).where(Referral.id == referral_id, referral_visible_to(principal))
    return await _one(session, query, "referral")


async def referral_children(
    session: AsyncSession, referral_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ReferralChild]]:
    return await held_by(session, ReferralChild, "referral_id", referral_ids)


async def page_of(
    auditor: Auditor,
    query: SelectOfScalar[T],
    id_column: Any,
    page: Page,
    children: ChildLoader,
    action: str,
) -> tuple[list[T], str | None]:
    """A page of cases or referrals (`query` already within reach), audited as `action`
    with every child on a roll they name."""
    items, next_cursor = await keyset(auditor.session, query, id_column, page)
    held = await children(auditor.session, [i.id for i in items])  # type: ignore[attr-defined]
    await auditor.record(
        action,
        action.partition(".")[0],
        pupil_ids=[p for i in items for p in pupil_ids(held[i.id])],  # type: ignore[attr-defined]
        details={"returned": len(items)},
    )
    return items, next_cursor


# --- attendance flags --------------------------------------------------------------------


async def get_flag(
    session: AsyncSession, principal: Principal, flag_id: uuid.UUID
) -> AttendanceFlag:
    query = select(AttendanceFlag).where(
        col(AttendanceFlag.id) == flag_id, within_reach(AttendanceFlag.school_id, principal)
    )
    return await _one(session, query, "flag")


# --- staff -------------------------------------------------------------------------------


async def _covers(
    session: AsyncSession,
    staff: StaffMember | None,
    la_code: str,
    school_ids: Sequence[uuid.UUID | None],
) -> bool:
    """Whether `staff` is an active account whose reach covers casework of `la_code` at
    `school_ids`: bound to the LA, or to one of the schools."""
    if staff is None or not staff.is_active:
        return False
    if staff.la_code == la_code:
        return True
    schools = set(
        (
            await session.exec(
                select(StaffMemberSchool.school_id).where(
                    StaffMemberSchool.staff_member_id == staff.id
                )
            )
        ).all()
    )
    return bool(schools & {s for s in school_ids if s is not None})


async def staff_reaching(
    session: AsyncSession, staff_id: uuid.UUID, la_code: str, school_ids: Sequence[uuid.UUID | None]
) -> StaffMember | None:
    """The active staff member with this id whose reach covers a case of `la_code` at these
    schools; None for anyone else, whether they exist or not."""
    staff = await session.get(StaffMember, staff_id)
    return staff if await _covers(session, staff, la_code, school_ids) else None


async def check_lead_practitioner(
    session: AsyncSession, staff_id: uuid.UUID, la_code: str, school_ids: Sequence[uuid.UUID | None]
) -> None:
    """The lead practitioner is an active practitioner or manager whose reach covers the
    case. Anyone else, whether they exist or not, gets the same answer: an id cannot be used
    to learn whether a person exists in another LA, or what they do."""
    staff = await session.get(StaffMember, staff_id)
    covers = await _covers(session, staff, la_code, school_ids)
    if not covers or staff is None:
        problem = "no active staff member who can reach this case has this id"
    elif staff.role not in (StaffRole.practitioner, StaffRole.manager):
        problem = "a lead practitioner is a practitioner or a manager"
    else:
        return
    raise ValidationFailed(
        "The lead practitioner cannot take this case.",
        errors=[ProblemItem(loc=["body", "lead_practitioner_id"], detail=problem)],
    )


async def casework_staff(
    session: AsyncSession, case: Case, username: str, field: str
) -> StaffMember:
    """The active practitioner or manager with this username (stored lower-case) whose reach
    covers the case, or a 422 naming `field`: the same answer for an account of another LA
    as for no account, so a username cannot be used to learn who works where."""
    staff = (
        await session.exec(select(StaffMember).where(StaffMember.username == username.lower()))
    ).first()
    held = (await case_children(session, [case.id]))[case.id]
    schools = [case.school_id, *(c.school_id for c in held)]
    covers = await _covers(session, staff, case.la_code, schools)
    if not covers or staff is None:
        problem = "no active staff member who can reach this case has this username"
    elif staff.role not in (StaffRole.practitioner, StaffRole.manager):
        problem = "a team member on staff is a practitioner or a manager"
    else:
        return staff
    raise ValidationFailed(
        "The staff member cannot join this case's team.",
        errors=[ProblemItem(loc=["body", field], detail=problem)],
    )


# --- children named on referrals and cases -----------------------------------------------


def _from_pupil(pupil: Pupil, la_code: str, supplied: dict[str, Any]) -> Child:
    return Child(
        pupil.id,
        pupil.school_id,
        la_code,
        pupil.upn,
        pupil.given_name,
        pupil.family_name,
        pupil.date_of_birth,
        supplied,
    )


async def resolve_children(
    session: AsyncSession, principal: Principal, refs: Sequence[ChildRef], field: str = "children"
) -> list[Child]:
    """Every child, or a 422 naming each one that could not be found within reach.

    A child is named by pupil id, by UPN at a school, or by name and date of birth. The last
    is linked to a pupil only when exactly one pupil within reach has those details; otherwise
    the child is kept as known by name (children not on a school roll can still be referred).
    Each child remembers how it was named, so a referrer is shown only what it supplied.
    """
    found: list[Child] = []
    errors: list[ProblemItem] = []
    in_reach = within_reach(Pupil.school_id, principal)
    pupils = select(Pupil, School.la_code).join(School, col(School.id) == Pupil.school_id)
    for index, ref in enumerate(refs):
        where = ["body", field, index]
        supplied = ref.model_dump(mode="json")
        if isinstance(ref, ChildByPupil):
            row = (await session.exec(pupils.where(Pupil.id == ref.pupil_id, in_reach))).first()
            if row is None:
                errors.append(ProblemItem(loc=where, detail="no such pupil within your reach"))
                continue
            found.append(_from_pupil(*row, supplied))
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
            found.append(_from_pupil(*rows[0], supplied))
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
                found.append(_from_pupil(*rows[0], supplied))
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
                        supplied,
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
