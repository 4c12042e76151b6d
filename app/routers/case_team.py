"""The team around the family: the professionals on a case, who joined and who left.
Reading needs `cases:read`, changing `cases:write`; the case must be within reach."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from app.deps import AuditorDep, CaseReader, CaseWriter
from app.errors import problem_responses
from app.models.case_team import TeamMemberAdd, TeamMemberLeave, TeamMemberList, TeamMemberRead
from app.services import case_team

router = APIRouter(tags=["case team"], responses=problem_responses(401, 403, 500, 503))

_READ = problem_responses(404, 422)
_WRITE = problem_responses(404, 409, 422)


@router.post(
    "/v1/cases/{case_id}/team", response_model=TeamMemberRead, status_code=201, responses=_WRITE
)
async def add_team_member(
    case_id: uuid.UUID, new: TeamMemberAdd, _principal: CaseWriter, auditor: AuditorDep
) -> TeamMemberRead:
    """Add a professional to the team around the family: a staff member (by username, an
    active practitioner or manager who reaches the case) or a partner agency (a directory
    organisation, or named), with their role and contact. A staff member already on the team
    is a 409."""
    return await case_team.add(auditor, case_id, new)


@router.get("/v1/cases/{case_id}/team", response_model=TeamMemberList, responses=_READ)
async def list_team(
    case_id: uuid.UUID,
    _principal: CaseReader,
    auditor: AuditorDep,
    current: bool | None = None,
) -> TeamMemberList:
    """The team, current and past members in the order they joined; `current=true` keeps
    those on it today, `current=false` those who have left."""
    return TeamMemberList(items=await case_team.get_all(auditor, case_id, current))


@router.post(
    "/v1/cases/{case_id}/team/{member_id}/leave", response_model=TeamMemberRead, responses=_WRITE
)
async def leave_team(
    case_id: uuid.UUID,
    member_id: uuid.UUID,
    change: TeamMemberLeave,
    _principal: CaseWriter,
    auditor: AuditorDep,
) -> TeamMemberRead:
    """Record that a member left the team (default today). Leaving twice is a 409."""
    return await case_team.leave(auditor, case_id, member_id, change)
