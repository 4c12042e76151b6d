"""The sustained-outcomes report: of the cases closed as done (needs met, or stepped down to
school), how many stayed done for six months (issue 13, item 7a).

A case's six months run from its closure to the end of the day six months after the day it
closed. What follows is looked for among the records of the case's own LA (its referrals,
its cases, the flags of its schools), as re-referral matching does: another LA's casework
is that LA's business. And only among those within the caller's reach: a school-bound
manager's figures never rest on a referral, case or flag it could not read.
A child is recognised as re-referral matching recognises one: the
same pupil, or a later record's child known only by name with the same names (case ignored)
and date of birth.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_
from sqlalchemy import select as core_select
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.db import run
from app.models.attendance import AttendanceFlag, FlagKind
from app.models.base import as_utc
from app.models.case import Case, CaseChild, ClosureReason
from app.models.referral import Referral, ReferralChild, ReferralStatus
from app.models.report import Report
from app.models.report_closures import SustainedRow
from app.models.school import School
from app.reach import within_reach
from app.security import Principal
from app.services import access, cases
from app.services.case_dates import as_day, start_of
from app.services.children import name_key
from app.services.report_closures import closed_cases
from app.services.report_tables import Table, audit, check_school, envelope, period, share
from app.services.school_calendar import school_today

MONTHS_AFTER = 6
# Closures that say the family no longer needs early help from the LA's team.
DONE = (ClosureReason.needs_met, ClosureReason.stepped_down_to_school)
# A persistent-absence flag, or its severe form (50%+ missed is also 10%+ missed).
PERSISTENT = (FlagKind.persistent_absence, FlagKind.severe_absence)
PER_CASE = ["cases_closed", "sustained", "re_referred", "new_flag", "stepped_up"]


def months_after(day: date, months: int) -> date:
    """The same day `months` later (the month's last day where it has no such day)."""
    return cases.months_before(day, -months)


def window_end(closed: date) -> datetime:
    """The end (exclusive) of the six months after a closure on `closed`."""
    return start_of(months_after(closed, MONTHS_AFTER) + timedelta(days=1))


@dataclass
class _Followed:
    """What followed one case's closure, as the earliest moment of each kind of event."""

    reason: ClosureReason
    closed_at: datetime
    re_referred: list[datetime] = field(default_factory=list)
    new_flag: list[datetime] = field(default_factory=list)
    stepped_up: list[datetime] = field(default_factory=list)

    def within(self, moments: list[datetime]) -> bool:
        end = window_end(as_day(self.closed_at))
        return any(as_utc(m) < end for m in moments)


def _names_the_child(later: Any, by_pupil: bool) -> ColumnElement[bool]:
    """A later referral's or case's child entry (`later`) naming the case's child
    (`CaseChild`): the same pupil (`by_pupil`), or, known only by name, the same names and
    birth date (`name_key`)."""
    if by_pupil:
        return col(later.pupil_id) == col(CaseChild.pupil_id)
    return and_(
        col(later.pupil_id).is_(None),
        *(a == b for a, b in zip(name_key(later), name_key(CaseChild), strict=True)),
    )


async def _by_pupil_and_by_name(session: AsyncSession, make: Any) -> list[Any]:
    """The rows of `make(by_pupil)`, run with children linked by pupil and again by name:
    two joins the database can each do by index or hash, where one join on either would
    compare every pair."""
    found = []
    for by_pupil in (True, False):
        found.extend((await session.exec(make(by_pupil))).all())
    return found


async def followed(
    session: AsyncSession,
    principal: Principal,
    conditions: list[ColumnElement[bool]],
    until: datetime,
) -> dict[uuid.UUID, _Followed]:
    """Each eligible case, with the referrals, flags and step-ups about its children from its
    closure until `until` (the last six months' end)."""
    eligible = (
        select(
            col(Case.id).label("case_id"),
            col(Case.la_code).label("la_code"),
            col(Case.closed_at).label("closed_at"),
        )
        .where(*conditions)
        .subquery("eligible")
    )
    closed = core_select(col(Case.id), col(Case.closure_reason), col(Case.closed_at))
    found = {
        case_id: _Followed(ClosureReason(reason), closed_at)
        for case_id, reason, closed_at in map(tuple, await run(session, closed.where(*conditions)))
    }
    if not found:
        return found
    after = eligible.c.closed_at

    def referrals(by_pupil: bool) -> Any:
        link = _names_the_child(ReferralChild, by_pupil)
        received = col(Referral.received_at)
        decided = col(Referral.decided_at)
        stepped = and_(
            col(Referral.status) == ReferralStatus.stepped_up, decided >= after, decided < until
        )
        in_window = and_(received >= after, received < until)
        return (
            select(
                eligible.c.case_id,
                func.min(case((in_window, received))),
                func.min(case((stepped, decided))),
            )
            .select_from(eligible)
            .join(CaseChild, col(CaseChild.case_id) == eligible.c.case_id)
            .join(ReferralChild, link)
            .join(Referral, col(Referral.id) == col(ReferralChild.referral_id))
            .where(
                col(Referral.la_code) == eligible.c.la_code,
                access.referral_visible_to(principal),
                or_(in_window, stepped),
            )
            .group_by(eligible.c.case_id)
        )

    later_case = aliased(Case, name="later_case")
    cases_in_reach = select(col(Case.id)).where(access.case_in_reach(principal))
    later_child = aliased(CaseChild, name="later_child")

    def step_ups(by_pupil: bool) -> Any:
        closed = col(later_case.closed_at)
        return (
            select(eligible.c.case_id, func.min(closed))
            .select_from(eligible)
            .join(CaseChild, col(CaseChild.case_id) == eligible.c.case_id)
            .join(later_child, _names_the_child(later_child, by_pupil))
            .join(later_case, col(later_case.id) == col(later_child.case_id))
            .where(
                col(later_case.id) != eligible.c.case_id,
                col(later_case.la_code) == eligible.c.la_code,
                col(later_case.id).in_(cases_in_reach.scalar_subquery()),
                col(later_case.closure_reason) == ClosureReason.stepped_up_to_social_care,
                closed >= after,
                closed < until,
            )
            .group_by(eligible.c.case_id)
        )

    raised = col(AttendanceFlag.raised_at)
    flags = (
        select(eligible.c.case_id, func.min(raised))
        .select_from(eligible)
        .join(CaseChild, col(CaseChild.case_id) == eligible.c.case_id)
        .join(AttendanceFlag, col(AttendanceFlag.pupil_id) == col(CaseChild.pupil_id))
        .join(School, col(School.id) == col(AttendanceFlag.school_id))
        .where(
            col(School.la_code) == eligible.c.la_code,
            within_reach(col(AttendanceFlag.school_id), principal),
            col(AttendanceFlag.kind).in_([k.value for k in PERSISTENT]),
            raised >= after,
            raised < until,
        )
        .group_by(eligible.c.case_id)
    )

    for case_id, referred, stepped in await _by_pupil_and_by_name(session, referrals):
        if referred is not None:
            found[case_id].re_referred.append(referred)
        if stepped is not None:
            found[case_id].stepped_up.append(stepped)
    for case_id, stepped in await _by_pupil_and_by_name(session, step_ups):
        found[case_id].stepped_up.append(stepped)
    for case_id, flagged in await session.exec(flags):
        found[case_id].new_flag.append(flagged)
    return found


def _row(cases_: Sequence[_Followed], reason: ClosureReason | None) -> dict[str, Any]:
    referred = sum(c.within(c.re_referred) for c in cases_)
    flagged = sum(c.within(c.new_flag) for c in cases_)
    stepped = sum(c.within(c.stepped_up) for c in cases_)
    sustained = sum(
        not (c.within(c.re_referred) or c.within(c.new_flag) or c.within(c.stepped_up))
        for c in cases_
    )
    return {
        "reason": reason,
        "cases_closed": len(cases_),
        "sustained": sustained,
        "re_referred": referred,
        "new_flag": flagged,
        "stepped_up": stepped,
        "sustained_rate": share(sustained, len(cases_)),
    }


async def sustained_outcomes(
    auditor: Auditor,
    start: date | None,
    end: date | None,
    school_id: uuid.UUID | None,
    suppress_below: int | None = None,
) -> Report[Any]:
    """The cases within reach closed as needs met or stepped down to school from `from` to
    six months before `to` (or before today, if `to` is later), and how many of them had no
    re-referral, no new persistent-absence flag and no step-up in the six months after."""
    session, principal = auditor.session, auditor.principal
    span = period(start, end)
    await check_school(session, principal, school_id)
    last_closing = cases.months_before(min(span.end, school_today()), MONTHS_AFTER)
    conditions = [
        *closed_cases(principal, span.start, last_closing, school_id),
        col(Case.closure_reason).in_([r.value for r in DONE]),
    ]
    found = await followed(session, principal, conditions, window_end(last_closing))
    table = Table(SustainedRow)
    everything = list(found.values())
    table.add(**_row(everything, None))
    for reason in DONE:
        table.add(**_row([c for c in everything if c.reason == reason], reason))
    table.adds_up(0, range(1, len(table.rows)), PER_CASE)
    for i in range(len(table.rows)):
        table.rests(i, "sustained_rate", "sustained", "cases_closed")
    report = envelope("sustained-outcomes", table, principal, span, school_id, suppress_below)
    await audit(auditor, report, school_id, cases=len(everything))
    return report
