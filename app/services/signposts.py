"""Signposts to partner services in the directory, and what came of each."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.errors import Conflict, NotFound, ProblemItem, ValidationFailed
from app.models.base import as_utc, utcnow
from app.models.directory import DirectoryService
from app.models.signpost import (
    NEXT_STATUSES,
    Signpost,
    SignpostCreate,
    SignpostEvent,
    SignpostRead,
    SignpostStatus,
    SignpostUpdate,
)
from app.services import access, chronology, directory


def _event(status: SignpostStatus, at: datetime, by: str, note: str | None) -> dict[str, object]:
    return {"status": status.value, "at": at.isoformat(), "by": by, "note": note}


async def suggest(
    auditor: Auditor,
    case_id: uuid.UUID,
    new: SignpostCreate,
) -> SignpostRead:
    session, principal = auditor.session, auditor.principal
    case = await access.get_case_for_work(session, principal, case_id)
    held = await access.check_children(session, case, [new.child_id], "child_id")
    try:
        service = await directory.get_service(session, new.service_id)
    except NotFound:
        raise ValidationFailed(
            "The service is not in the directory.",
            errors=[ProblemItem(loc=["body", "service_id"], detail="no such service")],
        ) from None
    now = utcnow()
    signpost = Signpost(
        case_id=case.id,
        service_id=service.id,
        child_id=new.child_id,
        reason=new.reason,
        status=SignpostStatus.suggested,
        history=[_event(SignpostStatus.suggested, now, principal.subject, new.reason)],
        created_at=now,
        updated_at=now,
        created_by=principal.subject,
    )
    session.add(signpost)
    await chronology.record(
        session,
        principal,
        "signpost.suggested",
        f"Signposted to {service.name}: {new.reason}",
        case_id=case.id,
        details={"signpost_id": str(signpost.id), "service_id": str(service.id)},
    )
    await session.flush()
    children = [new.child_id] if new.child_id else held
    await auditor.record("signpost.create", "signpost", signpost.id, pupil_ids=children)
    return (await present(session, [signpost]))[0]


async def move(
    auditor: Auditor,
    case_id: uuid.UUID,
    signpost_id: uuid.UUID,
    change: SignpostUpdate,
) -> SignpostRead:
    session, principal = auditor.session, auditor.principal
    case = await access.get_case_for_work(session, principal, case_id)
    signpost = (
        await session.exec(
            select(Signpost).where(Signpost.id == signpost_id, Signpost.case_id == case.id)
        )
    ).first()
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
    signpost.history = [
        *signpost.history,
        _event(change.status, now, principal.subject, change.note),
    ]
    signpost.updated_at = now
    session.add(signpost)
    service = await session.get(DirectoryService, signpost.service_id)
    name = service.name if service else "a service"
    note = f": {change.note}" if change.note else ""
    await chronology.record(
        session,
        principal,
        f"signpost.{change.status.value}",
        f"Signpost to {name} {change.status.value.replace('_', ' ')}{note}",
        case_id=case.id,
        details={"signpost_id": str(signpost.id)},
    )
    await session.flush()
    held = await access.pupils_of(session, case.id)
    children = [signpost.child_id] if signpost.child_id else held
    await auditor.record("signpost.update", "signpost", signpost.id, pupil_ids=children)
    return (await present(session, [signpost]))[0]


async def get_all(auditor: Auditor, case_id: uuid.UUID) -> list[SignpostRead]:
    session, principal = auditor.session, auditor.principal
    case = await access.get_case(session, principal, case_id)
    rows = (
        await session.exec(
            select(Signpost).where(Signpost.case_id == case.id).order_by(col(Signpost.id))
        )
    ).all()
    held = await access.pupils_of(session, case.id)
    await auditor.record("signpost.list", "case", case.id, pupil_ids=held)
    return await present(session, rows)


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
    return [
        SignpostRead(
            id=r.id,
            case_id=r.case_id,
            service_id=r.service_id,
            service_name=names.get(r.service_id, ""),
            child_id=r.child_id,
            reason=r.reason,
            status=r.status,
            history=[SignpostEvent.model_validate(e) for e in r.history],
            created_at=as_utc(r.created_at),
            updated_at=as_utc(r.updated_at),
        )
        for r in rows
    ]
