"""The closures report: why cases closed in a period, how long they had been open, who held
them and where the families went (issue 13, item 2)."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import select as core_select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.db import run
from app.models.case import Case, CaseChild, ClosureReason
from app.models.principal import StaffMember
from app.models.report import Report
from app.models.report_closures import ClosureRow
from app.models.school import School
from app.security import Principal
from app.services import access
from app.services.case_dates import as_day, start_of
from app.services.report_tables import (
    Period,
    Table,
    audit,
    check_school,
    children_by,
    envelope,
    mean,
    median,
    period,
)

COUNTS = ("cases", "children", "families")

# Cases add up across reasons, schools and leads. Children and families nearly do (a child
# can be on cases closed for two reasons): suppression treats them as adding up too, so a
# total less its shown parts never gives back a withheld count, even approximately.
_NEARLY_ADDITIVE = ["cases", "children", "families"]


def closed_between(start: date | None, end: date) -> ColumnElement[bool]:
    """A case whose latest closure falls on a day from `start` to `end` (inclusive). A reopened
    case is open again (its closure undone) until it closes again."""
    condition = col(Case.closed_at) < start_of(end + timedelta(days=1))
    if start is not None:
        condition = condition & (col(Case.closed_at) >= start_of(start))
    return condition


def closed_cases(
    principal: Principal, start: date | None, end: date, school_id: uuid.UUID | None
) -> list[ColumnElement[bool]]:
    """The conditions on `Case` for the closed cases a report counts: within reach, of the
    school asked for, closed in the period."""
    conditions = [access.case_in_reach(principal), closed_between(start, end)]
    if school_id is not None:
        conditions.append(col(Case.school_id) == school_id)
    return conditions


def families(children: dict[uuid.UUID, set[uuid.UUID]]) -> dict[uuid.UUID, uuid.UUID]:
    """Each case's family (as the id of one of its cases): cases that share a child are one
    family, and so are cases linked through others that share a child with each; any other
    case is a family of its own."""
    parent: dict[uuid.UUID, uuid.UUID] = {}

    def root(case_id: uuid.UUID) -> uuid.UUID:
        while parent[case_id] != case_id:
            parent[case_id] = parent[parent[case_id]]
            case_id = parent[case_id]
        return case_id

    first_case_of: dict[uuid.UUID, uuid.UUID] = {}
    for case_id, kids in children.items():
        parent.setdefault(case_id, case_id)
        for child in kids:
            other = first_case_of.setdefault(child, case_id)
            parent[root(case_id)] = root(other)
    return {case_id: root(case_id) for case_id in parent}


@dataclass(frozen=True)
class _Closure:
    case_id: uuid.UUID
    reason: ClosureReason
    school_id: uuid.UUID | None
    school_name: str | None
    lead_id: uuid.UUID | None
    lead_name: str | None
    destination: str | None
    days_open: int


def _spelling(destination: str) -> str:
    """One destination however it was typed: spacing and letter case ignored."""
    return " ".join(destination.split()).casefold()


@dataclass(frozen=True)
class _Households:
    """Each case's children and family, for every case the report counts."""

    children: dict[uuid.UUID, set[uuid.UUID]]
    family: dict[uuid.UUID, uuid.UUID]


def _figures(closures: list[_Closure], held: _Households) -> dict[str, Any]:
    ids = [c.case_id for c in closures]
    kids: set[uuid.UUID] = set()
    for case_id in ids:
        kids |= held.children.get(case_id, set())
    days = [c.days_open for c in closures]
    return {
        "cases": len(ids),
        "children": len(kids),
        "families": len({held.family.get(case_id, case_id) for case_id in ids}),
        "mean_days_open": mean(days),
        "median_days_open": median(days),
    }


def _last(value: str | None) -> tuple[bool, str]:
    """Sorts names alphabetically (case ignored), the missing one last."""
    return (value is None, (value or "").casefold())


def build_table(closures: list[_Closure], children: dict[uuid.UUID, set[uuid.UUID]]) -> Table:
    """The table: the total, every reason (in the order of the list of reasons), each school,
    each lead practitioner, then each destination within its reason. Cases add up from the
    reasons, the schools and the lead practitioners to the total, and from a reason's
    destinations to the reason."""
    held = _Households(children, families(children))
    table = Table(ClosureRow)
    total = table.add(group="total", **_figures(closures, held))

    by_reason: dict[ClosureReason, list[_Closure]] = defaultdict(list)
    by_school: dict[uuid.UUID | None, list[_Closure]] = defaultdict(list)
    by_lead: dict[uuid.UUID | None, list[_Closure]] = defaultdict(list)
    for closure in closures:
        by_reason[closure.reason].append(closure)
        by_school[closure.school_id].append(closure)
        by_lead[closure.lead_id].append(closure)

    reason_rows = {
        reason: table.add(group="reason", reason=reason, **_figures(by_reason[reason], held))
        for reason in ClosureReason
    }
    table.adds_up(total, reason_rows.values(), _NEARLY_ADDITIVE)

    schools = sorted(
        by_school.items(),
        key=lambda item: (*_last(item[1][0].school_name), str(item[0] or "")),
    )
    school_rows = [
        table.add(
            group="school",
            school_id=school_id,
            school_name=cases[0].school_name,
            **_figures(cases, held),
        )
        for school_id, cases in schools
    ]
    table.adds_up(total, school_rows, _NEARLY_ADDITIVE)

    leads = sorted(
        by_lead.items(), key=lambda item: (*_last(item[1][0].lead_name), str(item[0] or ""))
    )
    lead_rows = [
        table.add(
            group="lead_practitioner",
            lead_practitioner_id=lead_id,
            lead_practitioner_name=cases[0].lead_name,
            **_figures(cases, held),
        )
        for lead_id, cases in leads
    ]
    table.adds_up(total, lead_rows, _NEARLY_ADDITIVE)

    for reason in ClosureReason:
        closed = by_reason[reason]
        if not any(c.destination for c in closed):
            continue
        places: dict[str | None, list[_Closure]] = defaultdict(list)
        for closure in closed:
            places[_spelling(closure.destination) if closure.destination else None].append(closure)
        rows = []
        for place in sorted(places, key=_last):
            went = places[place]
            named = Counter(c.destination for c in went if c.destination)
            # The way most of its cases spell it (the first alphabetically on a tie).
            shown = min(named, key=lambda n: (-named[n], n)) if named else None
            rows.append(
                table.add(
                    group="destination",
                    reason=reason,
                    destination=shown,
                    **_figures(went, held),
                )
            )
        table.adds_up(reason_rows[reason], rows, _NEARLY_ADDITIVE)

    for i in range(len(table.rows)):
        for measure in ("mean_days_open", "median_days_open"):
            table.rests(i, measure, "cases")
    return table


async def _closures(session: AsyncSession, conditions: list[ColumnElement[bool]]) -> list[_Closure]:
    query = (
        core_select(
            col(Case.id),
            col(Case.closure_reason),
            col(Case.school_id),
            col(School.name),
            col(Case.lead_practitioner_id),
            col(StaffMember.display_name),
            col(Case.closure_destination),
            col(Case.opened_at),
            col(Case.closed_at),
        )
        .outerjoin(School, col(School.id) == col(Case.school_id))
        .outerjoin(StaffMember, col(StaffMember.id) == col(Case.lead_practitioner_id))
        .where(*conditions)
    )
    found = []
    for row in map(tuple, await run(session, query)):
        case_id, reason, school_id, school, lead_id, lead, destination, opened, closed = row
        found.append(
            _Closure(
                case_id=case_id,
                reason=ClosureReason(reason),
                school_id=school_id,
                school_name=school,
                lead_id=lead_id,
                lead_name=lead,
                destination=destination,
                days_open=(as_day(closed) - as_day(opened)).days,
            )
        )
    return found


async def closures(
    auditor: Auditor,
    start: date | None,
    end: date | None,
    school_id: uuid.UUID | None,
    suppress_below: int | None = None,
) -> Report[Any]:
    """The cases within reach whose latest closure falls in the period, by reason, school,
    lead practitioner and destination: cases, children, families and days open."""
    session, principal = auditor.session, auditor.principal
    span: Period = period(start, end)
    await check_school(session, principal, school_id)
    conditions = closed_cases(principal, span.start, span.end, school_id)
    found = await _closures(session, conditions)
    children = await children_by(session, CaseChild, col(CaseChild.case_id), Case, conditions)
    table = build_table(found, children)
    report = envelope("closures", table, principal, span, school_id, suppress_below)
    await audit(auditor, report, school_id, cases=len(found))
    return report
