"""The casework event record, and a case's chronology built from it.

Every change to a referral or a case writes one `casework_event` in the same transaction.
A case's chronology is its own events, the events of the referrals that led to it, and its
children's attendance-flag history, in time order: the evidence record an attendance
officer relies on before any formal step.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.attendance import AttendanceFlag, AttendanceFlagEvent
from app.models.base import as_utc, new_id, utcnow
from app.models.case import Case, CaseChild, CaseworkEvent, ChronologyItem
from app.models.referral import Referral
from app.security import Principal

CSV_COLUMNS = ("at", "actor", "source", "event", "summary", "referral_id", "flag_id", "pupil_id")


async def record(
    session: AsyncSession,
    principal: Principal | str,
    event: str,
    summary: str,
    *,
    case_id: uuid.UUID | None = None,
    referral_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> None:
    """One step in a referral's or case's life. Summaries carry no child's details.
    `occurred_at` is when the step took effect, when that is not now (a backdated opening
    or closure; its details then say when it was recorded)."""
    actor = principal if isinstance(principal, str) else principal.subject
    session.add(
        CaseworkEvent(
            id=new_id(),
            occurred_at=occurred_at or utcnow(),
            actor=actor,
            case_id=case_id,
            referral_id=referral_id,
            event=event,
            summary=summary[:500],
            details=details or {},
        )
    )


async def referral_history(session: AsyncSession, referral_id: uuid.UUID) -> list[CaseworkEvent]:
    query = select(CaseworkEvent).where(CaseworkEvent.referral_id == referral_id)
    return list((await session.exec(query.order_by(col(CaseworkEvent.id)))).all())


async def for_case(session: AsyncSession, case: Case) -> list[ChronologyItem]:
    await session.flush()
    referral_ids = select(Referral.id).where(Referral.case_id == case.id)
    events = (
        await session.exec(
            select(CaseworkEvent)
            .where(
                or_(
                    col(CaseworkEvent.case_id) == case.id,
                    col(CaseworkEvent.referral_id).in_(referral_ids.scalar_subquery()),
                )
            )
            .order_by(col(CaseworkEvent.id))
        )
    ).all()
    items = [
        ChronologyItem(
            at=e.occurred_at,
            actor=e.actor,
            source="case" if e.referral_id is None else "referral",
            event=e.event,
            summary=e.summary,
            referral_id=e.referral_id,
        )
        for e in events
    ]
    pupils = select(CaseChild.pupil_id).where(
        CaseChild.case_id == case.id, col(CaseChild.pupil_id).is_not(None)
    )
    flag_events = (
        await session.exec(
            select(AttendanceFlagEvent, AttendanceFlag)
            .join(AttendanceFlag, col(AttendanceFlag.id) == AttendanceFlagEvent.flag_id)
            .where(
                or_(
                    col(AttendanceFlag.pupil_id).in_(pupils.scalar_subquery()),
                    col(AttendanceFlag.case_id) == case.id,
                )
            )
        )
    ).all()
    items.extend(
        ChronologyItem(
            at=event.occurred_at,
            actor=event.actor or "liaison",
            source="attendance_flag",
            event=f"attendance_flag.{event.event}",
            summary=f"{flag.kind.replace('_', ' ').capitalize()} flag {event.event}",
            flag_id=flag.id,
            pupil_id=flag.pupil_id,
        )
        for event, flag in flag_events
    )
    items.sort(key=lambda item: as_utc(item.at))
    return items


def as_csv(items: list[ChronologyItem]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in items:
        row = item.model_dump(mode="json")
        writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    # A spreadsheet would run a cell starting like a formula (reasons are free text).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
