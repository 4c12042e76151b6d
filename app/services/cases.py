"""Early-help cases: opened (directly, from a flag, or by accepting a referral), run,
closed with a manager's approval, and reopened.

Closures wait for someone holding `cases:approve`; a manager's own request takes effect at
once. Withdrawn consent stops new contact records until consent is given again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, delete
from sqlalchemy import update as sql_update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.errors import Conflict, NotFound, ProblemItem, ValidationFailed
from app.etags import Expected, claim_version
from app.models.attendance import AttendanceFlag
from app.models.base import shown_as, utcnow
from app.models.case import (
    Case,
    CaseChild,
    CaseCreate,
    CaseRead,
    CaseStatus,
    CaseUpdate,
    ChronologyItem,
    ClosureReason,
    ClosureRequest,
)
from app.models.referral import Consent, Referral
from app.pagination import Page
from app.security import Principal, Scope
from app.services import (
    access,
    case_dates,
    chronology,
    meetings,
    referral_terms,
    review_schedule,
    webhook_events,
)
from app.services.children import Child, identity_for, present_child, pupil_ids
from app.services.school_calendar import school_day

RE_REFERRAL_MONTHS = 12
# Closures that hand the family on name where to: the team or school now leading. A step-up
# goes to the LA's own children's social care, so its destination is optional.
NEEDS_DESTINATION = frozenset({ClosureReason.transferred, ClosureReason.stepped_down_to_school})


def la_of(children: Sequence[Child], principal: Principal) -> str:
    for child in children:
        if child.la_code is not None:
            return child.la_code
    if principal.reach.la_code is not None:
        return principal.reach.la_code
    raise ValidationFailed(
        "Name at least one child on a roll within your reach, or call as an account bound "
        "to an LA.",
        errors=[ProblemItem(loc=["body", "children"], detail="no child is on a roll in reach")],
    )


def _school_of(children: Sequence[Child]) -> uuid.UUID | None:
    return next((c.school_id for c in children if c.school_id is not None), None)


def _child_rows(case_id: uuid.UUID, children: Sequence[Child], start: int = 0) -> list[CaseChild]:
    return [
        CaseChild(case_id=case_id, position=start + n, **c.columns())
        for n, c in enumerate(children)
    ]


def as_child(row: Any) -> Child:
    return Child(
        row.pupil_id,
        row.school_id,
        None,
        row.upn,
        row.given_name,
        row.family_name,
        row.date_of_birth,
    )


def _consent(consent: Consent) -> dict[str, Any]:
    return consent.model_dump(mode="json")


async def _link_flag(
    session: AsyncSession, principal: Principal, flag_id: uuid.UUID, case: Case
) -> AttendanceFlag:
    try:
        flag = await access.get_flag(session, principal, flag_id)
    except NotFound:
        raise ValidationFailed(
            "The attendance flag was not found.",
            errors=[
                ProblemItem(loc=["body", "attendance_flag_id"], detail="no such flag in reach")
            ],
        ) from None
    flag.case_id = case.id
    flag.updated_at = utcnow()
    session.add(flag)
    return flag


async def create(auditor: Auditor, new: CaseCreate) -> Case:
    """Open a case directly: for a family already known, or from an attendance flag. A
    manager may give a past `opened_on` to bring an existing caseload in."""
    session, principal = auditor.session, auditor.principal
    now = utcnow()
    opened_at, backdated = case_dates.effective_moment(
        principal, "opened_on", new.opened_on, "open a case", now
    )
    children = await access.resolve_children(session, principal, new.children)
    la_code = la_of(children, principal)
    school_id = _school_of(children)
    await referral_terms.check(session, la_code, new.level_of_need)
    lead = new.lead_practitioner_id or (principal.id if principal.kind == "staff" else None)
    if lead is not None:
        await access.check_lead_practitioner(
            session, lead, la_code, [c.school_id for c in children]
        )
    case = Case(
        la_code=la_code,
        school_id=school_id,
        status=CaseStatus.open,
        level_of_need=new.level_of_need,
        lead_practitioner_id=lead,
        consent=_consent(new.consent),
        consent_given=new.consent.given,
        summary=new.summary,
        review_interval_weeks=new.review_interval_weeks,
        opened_at=opened_at,
        opened_by=principal.subject,
        updated_at=now,
    )
    session.add(case)
    await session.flush()
    session.add_all(_child_rows(case.id, children))
    webhook_events.case_opened(session, case)
    await chronology.record(
        session,
        principal,
        "case.opened",
        "Case opened" + _backdated(opened_at, now, backdated),
        case_id=case.id,
        details={
            "recorded_at": now.isoformat(),
            "backdated": backdated,
            "review_interval_weeks": new.review_interval_weeks,
        },
        occurred_at=opened_at,
    )
    if new.attendance_flag_id is not None:
        flag = await _link_flag(session, principal, new.attendance_flag_id, case)
        await chronology.record(
            session,
            principal,
            "case.opened_from_flag",
            f"Opened from a {flag.kind.replace('_', ' ')} flag",
            case_id=case.id,
            details={"flag_id": str(flag.id)},
        )
    await session.flush()
    await auditor.record(
        "case.create",
        "case",
        case.id,
        pupil_ids=[c.pupil_id for c in children if c.pupil_id],
        la_code=case.la_code,
    )
    return case


async def open_for_referral(
    session: AsyncSession,
    principal: Principal,
    referral: Referral,
    children: Sequence[Child],
    lead: uuid.UUID | None,
) -> Case:
    """Accepting a referral joins the open case of any of its children (adding the others)
    or opens a new one."""
    linked = [c.pupil_id for c in children if c.pupil_id is not None]
    existing = None
    if linked:
        existing = (
            await session.exec(
                select(Case)
                .join(CaseChild, col(CaseChild.case_id) == Case.id)
                .where(
                    Case.la_code == referral.la_code,
                    Case.status == CaseStatus.open,
                    col(CaseChild.pupil_id).in_(linked),
                )
                .order_by(col(Case.opened_at))
                .limit(1)
            )
        ).first()
    if existing is not None:
        held = (await access.case_children(session, [existing.id]))[existing.id]
        known = {as_child(c).identity for c in held}
        newcomers = [c for c in children if c.identity not in known]
        session.add_all(_child_rows(existing.id, newcomers, start=len(held)))
        # In SQL, not from the loaded value: two referrals may join the case at once.
        await session.exec(
            sql_update(Case)
            .where(col(Case.id) == existing.id)
            .values(version=Case.version + 1, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        await session.refresh(existing)
        await chronology.record(
            session,
            principal,
            "case.referral_joined",
            f"Referral accepted into this open case ({len(newcomers)} child(ren) added)",
            case_id=existing.id,
            details={"referral_id": str(referral.id)},
        )
        return existing
    case = Case(
        la_code=referral.la_code,
        school_id=referral.school_id,
        status=CaseStatus.open,
        level_of_need=referral.level_of_need,
        lead_practitioner_id=lead,
        consent=referral.consent,
        consent_given=bool(referral.consent.get("given")),
        summary=None,
        opened_by=principal.subject,
    )
    session.add(case)
    await session.flush()
    session.add_all(_child_rows(case.id, children))
    webhook_events.case_opened(session, case, referral.id)
    await chronology.record(
        session,
        principal,
        "case.opened",
        "Case opened from an accepted referral",
        case_id=case.id,
        details={"referral_id": str(referral.id)},
    )
    return case


def months_before(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class CaseFilters:
    status: CaseStatus | None = None
    lead_practitioner_id: uuid.UUID | None = None
    school_id: uuid.UUID | None = None
    level_of_need: str | None = None
    review_overdue: bool | None = None
    review_weeks: int = 6


async def get_all(
    auditor: Auditor, page: Page, filters: CaseFilters
) -> tuple[list[Case], str | None]:
    principal = auditor.principal
    query = select(Case).where(access.case_in_reach(principal))
    if filters.status is not None:
        query = query.where(Case.status == filters.status)
    if filters.lead_practitioner_id is not None:
        query = query.where(Case.lead_practitioner_id == filters.lead_practitioner_id)
    if filters.school_id is not None:
        query = query.where(Case.school_id == filters.school_id)
    if filters.level_of_need is not None:
        query = query.where(Case.level_of_need == filters.level_of_need)
    if filters.review_overdue is not None:
        overdue = review_schedule.overdue_condition(filters.review_weeks)
        query = query.where(overdue if filters.review_overdue else ~overdue)
    return await access.page_of(
        auditor, query, col(Case.id), page, access.case_children, "case.list"
    )


async def read(auditor: Auditor, case_id: uuid.UUID, review_weeks: int) -> tuple[Case, CaseRead]:
    """A case within reach and its presentation, audited: its children are read once, for
    the audit event and the answer both."""
    session, principal = auditor.session, auditor.principal
    case = await access.get_case(session, principal, case_id)
    held = await access.case_children(session, [case.id])
    await auditor.record(
        "case.read", "case", case.id, pupil_ids=pupil_ids(held[case.id]), la_code=case.la_code
    )
    [shown] = await present(session, principal, [case], review_weeks, held=held)
    return case, shown


async def update(
    auditor: Auditor,
    case_id: uuid.UUID,
    expected: Expected,
    change: CaseUpdate,
) -> Case:
    session, principal = auditor.session, auditor.principal
    case = await access.get_case(session, principal, case_id)
    version = expected.check(case.version)
    if case.status == CaseStatus.closed:
        raise Conflict("This case is closed; reopen it before changing it.")
    fields = change.model_fields_set
    children: list[Child] | None = None
    if change.children is not None:
        children = await access.resolve_children(session, principal, change.children)
    if "level_of_need" in fields and change.level_of_need is not None:
        await referral_terms.check(session, case.la_code, change.level_of_need)
    held = (await access.case_children(session, [case.id]))[case.id]
    if "lead_practitioner_id" in fields and change.lead_practitioner_id is not None:
        schools = [c.school_id for c in (children or [as_child(h) for h in held])]
        await access.check_lead_practitioner(
            session, change.lead_practitioner_id, case.la_code, [case.school_id, *schools]
        )
    await _bump(session, case, version)
    changed: list[str] = []
    details: dict[str, Any] = {}
    if (
        "lead_practitioner_id" in fields
        and change.lead_practitioner_id != case.lead_practitioner_id
    ):
        # Before and after, so the caseload report can tell who led the case on a past day.
        details["lead_practitioner"] = {
            "from": _id_or_none(case.lead_practitioner_id),
            "to": _id_or_none(change.lead_practitioner_id),
        }
        case.lead_practitioner_id = change.lead_practitioner_id
        changed.append("lead practitioner")
    if change.level_of_need is not None and change.level_of_need != case.level_of_need:
        case.level_of_need = change.level_of_need
        changed.append("level of need")
    if (
        "review_interval_weeks" in fields
        and change.review_interval_weeks != case.review_interval_weeks
    ):
        # Before and after (null: the service setting), so the caseload report can tell which
        # interval a case was reviewed on on a past day.
        details["review_interval_weeks"] = {
            "from": case.review_interval_weeks,
            "to": change.review_interval_weeks,
        }
        case.review_interval_weeks = change.review_interval_weeks
        changed.append(f"review interval ({_weeks(details['review_interval_weeks']['to'])})")
    if children is not None:
        await session.exec(delete(CaseChild).where(col(CaseChild.case_id) == case.id))
        session.add_all(_child_rows(case.id, children))
        case.school_id = _school_of(children) or case.school_id
        changed.append("children")
    if change.consent is not None:
        was_given = case.consent_given
        case.consent = _consent(change.consent)
        case.consent_given = change.consent.given
        if was_given != change.consent.given:
            event = "case.consent_given" if change.consent.given else "case.consent_withdrawn"
            summary = "Consent given again" if change.consent.given else "Consent withdrawn"
            await chronology.record(
                session, principal, event, f"{summary} ({change.consent.given_by})", case_id=case.id
            )
        changed.append("consent")
    case.updated_at = utcnow()
    session.add(case)
    await chronology.record(
        session,
        principal,
        "case.updated",
        "Updated: " + (", ".join(changed) or "nothing changed"),
        case_id=case.id,
        details=details or None,
    )
    await session.flush()
    touched = pupil_ids(held) + [c.pupil_id for c in children or [] if c.pupil_id]
    await auditor.record(
        "case.update",
        "case",
        case.id,
        pupil_ids=touched,
        details={"changed": changed},
        la_code=case.la_code,
    )
    return case


def _weeks(value: int | None) -> str:
    return f"every {value} weeks" if value is not None else "the service setting"


def _id_or_none(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


async def chronology_of(auditor: Auditor, case_id: uuid.UUID) -> list[ChronologyItem]:
    session, principal = auditor.session, auditor.principal
    case = await access.get_case(session, principal, case_id)
    items = await chronology.for_case(session, case)
    held = await access.pupils_of(session, case.id)
    await auditor.record("case.chronology", "case", case.id, pupil_ids=held, la_code=case.la_code)
    return items


async def _bump(session: AsyncSession, case: Case, version: int) -> None:
    """Claim the next version (412 if someone else changed the case since `version`)."""
    await claim_version(session, Case, case.id, version)
    case.version = version + 1


def _backdated(effective: datetime, now: datetime, backdated: bool) -> str:
    """What a backdated step's summary says: the day it took effect, and when it was
    recorded."""
    if not backdated:
        return ""
    return (
        f" (backdated to {case_dates.as_day(effective).isoformat()}; "
        f"recorded on {school_day(now).isoformat()})"
    )


def _require_destination(request: ClosureRequest) -> None:
    if request.reason in NEEDS_DESTINATION and request.destination is None:
        raise ValidationFailed(
            "Say where the family went.",
            errors=[
                ProblemItem(
                    loc=["body", "destination"],
                    detail=f"a closure as {request.reason.value} names the team or school now "
                    "leading (destination)",
                )
            ],
        )


def _close(
    case: Case, reason: ClosureReason, note: str, destination: str | None, at: datetime
) -> None:
    case.status = CaseStatus.closed
    case.closed_at = at
    case.closure_reason = reason
    case.closure_note = note
    case.closure_destination = destination
    case.pending_closure = None
    if reason == ClosureReason.consent_withdrawn:
        case.consent_given = False


def _label(reason: ClosureReason, destination: str | None) -> str:
    label = reason.replace("_", " ")
    return f"{label}; destination: {destination}" if destination else label


async def _record_closed(
    auditor: Auditor,
    case: Case,
    closed_at: datetime,
    summary: str,
    details: dict[str, Any],
    now: datetime,
    backdated: bool,
) -> None:
    """The `case.closed` event, at the moment the closure takes effect (and its webhook
    events: `case.closed`, and `case.stepped_up` for a step-up to social care); then each
    meeting still planned did not happen, the service having cancelled it."""
    webhook_events.case_closed(auditor.session, case)
    await chronology.record(
        auditor.session,
        auditor.principal,
        "case.closed",
        summary,
        case_id=case.id,
        details={
            **details,
            "destination": case.closure_destination,
            "closed_on": case_dates.as_day(closed_at).isoformat(),
            "recorded_at": now.isoformat(),
            "backdated": backdated,
        },
        occurred_at=closed_at,
    )
    await meetings.cancel_on_closure(auditor, case)


async def request_closure(
    auditor: Auditor,
    case_id: uuid.UUID,
    expected: Expected,
    request: ClosureRequest,
) -> Case:
    session, principal = auditor.session, auditor.principal
    case = await access.get_case(session, principal, case_id)
    version = expected.check(case.version)
    if case.status == CaseStatus.closed:
        raise Conflict("This case is already closed.")
    if case.pending_closure is not None:
        raise Conflict(
            "A closure of this case already awaits a manager's approval; approve or refuse it "
            "first."
        )
    _require_destination(request)
    now = utcnow()
    closed_at, backdated = case_dates.effective_moment(
        principal, "closed_on", request.closed_on, "close a case", now
    )
    if request.closed_on is not None:
        problem = await case_dates.closing_day_problem(
            session, case, "closed_on", request.closed_on
        )
        if problem is not None:
            raise ValidationFailed(
                "The closing date does not fit the case's dates.",
                errors=[ProblemItem(loc=["body", "closed_on"], detail=problem)],
            )
    await _bump(session, case, version)
    label = _label(request.reason, request.destination)
    if principal.has(Scope.cases_approve):
        _close(case, request.reason, request.note, request.destination, closed_at)
        await _record_closed(
            auditor,
            case,
            closed_at,
            f"Closed ({label}) by a manager{_backdated(closed_at, now, backdated)}: {request.note}",
            {"reason": request.reason.value},
            now,
            backdated,
        )
    else:
        case.pending_closure = {
            "reason": request.reason.value,
            "note": request.note,
            "closed_on": request.closed_on.isoformat() if request.closed_on else None,
            "destination": request.destination,
            "requested_by": principal.subject,
            "requested_at": now.isoformat(),
        }
        await chronology.record(
            session,
            principal,
            "case.closure_requested",
            f"Closure requested ({label}): {request.note}",
            case_id=case.id,
            details={
                "reason": request.reason.value,
                "destination": request.destination,
                "closed_on": request.closed_on.isoformat() if request.closed_on else None,
            },
        )
    case.updated_at = now
    session.add(case)
    await session.flush()
    await auditor.record(
        "case.closure",
        "case",
        case.id,
        pupil_ids=await access.pupils_of(session, case.id),
        la_code=case.la_code,
    )
    return case


async def decide_closure(
    auditor: Auditor,
    case_id: uuid.UUID,
    expected: Expected,
    approve: bool,
    note: str,
) -> Case:
    session, principal = auditor.session, auditor.principal
    case = await access.get_case(session, principal, case_id)
    version = expected.check(case.version)
    pending = case.pending_closure
    if case.status != CaseStatus.open or pending is None:
        raise Conflict("No closure of this case awaits approval.")
    now = utcnow()
    reason = ClosureReason(pending["reason"])
    destination: str | None = pending.get("destination")
    day = date.fromisoformat(pending["closed_on"]) if pending.get("closed_on") else None
    closed_at, backdated = now, False
    if approve and day is not None:
        closed_at, backdated = case_dates.effective_moment(
            principal, "closed_on", day, "close a case", now
        )
        problem = await case_dates.closing_day_problem(session, case, "closed_on", day)
        if problem is not None:
            raise Conflict(
                f"The pending closure no longer fits the case's record: {problem}. Refuse it "
                "and ask again with a later closed_on."
            )
    await _bump(session, case, version)
    label = _label(reason, destination)
    if approve:
        _close(case, reason, pending["note"], destination, closed_at)
        await chronology.record(
            session,
            principal,
            "case.closure_approved",
            f"Closure approved ({label}): {note}",
            case_id=case.id,
            occurred_at=now,  # before the closure it makes, which takes effect `now` at latest
        )
        await _record_closed(
            auditor,
            case,
            closed_at,
            f"Closed ({label}){_backdated(closed_at, now, backdated)}",
            {"reason": reason.value, "requested_by": pending["requested_by"]},
            now,
            backdated,
        )
    else:
        case.pending_closure = None
        await chronology.record(
            session, principal, "case.closure_refused", f"Closure refused: {note}", case_id=case.id
        )
    case.updated_at = now
    session.add(case)
    await session.flush()
    await auditor.record(
        "case.closure_decision",
        "case",
        case.id,
        pupil_ids=await access.pupils_of(session, case.id),
        details={"approved": approve},
        la_code=case.la_code,
    )
    return case


async def reopen(
    auditor: Auditor,
    case_id: uuid.UUID,
    expected: Expected,
    reason: str,
) -> Case:
    session, principal = auditor.session, auditor.principal
    case = await access.get_case(session, principal, case_id)
    version = expected.check(case.version)
    if case.status != CaseStatus.closed:
        raise Conflict("Only a closed case can be reopened; this one is open.")
    if case.deidentified_at is not None:
        raise Conflict(
            "This case was de-identified under the retention schedule and cannot be reopened; "
            "open a new case."
        )
    await _bump(session, case, version)
    was, went = case.closure_reason, case.closure_destination
    case.status = CaseStatus.open
    case.closed_at = None
    case.closure_reason = None
    case.closure_note = None
    case.closure_destination = None
    case.reopened_count += 1
    case.updated_at = utcnow()
    session.add(case)
    await chronology.record(
        session,
        principal,
        "case.reopened",
        f"Reopened: {reason}",
        case_id=case.id,
        details={
            "previous_closure_reason": str(was) if was else None,
            "previous_closure_destination": went,
        },
    )
    await session.flush()
    await auditor.record(
        "case.reopen",
        "case",
        case.id,
        pupil_ids=await access.pupils_of(session, case.id),
        la_code=case.la_code,
    )
    return case


_REFERRALS_OF = (
    select(Referral.id, Referral.case_id)
    .where(col(Referral.case_id).in_(bindparam("ids", expanding=True)))
    .order_by(col(Referral.id))
)


async def present(
    session: AsyncSession,
    principal: Principal,
    cases: Sequence[Case],
    review_weeks: int,
    held: dict[uuid.UUID, list[CaseChild]] | None = None,
) -> list[CaseRead]:
    """The cases as this principal may see them; `held`, their children if already read."""
    ids = [c.id for c in cases]
    if held is None:
        held = await access.case_children(session, ids)
    referrals: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in ids}
    if ids:
        for referral_id, case_id in await session.exec(_REFERRALS_OF, params={"ids": ids}):
            if case_id is not None:
                referrals[case_id].append(referral_id)
    identity = identity_for(principal)
    reviews = await review_schedule.timetables(session, cases, review_weeks)
    return [
        shown_as(
            CaseRead,
            c,
            children=[present_child(h, identity) for h in held[c.id]],
            referral_ids=referrals[c.id],
            opened_on=case_dates.opened_on(c),
            closed_on=case_dates.closed_on(c),
            review_interval_weeks=review_schedule.interval_weeks(c, review_weeks),
            review_interval_is_default=c.review_interval_weeks is None,
            **asdict(reviews[c.id]),
        )
        for c in cases
    ]
