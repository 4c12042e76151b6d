"""`/v1/legal-holds`: a data protection officer places and lifts holds (`holds:write`) that
stop the retention run disposing of a child's, a family's or a case's records; holds are
read with `audit:read`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from app.deps import AuditorDep, AuditReader, HoldWriter, PageDep
from app.errors import problem_responses
from app.models.legal_hold import LegalHoldCreate, LegalHoldLift, LegalHoldPage, LegalHoldRead
from app.services import legal_holds

router = APIRouter(
    prefix="/v1/legal-holds",
    tags=["legal-holds"],
    responses=problem_responses(401, 403, 500, 503),
)


@router.post(
    "",
    response_model=LegalHoldRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 413, 415, 422),
)
async def place_legal_hold(
    body: LegalHoldCreate, _principal: HoldWriter, auditor: AuditorDep
) -> LegalHoldRead:
    """Place a hold on a child, a family or a case within your reach. While it stands the
    retention run disposes of none of the records it keeps."""
    return await legal_holds.place(auditor, body)


@router.get("", response_model=LegalHoldPage, responses=problem_responses(400, 422))
async def list_legal_holds(
    _principal: AuditReader, auditor: AuditorDep, page: PageDep, active: bool | None = None
) -> LegalHoldPage:
    """Holds within your reach, oldest first; `active=true` for those still standing."""
    items, next_cursor = await legal_holds.get_all(auditor, page, active)
    return LegalHoldPage(items=items, next_cursor=next_cursor)


@router.get("/{hold_id}", response_model=LegalHoldRead, responses=problem_responses(404, 422))
async def read_legal_hold(
    hold_id: uuid.UUID, _principal: AuditReader, auditor: AuditorDep
) -> LegalHoldRead:
    return await legal_holds.get(auditor, hold_id)


@router.post(
    "/{hold_id}/lift",
    response_model=LegalHoldRead,
    responses=problem_responses(404, 409, 413, 415, 422),
)
async def lift_legal_hold(
    hold_id: uuid.UUID, body: LegalHoldLift, _principal: HoldWriter, auditor: AuditorDep
) -> LegalHoldRead:
    """Lift a standing hold, with the reason; the next retention run disposes of whatever
    it kept that is past its period."""
    return await legal_holds.lift(auditor, hold_id, body.reason)
