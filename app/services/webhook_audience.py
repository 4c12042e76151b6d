"""Who may receive an event: the one rule, shared by fan-out and replay.

A subscription receives an event only if its owner, as its account stands now, could read
the event's subject through the API: the scope that reads that kind of subject, and the same
reach predicate the read routes use (`app/services/access.py`). So a hub receives events
about the referrals it sent and nothing else; a school-bound MIS, only its schools' flags.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.attendance import AttendanceFlag
from app.models.case import Case
from app.models.event import OutboxEvent
from app.models.referral import Referral
from app.models.signpost import Signpost
from app.reach import within_reach
from app.security import Principal, Scope
from app.services.access import case_in_reach, referral_visible_to
from app.services.events import SubjectKind

# The scope that reads each kind of subject.
READ_SCOPE: dict[SubjectKind, Scope] = {
    SubjectKind.referral: Scope.referrals_read,
    SubjectKind.case: Scope.cases_read,
    SubjectKind.flag: Scope.attendance_read,
    SubjectKind.signpost: Scope.cases_read,
}


async def readable_subjects(
    session: AsyncSession, principal: Principal, kind: SubjectKind, ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of these subjects (all of one kind) the principal may read now."""
    if not ids or not principal.has(READ_SCOPE[kind]):
        return set()
    wanted = list(set(ids))
    if kind is SubjectKind.referral:
        query = select(Referral.id).where(
            col(Referral.id).in_(wanted), referral_visible_to(principal)
        )
    elif kind is SubjectKind.case:
        query = select(Case.id).where(col(Case.id).in_(wanted), case_in_reach(principal))
    elif kind is SubjectKind.flag:
        query = select(AttendanceFlag.id).where(
            col(AttendanceFlag.id).in_(wanted),
            within_reach(AttendanceFlag.school_id, principal),
        )
    else:
        query = (
            select(Signpost.id)
            .join(Case, col(Case.id) == Signpost.case_id)
            .where(col(Signpost.id).in_(wanted), case_in_reach(principal))
        )
    return set((await session.exec(query)).all())


async def receivable(
    session: AsyncSession, principal: Principal, events: Sequence[OutboxEvent]
) -> set[uuid.UUID]:
    """The ids of the events (of any kinds) whose subjects the principal may read."""
    by_kind: dict[SubjectKind, list[OutboxEvent]] = {}
    for event in events:
        if event.subject_kind is not None and event.subject_id is not None:
            by_kind.setdefault(SubjectKind(event.subject_kind), []).append(event)
    allowed: set[uuid.UUID] = set()
    for kind, of_kind in by_kind.items():
        readable = await readable_subjects(
            session, principal, kind, [e.subject_id for e in of_kind if e.subject_id]
        )
        allowed.update(e.id for e in of_kind if e.subject_id in readable)
    return allowed
