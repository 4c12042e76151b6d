"""Referrals: received from a hub or a school, triaged, and decided with a reason the
referrer always gets to read.

Who sees a referral: a client (a hub, a school's system) only the ones it sent; staff the
ones about a child at a school within their reach, or of their LA.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.errors import Conflict, Forbidden, NotFound, ProblemItem, ValidationFailed
from app.etags import Expected, claim_version
from app.models.base import as_utc, shown_as, utcnow
from app.models.referral import (
    DECISION_STATUS,
    UNDECIDED,
    DecisionKind,
    DecisionRead,
    HistoryItem,
    Referral,
    ReferralChild,
    ReferralCreate,
    ReferralDecide,
    ReferralRead,
    ReferralSource,
    ReferralStatus,
)
from app.pagination import Page
from app.security import Principal, Scope
from app.services import access, cases, chronology, directory, referral_terms, webhook_events
from app.services.children import Identity, identity_for, present_child, pupil_ids

_CLOSED_STATUS_REASONS = {
    ReferralStatus.accepted: "it was accepted",
    ReferralStatus.declined: "it was declined",
    ReferralStatus.stepped_up: "it was stepped up to children's social care",
    ReferralStatus.redirected: "it was redirected",
    ReferralStatus.withdrawn: "the referrer withdrew it",
    ReferralStatus.awaiting_approval: "a step-up awaits a manager's approval",
}


def _source(principal: Principal, new: ReferralCreate) -> ReferralSource:
    if new.attendance_flag_id is not None:
        return ReferralSource.attendance_flag
    if principal.kind == "client" and principal.reach.la_code and not principal.reach.school_ids:
        return ReferralSource.hub
    return ReferralSource.school


async def _by_reference(
    session: AsyncSession, principal: Principal, reference: str
) -> Referral | None:
    query = select(Referral).where(
        Referral.referrer == principal.subject, Referral.external_reference == reference
    )
    return (await session.exec(query)).first()


async def create(auditor: Auditor, new: ReferralCreate) -> tuple[Referral, bool]:
    """The new referral and True, or the referral this referrer already sent with the same
    `external_reference` and False."""
    session, principal = auditor.session, auditor.principal
    if new.external_reference is not None:
        existing = await _by_reference(session, principal, new.external_reference)
        if existing is not None:
            await _audit_read(auditor, existing)
            return existing, False
    children = await access.resolve_children(session, principal, new.children)
    la_code = cases.la_of(children, principal)
    await referral_terms.check(session, la_code, new.level_of_need, new.concerns)
    if new.attendance_flag_id is not None:
        try:
            await access.get_flag(session, principal, new.attendance_flag_id)
        except NotFound:
            raise ValidationFailed(
                "The attendance flag was not found.",
                errors=[
                    ProblemItem(loc=["body", "attendance_flag_id"], detail="no such flag in reach")
                ],
            ) from None
    now = utcnow()
    since = datetime.combine(
        cases.months_before(now.date(), cases.RE_REFERRAL_MONTHS), time(), tzinfo=UTC
    )
    previous = await access.last_closed_within(session, la_code, children, since)
    referral = Referral(
        la_code=la_code,
        school_id=next((c.school_id for c in children if c.school_id), None),
        referrer=principal.subject,
        source=_source(principal, new),
        external_reference=new.external_reference,
        status=ReferralStatus.received,
        level_of_need=new.level_of_need,
        urgency=new.urgency,
        summary=new.summary,
        concerns=list(dict.fromkeys(new.concerns)),
        family=[m.model_dump(mode="json") for m in new.family],
        consent=new.consent.model_dump(mode="json"),
        re_referral=previous is not None,
        previous_case_id=previous,
        attendance_flag_id=new.attendance_flag_id,
        received_at=now,
        updated_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(referral)
            await session.flush()
    except IntegrityError:
        # The same reference arrived from a concurrent retry: answer with that one.
        assert new.external_reference is not None
        session.expunge(referral)
        existing = await _by_reference(session, principal, new.external_reference)
        if existing is None:
            raise
        await _audit_read(auditor, existing)
        return existing, False
    held = [
        ReferralChild(referral_id=referral.id, position=n, supplied=c.supplied, **c.columns())
        for n, c in enumerate(children)
    ]
    session.add_all(held)
    webhook_events.referral_received(session, referral, held)
    summary = f"Referral received from {referral.source!s} ({', '.join(referral.concerns)})"
    if previous is not None:
        summary += "; a re-referral within 12 months of a closed case"
    await chronology.record(
        session,
        principal,
        "referral.received",
        summary,
        referral_id=referral.id,
        details={"to": ReferralStatus.received.value},
    )
    await session.flush()
    await auditor.record(
        "referral.create",
        "referral",
        referral.id,
        pupil_ids=[c.pupil_id for c in children if c.pupil_id],
        la_code=referral.la_code,
    )
    return referral, True


async def _audit_read(auditor: Auditor, referral: Referral) -> None:
    session = auditor.session
    held = (await access.referral_children(session, [referral.id]))[referral.id]
    await auditor.record(
        "referral.read",
        "referral",
        referral.id,
        pupil_ids=pupil_ids(held),
        la_code=referral.la_code,
    )


async def read(auditor: Auditor, referral_id: uuid.UUID) -> Referral:
    session, principal = auditor.session, auditor.principal
    referral = await access.get_referral(session, principal, referral_id)
    await _audit_read(auditor, referral)
    return referral


@dataclass(frozen=True)
class ReferralFilters:
    status: ReferralStatus | None = None
    school_id: uuid.UUID | None = None
    received_from: date | None = None
    received_to: date | None = None


async def get_all(
    auditor: Auditor,
    page: Page,
    filters: ReferralFilters,
) -> tuple[list[Referral], str | None]:
    principal = auditor.principal
    query = select(Referral).where(access.referral_visible_to(principal))
    if filters.status is not None:
        query = query.where(Referral.status == filters.status)
    if filters.school_id is not None:
        query = query.where(Referral.school_id == filters.school_id)
    if filters.received_from is not None:
        start = datetime.combine(filters.received_from, time(), tzinfo=UTC)
        query = query.where(col(Referral.received_at) >= start)
    if filters.received_to is not None:
        end = datetime.combine(filters.received_to + timedelta(days=1), time(), tzinfo=UTC)
        query = query.where(col(Referral.received_at) < end)
    return await access.page_of(
        auditor, query, col(Referral.id), page, access.referral_children, "referral.list"
    )


# --- changes of state --------------------------------------------------------------------


async def _claim(
    session: AsyncSession, principal: Principal, referral_id: uuid.UUID, expected: Expected
) -> tuple[Referral, int]:
    referral = await access.get_referral(session, principal, referral_id)
    version = expected.check(referral.version)
    return referral, version


async def _bump(session: AsyncSession, referral: Referral, version: int) -> datetime:
    await claim_version(session, Referral, referral.id, version)
    referral.version = version + 1
    now = utcnow()
    referral.updated_at = now
    return now


def _refuse(referral: Referral, action: str) -> Conflict:
    why = _CLOSED_STATUS_REASONS.get(referral.status, f"it is {referral.status!s}")
    return Conflict(f"This referral cannot be {action}: {why}.")


async def _audit_change(auditor: Auditor, referral: Referral, action: str, **details: Any) -> None:
    session = auditor.session
    held = (await access.referral_children(session, [referral.id]))[referral.id]
    await auditor.record(
        action,
        "referral",
        referral.id,
        pupil_ids=pupil_ids(held),
        details=details or None,
        la_code=referral.la_code,
    )


async def review(
    auditor: Auditor,
    referral_id: uuid.UUID,
    expected: Expected,
) -> Referral:
    session, principal = auditor.session, auditor.principal
    referral, version = await _claim(session, principal, referral_id, expected)
    if referral.status != ReferralStatus.received:
        raise _refuse(referral, "taken into review")
    await _bump(session, referral, version)
    referral.status = ReferralStatus.under_review
    session.add(referral)
    await chronology.record(
        session,
        principal,
        "referral.under_review",
        "Taken into review",
        referral_id=referral.id,
        details={"from": "received", "to": "under_review"},
    )
    await _audit_change(auditor, referral, "referral.review")
    return referral


async def decide(
    auditor: Auditor,
    referral_id: uuid.UUID,
    expected: Expected,
    decision: ReferralDecide,
) -> Referral:
    session, principal = auditor.session, auditor.principal
    referral, version = await _claim(session, principal, referral_id, expected)
    if referral.status not in UNDECIDED:
        raise _refuse(referral, "decided")
    held = (await access.referral_children(session, [referral.id]))[referral.id]
    await directory.check_services(
        session, decision.signposted_service_ids, "signposted_service_ids"
    )
    lead = decision.lead_practitioner_id
    if lead is not None:
        await access.check_lead_practitioner(
            session, lead, referral.la_code, [referral.school_id, *(c.school_id for c in held)]
        )
    now = await _bump(session, referral, version)
    before = referral.status
    if decision.decision == DecisionKind.step_up and not principal.has(Scope.cases_approve):
        referral.status = ReferralStatus.awaiting_approval
        referral.pending_decision = {
            "decision": decision.decision.value,
            "reason": decision.reason,
            "reason_category": decision.reason_category,
            "requested_by": principal.subject,
            "requested_at": now.isoformat(),
            "signposted_service_ids": [str(s) for s in decision.signposted_service_ids],
        }
        session.add(referral)
        await chronology.record(
            session,
            principal,
            "referral.step_up_requested",
            f"Step-up to children's social care requested: {decision.reason}",
            referral_id=referral.id,
            details={"from": str(before), "to": str(referral.status), "reason": decision.reason},
        )
    else:
        if lead is None and decision.decision == DecisionKind.accept and principal.kind == "staff":
            lead = principal.id
        await _apply(
            session,
            principal,
            referral,
            held,
            decision.decision,
            decision.reason,
            decision.reason_category,
            decided_by=principal.subject,
            lead=lead,
            signposted=[str(s) for s in decision.signposted_service_ids],
            redirected_to=decision.redirected_to,
            now=now,
        )
    await _audit_change(auditor, referral, "referral.decide", decision=decision.decision.value)
    return referral


async def _apply(
    session: AsyncSession,
    principal: Principal,
    referral: Referral,
    held: Sequence[ReferralChild],
    kind: DecisionKind,
    reason: str,
    category: str | None,
    *,
    decided_by: str,
    lead: uuid.UUID | None,
    signposted: list[str],
    redirected_to: str | None,
    now: datetime,
) -> None:
    before = referral.status
    if kind == DecisionKind.accept:
        case = await cases.open_for_referral(
            session, principal, referral, [cases.as_child(c) for c in held], lead
        )
        referral.case_id = case.id
    referral.status = DECISION_STATUS[kind]
    referral.decision = kind
    referral.decision_reason = reason
    referral.decision_category = category
    referral.decided_by = decided_by
    referral.decided_at = now
    referral.decision_seconds = max(0, int((now - as_utc(referral.received_at)).total_seconds()))
    referral.signposted_service_ids = signposted
    referral.redirected_to = redirected_to
    referral.lead_practitioner_id = lead
    referral.pending_decision = None
    session.add(referral)
    webhook_events.referral_decided(session, referral, held)
    label = {
        DecisionKind.accept: "Accepted",
        DecisionKind.decline: "Declined",
        DecisionKind.step_up: "Stepped up to children's social care",
        DecisionKind.redirect: f"Redirected to {redirected_to}",
    }[kind]
    await chronology.record(
        session,
        principal,
        f"referral.{referral.status!s}",
        f"{label}: {reason}",
        referral_id=referral.id,
        details={
            "from": str(before),
            "to": str(referral.status),
            "reason": reason,
            "reason_category": category,
        },
    )


async def approve_step_up(
    auditor: Auditor,
    referral_id: uuid.UUID,
    expected: Expected,
    approve: bool,
    note: str,
) -> Referral:
    session, principal = auditor.session, auditor.principal
    referral, version = await _claim(session, principal, referral_id, expected)
    pending = referral.pending_decision
    if referral.status != ReferralStatus.awaiting_approval or pending is None:
        raise Conflict(f"Nothing on this referral awaits approval: it is {referral.status!s}.")
    now = await _bump(session, referral, version)
    if approve:
        await chronology.record(
            session,
            principal,
            "referral.step_up_approved",
            f"Step-up approved: {note}",
            referral_id=referral.id,
        )
        held = (await access.referral_children(session, [referral.id]))[referral.id]
        await _apply(
            session,
            principal,
            referral,
            held,
            DecisionKind.step_up,
            pending["reason"],
            pending.get("reason_category"),
            decided_by=pending["requested_by"],
            lead=None,
            signposted=list(pending.get("signposted_service_ids", [])),
            redirected_to=None,
            now=now,
        )
    else:
        referral.status = ReferralStatus.under_review
        referral.pending_decision = None
        session.add(referral)
        await chronology.record(
            session,
            principal,
            "referral.step_up_refused",
            f"Step-up refused; back under review: {note}",
            referral_id=referral.id,
            details={"from": "awaiting_approval", "to": "under_review", "reason": note},
        )
    await _audit_change(auditor, referral, "referral.approval", approved=approve)
    return referral


async def withdraw(
    auditor: Auditor,
    referral_id: uuid.UUID,
    expected: Expected,
    reason: str,
) -> Referral:
    session, principal = auditor.session, auditor.principal
    referral, version = await _claim(session, principal, referral_id, expected)
    if referral.referrer != principal.subject:
        raise Forbidden("Only the referrer may withdraw a referral.")
    if referral.status not in UNDECIDED:
        raise _refuse(referral, "withdrawn")
    now = await _bump(session, referral, version)
    before = referral.status
    referral.status = ReferralStatus.withdrawn
    referral.withdrawn_at = now
    referral.withdrawal_reason = reason
    session.add(referral)
    held = (await access.referral_children(session, [referral.id]))[referral.id]
    webhook_events.referral_withdrawn(session, referral, held)
    await chronology.record(
        session,
        principal,
        "referral.withdrawn",
        f"Withdrawn by the referrer: {reason}",
        referral_id=referral.id,
        details={"from": str(before), "to": "withdrawn", "reason": reason},
    )
    await _audit_change(auditor, referral, "referral.withdraw")
    return referral


# --- presentation ------------------------------------------------------------------------


async def present(
    session: AsyncSession,
    principal: Principal,
    referrals: Sequence[Referral],
    *,
    with_history: bool = False,
) -> list[ReferralRead]:
    held = await access.referral_children(session, [r.id for r in referrals])
    named_cases = [c for r in referrals for c in (r.case_id, r.previous_case_id) if c is not None]
    visible_cases = (
        await access.cases_in_reach(session, principal, named_cases)
        if identity_for(principal) is Identity.FULL
        else set()
    )
    out = []
    for r in referrals:
        identity = identity_for(principal, r.referrer)
        children = [present_child(c, identity) for c in held[r.id]]
        # The referral's school is the first child's: shown only where the child's is.
        shown_schools = {c.school_id for c in children}
        decision = None
        if r.decision is not None and r.decided_at is not None:
            decision = DecisionRead(
                decision=r.decision,
                reason=r.decision_reason or "",
                reason_category=r.decision_category,
                decided_by=r.decided_by or "",
                decided_at=r.decided_at,
                decision_seconds=r.decision_seconds or 0,
                signposted_service_ids=r.signposted_service_ids,
                redirected_to=r.redirected_to,
                lead_practitioner_id=r.lead_practitioner_id,
                case_id=r.case_id if r.case_id in visible_cases else None,
            )
        history = None
        if with_history:
            history = [
                HistoryItem(
                    at=e.occurred_at,
                    actor=e.actor,
                    event=e.event.removeprefix("referral."),
                    from_status=e.details.get("from"),
                    to_status=e.details.get("to"),
                    reason=e.details.get("reason"),
                )
                for e in await chronology.referral_history(session, r.id)
            ]
        out.append(
            shown_as(
                ReferralRead,
                r,
                # What the caller may see of who the children are, and of earlier casework.
                children=children,
                school_id=r.school_id if r.school_id in shown_schools else None,
                family=r.family if identity != Identity.NONE else None,
                re_referral=r.re_referral if identity == Identity.FULL else None,
                previous_case_id=r.previous_case_id
                if r.previous_case_id in visible_cases
                else None,
                decision=decision,
                history=history,
            )
        )
    return out
