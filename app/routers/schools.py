"""`/v1/schools`: admins create and edit; everyone else reads within reach."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.deps import Admin, AnyPrincipal, PageDep, SessionDep
from app.errors import problem_responses
from app.models.school import Jurisdiction, SchoolCreate, SchoolPage, SchoolRead, SchoolUpdate
from app.services import schools

router = APIRouter(
    prefix="/v1/schools",
    tags=["schools"],
    responses=problem_responses(401, 403, 500, 503),
)


@router.get("", response_model=SchoolPage, responses=problem_responses(400, 422))
async def list_schools(
    session: SessionDep,
    principal: AnyPrincipal,
    page: PageDep,
    la_code: Annotated[str | None, Query(max_length=10)] = None,
    jurisdiction: Jurisdiction | None = None,
) -> SchoolPage:
    """Schools within the caller's reach."""
    items, next_cursor = await schools.get_all(
        session, principal, page, la_code=la_code, jurisdiction=jurisdiction
    )
    return SchoolPage(items=[SchoolRead.model_validate(s) for s in items], next_cursor=next_cursor)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SchoolRead,
    responses=problem_responses(409, 413, 415, 422),
)
async def create_school(
    school_in: SchoolCreate, session: SessionDep, principal: Admin
) -> SchoolRead:
    """Create a school in an LA within the admin's reach."""
    return SchoolRead.model_validate(await schools.create(session, principal, school_in))


@router.get("/{school_id}", response_model=SchoolRead, responses=problem_responses(404, 422))
async def read_school(
    school_id: uuid.UUID, session: SessionDep, principal: AnyPrincipal
) -> SchoolRead:
    return SchoolRead.model_validate(await schools.get(session, principal, school_id))


@router.patch(
    "/{school_id}",
    response_model=SchoolRead,
    responses=problem_responses(404, 409, 413, 415, 422),
)
async def update_school(
    school_id: uuid.UUID, changes: SchoolUpdate, session: SessionDep, principal: Admin
) -> SchoolRead:
    school = await schools.get(session, principal, school_id)
    return SchoolRead.model_validate(await schools.update(session, principal, school, changes))
