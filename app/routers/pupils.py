"""Pupils: the roster push from a school's MIS, and reads within reach."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, WithJsonSchema

from app.deps import (
    AuditorDep,
    AuditReader,
    PageDep,
    PupilsReader,
    PupilsWriter,
    SessionDep,
    SettingsDep,
)
from app.errors import InsufficientScope, PayloadTooLarge, problem_responses
from app.models.pupil import (
    YEAR_GROUP_PATTERN,
    IdentityChangeList,
    PupilPage,
    PupilRead,
    PupilRecord,
    RosterResult,
)
from app.security import Scope
from app.services import pupils, schools
from app.services.children import Identity, identity_for

router = APIRouter(tags=["pupils"], responses=problem_responses(401, 403, 500, 503))

# Rows are validated one by one so that one bad row rejects that row, not the push; the
# schema still tells clients exactly what a row looks like.
RosterRow = Annotated[
    dict[str, Any], WithJsonSchema(PupilRecord.model_json_schema(ref_template="{model}"))
]


class RosterPush(BaseModel):
    # Not an `InputModel`: its rows are checked one by one (`PupilRecord` is one), so that a
    # row holding text the database cannot store is rejected alone, not the whole push.
    pupils: list[RosterRow] = Field(min_length=1, description="The school's pupils.")


@router.put(
    "/v1/schools/{school_id}/pupils",
    response_model=RosterResult,
    responses=problem_responses(404, 413, 415, 422),
)
async def push_roster(
    school_id: uuid.UUID,
    roster: RosterPush,
    session: SessionDep,
    settings: SettingsDep,
    principal: PupilsWriter,
    auditor: AuditorDep,
    mode: Annotated[
        Literal["full", "partial"],
        Query(description="`full`: pupils left out go off roll. `partial`: only upsert."),
    ] = "full",
) -> RosterResult:
    """Upsert the roster by `mis_id`. Each bad row is rejected with its reason while good
    rows are kept. Pupils missing from a full push are marked off roll, never deleted."""
    school = await schools.get(session, principal, school_id)
    limit = settings.roster_max_pupils
    if len(roster.pupils) > limit:
        raise PayloadTooLarge(f"A roster push holds at most {limit} pupils.")
    return await pupils.push_roster(auditor, school, roster.pupils, full=(mode == "full"))


@router.get("/v1/pupils", response_model=PupilPage, responses=problem_responses(400, 422))
async def list_pupils(
    principal: PupilsReader,
    auditor: AuditorDep,
    page: PageDep,
    school_id: uuid.UUID | None = None,
    name: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="Part of a given or family name (needs cases:read).",
        ),
    ] = None,
    upn: Annotated[str | None, Query(min_length=13, max_length=13)] = None,
    year_group: Annotated[str | None, Query(pattern=YEAR_GROUP_PATTERN)] = None,
    on_roll: bool | None = None,
    free_school_meals: bool | None = None,
    looked_after: bool | None = None,
    young_carer: bool | None = None,
    forces_family: bool | None = None,
    send: bool | None = None,
) -> PupilPage:
    """Pupils within reach, oldest record first. Names and dates of birth appear only for
    callers holding `cases:read`, and only they may search by name."""
    if name and identity_for(principal) is not Identity.FULL:
        # Searching by name is identifying: only for those shown names.
        raise InsufficientScope([Scope.cases_read.value])
    flags = {
        "free_school_meals": free_school_meals,
        "looked_after": looked_after,
        "young_carer": young_carer,
        "forces_family": forces_family,
        "send": send,
    }
    filters = pupils.PupilFilters(
        school_id=school_id,
        name=name,
        upn=upn,
        year_group=year_group,
        on_roll=on_roll,
        flags={k: v for k, v in flags.items() if v is not None},
    )
    items, next_cursor = await pupils.get_all(auditor, page, filters)
    return PupilPage(items=[pupils.present(p, principal) for p in items], next_cursor=next_cursor)


@router.get(
    "/v1/pupils/{pupil_id}", response_model=PupilRead, responses=problem_responses(404, 422)
)
async def read_pupil(
    pupil_id: uuid.UUID, _principal: PupilsReader, auditor: AuditorDep
) -> PupilRead:
    return await pupils.get(auditor, pupil_id)


@router.get(
    "/v1/pupils/{pupil_id}/identity-changes",
    response_model=IdentityChangeList,
    responses=problem_responses(404, 422),
)
async def read_identity_changes(
    pupil_id: uuid.UUID, _principal: AuditReader, auditor: AuditorDep
) -> IdentityChangeList:
    """The rectification trail (for a data protection officer): every change a roster push
    made to the pupil's names, date of birth or UPN, with the value before and after."""
    items = await pupils.identity_changes(auditor, pupil_id)
    return IdentityChangeList(pupil_id=pupil_id, items=items)
