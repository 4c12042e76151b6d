"""Actions as records: agreed on a case, owned, due, and followed up. Reading needs
`cases:read`, writing `cases:write`; the action's case must be within reach."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import AuditorDep, CaseReader, CaseWriter, PageDep
from app.errors import problem_responses
from app.models.action import (
    ActionCreate,
    ActionList,
    ActionPage,
    ActionRead,
    ActionStatus,
    StatusChange,
)
from app.models.base import IsoDate
from app.services import actions

router = APIRouter(tags=["actions"], responses=problem_responses(401, 403, 500, 503))


@router.post(
    "/v1/cases/{case_id}/actions",
    response_model=ActionRead,
    status_code=201,
    responses=problem_responses(404, 409, 422),
)
async def record_action(
    case_id: uuid.UUID, new: ActionCreate, _principal: CaseWriter, auditor: AuditorDep
) -> ActionRead:
    """Record an action agreed on the case: its source (a meeting, review, goal of the plan
    or contact of this case), its owner (staff, a family member, a partner agency or a team
    member) and the day it is due. It starts `open`."""
    return await actions.create(auditor, case_id, new)


@router.get(
    "/v1/cases/{case_id}/actions", response_model=ActionList, responses=problem_responses(404, 422)
)
async def list_case_actions(
    case_id: uuid.UUID, _principal: CaseReader, auditor: AuditorDep
) -> ActionList:
    """The case's actions, oldest first, each with its status history."""
    return ActionList(items=await actions.for_case(auditor, case_id))


@router.post(
    "/v1/actions/{action_id}/status",
    response_model=ActionRead,
    responses=problem_responses(404, 409, 422),
)
async def change_action_status(
    action_id: uuid.UUID, change: StatusChange, _principal: CaseWriter, auditor: AuditorDep
) -> ActionRead:
    """Move an open action to `done`, `not_done` or `superseded` (a note is required for the
    last two). Final statuses do not change (409): work that carries on is a new action."""
    return await actions.change_status(auditor, action_id, change)


@router.get("/v1/actions", response_model=ActionPage, responses=problem_responses(400, 422))
async def work_list(
    principal: CaseReader,
    auditor: AuditorDep,
    page: PageDep,
    owner: Annotated[
        str | None,
        Query(
            max_length=36,
            description="`me` (the calling staff member) or a staff id: the actions they own.",
        ),
    ] = None,
    due_before: Annotated[IsoDate | None, Query(description="Actions due before this day.")] = None,
    status: ActionStatus | None = None,
    case_id: uuid.UUID | None = None,
) -> ActionPage:
    """A practitioner's or a manager's work list: the actions of cases within reach, oldest
    first. `owner=me&status=open` is a practitioner's own open actions; a manager leaves
    `owner` out, or names a practitioner."""
    filters = actions.WorkListFilters(
        actions.owner_of(principal, owner), due_before, status, case_id
    )
    items, next_cursor = await actions.work_list(auditor, page, filters)
    return ActionPage(items=items, next_cursor=next_cursor)
