"""`GET /v1/audit-events`: the audit trail, for data protection officers (`audit:read`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import AuditorDep, AuditReader, PageDep
from app.errors import problem_responses
from app.models.audit import AuditEventPage
from app.models.base import IsoAwareDatetime
from app.services import audit_events

router = APIRouter(
    prefix="/v1/audit-events",
    tags=["audit"],
    responses=problem_responses(400, 401, 403, 422, 500, 503),
)


@router.get("", response_model=AuditEventPage)
async def list_audit_events(
    _principal: AuditReader,
    auditor: AuditorDep,
    page: PageDep,
    pupil_id: uuid.UUID | None = None,
    actor: Annotated[
        str | None, Query(max_length=300, description="`staff:<id>` or `client:<id>`.")
    ] = None,
    action: Annotated[str | None, Query(max_length=64, examples=["pupil.read"])] = None,
    since: Annotated[
        IsoAwareDatetime | None, Query(description="Inclusive, with a UTC offset.")
    ] = None,
    until: Annotated[
        IsoAwareDatetime | None, Query(description="Exclusive, with a UTC offset.")
    ] = None,
) -> AuditEventPage:
    """Audit events, newest first, filterable by child, actor, action and time."""
    filters = audit_events.AuditFilters(
        pupil_id=pupil_id, actor=actor, action=action, since=since, until=until
    )
    items, next_cursor = await audit_events.get_all(auditor, page, filters)
    return AuditEventPage(items=items, next_cursor=next_cursor)
