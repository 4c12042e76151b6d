"""The `case.action_overdue` sweep: announce each overdue action once.

An action is overdue when it is still open after its due day (in the school's time zone).
The sweep records the event for every overdue action of an open case not announced yet, and
stamps `overdue_notified_at` on it, so an action is announced once however often the sweep
runs; a final status stops it from ever being announced. One conditional UPDATE claims the
actions, so two workers sweeping at once never announce one twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.config import Settings
from app.models.action import ActionStatus, CaseAction
from app.models.case import Case, CaseStatus
from app.services import webhook_events
from app.services.school_calendar import school_day


async def record_overdue_actions(session: AsyncSession, _settings: Settings, now: datetime) -> int:
    """Record `case.action_overdue` for each overdue action not yet announced; how many
    were. (`_settings`: the signature every sweep shares.)"""
    open_cases = select(col(Case.id)).where(col(Case.status) == CaseStatus.open.value)
    claimed = (
        await session.exec(
            update(CaseAction)
            .where(
                col(CaseAction.status) == ActionStatus.open.value,
                col(CaseAction.due_on) < school_day(now),
                col(CaseAction.overdue_notified_at).is_(None),
                col(CaseAction.case_id).in_(open_cases.scalar_subquery()),
            )
            .values(overdue_notified_at=now)
            .returning(col(CaseAction.id))
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not claimed:
        return 0
    ids = [row[0] for row in claimed]
    rows = await session.exec(
        select(CaseAction, Case.la_code, Case.school_id)
        .join(Case, col(Case.id) == col(CaseAction.case_id))
        .where(col(CaseAction.id).in_(ids))
        .order_by(col(CaseAction.id))
    )
    for action, la_code, school_id in rows.all():
        webhook_events.case_action_overdue(session, action, la_code, school_id, now)
    await session.flush()
    return len(ids)
