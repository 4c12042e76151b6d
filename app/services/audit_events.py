"""Reading the audit trail (scope `audit:read`)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.models.audit import AuditEvent, AuditEventPupil, AuditEventRead
from app.pagination import Page


@dataclass(frozen=True)
class AuditFilters:
    pupil_id: uuid.UUID | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def get_all(
    session: AsyncSession, auditor: Auditor, page: Page, filters: AuditFilters
) -> tuple[list[AuditEventRead], str | None]:
    """Events newest first. The trail spans every school: reading it is the DPO's job, and
    the read is itself audited."""
    query = select(AuditEvent)
    if filters.pupil_id is not None:
        query = query.where(
            col(AuditEvent.id).in_(
                select(AuditEventPupil.event_id).where(AuditEventPupil.pupil_id == filters.pupil_id)
            )
        )
    if filters.actor:
        query = query.where(AuditEvent.actor == filters.actor)
    if filters.action:
        query = query.where(AuditEvent.action == filters.action)
    if filters.since is not None:
        query = query.where(AuditEvent.occurred_at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEvent.occurred_at < filters.until)
    if page.after is not None:
        query = query.where(AuditEvent.id < page.after)
    rows = (
        await session.exec(query.order_by(col(AuditEvent.id).desc()).limit(page.limit + 1))
    ).all()
    events, next_cursor = page.split(rows)
    pupils: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    if events:
        links = await session.exec(
            select(AuditEventPupil).where(col(AuditEventPupil.event_id).in_([e.id for e in events]))
        )
        for link in links.all():
            pupils[link.event_id].append(link.pupil_id)
    await auditor.record(
        "audit.list",
        "audit_event",
        pupil_ids=[filters.pupil_id] if filters.pupil_id else (),
        details={"returned": len(events), "actor_filter": filters.actor},
    )
    items = [
        AuditEventRead(**event.model_dump(), pupil_ids=sorted(pupils[event.id])) for event in events
    ]
    return items, next_cursor
