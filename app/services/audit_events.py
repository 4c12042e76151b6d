"""Reading the audit trail (scope `audit:read`)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, or_
from sqlmodel import col, select

from app.audit import Auditor
from app.models.audit import AuditEvent, AuditEventPupil, AuditEventRead
from app.models.base import shown_as
from app.pagination import Page, keyset
from app.reach import within_reach
from app.security import Principal


@dataclass(frozen=True)
class AuditFilters:
    pupil_id: uuid.UUID | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def event_in_reach(principal: Principal) -> ColumnElement[bool]:
    """An event is the principal's to read when it was about their LA's or their schools'
    data, or touched a child at one of their schools (at the time)."""
    reach = principal.reach
    conditions: list[ColumnElement[bool]] = [within_reach(AuditEvent.school_id, reach)]
    if reach.la_code is not None:
        conditions.append(col(AuditEvent.la_code) == reach.la_code)
    links = select(AuditEventPupil.event_id).where(
        col(AuditEventPupil.event_id) == col(AuditEvent.id),
        within_reach(AuditEventPupil.school_id, reach),
    )
    conditions.append(links.exists())
    return or_(*conditions)


async def get_all(
    auditor: Auditor, page: Page, filters: AuditFilters
) -> tuple[list[AuditEventRead], str | None]:
    """Events within the reader's reach, newest first; each names only the children within
    reach. A child or an actor outside reach finds nothing, exactly as an unknown one. The
    read is itself audited."""
    session = auditor.session
    principal = auditor.principal
    query = select(AuditEvent).where(event_in_reach(principal))
    if filters.pupil_id is not None:
        query = query.where(
            col(AuditEvent.id).in_(
                select(AuditEventPupil.event_id).where(
                    AuditEventPupil.pupil_id == filters.pupil_id,
                    within_reach(AuditEventPupil.school_id, principal),
                )
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
    events, next_cursor = await keyset(session, query, col(AuditEvent.id), page, newest_first=True)
    pupils: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    if events:
        links = await session.exec(
            select(AuditEventPupil).where(
                col(AuditEventPupil.event_id).in_([e.id for e in events]),
                within_reach(AuditEventPupil.school_id, principal),
            )
        )
        for link in links.all():
            pupils[link.event_id].append(link.pupil_id)
    await auditor.record(
        "audit.list",
        "audit_event",
        pupil_ids=[filters.pupil_id] if filters.pupil_id else (),
        details={"returned": len(events), "actor_filter": filters.actor},
    )
    items = [shown_as(AuditEventRead, e, pupil_ids=sorted(pupils[e.id])) for e in events]
    return items, next_cursor
