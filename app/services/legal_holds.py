"""Legal holds: placed and lifted by a data protection officer (`holds:write`), read with
`audit:read`, and obeyed by the retention run.

What a hold keeps, while it stands (decided here and nowhere else):

- a **child** hold (a pupil id): the child's pupil record and everything attached to it
  (marks, weekly figures, flags, measures, identity changes), the audit events naming the
  child, and every case and referral that names the child, in full;
- a **case** hold: the case with everything recorded on it, the referrals that led to it,
  and the children it names, each kept as under a child hold (so other cases and referrals
  naming them are kept too: erring on the side of keeping);
- a **family** hold, named by one of its cases or referrals: that case or referral, the
  case a referral led to, the children named on them (as child holds), and so every other
  case and referral naming any of those children: the family's whole history with the LA.
  A child known only by name (no pupil record) is matched by names and date of birth (case
  ignored), as subject access matches them: every case and referral naming such a child of
  a held case or family is kept too.

Holds are resolved afresh by every retention batch, as SQL over the live tables, so a
referral naming a held child that arrives after the hold was placed is held too.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, tuple_, union
from sqlalchemy import select as core_select
from sqlmodel import col, select

from app.audit import Auditor
from app.errors import Conflict, NotFound
from app.models.base import shown_as, utcnow
from app.models.case import Case, CaseChild
from app.models.legal_hold import (
    HoldKind,
    LegalHold,
    LegalHoldCreate,
    LegalHoldRead,
)
from app.models.pupil import Pupil
from app.models.referral import Referral, ReferralChild
from app.models.school import School
from app.pagination import Page, keyset
from app.reach import within_reach
from app.security import Principal
from app.services import access
from app.services.children import name_key

# --- what active holds keep (used by the retention run) ----------------------------------


def _active() -> ColumnElement[bool]:
    return col(LegalHold.lifted_at).is_(None)


def _family_cases() -> Any:
    """Cases that are the subject of a family hold, or that a family hold's referral led to."""
    by_case = select(col(LegalHold.case_id)).where(
        _active(), LegalHold.kind == HoldKind.family, col(LegalHold.case_id).is_not(None)
    )
    by_referral = select(col(Referral.case_id)).where(
        col(Referral.case_id).is_not(None),
        col(Referral.id).in_(
            select(col(LegalHold.referral_id)).where(_active(), LegalHold.kind == HoldKind.family)
        ),
    )
    return union(by_case, by_referral)


def _held_case_subjects() -> Any:
    return select(col(LegalHold.case_id)).where(
        _active(), LegalHold.kind == HoldKind.case, col(LegalHold.case_id).is_not(None)
    )


def _named_pupils() -> Any:
    """Children held in their own right: child holds, and the children a family hold's or a
    case hold's subject names."""
    child = select(col(LegalHold.pupil_id)).where(
        _active(), LegalHold.kind == HoldKind.child, col(LegalHold.pupil_id).is_not(None)
    )
    family_referrals = select(col(LegalHold.referral_id)).where(
        _active(), LegalHold.kind == HoldKind.family, col(LegalHold.referral_id).is_not(None)
    )
    on_cases = select(col(CaseChild.pupil_id)).where(
        col(CaseChild.pupil_id).is_not(None),
        or_(
            col(CaseChild.case_id).in_(_family_cases()),
            col(CaseChild.case_id).in_(_held_case_subjects()),
        ),
    )
    on_referrals = select(col(ReferralChild.pupil_id)).where(
        col(ReferralChild.pupil_id).is_not(None),
        col(ReferralChild.referral_id).in_(family_referrals),
    )
    return union(child, on_cases, on_referrals)


def _key(child: type[CaseChild] | type[ReferralChild]) -> Any:
    return tuple_(*name_key(child))


def _named_only_children() -> Any:
    """The children known only by name on a held case or family: their `_key`s."""
    family_referrals = select(col(LegalHold.referral_id)).where(
        _active(), LegalHold.kind == HoldKind.family, col(LegalHold.referral_id).is_not(None)
    )
    on_cases = core_select(*name_key(CaseChild)).where(
        col(CaseChild.pupil_id).is_(None),
        col(CaseChild.given_name) != "",  # de-identified: nobody left to recognise
        or_(
            col(CaseChild.case_id).in_(_family_cases()),
            col(CaseChild.case_id).in_(_held_case_subjects()),
        ),
    )
    on_referrals = core_select(*name_key(ReferralChild)).where(
        col(ReferralChild.pupil_id).is_(None),
        col(ReferralChild.given_name) != "",
        col(ReferralChild.referral_id).in_(family_referrals),
    )
    return union(on_cases, on_referrals)


def _naming_held_child(child: type[CaseChild] | type[ReferralChild]) -> ColumnElement[bool]:
    """The condition on a case's or referral's child: a held child, on a roll or by name."""
    return or_(
        col(child.pupil_id).in_(_named_pupils()),
        and_(col(child.pupil_id).is_(None), _key(child).in_(_named_only_children())),
    )


def held_pupils() -> Any:
    """Pupil ids whose records no disposal may touch. Never yields NULL (safe in NOT IN)."""
    return _named_pupils()


def held_cases() -> Any:
    naming = select(col(CaseChild.case_id)).where(_naming_held_child(CaseChild))
    family = select(col(LegalHold.case_id)).where(
        _active(), LegalHold.kind == HoldKind.family, col(LegalHold.case_id).is_not(None)
    )
    led_to = select(col(Referral.case_id)).where(
        col(Referral.case_id).is_not(None),
        col(Referral.id).in_(
            select(col(LegalHold.referral_id)).where(
                _active(), col(LegalHold.referral_id).is_not(None)
            )
        ),
    )
    return union(_held_case_subjects(), family, led_to, naming)


def held_referrals() -> Any:
    subjects = select(col(LegalHold.referral_id)).where(
        _active(), col(LegalHold.referral_id).is_not(None)
    )
    of_cases = select(col(Referral.id)).where(
        or_(
            col(Referral.case_id).in_(_held_case_subjects()),
            col(Referral.case_id).in_(_family_cases()),
        )
    )
    naming = select(col(ReferralChild.referral_id)).where(_naming_held_child(ReferralChild))
    return union(subjects, of_cases, naming)


# --- placing, lifting, reading -----------------------------------------------------------


def _hold_in_reach(principal: Principal) -> ColumnElement[bool]:
    """A hold is readable where its LA is the principal's, or its subject is within reach."""
    reach = principal.reach
    conditions: list[ColumnElement[bool]] = [within_reach(LegalHold.school_id, reach)]
    if reach.la_code is not None:
        conditions.append(col(LegalHold.la_code) == reach.la_code)
    conditions += [
        col(LegalHold.case_id).in_(select(col(Case.id)).where(access.case_in_reach(principal))),
        col(LegalHold.referral_id).in_(
            select(col(Referral.id)).where(access.referral_visible_to(principal))
        ),
        col(LegalHold.pupil_id).in_(
            select(col(Pupil.id)).where(within_reach(Pupil.school_id, principal))
        ),
    ]
    return or_(*conditions)


async def _children(auditor: Auditor, holds: Sequence[LegalHold]) -> list[uuid.UUID]:
    """The children the holds name directly or through their case or referral: the pupils
    each audit event about them is linked to."""
    session = auditor.session
    found: list[uuid.UUID] = [h.pupil_id for h in holds if h.pupil_id is not None]
    case_ids = [h.case_id for h in holds if h.case_id is not None]
    referral_ids = [h.referral_id for h in holds if h.referral_id is not None]
    if case_ids:
        rows = await session.exec(
            select(col(CaseChild.pupil_id)).where(
                col(CaseChild.case_id).in_(case_ids), col(CaseChild.pupil_id).is_not(None)
            )
        )
        found += [p for p in rows.all() if p is not None]
    if referral_ids:
        rows = await session.exec(
            select(col(ReferralChild.pupil_id)).where(
                col(ReferralChild.referral_id).in_(referral_ids),
                col(ReferralChild.pupil_id).is_not(None),
            )
        )
        found += [p for p in rows.all() if p is not None]
    return list(dict.fromkeys(found))


def present(hold: LegalHold) -> LegalHoldRead:
    return shown_as(LegalHoldRead, hold, active=hold.lifted_at is None)


async def _subject(auditor: Auditor, new: LegalHoldCreate) -> tuple[str, uuid.UUID | None]:
    """The LA and school that own the subject, found within the principal's reach (404 as
    for an unknown id otherwise)."""
    session, principal = auditor.session, auditor.principal
    if new.pupil_id is not None:
        row = (
            await session.exec(
                select(col(School.la_code), col(Pupil.school_id))
                .join(School, col(School.id) == col(Pupil.school_id))
                .where(Pupil.id == new.pupil_id, within_reach(Pupil.school_id, principal))
            )
        ).first()
        if row is None:
            raise NotFound("No such pupil.")
        return row[0], row[1]
    if new.case_id is not None:
        case = await access.get_case(session, principal, new.case_id)
        return case.la_code, case.school_id
    assert new.referral_id is not None
    referral = await access.get_referral(session, principal, new.referral_id)
    return referral.la_code, referral.school_id


async def place(auditor: Auditor, new: LegalHoldCreate) -> LegalHoldRead:
    la_code, school_id = await _subject(auditor, new)
    hold = LegalHold(
        la_code=la_code,
        school_id=school_id,
        kind=new.kind,
        pupil_id=new.pupil_id,
        case_id=new.case_id,
        referral_id=new.referral_id,
        reason=new.reason,
        placed_by=auditor.principal.subject,
    )
    auditor.session.add(hold)
    await auditor.session.flush()
    await auditor.record(
        "legal_hold.place",
        "legal_hold",
        hold.id,
        pupil_ids=await _children(auditor, [hold]),
        details={"kind": str(hold.kind)},
        la_code=la_code,
        school_id=school_id,
    )
    return present(hold)


async def _get(auditor: Auditor, hold_id: uuid.UUID, *, for_update: bool = False) -> LegalHold:
    query = select(LegalHold).where(LegalHold.id == hold_id, _hold_in_reach(auditor.principal))
    if for_update:
        query = query.with_for_update()
    hold = (await auditor.session.exec(query)).first()
    if hold is None:
        raise NotFound("No such legal hold.")
    return hold


async def get(auditor: Auditor, hold_id: uuid.UUID) -> LegalHoldRead:
    hold = await _get(auditor, hold_id)
    await auditor.record(
        "legal_hold.read",
        "legal_hold",
        hold.id,
        pupil_ids=await _children(auditor, [hold]),
        la_code=hold.la_code,
        school_id=hold.school_id,
    )
    return present(hold)


async def lift(auditor: Auditor, hold_id: uuid.UUID, reason: str) -> LegalHoldRead:
    hold = await _get(auditor, hold_id, for_update=True)
    if hold.lifted_at is not None:
        raise Conflict("The hold was already lifted.")
    hold.lifted_at = utcnow()
    hold.lifted_by = auditor.principal.subject
    hold.lift_reason = reason
    auditor.session.add(hold)
    await auditor.session.flush()
    await auditor.record(
        "legal_hold.lift",
        "legal_hold",
        hold.id,
        pupil_ids=await _children(auditor, [hold]),
        details={"kind": str(hold.kind)},
        la_code=hold.la_code,
        school_id=hold.school_id,
    )
    return present(hold)


async def get_all(
    auditor: Auditor, page: Page, active: bool | None
) -> tuple[list[LegalHoldRead], str | None]:
    query = select(LegalHold).where(_hold_in_reach(auditor.principal))
    if active is True:
        query = query.where(col(LegalHold.lifted_at).is_(None))
    elif active is False:
        query = query.where(col(LegalHold.lifted_at).is_not(None))
    holds, next_cursor = await keyset(auditor.session, query, col(LegalHold.id), page)
    await auditor.record(
        "legal_hold.list",
        "legal_hold",
        pupil_ids=await _children(auditor, holds),
        details={"returned": len(holds), "active": active},
    )
    return [present(h) for h in holds], next_cursor
