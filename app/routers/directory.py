"""Writes to the service directory (scope `directory:write`); reads are the public `/oruk` API.

Bodies are the profile's fully nested records, so what `GET /oruk/services/{id}` answers
can be sent back with `PUT`. Services are retired by status, never deleted: signposts on
children's records point at them.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from app.deps import DirectoryWriter, SessionDep
from app.errors import problem_responses
from app.models.directory import (
    OrukService,
    OrukServiceWrite,
    OrukTaxonomy,
    ServiceStatusChange,
)
from app.reach import writable_la
from app.services import directory

router = APIRouter(
    prefix="/v1/directory",
    tags=["directory"],
    responses=problem_responses(401, 403, 422, 500, 503),
)


def _located(response: Response, service_id: uuid.UUID) -> None:
    response.headers["Location"] = f"/oruk/services/{service_id}"


@router.post(
    "/services",
    response_model=OrukService,
    response_model_exclude_none=True,
    status_code=201,
    responses=problem_responses(409),
)
async def create_service(
    new: OrukServiceWrite, response: Response, session: SessionDep, writer: DirectoryWriter
) -> OrukService:
    """Add a service, owned by the caller's LA. Its `id` may be given (409 if taken) or left
    to the server."""
    service = await directory.create_service(session, new, writable_la(writer))
    _located(response, service.id)
    return await directory.present_service(session, service)


@router.put(
    "/services/{service_id}",
    response_model=OrukService,
    response_model_exclude_none=True,
    responses={201: {"model": OrukService, "description": "Created."}, **problem_responses(409)},
)
async def put_service(
    service_id: uuid.UUID,
    new: OrukServiceWrite,
    response: Response,
    session: SessionDep,
    writer: DirectoryWriter,
) -> OrukService:
    """Create or replace the service with this id (201 when created, 200 when replaced).
    Only the LA that owns a service replaces it (403 for anyone else); organizations,
    locations and terms nested in it may belong to others if sent back unchanged."""
    owner = writable_la(writer)
    service, created = await directory.put_service(session, service_id, new, owner)
    if created:
        response.status_code = 201
        _located(response, service.id)
    return await directory.present_service(session, service)


@router.patch(
    "/services/{service_id}",
    response_model=OrukService,
    response_model_exclude_none=True,
    responses=problem_responses(404),
)
async def change_status(
    service_id: uuid.UUID,
    change: ServiceStatusChange,
    session: SessionDep,
    writer: DirectoryWriter,
) -> OrukService:
    """Change a service's status: `defunct` retires it, `temporarily closed` pauses it. Only
    the LA that owns the service may."""
    owner = writable_la(writer)
    service = await directory.change_status(session, service_id, change.status, owner)
    return await directory.present_service(session, service)


@router.put(
    "/taxonomies/{taxonomy_id}",
    response_model=OrukTaxonomy,
    response_model_exclude_none=True,
    responses={201: {"model": OrukTaxonomy, "description": "Created."}},
)
async def put_taxonomy(
    taxonomy_id: uuid.UUID,
    new: OrukTaxonomy,
    response: Response,
    session: SessionDep,
    writer: DirectoryWriter,
) -> OrukTaxonomy:
    """Create or update a taxonomy and the terms given with it (others stay). Only the LA
    that owns the taxonomy, or a term, changes it."""
    owner = writable_la(writer)
    _, created = await directory.put_taxonomy(session, taxonomy_id, new, owner)
    if created:
        response.status_code = 201
    return await directory.read_taxonomy(session, taxonomy_id)
