"""Signposts to partner services in the directory, and what came of each."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.errors import Conflict, NotFound, ProblemItem, ValidationFailed
from app.models.base import shown_as, utcnow
from app.models.directory import DirectoryService
from app.models.signpost import (
    NEXT_STATUSES,
    Signpost,
    SignpostCreate,
    SignpostRead,
    SignpostStatus,
    SignpostUpdate,
)
from app.services import case_records, directory, webhook_events


def _event(status: SignpostStatus, at: datetime, by: str, note: str | None) -> dict[str, object]:
    return {"status": status.value, "at": at.isoformat(), "by": by, "note": note}


async def suggest(auditor: Auditor, case_id: uuid.UUID, new: SignpostCreate) -> SignpostRead:
    work = await case_records.begin(auditor, case_id, child_ids=[new.child_id])
    try:
        service = await directory.get_service(work.session, new.service_id)
    except NotFound:
        raise ValidationFailed(
            "The service is not in the directory.",
            errors=[ProblemItem(loc=["body", "service_id"], detail="no such service")],
        ) from None
    now = utcnow()
    signpost = Signpost(
        case_id=work.case.id,
        service_id=service.id,
        child_id=new.child_id,
        reason=new.reason,
        status=SignpostStatus.suggested,
        history=[_event(SignpostStatus.suggested, now, work.by, new.reason)],
        created_at=now,
        updated_at=now,
        created_by=work.by,
    )
    await case_records.add(
        work,
        signpost,
        event="signpost.suggested",
        summary=f"Signposted to {service.name}: {new.reason}",
        details={"signpost_id": str(signpost.id), "service_id": str(service.id)},
        action="signpost.create",
        children=[new.child_id] if new.child_id else None,
    )
    return (await present(work.session, [signpost]))[0]


async def move(
    auditor: Auditor, case_id: uuid.UUID, signpost_id: uuid.UUID, change: SignpostUpdate
) -> SignpostRead:
    work = await case_records.begin(auditor, case_id)
    query = select(Signpost).where(Signpost.id == signpost_id, Signpost.case_id == work.case.id)
    signpost = (await work.session.exec(query)).first()
    if signpost is None:
        raise NotFound("No such signpost on this case.")
    current = SignpostStatus(signpost.status)
    allowed = NEXT_STATUSES[current]
    if change.status not in allowed:
        why = (
            f"{current.value} is final"
            if not allowed
            else f"from {current.value} it can go to {', '.join(sorted(s.value for s in allowed))}"
        )
        raise Conflict(f"This signpost cannot become {change.status.value}: {why}.")
    now = utcnow()
    signpost.status = change.status
    webhook_events.signpost_status_changed(work.session, signpost, work.case, current)
    signpost.history = [*signpost.history, _event(change.status, now, work.by, change.note)]
    signpost.updated_at = now
    service = await work.session.get(DirectoryService, signpost.service_id)
    name = service.name if service else "a service"
    note = f": {change.note}" if change.note else ""
    await case_records.add(
        work,
        signpost,
        event=f"signpost.{change.status.value}",
        summary=f"Signpost to {name} {change.status.value.replace('_', ' ')}{note}",
        details={"signpost_id": str(signpost.id)},
        action="signpost.update",
        children=[signpost.child_id] if signpost.child_id else None,
    )
    return (await present(work.session, [signpost]))[0]


async def get_all(auditor: Auditor, case_id: uuid.UUID) -> list[SignpostRead]:
    rows = await case_records.records(
        auditor, case_id, Signpost, col(Signpost.id), action="signpost.list"
    )
    return await present(auditor.session, rows)


async def present(session: AsyncSession, rows: Sequence[Signpost]) -> list[SignpostRead]:
    names: dict[uuid.UUID, str] = {}
    ids = list({r.service_id for r in rows})
    if ids:
        for service_id, name in (
            await session.exec(
                select(col(DirectoryService.id), col(DirectoryService.name)).where(
                    col(DirectoryService.id).in_(ids)
                )
            )
        ).all():
            names[service_id] = name
    return [shown_as(SignpostRead, r, service_name=names.get(r.service_id, "")) for r in rows]
