"""Contacts and interventions, and re-integration timetables.

The safety rules of a single contact (consent for online contact with a child, a risk
assessment before a home visit, a formal meeting's agenda and record) are checked by the
request schema; the case-level one, consent withdrawn, is checked here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from sqlmodel import col

from app.audit import Auditor
from app.errors import NotFound
from app.models.action import ActionSource
from app.models.base import as_utc, shown_as, utcnow
from app.models.intervention import (
    Intervention,
    InterventionCreate,
    InterventionRead,
    StepRead,
    Timetable,
    TimetableRead,
    TimetableSet,
)
from app.services import access, actions, case_records
from app.services.school_calendar import school_day


async def record(auditor: Auditor, case_id: uuid.UUID, new: InterventionCreate) -> InterventionRead:
    occurred = as_utc(new.occurred_at)
    work = await case_records.begin(
        auditor,
        case_id,
        child_ids=new.child_ids,
        field="child_ids",
        needs_consent=True,
        dated=("occurred_at", school_day(occurred)),
    )
    contact = Intervention(
        case_id=work.case.id,
        type=new.type,
        occurred_at=occurred,
        minutes=new.minutes,
        location=new.location,
        participants=list(new.participants),
        child_ids=[str(c) for c in new.child_ids],
        child_seen=new.child_seen,
        agenda=new.agenda,
        record=new.record,
        actions=[a.model_dump(mode="json") for a in new.actions],
        parent_consent_recorded=new.parent_consent_recorded,
        risk_assessment_done=new.risk_assessment_done,
        created_by=work.by,
    )
    seen = "child seen" if new.child_seen else "child not seen"
    await case_records.add(
        work,
        contact,
        event="intervention.recorded",
        summary=f"{new.type.replace('_', ' ').capitalize()} "
        f"({new.location}, {new.minutes} min, {seen})",
        details={"intervention_id": str(contact.id), "occurred_at": occurred.isoformat()},
        action="intervention.create",
        children=new.child_ids or None,
        # The action plan becomes action records, followed up on their own (the contact's
        # `actions` stay as written).
        also=actions.rows_for_plan(
            work.case.id, (ActionSource.contact, contact.id), new.actions, work.by, utcnow()
        ),
    )
    return present(contact)


async def get_all(auditor: Auditor, case_id: uuid.UUID) -> list[InterventionRead]:
    rows = await case_records.records(
        auditor,
        case_id,
        Intervention,
        col(Intervention.occurred_at),
        col(Intervention.id),
        action="intervention.list",
    )
    return [present(r) for r in rows]


def present(row: Intervention) -> InterventionRead:
    return shown_as(InterventionRead, row)


# --- re-integration timetables ------------------------------------------------------------


def compute(
    child_id: uuid.UUID, full_time_hours: float, steps: Sequence[dict[str, object]]
) -> TimetableRead:
    """Where the child is on their phased return today, and when it reaches the full week."""
    today = utcnow().date()
    parsed = [
        (date.fromisoformat(str(s["starts_on"])), float(str(s["planned_hours"]))) for s in steps
    ]
    current = None
    for index, (starts_on, _) in enumerate(parsed):
        if starts_on <= today:
            current = index
    current_hours = parsed[current][1] if current is not None else 0.0
    full_from = next((day for day, hours in parsed if hours >= full_time_hours), None)
    return TimetableRead(
        child_id=child_id,
        full_time_hours=full_time_hours,
        steps=[
            StepRead(
                starts_on=day,
                planned_hours=hours,
                percent_of_full_time=round(hours * 100 / full_time_hours + 1e-9, 1),
            )
            for day, hours in parsed
        ],
        current_step=current,
        current_hours=current_hours,
        on_full_timetable=current_hours >= full_time_hours,
        full_time_from=full_from,
    )


async def set_timetable(
    auditor: Auditor, case_id: uuid.UUID, child_id: uuid.UUID, plan: TimetableSet
) -> TimetableRead:
    work = await case_records.begin(auditor, case_id, child_ids=[child_id])
    steps = [s.model_dump(mode="json") for s in plan.steps]
    timetable = await work.session.get(Timetable, (work.case.id, child_id))
    if timetable is None:
        timetable = Timetable(
            case_id=work.case.id, child_id=child_id, full_time_hours=0, updated_by=""
        )
    timetable.full_time_hours = plan.full_time_hours
    timetable.steps = steps
    timetable.updated_at = utcnow()
    timetable.updated_by = work.by
    answer = compute(child_id, plan.full_time_hours, steps)
    reaches = (
        f"full time from {answer.full_time_from.isoformat()}"
        if answer.full_time_from
        else "not yet reaching full time"
    )
    await case_records.add(
        work,
        timetable,
        event="timetable.set",
        summary=f"Re-integration timetable set: {len(steps)} step(s), {reaches}",
        details={"child_id": str(child_id)},
        action="timetable.set",
        children=[child_id],
        resource=("case", work.case.id),
    )
    return answer


async def get_timetable(
    auditor: Auditor,
    case_id: uuid.UUID,
    child_id: uuid.UUID,
) -> TimetableRead:
    session, principal = auditor.session, auditor.principal
    case = await access.get_case(session, principal, case_id)
    timetable = await session.get(Timetable, (case.id, child_id))
    if timetable is None:
        raise NotFound("This child has no re-integration timetable on this case.")
    await auditor.record("timetable.read", "case", case.id, pupil_ids=[child_id])
    return compute(child_id, timetable.full_time_hours, timetable.steps)
