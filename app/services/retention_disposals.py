"""How each record type of the retention schedule is claimed and disposed of (deleted, or
de-identified so the reports' figures survive): one `Disposal` per record type, in
`DISPOSALS`. The run that drives them, batch by batch, is `app/services/retention.py`.

Every claim is ordered by key, excludes held records (`app/services/legal_holds.py`), and on
PostgreSQL locks what it claims with `FOR [NO KEY] UPDATE SKIP LOCKED`, so that two runs never
claim the same rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as clock_time
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Delete,
    Update,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import run, table_of
from app.models.action import CaseAction, CaseActionStatus
from app.models.attendance import (
    AttendanceFlag,
    AttendanceFlagEvent,
    AttendanceMark,
    AttendanceWeek,
    FlagStatus,
)
from app.models.audit import AuditEvent, AuditEventPupil
from app.models.base import new_id, utcnow
from app.models.case import Case, CaseChild, CaseStatus, CaseworkEvent
from app.models.case_team import CaseTeamMember, TeamMemberKind
from app.models.document import CaseDocument
from app.models.event import OutboxEvent
from app.models.idempotency import IdempotentRequest
from app.models.intervention import Intervention, Timetable
from app.models.measure import Measure
from app.models.meeting import Meeting
from app.models.plan import Goal, Review
from app.models.pupil import Pupil
from app.models.referral import Referral, ReferralChild, ReferralStatus
from app.models.retention import AuditDisposalPermit
from app.models.school import Jurisdiction, School
from app.models.signpost import Signpost
from app.services.legal_holds import held_cases, held_pupils, held_referrals
from app.services.retention_schedule import ALL, Rule

# When the current run began: the audit trail's disposal never reaches the run's own events,
# whatever day the run is told it is.
RUN_STARTED: ContextVar[datetime | None] = ContextVar("retentionRUN_STARTED", default=None)


def _moment(day: date) -> datetime:
    return datetime.combine(day, clock_time(), tzinfo=UTC)


def _schools_of(jurisdiction: str) -> Any:
    return select(col(School.id)).where(col(School.jurisdiction) == jurisdiction)


def _in_jurisdiction(
    school_column: Any, jurisdiction: str, *, la_level: bool
) -> ColumnElement[bool]:
    """Records of a school follow its jurisdiction; LA-level records (no school) England's."""
    if jurisdiction == ALL:
        return true()
    of_schools: ColumnElement[bool] = school_column.in_(_schools_of(jurisdiction))
    if la_level and jurisdiction == Jurisdiction.england:
        return or_(of_schools, school_column.is_(None))
    return of_schools


@dataclass
class Disposed:
    """What one batch did: rows disposed of, the children they were about, what to say."""

    rows: int
    pupil_ids: list[uuid.UUID] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    last_key: Any = None  # the last key claimed: the next batch starts after it
    # Document store keys whose bytes go with the rows (removed before the batch commits).
    storage_keys: list[str] = field(default_factory=list)


class Disposal:
    """How one record type is claimed and disposed of. `keys` are what a batch claims (the
    rows themselves, or the parent rows whose children go)."""

    name: str

    def due(self, rule: Rule, cutoff: date, *, held: bool) -> Any:
        """A count of the rows past their period: kept because held, or not held."""
        raise NotImplementedError

    def claim(self, rule: Rule, cutoff: date, limit: int, after: Any = None) -> Any:
        raise NotImplementedError

    async def dispose(
        self, session: AsyncSession, keys: Sequence[Any], rule: Rule, cutoff: date
    ) -> Disposed:
        raise NotImplementedError


def _locked(query: Any, *, of: Any, key_share: bool = False) -> Any:
    return query.with_for_update(skip_locked=True, of=of, key_share=key_share)


def _after(query: Any, key: Any, after: Any) -> Any:
    """Resume past the last key this run claimed: rows before it are done, or were skipped
    because another run holds them (that run disposes of them, or the next run does)."""
    return query if after is None else query.where(key > after)


async def _count(session: AsyncSession, statement: Delete | Update) -> int:
    return (await run(session, statement)).rowcount or 0


class PupilRows(Disposal):
    """Rows of a child table (marks, weekly figures) before the cutoff, claimed by their
    pupil: `FOR NO KEY UPDATE` on the pupil row, which ingestion's reads do not wait on."""

    def __init__(self, name: str, table: Any, date_column: Any, school_column: Any) -> None:
        self.name = name
        self.table = table
        self.date_column = date_column
        self.school_column = school_column  # the school that decides the jurisdiction

    def _rows(self, rule: Rule, cutoff: date) -> list[ColumnElement[bool]]:
        return [
            self.date_column < cutoff,
            _in_jurisdiction(self.school_column, rule.jurisdiction, la_level=False),
        ]

    def due(self, rule: Rule, cutoff: date, *, held: bool) -> Any:
        held_rows = col(self.table.pupil_id).in_(held_pupils())
        query = select(func.count()).select_from(self.table).where(*self._rows(rule, cutoff))
        if self.school_column is not getattr(self.table, "school_id", None):
            query = query.join(Pupil, col(Pupil.id) == col(self.table.pupil_id))
        return query.where(held_rows if held else ~held_rows)

    def claim(self, rule: Rule, cutoff: date, limit: int, after: Any = None) -> Any:
        rows = (
            select(literal(1))
            .select_from(self.table)
            .where(col(self.table.pupil_id) == col(Pupil.id), *self._rows(rule, cutoff))
        )
        query = (
            select(col(Pupil.id))
            .where(exists(rows), col(Pupil.id).not_in(held_pupils()))
            .order_by(col(Pupil.id))
            .limit(limit)
        )
        return _locked(_after(query, col(Pupil.id), after), of=Pupil, key_share=True)

    async def dispose(
        self, session: AsyncSession, keys: Sequence[Any], rule: Rule, cutoff: date
    ) -> Disposed:
        rows = [col(self.table.pupil_id).in_(keys), self.date_column < cutoff]
        if self.school_column is getattr(self.table, "school_id", None):
            rows.append(_in_jurisdiction(self.school_column, rule.jurisdiction, la_level=False))
        else:
            rows.append(
                col(self.table.pupil_id).in_(
                    select(col(Pupil.id)).where(
                        _in_jurisdiction(Pupil.school_id, rule.jurisdiction, la_level=False)
                    )
                )
            )
        count = await _count(session, delete(self.table).where(*rows))
        return Disposed(count, list(keys), {"pupils": len(keys)})


class Flags(Disposal):
    name = "attendance_flag"

    def _rows(self, rule: Rule, cutoff: date) -> list[ColumnElement[bool]]:
        settled = func.coalesce(
            AttendanceFlag.resolved_at, AttendanceFlag.acknowledged_at, AttendanceFlag.raised_at
        )
        case_gone = col(AttendanceFlag.case_id).in_(
            select(col(Case.id)).where(col(Case.deidentified_at).is_not(None))
        )
        return [
            col(AttendanceFlag.status) != FlagStatus.open,
            settled < _moment(cutoff),
            _in_jurisdiction(AttendanceFlag.school_id, rule.jurisdiction, la_level=False),
            or_(col(AttendanceFlag.case_id).is_(None), case_gone),
        ]

    def due(self, rule: Rule, cutoff: date, *, held: bool) -> Any:
        held_rows = col(AttendanceFlag.pupil_id).in_(held_pupils())
        return (
            select(func.count())
            .select_from(AttendanceFlag)
            .where(*self._rows(rule, cutoff), held_rows if held else ~held_rows)
        )

    def claim(self, rule: Rule, cutoff: date, limit: int, after: Any = None) -> Any:
        query = (
            select(col(AttendanceFlag.id), col(AttendanceFlag.pupil_id))
            .where(*self._rows(rule, cutoff), col(AttendanceFlag.pupil_id).not_in(held_pupils()))
            .order_by(col(AttendanceFlag.id))
            .limit(limit)
        )
        return _locked(_after(query, col(AttendanceFlag.id), after), of=AttendanceFlag)

    async def dispose(
        self, session: AsyncSession, keys: Sequence[Any], rule: Rule, cutoff: date
    ) -> Disposed:
        ids = [k[0] for k in keys]
        events = await _count(
            session, delete(AttendanceFlagEvent).where(col(AttendanceFlagEvent.flag_id).in_(ids))
        )
        await run(
            session,
            update(Referral)
            .where(col(Referral.attendance_flag_id).in_(ids))
            .values(attendance_flag_id=None),
        )
        count = await _count(session, delete(AttendanceFlag).where(col(AttendanceFlag.id).in_(ids)))
        pupils = list(dict.fromkeys(k[1] for k in keys))
        return Disposed(count, pupils, {"ids": [str(i) for i in ids], "flag_events": events})


_CHILD_IDENTITY = {
    "given_name": "",
    "family_name": "",
    "upn": None,
    "date_of_birth": None,
    "pupil_id": None,
}


WITHHELD = "withheld: de-identified under the retention schedule"


async def _withhold_consent_givers(session: AsyncSession, model: Any, ids: Sequence[Any]) -> None:
    """Consent keeps whether it was given, when, and with whom it may be shared (what the
    reports and an inquiry ask); who gave it, a family member's name, goes."""
    table = table_of(model)
    found = await run(session, select(table.c.id, table.c.consent).where(table.c.id.in_(ids)))
    rows: list[Any] = list(found.all())
    changed = [
        {"row_id": row[0], "new_consent": {**row[1], "given_by": WITHHELD}}
        for row in rows
        if isinstance(row[1], dict) and row[1].get("given_by")
    ]
    if changed:
        await run(
            session,
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(consent=bindparam("new_consent", type_=table.c.consent.type)),
            changed,
        )


async def _deidentify_referrals(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """Names, narrative, family, consent and the casework events go; la, school, source,
    status, dates, concerns, level of need, urgency, decision, reasons and the reason's
    category (`decision_category`, counted by the referrals report) stay."""
    events = await _count(
        session, delete(CaseworkEvent).where(col(CaseworkEvent.referral_id).in_(ids))
    )
    await run(
        session,
        update(ReferralChild)
        .where(col(ReferralChild.referral_id).in_(ids))
        .values(**_CHILD_IDENTITY, supplied=None),
    )
    await _withhold_consent_givers(session, Referral, ids)
    count = await _count(
        session,
        update(Referral)
        .where(col(Referral.id).in_(ids), col(Referral.deidentified_at).is_(None))
        .values(
            summary="",
            family=[],
            external_reference=None,
            pending_decision=None,
            deidentified_at=utcnow(),
            version=Referral.version + 1,
        ),
    )
    return {"referrals": count, "referral_events": events}


async def _children_of(
    session: AsyncSession, table: Any, owner: Any, ids: Sequence[Any]
) -> list[uuid.UUID]:
    rows = await run(
        session,
        select(col(table.pupil_id)).where(owner.in_(ids), col(table.pupil_id).is_not(None)),
    )
    return list(dict.fromkeys(rows.scalars().all()))


class Cases(Disposal):
    """Closed cases, de-identified: what the outcome, closure and caseload figures count
    (la, school, status, dates, closure reason, level of need, goals' outcome categories,
    reviews' dates and every score, actions' dates and statuses, the team's staff,
    organisations, roles and dates) stays; names, narratives, consent, contacts and meetings,
    measures, timetables, signposts, actions' text and notes, the team's contact details and
    named agencies, documents (rows and bytes; the audit event keeps their count) and the
    chronology go, with the referrals that led to the case."""

    name = "early_help_case"

    def _rows(self, rule: Rule, cutoff: date) -> list[ColumnElement[bool]]:
        return [
            col(Case.status) == CaseStatus.closed,
            col(Case.deidentified_at).is_(None),
            col(Case.closed_at) < _moment(cutoff),
            _in_jurisdiction(Case.school_id, rule.jurisdiction, la_level=True),
        ]

    def due(self, rule: Rule, cutoff: date, *, held: bool) -> Any:
        held_rows = col(Case.id).in_(held_cases())
        return (
            select(func.count())
            .select_from(Case)
            .where(*self._rows(rule, cutoff), held_rows if held else ~held_rows)
        )

    def claim(self, rule: Rule, cutoff: date, limit: int, after: Any = None) -> Any:
        query = (
            select(col(Case.id))
            .where(*self._rows(rule, cutoff), col(Case.id).not_in(held_cases()))
            .order_by(col(Case.id))
            .limit(limit)
        )
        return _locked(_after(query, col(Case.id), after), of=Case, key_share=True)

    async def dispose(
        self, session: AsyncSession, keys: Sequence[Any], rule: Rule, cutoff: date
    ) -> Disposed:
        ids = list(keys)
        pupils = await _children_of(session, CaseChild, col(CaseChild.case_id), ids)
        gone: dict[str, int] = {}
        found = await run(
            session, select(col(CaseDocument.storage_key)).where(col(CaseDocument.case_id).in_(ids))
        )
        storage_keys = list(found.scalars().all())
        for name, table in (
            ("documents", CaseDocument),
            ("meetings", Meeting),
            ("interventions", Intervention),
            ("measures", Measure),
            ("timetables", Timetable),
            ("signposts", Signpost),
            ("case_events", CaseworkEvent),
        ):
            gone[name] = await _count(session, delete(table).where(col(table.case_id).in_(ids)))
        await run(
            session,
            update(Goal)
            .where(col(Goal.case_id).in_(ids))
            .values(title="", owner=None, child_id=None),
        )
        # The team keeps who was involved (staff, directory organisations, roles, dates);
        # contacts, notes and agencies named in the practitioner's words go.
        await run(
            session,
            update(CaseTeamMember)
            .where(col(CaseTeamMember.case_id).in_(ids))
            .values(contact=None, leaving_note=None),
        )
        await run(
            session,
            update(CaseTeamMember)
            .where(
                col(CaseTeamMember.case_id).in_(ids),
                col(CaseTeamMember.kind) == TeamMemberKind.agency,
                col(CaseTeamMember.organization_id).is_(None),
            )
            .values(name=""),
        )
        await run(
            session,
            update(Review)
            .where(col(Review.case_id).in_(ids))
            .values(worries="", working_well="", next_steps=""),
        )
        # Actions keep their dates, sources, owners' kinds and statuses (what was followed
        # up, and when); their text, the people they name and every note go.
        await run(
            session,
            update(CaseAction)
            .where(col(CaseAction.case_id).in_(ids))
            .values(text="", owner_name=None, owner_role=None, owner_child_id=None),
        )
        await run(
            session,
            update(CaseActionStatus)
            .where(
                col(CaseActionStatus.action_id).in_(
                    select(col(CaseAction.id)).where(col(CaseAction.case_id).in_(ids))
                )
            )
            .values(note=None),
        )
        await run(
            session,
            update(CaseChild).where(col(CaseChild.case_id).in_(ids)).values(**_CHILD_IDENTITY),
        )
        referrals = (
            (await run(session, select(col(Referral.id)).where(col(Referral.case_id).in_(ids))))
            .scalars()
            .all()
        )
        if referrals:
            pupils += await _children_of(
                session, ReferralChild, col(ReferralChild.referral_id), referrals
            )
            gone |= await _deidentify_referrals(session, referrals)
        await _withhold_consent_givers(session, Case, ids)
        count = await _count(
            session,
            update(Case)
            .where(col(Case.id).in_(ids))
            .values(
                summary=None,
                closure_note=None,
                pending_closure=None,
                deidentified_at=utcnow(),
                version=Case.version + 1,
            ),
        )
        details = {"ids": [str(i) for i in ids], **gone}
        return Disposed(count, list(dict.fromkeys(pupils)), details, storage_keys=storage_keys)


class Referrals(Disposal):
    def __init__(self, name: str, statuses: Sequence[ReferralStatus]) -> None:
        self.name = name
        self.statuses = list(statuses)

    def _rows(self, rule: Rule, cutoff: date) -> list[ColumnElement[bool]]:
        return [
            col(Referral.status).in_(self.statuses),
            col(Referral.deidentified_at).is_(None),
            col(Referral.updated_at) < _moment(cutoff),
            _in_jurisdiction(Referral.school_id, rule.jurisdiction, la_level=True),
        ]

    def due(self, rule: Rule, cutoff: date, *, held: bool) -> Any:
        held_rows = col(Referral.id).in_(held_referrals())
        return (
            select(func.count())
            .select_from(Referral)
            .where(*self._rows(rule, cutoff), held_rows if held else ~held_rows)
        )

    def claim(self, rule: Rule, cutoff: date, limit: int, after: Any = None) -> Any:
        query = (
            select(col(Referral.id))
            .where(*self._rows(rule, cutoff), col(Referral.id).not_in(held_referrals()))
            .order_by(col(Referral.id))
            .limit(limit)
        )
        return _locked(_after(query, col(Referral.id), after), of=Referral, key_share=True)

    async def dispose(
        self, session: AsyncSession, keys: Sequence[Any], rule: Rule, cutoff: date
    ) -> Disposed:
        ids = list(keys)
        pupils = await _children_of(session, ReferralChild, col(ReferralChild.referral_id), ids)
        gone = await _deidentify_referrals(session, ids)
        return Disposed(gone.pop("referrals"), pupils, {"ids": [str(i) for i in ids], **gone})


class Pupils(Disposal):
    """Pupil records off roll past date of birth + the period, with everything attached to
    them (marks by trigger, weekly figures, flags, measures, identity changes by cascade).
    Never while a case or referral not yet de-identified names the child."""

    name = "pupil"

    def _rows(self, rule: Rule, cutoff: date) -> list[ColumnElement[bool]]:
        on_case = (
            select(literal(1))
            .select_from(CaseChild)
            .join(Case, col(Case.id) == col(CaseChild.case_id))
            .where(col(CaseChild.pupil_id) == col(Pupil.id), col(Case.deidentified_at).is_(None))
        )
        on_referral = (
            select(literal(1))
            .select_from(ReferralChild)
            .join(Referral, col(Referral.id) == col(ReferralChild.referral_id))
            .where(
                col(ReferralChild.pupil_id) == col(Pupil.id),
                col(Referral.deidentified_at).is_(None),
            )
        )
        return [
            col(Pupil.on_roll).is_(False),
            col(Pupil.date_of_birth) < cutoff,
            _in_jurisdiction(Pupil.school_id, rule.jurisdiction, la_level=False),
            ~exists(on_case),
            ~exists(on_referral),
        ]

    def due(self, rule: Rule, cutoff: date, *, held: bool) -> Any:
        held_rows = col(Pupil.id).in_(held_pupils())
        return (
            select(func.count())
            .select_from(Pupil)
            .where(*self._rows(rule, cutoff), held_rows if held else ~held_rows)
        )

    def claim(self, rule: Rule, cutoff: date, limit: int, after: Any = None) -> Any:
        query = (
            select(col(Pupil.id))
            .where(*self._rows(rule, cutoff), col(Pupil.id).not_in(held_pupils()))
            .order_by(col(Pupil.id))
            .limit(limit)
        )
        return _locked(_after(query, col(Pupil.id), after), of=Pupil)

    async def dispose(
        self, session: AsyncSession, keys: Sequence[Any], rule: Rule, cutoff: date
    ) -> Disposed:
        ids = list(keys)
        count = await _count(session, delete(Pupil).where(col(Pupil.id).in_(ids)))
        return Disposed(count, ids, {"ids": [str(i) for i in ids]})

    # The pupils go in this batch: the audit event is written first, while their schools
    # can still be read (they decide who may read the event).
    audit_first = True


def _audit_before(cutoff: date) -> datetime:
    before = _moment(cutoff)
    started = RUN_STARTED.get()
    return before if started is None else min(before, started)


class AuditEvents(Disposal):
    """The audit trail's own disposal, under a permit that covers only events older than
    the cutoff and exists only inside this transaction."""

    name = "audit_event"

    def _rows(self, cutoff: date) -> list[ColumnElement[bool]]:
        held_link = (
            select(literal(1))
            .select_from(AuditEventPupil)
            .where(
                col(AuditEventPupil.event_id) == col(AuditEvent.id),
                col(AuditEventPupil.pupil_id).in_(held_pupils()),
            )
        )
        return [col(AuditEvent.occurred_at) < _audit_before(cutoff), ~exists(held_link)]

    def due(self, rule: Rule, cutoff: date, *, held: bool) -> Any:
        rows = self._rows(cutoff)
        if held:
            rows = [rows[0], ~rows[1]]
        return select(func.count()).select_from(AuditEvent).where(*rows)

    def claim(self, rule: Rule, cutoff: date, limit: int, after: Any = None) -> Any:
        query = (
            select(col(AuditEvent.id))
            .where(*self._rows(cutoff))
            .order_by(col(AuditEvent.id))
            .limit(limit)
        )
        return _locked(_after(query, col(AuditEvent.id), after), of=AuditEvent)

    async def dispose(
        self, session: AsyncSession, keys: Sequence[Any], rule: Rule, cutoff: date
    ) -> Disposed:
        ids = list(keys)
        permit = new_id()
        await run(
            session,
            insert(AuditDisposalPermit).values(id=permit, disposes_before=_audit_before(cutoff)),
        )
        links = await _count(
            session, delete(AuditEventPupil).where(col(AuditEventPupil.event_id).in_(ids))
        )
        count = await _count(session, delete(AuditEvent).where(col(AuditEvent.id).in_(ids)))
        await run(session, delete(AuditDisposalPermit).where(col(AuditDisposalPermit.id) == permit))
        return Disposed(count, [], {"id_range": [str(min(ids)), str(max(ids))], "links": links})


class Expired(Disposal):
    """Operational rows keyed by their own columns: outbox events, idempotency records."""

    def __init__(self, name: str, table: Any, time_column: Any, keys: Sequence[Any]) -> None:
        self.name = name
        self.table = table
        self.time_column = time_column
        self.keys = list(keys)

    def _rows(self, cutoff: date) -> list[ColumnElement[bool]]:
        return [self.time_column.is_not(None), self.time_column < _moment(cutoff)]

    def due(self, rule: Rule, cutoff: date, *, held: bool) -> Any:
        if held:
            return select(literal(0))
        return select(func.count()).select_from(self.table).where(*self._rows(cutoff))

    def claim(self, rule: Rule, cutoff: date, limit: int, after: Any = None) -> Any:
        # No resume cursor over composite keys: what was disposed no longer matches anyway.
        query = select(*self.keys).where(*self._rows(cutoff)).order_by(*self.keys).limit(limit)
        return _locked(query, of=self.table)

    async def dispose(
        self, session: AsyncSession, keys: Sequence[Any], rule: Rule, cutoff: date
    ) -> Disposed:
        if len(self.keys) == 1:
            match: ColumnElement[bool] = self.keys[0].in_([k[0] for k in keys])
        else:
            match = or_(*(and_(*(c == v for c, v in zip(self.keys, k, strict=True))) for k in keys))
        count = await _count(session, delete(self.table).where(match, *self._rows(cutoff)))
        return Disposed(count, [], {})


DISPOSALS: dict[str, Disposal] = {
    d.name: d
    for d in (
        PupilRows(
            "attendance_mark", AttendanceMark, col(AttendanceMark.date), AttendanceMark.school_id
        ),
        PupilRows(
            "attendance_week", AttendanceWeek, col(AttendanceWeek.week_start), Pupil.school_id
        ),
        Flags(),
        Cases(),
        Referrals(
            "referral_not_taken_up",
            (ReferralStatus.declined, ReferralStatus.withdrawn, ReferralStatus.redirected),
        ),
        Referrals("referral_stepped_up", (ReferralStatus.stepped_up,)),
        Pupils(),
        AuditEvents(),
        Expired("outbox_event", OutboxEvent, col(OutboxEvent.published_at), [col(OutboxEvent.id)]),
        Expired(
            "idempotent_request",
            IdempotentRequest,
            col(IdempotentRequest.expires_at),
            [col(IdempotentRequest.owner), col(IdempotentRequest.key)],
        ),
    )
}
