"""The caseload report: who held which open cases on a day, read back from the recorded
history (openings, closures and reopenings, changes of lead practitioner, closure and
step-up requests and their approvals), not from the cases as they stand today."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_
from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.db import run
from app.errors import ProblemItem, ValidationFailed
from app.models.action import ActionStatus, CaseAction, CaseActionStatus
from app.models.base import as_utc
from app.models.case import Case, CaseChild, CaseworkEvent
from app.models.plan import Review
from app.models.principal import StaffMember
from app.models.referral import Referral
from app.models.report import Report
from app.models.report_caseload import CaseloadRow
from app.security import Principal
from app.services import access
from app.services.cases import months_before
from app.services.report_tables import (
    Period,
    Table,
    audit,
    check_school,
    children_by,
    envelope,
    mean,
    median,
)
from app.services.school_calendar import school_today

# The steps of a case's life the report reads back, and of a referral's step-up.
_OPENING = ("case.closed", "case.reopened")
_CLOSURE_APPROVAL = ("case.closure_requested", "case.closure_approved", "case.closure_refused")
_LEAD_CHANGE = "case.updated"
_STEP_UP = ("referral.step_up_requested", "referral.step_up_approved", "referral.step_up_refused")
# Age bands of an open case, in whole months before `as_of`: (column, from, to).
AGE_BANDS = (
    ("open_under_3_months", 0, 3),
    ("open_3_to_6_months", 3, 6),
    ("open_6_to_12_months", 6, 12),
    ("open_12_months_or_more", 12, None),
)
# What adds up across practitioners into the total row; children nearly do (a child can be
# on two practitioners' cases) and are treated as adding up, so suppression stays safe.
_ADDING_UP = [
    "open_cases",
    "children",
    "reviews_overdue",
    "actions_overdue",
    "closures_pending_approval",
    "step_ups_pending_approval",
    *(band for band, _, _ in AGE_BANDS),
]
ALL = "All lead practitioners"
NO_LEAD = "No lead practitioner"


@dataclass
class _History:
    """What the record says of one case: its state changes and lead changes, in order."""

    opened_at: datetime
    closed_at: datetime | None
    reopened: bool
    lead_now: uuid.UUID | None
    interval_now: int | None
    openings: list[tuple[datetime, str]] = field(default_factory=list)
    approvals: list[tuple[datetime, str]] = field(default_factory=list)
    leads: list[tuple[datetime, str | None, str | None]] = field(default_factory=list)
    intervals: list[tuple[datetime, int | None, int | None]] = field(default_factory=list)

    def open_before(self, cutoff: datetime) -> bool:
        """Open at the end of the day before `cutoff`: the last closure or reopening before
        then says; with none recorded (de-identified, or never closed), the case's dates."""
        if as_utc(self.opened_at) >= cutoff:
            return False
        steps = [event for at, event in self.openings if at < cutoff]
        if self.reopened and self.openings:
            return not steps or steps[-1] != "case.closed"
        return self.closed_at is None or as_utc(self.closed_at) >= cutoff

    def lead_before(self, cutoff: datetime) -> uuid.UUID | None:
        """The lead after the last recorded change before `cutoff`; else the lead before the
        first change after it; else (no change recorded) the lead today."""
        if not self.leads:
            return self.lead_now
        earlier = [to for at, _, to in self.leads if at < cutoff]
        chosen = earlier[-1] if earlier else self.leads[0][1]
        return uuid.UUID(chosen) if chosen else None

    def interval_before(self, cutoff: datetime, default_weeks: int) -> int:
        """The case's review interval at `cutoff`, read as its lead is (`lead_before`); a case
        without one of its own follows the service setting."""
        if not self.intervals:
            weeks = self.interval_now
        else:
            earlier = [to for at, _, to in self.intervals if at < cutoff]
            weeks = earlier[-1] if earlier else self.intervals[0][1]
        return weeks or default_weeks

    def closure_pending(self, cutoff: datetime) -> bool:
        steps = [event for at, event in self.approvals if at < cutoff]
        return bool(steps) and steps[-1] == "case.closure_requested"


def check_as_of(as_of: date | None) -> date:
    """The day asked for (default today); a day after today is refused."""
    today = school_today()
    if as_of is None:
        return today
    if as_of > today:
        raise ValidationFailed(
            "The caseload stands on a day that has come.",
            errors=[
                ProblemItem(
                    loc=["query", "as_of"],
                    detail=f"{as_of.isoformat()} is after today ({today.isoformat()})",
                )
            ],
        )
    return as_of


def _candidates(
    principal: Principal, cutoff: datetime, school_id: uuid.UUID | None
) -> list[ColumnElement[bool]]:
    """Cases within reach that may have been open on the day: opened by its end, and not
    closed before it for good."""
    conditions = [
        access.case_in_reach(principal),
        col(Case.opened_at) < cutoff,
        or_(
            col(Case.closed_at).is_(None),
            col(Case.closed_at) >= cutoff,
            col(Case.reopened_count) > 0,
        ),
    ]
    if school_id is not None:
        conditions.append(col(Case.school_id) == school_id)
    return conditions


async def _histories(
    session: AsyncSession, scope: list[ColumnElement[bool]]
) -> dict[uuid.UUID, _History]:
    query = core_select(
        col(Case.id),
        col(Case.opened_at),
        col(Case.closed_at),
        col(Case.reopened_count),
        col(Case.lead_practitioner_id),
        col(Case.review_interval_weeks),
    ).where(*scope)
    found = {
        case_id: _History(opened, closed, bool(reopened), lead, weeks)
        for case_id, opened, closed, reopened, lead, weeks in map(tuple, await run(session, query))
    }
    events = (
        select(
            col(CaseworkEvent.case_id),
            col(CaseworkEvent.event),
            col(CaseworkEvent.occurred_at),
            col(CaseworkEvent.details),
        )
        .join(Case, col(Case.id) == col(CaseworkEvent.case_id))
        .where(
            *scope,
            col(CaseworkEvent.event).in_([*_OPENING, *_CLOSURE_APPROVAL, _LEAD_CHANGE]),
        )
        .order_by(col(CaseworkEvent.occurred_at), col(CaseworkEvent.id))
    )
    for case_id, event, occurred_at, details in await session.exec(events):
        history = found.get(case_id)
        if history is None:
            continue
        at = as_utc(occurred_at)
        if event in _OPENING:
            history.openings.append((at, event))
        elif event in _CLOSURE_APPROVAL:
            history.approvals.append((at, event))
        elif isinstance(details, dict):
            if isinstance(details.get("lead_practitioner"), dict):
                change = details["lead_practitioner"]
                history.leads.append((at, change.get("from"), change.get("to")))
            if isinstance(details.get("review_interval_weeks"), dict):
                weeks = details["review_interval_weeks"]
                history.intervals.append((at, weeks.get("from"), weeks.get("to")))
    return found


async def _last_reviews(
    session: AsyncSession, scope: list[ColumnElement[bool]], as_of: date
) -> dict[uuid.UUID, date]:
    query = (
        select(col(Review.case_id), func.max(Review.held_on))
        .join(Case, col(Case.id) == col(Review.case_id))
        .where(*scope, col(Review.held_on) <= as_of)
        .group_by(col(Review.case_id))
    )
    return dict((await session.exec(query)).all())


async def _actions_overdue(
    session: AsyncSession, scope: list[ColumnElement[bool]], day: date, cutoff: datetime
) -> dict[uuid.UUID, int]:
    """Per case, its actions overdue on `day`: recorded by its end, due before it, and open
    at its end by their status history (a status changed later does not count)."""
    actions = (
        select(col(CaseAction.id), col(CaseAction.case_id))
        .join(Case, col(Case.id) == col(CaseAction.case_id))
        .where(*scope, col(CaseAction.created_at) < cutoff, col(CaseAction.due_on) < day)
    )
    case_of: dict[uuid.UUID, uuid.UUID] = dict((await session.exec(actions)).all())
    if not case_of:
        return {}
    statuses = (
        select(col(CaseActionStatus.action_id), col(CaseActionStatus.status))
        .where(
            col(CaseActionStatus.action_id).in_(list(case_of)),
            col(CaseActionStatus.changed_at) < cutoff,
        )
        .order_by(col(CaseActionStatus.changed_at), col(CaseActionStatus.id))
    )
    last: dict[uuid.UUID, ActionStatus] = {}
    for action_id, status in await session.exec(statuses):
        last[action_id] = status
    overdue: dict[uuid.UUID, int] = defaultdict(int)
    for action_id, status in last.items():
        if status == ActionStatus.open:
            overdue[case_of[action_id]] += 1
    return overdue


async def _step_ups_pending(
    session: AsyncSession, principal: Principal, cutoff: datetime, school_id: uuid.UUID | None
) -> dict[uuid.UUID | None, int]:
    """Referral step-ups awaiting approval at `cutoff`, by the staff member who asked (None:
    asked by a system)."""
    conditions = [
        access.referral_visible_to(principal),
        col(CaseworkEvent.event).in_(_STEP_UP),
        col(CaseworkEvent.occurred_at) < cutoff,
    ]
    if school_id is not None:
        conditions.append(col(Referral.school_id) == school_id)
    query = (
        select(col(CaseworkEvent.referral_id), col(CaseworkEvent.event), col(CaseworkEvent.actor))
        .join(Referral, col(Referral.id) == col(CaseworkEvent.referral_id))
        .where(*conditions)
        .order_by(col(CaseworkEvent.occurred_at), col(CaseworkEvent.id))
    )
    last: dict[uuid.UUID | None, tuple[str, str]] = {}
    for referral_id, event, actor in await session.exec(query):
        last[referral_id] = (event, actor)
    pending: dict[uuid.UUID | None, int] = defaultdict(int)
    for event, actor in last.values():
        if event == "referral.step_up_requested":
            kind, _, subject_id = actor.partition(":")
            pending[uuid.UUID(subject_id) if kind == "staff" else None] += 1
    return pending


async def _names(session: AsyncSession, staff_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not staff_ids:
        return {}
    query = select(col(StaffMember.id), col(StaffMember.display_name)).where(
        col(StaffMember.id).in_(list(staff_ids))
    )
    return dict((await session.exec(query)).all())


@dataclass
class _Load:
    """One row's open cases on the day."""

    cases: list[uuid.UUID] = field(default_factory=list)
    ages: list[int] = field(default_factory=list)
    bands: dict[str, int] = field(default_factory=lambda: {b: 0 for b, _, _ in AGE_BANDS})
    overdue: int = 0
    actions_overdue: int = 0
    closures_pending: int = 0
    step_ups_pending: int = 0

    def row(self, children: dict[uuid.UUID, set[uuid.UUID]], **keys: Any) -> dict[str, Any]:
        kids: set[uuid.UUID] = set()
        for case_id in self.cases:
            kids |= children.get(case_id, set())
        return {
            **keys,
            "open_cases": len(self.cases),
            "children": len(kids),
            "reviews_overdue": self.overdue,
            "actions_overdue": self.actions_overdue,
            "closures_pending_approval": self.closures_pending,
            "step_ups_pending_approval": self.step_ups_pending,
            "mean_days_open": mean(self.ages),
            "median_days_open": median(self.ages),
            **self.bands,
        }


def age_band(opened_on: date, as_of: date) -> str:
    """The band of a case opened on `opened_on`, on `as_of`, by whole calendar months."""
    for band, _, upper in AGE_BANDS:
        if upper is None or opened_on > months_before(as_of, upper):
            return band
    raise AssertionError("unreachable")


async def caseload(
    auditor: Auditor,
    as_of: date | None,
    school_id: uuid.UUID | None,
    suppress_below: int | None,
    review_weeks: int,
) -> Report[Any]:
    """Open cases and children per lead practitioner on `as_of`, as the record tells it."""
    session, principal = auditor.session, auditor.principal
    day = check_as_of(as_of)
    await check_school(session, principal, school_id)
    cutoff = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
    scope = _candidates(principal, cutoff, school_id)
    histories = await _histories(session, scope)
    reviews = await _last_reviews(session, scope, day)
    children = await children_by(session, CaseChild, col(CaseChild.case_id), Case, scope)
    step_ups = await _step_ups_pending(session, principal, cutoff, school_id)
    late_actions = await _actions_overdue(session, scope, day, cutoff)

    total = _Load()
    loads: dict[uuid.UUID | None, _Load] = defaultdict(_Load)
    for case_id, history in histories.items():
        if not history.open_before(cutoff):
            continue
        opened_on = as_utc(history.opened_at).date()
        every = history.interval_before(cutoff, review_weeks)
        due = (reviews.get(case_id) or opened_on) + timedelta(weeks=every)
        band = age_band(opened_on, day)
        for load in (total, loads[history.lead_before(cutoff)]):
            load.cases.append(case_id)
            load.ages.append((day - opened_on).days)
            load.bands[band] += 1
            load.overdue += due < day
            load.actions_overdue += late_actions.get(case_id, 0)
            load.closures_pending += history.closure_pending(cutoff)
    for staff_id, pending in step_ups.items():
        loads[staff_id].step_ups_pending += pending
        total.step_ups_pending += pending

    leads = [staff_id for staff_id in loads if staff_id is not None]
    names = await _names(session, leads)
    table = Table(CaseloadRow)
    table.add(**total.row(children, lead_practitioner_id=None, lead_practitioner=ALL))
    for staff_id in sorted(leads, key=lambda s: (names.get(s, "").casefold(), str(s))):
        table.add(
            **loads[staff_id].row(
                children, lead_practitioner_id=staff_id, lead_practitioner=names.get(staff_id)
            )
        )
    table.add(**loads[None].row(children, lead_practitioner_id=None, lead_practitioner=NO_LEAD))
    table.adds_up(0, range(1, len(table.rows)), _ADDING_UP)
    for i in range(len(table.rows)):
        table.adds_across(i, "open_cases", [band for band, _, _ in AGE_BANDS])
        table.rests(i, "mean_days_open", "open_cases")
        table.rests(i, "median_days_open", "open_cases")
    report = envelope("caseload", table, principal, Period(None, day), school_id, suppress_below)
    await audit(auditor, report, school_id, cases=len(total.cases))
    return report
