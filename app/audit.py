"""Audit events: who read or changed which children's data, when, and from where.

Events are written in the caller's transaction, so an audited change and its event commit
or roll back together. The trail is append-only: nothing in Liaison updates or deletes it,
and on PostgreSQL a trigger refuses both.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import insert, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.context import current_client_address, current_request_id
from app.db import chunks, is_postgresql, run
from app.models.audit import AuditEvent, AuditEventPupil
from app.models.base import new_id, utcnow
from app.models.pupil import Pupil
from app.security import Principal


class Auditor:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    async def record(
        self,
        action: str,
        resource_type: str,
        resource_id: str | uuid.UUID | None = None,
        *,
        pupil_ids: Iterable[uuid.UUID] = (),
        details: dict[str, Any] | None = None,
        la_code: str | None = None,
        school_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """Record one event. `la_code` and `school_id` say whose data it was (by default the
        principal's own LA, and its school when it has only one); each child's link records
        the child's school. Together they decide who may read the event later."""
        reach = self.principal.reach
        if school_id is None and reach.la_code is None and len(reach.school_ids) == 1:
            [school_id] = reach.school_ids
        event_id = new_id()
        event = {
            "id": event_id,
            "occurred_at": utcnow(),
            "actor": self.principal.subject,
            "client_id": self.principal.client_id,
            "action": action,
            "resource_type": resource_type,
            "resource_id": str(resource_id) if resource_id is not None else None,
            "request_id": current_request_id(),
            "client_address": current_client_address(),
            "details": details or {},
            "la_code": la_code if la_code is not None else reach.home_la,
            "school_id": school_id,
        }
        children = list(dict.fromkeys(pupil_ids))
        if children and is_postgresql(self.session):
            # One statement, however many children (a push can touch thousands): the event
            # in a data-modifying CTE, its links from the pupils' current schools. Every
            # audited read pays this, so it is one round trip, not two.
            await run(
                self.session,
                _EVENT_WITH_CHILDREN,
                {
                    **event,
                    "details": orjson.dumps(event["details"]).decode(),
                    "pupil_ids": children,
                },
            )
            return event_id
        await run(self.session, insert(AuditEvent).values(**event))
        if not children:
            return event_id
        schools: dict[uuid.UUID, uuid.UUID] = {}
        for some in chunks(children):
            rows = await self.session.exec(
                select(Pupil.id, Pupil.school_id).where(col(Pupil.id).in_(some))
            )
            schools.update(rows.all())
        await self.session.exec(
            insert(AuditEventPupil),
            params=[
                {"event_id": event_id, "pupil_id": p, "school_id": schools.get(p)} for p in children
            ],
        )
        return event_id


_EVENT_WITH_CHILDREN = text(
    "WITH event AS ("
    " INSERT INTO audit_event (id, occurred_at, actor, client_id, action, resource_type,"
    " resource_id, request_id, client_address, details, la_code, school_id)"
    " VALUES (:id, :occurred_at, :actor, :client_id, :action, :resource_type, :resource_id,"
    " :request_id, :client_address, CAST(:details AS jsonb), :la_code, :school_id)"
    " RETURNING id"
    ") "
    "INSERT INTO audit_event_pupil (event_id, pupil_id, school_id) "
    "SELECT event.id, touched.id, pupil.school_id "
    "FROM event CROSS JOIN unnest(CAST(:pupil_ids AS uuid[])) AS touched(id) "
    "LEFT JOIN pupil ON pupil.id = touched.id"
)
