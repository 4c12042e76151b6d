"""Planned contacts and meetings on a case: scheduled ahead, then held, rescheduled, or
marked as not having happened. Reading needs `cases:read`, changing `cases:write`; the case
must be within reach."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import AuditorDep, CaseReader, CaseWriter
from app.errors import problem_responses
from app.models.base import IsoDate
from app.models.meeting import (
    MeetingHeld,
    MeetingList,
    MeetingNotHappened,
    MeetingRead,
    MeetingReschedule,
    MeetingSchedule,
    MeetingStatus,
)
from app.services import meetings

router = APIRouter(tags=["meetings"], responses=problem_responses(401, 403, 500, 503))

_READ = problem_responses(404, 422)
_WRITE = problem_responses(404, 409, 422)


@router.post(
    "/v1/cases/{case_id}/meetings", response_model=MeetingRead, status_code=201, responses=_WRITE
)
async def schedule_meeting(
    case_id: uuid.UUID, new: MeetingSchedule, _principal: CaseWriter, auditor: AuditorDep
) -> MeetingRead:
    """Plan a contact or meeting: when, where, the agenda (a formal meeting's is required)
    and who is invited (team members, children on the case, family members, or anyone by
    name and role). Not more than 7 days in the past (record a past contact with
    `/interventions`) nor more than two years ahead; nothing is planned while consent is
    withdrawn (409)."""
    return await meetings.schedule(auditor, case_id, new)


@router.get("/v1/cases/{case_id}/meetings", response_model=MeetingList, responses=_READ)
async def list_meetings(
    case_id: uuid.UUID,
    _principal: CaseReader,
    auditor: AuditorDep,
    status: MeetingStatus | None = None,
    from_day: Annotated[
        IsoDate | None, Query(alias="from", description="Planned on or after this day (UTC).")
    ] = None,
    to_day: Annotated[
        IsoDate | None, Query(alias="to", description="Planned on or before this day (UTC).")
    ] = None,
) -> MeetingList:
    """The case's meetings by planned time, with their state and, once held, the record."""
    return MeetingList(items=await meetings.get_all(auditor, case_id, status, from_day, to_day))


@router.get(
    "/v1/cases/{case_id}/meetings/{meeting_id}", response_model=MeetingRead, responses=_READ
)
async def read_meeting(
    case_id: uuid.UUID, meeting_id: uuid.UUID, _principal: CaseReader, auditor: AuditorDep
) -> MeetingRead:
    return await meetings.get_one(auditor, case_id, meeting_id)


@router.post(
    "/v1/cases/{case_id}/meetings/{meeting_id}/held", response_model=MeetingRead, responses=_WRITE
)
async def hold_meeting(
    case_id: uuid.UUID,
    meeting_id: uuid.UUID,
    held: MeetingHeld,
    _principal: CaseWriter,
    auditor: AuditorDep,
) -> MeetingRead:
    """Record that a planned meeting took place: when, the written record (a formal
    meeting's is required), the action plan, who attended (anyone who could attend, invited
    or not) and a visit's outcome (`seen`, `not_seen`, `refused`; required for a doorstep or
    home visit). The contact record is written with it. Only a planned meeting is held
    (409)."""
    return await meetings.hold(auditor, case_id, meeting_id, held)


@router.post(
    "/v1/cases/{case_id}/meetings/{meeting_id}/reschedule",
    response_model=MeetingRead,
    responses=_WRITE,
)
async def reschedule_meeting(
    case_id: uuid.UUID,
    meeting_id: uuid.UUID,
    change: MeetingReschedule,
    _principal: CaseWriter,
    auditor: AuditorDep,
) -> MeetingRead:
    """Move a planned meeting to a new time (and place); the earlier time is kept in
    `previous_times`. Only a planned meeting is moved (409)."""
    return await meetings.reschedule(auditor, case_id, meeting_id, change)


@router.post(
    "/v1/cases/{case_id}/meetings/{meeting_id}/did-not-happen",
    response_model=MeetingRead,
    responses=_WRITE,
)
async def meeting_did_not_happen(
    case_id: uuid.UUID,
    meeting_id: uuid.UUID,
    change: MeetingNotHappened,
    _principal: CaseWriter,
    auditor: AuditorDep,
) -> MeetingRead:
    """Record that a planned meeting did not happen, and why: `no_answer`,
    `family_declined`, `cancelled_by_family`, `cancelled_by_service`, or `other` with a
    note. Only a planned meeting (409)."""
    return await meetings.not_happened(auditor, case_id, meeting_id, change)
