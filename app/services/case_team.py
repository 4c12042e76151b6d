"""The team around the family: who joins a case's team, who leaves it, and who is on it.

A staff member is named by username and must be an active practitioner or manager who
reaches the case; an agency is a directory organisation (the directory is public) or a
name. Joining and leaving are dated within the case's life and reach its chronology.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.errors import Conflict, NotFound, ProblemItem, ValidationFailed
from app.models.base import shown_as, utcnow
from app.models.case_team import (
    CaseTeamMember,
    TeamMemberAdd,
    TeamMemberKind,
    TeamMemberLeave,
    TeamMemberRead,
)
from app.models.directory import DirectoryOrganization
from app.models.principal import StaffMember
from app.services import access, case_records
from app.services.school_calendar import school_today


async def add(auditor: Auditor, case_id: uuid.UUID, new: TeamMemberAdd) -> TeamMemberRead:
    joined_on = new.joined_on or school_today()
    work = await case_records.begin(auditor, case_id, dated=("joined_on", joined_on))
    staff_id: uuid.UUID | None = None
    if new.kind == TeamMemberKind.staff:
        assert new.username is not None
        staff = await access.casework_staff(work.session, work.case, new.username, "username")
        await _not_on_team(work.session, work.case.id, staff.id)
        staff_id, name = staff.id, staff.display_name
    elif new.organization_id is not None:
        organization = await work.session.get(DirectoryOrganization, new.organization_id)
        if organization is None:
            raise ValidationFailed(
                "The organisation is not in the directory.",
                errors=[
                    ProblemItem(loc=["body", "organization_id"], detail="no such organization")
                ],
            )
        name = organization.name
    else:
        assert new.name is not None
        name = new.name
    member = CaseTeamMember(
        case_id=work.case.id,
        kind=new.kind,
        staff_member_id=staff_id,
        organization_id=new.organization_id,
        name=name,
        role=new.role,
        contact=new.contact,
        joined_on=joined_on,
        created_by=work.by,
    )
    await case_records.add(
        work,
        member,
        event="team.member_joined",
        summary=f"{name} ({new.role}) joined the team around the family on {joined_on.isoformat()}",
        details={"team_member_id": str(member.id), "kind": new.kind.value},
        action="team_member.create",
    )
    return (await present(work.session, [member]))[0]


async def _not_on_team(session: AsyncSession, case_id: uuid.UUID, staff_id: uuid.UUID) -> None:
    """409 when the staff member is on the case's team and has not left it."""
    query = select(CaseTeamMember.id).where(
        CaseTeamMember.case_id == case_id,
        CaseTeamMember.staff_member_id == staff_id,
        col(CaseTeamMember.left_on).is_(None),
    )
    if (await session.exec(query)).first() is not None:
        raise Conflict("This staff member is already on the case's team.")


async def leave(
    auditor: Auditor, case_id: uuid.UUID, member_id: uuid.UUID, change: TeamMemberLeave
) -> TeamMemberRead:
    left_on = change.left_on or school_today()
    work = await case_records.begin(auditor, case_id, dated=("left_on", left_on))
    member = await get(work.session, work.case.id, member_id)
    if member.left_on is not None:
        raise Conflict(f"This member left the team on {member.left_on.isoformat()}.")
    if left_on < member.joined_on:
        raise ValidationFailed(
            "A member leaves after they joined.",
            errors=[
                ProblemItem(
                    loc=["body", "left_on"],
                    detail=f"left_on {left_on.isoformat()} is before they joined "
                    f"({member.joined_on.isoformat()})",
                )
            ],
        )
    member.left_on = left_on
    member.leaving_note = change.note
    member.updated_at = utcnow()
    await case_records.add(
        work,
        member,
        event="team.member_left",
        summary=f"{member.name} ({member.role}) left the team around the family on "
        f"{left_on.isoformat()}",
        details={"team_member_id": str(member.id)},
        action="team_member.leave",
    )
    return (await present(work.session, [member]))[0]


async def get(session: AsyncSession, case_id: uuid.UUID, member_id: uuid.UUID) -> CaseTeamMember:
    """A member of a case already found within reach (404 for any other id)."""
    query = select(CaseTeamMember).where(
        CaseTeamMember.id == member_id, CaseTeamMember.case_id == case_id
    )
    member = (await session.exec(query)).first()
    if member is None:
        raise NotFound("No such member of this case's team.")
    return member


async def get_all(
    auditor: Auditor, case_id: uuid.UUID, current: bool | None = None
) -> list[TeamMemberRead]:
    """The case's team, in the order they joined; `current` keeps only those on it today
    (true) or only those who have left (false)."""
    where: list[Any] = []
    if current is not None:
        today = school_today()
        on_team = col(CaseTeamMember.left_on).is_(None) | (col(CaseTeamMember.left_on) > today)
        where = [on_team & (col(CaseTeamMember.joined_on) <= today)] if current else [~on_team]
    rows = await case_records.records(
        auditor,
        case_id,
        CaseTeamMember,
        col(CaseTeamMember.joined_on),
        col(CaseTeamMember.id),
        action="team_member.list",
        where=where,
    )
    return await present(auditor.session, rows)


def is_current(member: CaseTeamMember) -> bool:
    today = school_today()
    return member.joined_on <= today and (member.left_on is None or member.left_on > today)


async def present(session: AsyncSession, rows: Sequence[CaseTeamMember]) -> list[TeamMemberRead]:
    staff_ids = {r.staff_member_id for r in rows if r.staff_member_id is not None}
    usernames: dict[uuid.UUID, str] = {}
    if staff_ids:
        query = select(col(StaffMember.id), col(StaffMember.username)).where(
            col(StaffMember.id).in_(staff_ids)
        )
        usernames = dict((await session.exec(query)).all())
    return [
        shown_as(
            TeamMemberRead,
            r,
            username=usernames.get(r.staff_member_id) if r.staff_member_id else None,
            current=is_current(r),
        )
        for r in rows
    ]
