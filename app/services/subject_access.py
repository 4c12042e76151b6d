"""Subject access: everything Liaison holds about one child or one family member, within the
data protection officer's reach, streamed as JSON or as a zip of CSV files.

An export runs in two steps. In the request's own transaction the subject is found within
reach (404 otherwise), the records about them are pinned down by id (their pupil records,
the referrals and cases naming them) and the export is audited; the request commits that.
Then the answer streams from a session of its own, in one read-only snapshot (REPEATABLE
READ on PostgreSQL), reading each record type with a server-side cursor: nothing is held
in memory beyond one buffer of output.

What counts as about the child (docs/data-protection.md says the same to a DPO):
- pupil-level records (roster record and its rectification trail, marks, weekly and
  termly figures, flags and their history, audit events naming the child) of every pupil
  record of the child within reach: the one asked for and any other with the same UPN;
- referrals and cases naming the child, and of those referrals and cases only this child's
  own entry on their list of children (a sibling's entry is the sibling's data);
- family-level records on those cases (a goal, signpost or contact naming no child: the
  work with the family includes this child) and records naming this child; never a record
  specific to another child (a sibling's goal, measure, timetable, signpost, or a contact
  naming only the sibling);
- every review of those cases, with the scores of the goals included;
- the casework events (the chronology) of those referrals and cases.
A child known only by name (never on a roll) is every referral or case entry, within
reach, with no pupil record and the same given name, family name and date of birth (case
ignored); their audit events are those about the referrals and cases naming them.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Executable, and_, func, null, or_, union
from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.db import SessionFactory, is_postgresql, table_of
from app.errors import NotFound
from app.models.attendance import (
    AttendanceCode,
    AttendanceFlag,
    AttendanceFlagEvent,
    AttendanceMark,
    AttendanceWeek,
    SchoolCodeMapping,
)
from app.models.audit import AuditEvent, AuditEventPupil
from app.models.base import utcnow
from app.models.case import Case, CaseChild, CaseworkEvent
from app.models.intervention import Intervention, Timetable
from app.models.measure import Measure
from app.models.plan import Goal, Review, ReviewScore
from app.models.pupil import Pupil, PupilIdentityChange
from app.models.referral import Referral, ReferralChild
from app.models.school import School
from app.models.signpost import Signpost
from app.models.subject_access import (
    CHILD_RECORDS,
    FAMILY_RECORDS,
    ChildSubject,
    FamilyMemberQuery,
    FamilyMemberSubject,
    columns_of,
)
from app.reach import within_reach
from app.security import Principal
from app.services.access import case_in_reach, cases_in_reach, get_referral, referral_visible_to
from app.services.attendance import TermTally
from app.services.audit_events import event_in_reach
from app.services.export_files import Batch, Export, Rows, Section, json_chunks, zip_chunks

log = structlog.get_logger("liaison.subject_access")

# Rows fetched per round trip of a server-side cursor.
YIELD_PER = 1000


# --- who the export is about -------------------------------------------------------------


@dataclass(frozen=True)
class ChildScope:
    """A child and the records about them, pinned down by id in the request's transaction."""

    subject: ChildSubject
    referral_ids: tuple[uuid.UUID, ...]
    case_ids: tuple[uuid.UUID, ...]

    @property
    def pupil_ids(self) -> list[uuid.UUID]:
        return self.subject.pupil_ids

    def names_child(self, model: type[ReferralChild] | type[CaseChild]) -> ColumnElement[bool]:
        """A referral's or case's entry for this child."""
        if self.subject.kind == "pupil":
            return col(model.pupil_id).in_(self.pupil_ids)
        return and_(
            col(model.pupil_id).is_(None),
            func.lower(col(model.given_name)) == self.subject.given_name.lower(),
            func.lower(col(model.family_name)) == self.subject.family_name.lower(),
            col(model.date_of_birth) == self.subject.date_of_birth,
        )


async def _casework_naming(
    session: AsyncSession, principal: Principal, scope: ChildScope
) -> ChildScope:
    """The scope with the referrals and cases within reach that name the child."""
    referrals = select(ReferralChild.referral_id).where(scope.names_child(ReferralChild))
    cases = select(CaseChild.case_id).where(scope.names_child(CaseChild))
    referral_ids = await session.exec(
        select(Referral.id)
        .where(col(Referral.id).in_(referrals), referral_visible_to(principal))
        .order_by(col(Referral.id))
    )
    case_ids = await session.exec(
        select(Case.id)
        .where(col(Case.id).in_(cases), case_in_reach(principal))
        .order_by(col(Case.id))
    )
    return ChildScope(scope.subject, tuple(referral_ids.all()), tuple(case_ids.all()))


async def _audit_child(auditor: Auditor, scope: ChildScope, action: str, **where: Any) -> None:
    await auditor.record(
        action,
        where.pop("resource_type", "pupil"),
        where.pop("resource_id", scope.pupil_ids[0] if scope.pupil_ids else None),
        pupil_ids=scope.pupil_ids,
        details={
            "pupil_records": len(scope.pupil_ids),
            "referral_ids": [str(r) for r in scope.referral_ids],
            "case_ids": [str(c) for c in scope.case_ids],
            **where,
        },
    )


async def for_pupil(auditor: Auditor, pupil_id: uuid.UUID) -> ChildScope:
    """A pupil within reach (404 otherwise), with every other pupil record of the same child
    within reach (the same UPN); the export is audited as `pupil.subject_access`."""
    session, principal = auditor.session, auditor.principal
    in_reach = within_reach(Pupil.school_id, principal)
    pupil = (await session.exec(select(Pupil).where(Pupil.id == pupil_id, in_reach))).first()
    if pupil is None:
        raise NotFound("No such pupil.")
    records = [pupil.id]
    if pupil.upn:
        same = await session.exec(
            select(Pupil.id)
            .where(Pupil.upn == pupil.upn, Pupil.id != pupil.id, in_reach)
            .order_by(col(Pupil.id))
        )
        records.extend(same.all())
    subject = ChildSubject(
        kind="pupil",
        pupil_ids=records,
        given_name=pupil.given_name,
        family_name=pupil.family_name,
        date_of_birth=pupil.date_of_birth,
        upn=pupil.upn,
    )
    scope = await _casework_naming(session, principal, ChildScope(subject, (), ()))
    await _audit_child(auditor, scope, "pupil.subject_access")
    return scope


async def for_referral_child(auditor: Auditor, referral_id: uuid.UUID, position: int) -> ChildScope:
    """The child at `position` on a referral within reach (404 otherwise). A child linked to
    a pupil gets the pupil's export; a child known only by name is exported from every
    referral and case within reach naming them, audited as `referral_child.subject_access`."""
    session, principal = auditor.session, auditor.principal
    referral = await get_referral(session, principal, referral_id)
    child = (
        await session.exec(
            select(ReferralChild).where(
                ReferralChild.referral_id == referral.id, ReferralChild.position == position
            )
        )
    ).first()
    if child is None:
        raise NotFound("No such child on this referral.")
    if child.pupil_id is not None:
        return await for_pupil(auditor, child.pupil_id)
    subject = ChildSubject(
        kind="named_child",
        pupil_ids=[],
        given_name=child.given_name,
        family_name=child.family_name,
        date_of_birth=child.date_of_birth,
        upn=child.upn,
        referral_id=referral.id,
        position=position,
    )
    scope = await _casework_naming(session, principal, ChildScope(subject, (), ()))
    await _audit_child(
        auditor,
        scope,
        "referral_child.subject_access",
        resource_type="referral",
        resource_id=referral.id,
        position=position,
    )
    return scope


# --- a child's records -------------------------------------------------------------------


def _columns(table_model: Any, name: str) -> list[Any]:
    table = table_of(table_model)
    return [table.c[column] for column in columns_of(CHILD_RECORDS.get(name) or table_model)]


def _stream(
    session: AsyncSession,
    statement: Executable,
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> Rows:
    """Rows of `statement` through a server-side cursor, as dicts in batches of at most
    `YIELD_PER`, read afresh per call."""

    async def rows() -> AsyncIterator[Batch]:
        result = await session.stream(statement.execution_options(yield_per=YIELD_PER))
        try:
            names = list(result.keys())
            async for partition in result.partitions():
                batch = [dict(zip(names, row, strict=True)) for row in partition]
                yield batch if keep is None else [row for row in batch if keep(row)]
        finally:
            await result.close()

    return rows


def _section(name: str, rows: Rows, records: dict[str, Any] = CHILD_RECORDS) -> Section:
    model = records[name]
    return Section(name, (model.__doc__ or "").strip(), columns_of(model), rows)


def _table(
    session: AsyncSession,
    name: str,
    table_model: Any,
    *where: Any,
    order_by: Sequence[Any],
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> Section:
    statement = core_select(*_columns(table_model, name)).where(*where).order_by(*order_by)
    return _section(name, _stream(session, statement, keep))


def _terms(session: AsyncSession, pupil_ids: list[uuid.UUID]) -> Rows:
    """Figures by term for each pupil record, tallied from its marks as they stream."""
    marks = (
        core_select(
            col(AttendanceMark.pupil_id),
            col(AttendanceMark.date),
            col(AttendanceMark.category),
            col(AttendanceMark.late),
        )
        .where(col(AttendanceMark.pupil_id).in_(pupil_ids))
        .order_by(col(AttendanceMark.pupil_id))
    )

    async def rows() -> AsyncIterator[Batch]:
        tallies: dict[uuid.UUID, TermTally] = defaultdict(TermTally)
        async for batch in _stream(session, marks)():
            for mark in batch:
                tallies[mark["pupil_id"]].add(mark["date"], mark["category"], mark["late"])
        yield [
            {"pupil_id": pupil_id, **figures.model_dump()}
            for pupil_id, tally in sorted(tallies.items())
            for figures in tally.figures()
        ]

    return rows


def child_export(principal: Principal, scope: ChildScope) -> Callable[[AsyncSession], Export]:
    """The child's export, read through `session` when it streams."""

    def build(session: AsyncSession) -> Export:
        pupils = scope.pupil_ids
        cases, referrals = scope.case_ids, scope.referral_ids
        mark_of = col(AttendanceMark.pupil_id).in_(pupils)
        used_schools = union(
            select(AttendanceMark.school_id).where(mark_of),
            select(Pupil.school_id).where(col(Pupil.id).in_(pupils)),
        ).subquery()
        used_codes = select(AttendanceMark.statutory_code).where(mark_of).distinct()
        jurisdictions = select(School.jurisdiction).where(
            col(School.id).in_(select(used_schools.c.school_id))
        )
        for_child = col(Goal.child_id).is_(None) | col(Goal.child_id).in_(pupils)
        goals = select(Goal.id).where(col(Goal.case_id).in_(cases), for_child)
        reviews = select(Review.id).where(col(Review.case_id).in_(cases))
        named = {str(p) for p in pupils}
        sections = [
            _table(session, "pupils", Pupil, col(Pupil.id).in_(pupils), order_by=[col(Pupil.id)]),
            _table(
                session,
                "identity_changes",
                PupilIdentityChange,
                col(PupilIdentityChange.pupil_id).in_(pupils),
                order_by=[col(PupilIdentityChange.pupil_id), col(PupilIdentityChange.id)],
            ),
            _table(
                session,
                "attendance_marks",
                AttendanceMark,
                mark_of,
                order_by=[
                    col(AttendanceMark.pupil_id),
                    col(AttendanceMark.date),
                    col(AttendanceMark.session),
                ],
            ),
            _table(
                session,
                "attendance_codes",
                AttendanceCode,
                col(AttendanceCode.jurisdiction).in_(jurisdictions),
                col(AttendanceCode.code).in_(used_codes),
                order_by=[
                    col(AttendanceCode.jurisdiction),
                    col(AttendanceCode.code),
                    col(AttendanceCode.effective_from),
                ],
            ),
            _table(
                session,
                "school_attendance_codes",
                SchoolCodeMapping,
                col(SchoolCodeMapping.school_id).in_(select(used_schools.c.school_id)),
                order_by=[col(SchoolCodeMapping.school_id), col(SchoolCodeMapping.display_code)],
            ),
            _table(
                session,
                "attendance_weeks",
                AttendanceWeek,
                col(AttendanceWeek.pupil_id).in_(pupils),
                order_by=[col(AttendanceWeek.pupil_id), col(AttendanceWeek.week_start)],
            ),
            _section("attendance_terms", _terms(session, pupils)),
            _table(
                session,
                "attendance_flags",
                AttendanceFlag,
                col(AttendanceFlag.pupil_id).in_(pupils),
                order_by=[col(AttendanceFlag.id)],
            ),
            _table(
                session,
                "attendance_flag_events",
                AttendanceFlagEvent,
                col(AttendanceFlagEvent.flag_id).in_(
                    select(AttendanceFlag.id).where(col(AttendanceFlag.pupil_id).in_(pupils))
                ),
                order_by=[col(AttendanceFlagEvent.flag_id), col(AttendanceFlagEvent.id)],
            ),
            _table(
                session,
                "referrals",
                Referral,
                col(Referral.id).in_(referrals),
                order_by=[col(Referral.id)],
            ),
            _table(
                session,
                "referral_children",
                ReferralChild,
                col(ReferralChild.referral_id).in_(referrals),
                scope.names_child(ReferralChild),
                order_by=[col(ReferralChild.referral_id), col(ReferralChild.position)],
            ),
            _table(session, "cases", Case, col(Case.id).in_(cases), order_by=[col(Case.id)]),
            _table(
                session,
                "case_children",
                CaseChild,
                col(CaseChild.case_id).in_(cases),
                scope.names_child(CaseChild),
                order_by=[col(CaseChild.case_id), col(CaseChild.position)],
            ),
            _table(
                session,
                "goals",
                Goal,
                col(Goal.case_id).in_(cases),
                for_child,
                order_by=[col(Goal.case_id), col(Goal.id)],
            ),
            _table(
                session,
                "reviews",
                Review,
                col(Review.case_id).in_(cases),
                order_by=[col(Review.case_id), col(Review.held_on), col(Review.id)],
            ),
            _table(
                session,
                "review_scores",
                ReviewScore,
                col(ReviewScore.review_id).in_(reviews),
                col(ReviewScore.goal_id).in_(goals),
                order_by=[col(ReviewScore.review_id), col(ReviewScore.goal_id)],
            ),
            _table(
                session,
                "interventions",
                Intervention,
                col(Intervention.case_id).in_(cases),
                order_by=[col(Intervention.case_id), col(Intervention.occurred_at)],
                # Child ids are a JSON list: a contact with the whole family names none.
                keep=lambda row: not row["child_ids"] or bool(named & set(row["child_ids"])),
            ),
            _table(
                session,
                "measures",
                Measure,
                col(Measure.case_id).in_(cases),
                col(Measure.child_id).in_(pupils),
                order_by=[col(Measure.case_id), col(Measure.measured_on), col(Measure.id)],
            ),
            _table(
                session,
                "timetables",
                Timetable,
                col(Timetable.case_id).in_(cases),
                col(Timetable.child_id).in_(pupils),
                order_by=[col(Timetable.case_id), col(Timetable.child_id)],
            ),
            _table(
                session,
                "signposts",
                Signpost,
                col(Signpost.case_id).in_(cases),
                col(Signpost.child_id).is_(None) | col(Signpost.child_id).in_(pupils),
                order_by=[col(Signpost.case_id), col(Signpost.id)],
            ),
            _section("chronology", _chronology(session, scope)),
            _section("audit_events", _stream(session, _audit_events(principal, scope))),
        ]
        return Export(
            header={"subject": scope.subject.model_dump(mode="json"), "generated_at": utcnow()},
            sections=sections,
            title="Subject access export: everything Liaison holds about one child.",
        )

    return build


# Casework event details that name a record of the case, by its kind.
_RECORD_KEYS = ("goal_id", "signpost_id", "measure_id", "intervention_id")


async def _other_childrens_records(session: AsyncSession, scope: ChildScope) -> set[str]:
    """Ids of the records on the child's cases that are specific to another child."""
    pupils, cases = scope.pupil_ids, scope.case_ids
    found: set[str] = set()
    for model in (Goal, Signpost, Measure):
        rows = await session.exec(
            select(model.id).where(
                col(model.case_id).in_(cases),
                col(model.child_id).is_not(None),
                col(model.child_id).not_in(pupils),
            )
        )
        found.update(str(i) for i in rows.all())
    named = {str(p) for p in pupils}
    contacts = await session.exec(
        select(Intervention.id, Intervention.child_ids).where(col(Intervention.case_id).in_(cases))
    )
    found.update(str(i) for i, children in contacts.all() if children and not named & set(children))
    return found


def _chronology(session: AsyncSession, scope: ChildScope) -> Rows:
    """The casework events of the child's referrals and cases, in time order, but for
    those about a record specific to another child (a sibling's goal added, their
    timetable set): the event would disclose the sibling's record."""
    statement = (
        core_select(*_columns(CaseworkEvent, "chronology"))
        .where(
            or_(
                col(CaseworkEvent.case_id).in_(scope.case_ids),
                col(CaseworkEvent.referral_id).in_(scope.referral_ids),
            )
        )
        .order_by(col(CaseworkEvent.occurred_at), col(CaseworkEvent.id))
    )
    named = {str(p) for p in scope.pupil_ids}

    async def rows() -> AsyncIterator[Batch]:
        others = await _other_childrens_records(session, scope)

        def about_this_child(row: dict[str, Any]) -> bool:
            details = row["details"] or {}
            child = details.get("child_id")
            if child is not None and str(child) not in named:
                return False
            return not any(str(details.get(key)) in others for key in _RECORD_KEYS)

        async for batch in _stream(session, statement, about_this_child)():
            yield batch

    return rows


def _audit_events(principal: Principal, scope: ChildScope) -> Executable:
    """The trail about the child: events naming their pupil records (read within reach as
    the audit trail is), or, for a child known by name, events about the referrals and
    cases naming them."""
    event = table_of(AuditEvent)
    columns = [event.c[c] for c in columns_of(CHILD_RECORDS["audit_events"]) if c != "pupil_id"]
    if scope.subject.kind == "pupil":
        link = table_of(AuditEventPupil)
        return (
            core_select(link.c.pupil_id, *columns)
            .join(link, link.c.event_id == event.c.id)
            .where(
                link.c.pupil_id.in_(scope.pupil_ids),
                within_reach(AuditEventPupil.school_id, principal),
            )
            .order_by(event.c.id, link.c.pupil_id)
        )
    about = or_(
        and_(
            event.c.resource_type == "referral",
            event.c.resource_id.in_([str(r) for r in scope.referral_ids]),
        ),
        and_(
            event.c.resource_type == "case",
            event.c.resource_id.in_([str(c) for c in scope.case_ids]),
        ),
    )
    return (
        core_select(null().label("pupil_id"), *columns)
        .where(about, event_in_reach(principal))
        .order_by(event.c.id)
    )


# --- a family member ---------------------------------------------------------------------


def _plain(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def _digits(text: str | None) -> str:
    return re.sub(r"\D", "", text or "")


def names_person(entry: dict[str, Any], query: FamilyMemberQuery) -> bool:
    """A referral's family entry is the person's: the same name (case and spacing ignored),
    and the same phone (digits compared) and email (case ignored) where they are given."""
    if _plain(entry.get("name")) != _plain(query.name):
        return False
    if query.phone is not None and _digits(entry.get("phone")) != _digits(query.phone):
        return False
    return query.email is None or _plain(entry.get("email")) == _plain(query.email)


def gave_consent(consent: dict[str, Any] | None, name: str) -> bool:
    """A consent was given by the person: `given_by` is their name, alone or followed by a
    note in brackets ("Alex Example (mother)")."""
    given_by = _plain((consent or {}).get("given_by"))
    wanted = _plain(name)
    return given_by == wanted or (given_by.startswith(wanted + " (") and given_by.endswith(")"))


@dataclass(frozen=True)
class FamilyScope:
    query: FamilyMemberQuery
    referral_ids: tuple[uuid.UUID, ...]
    case_ids: tuple[uuid.UUID, ...]


async def for_family_member(auditor: Auditor, query: FamilyMemberQuery) -> FamilyScope:
    """The referrals within reach whose family list names the person, and the cases within
    reach they led to; audited as `family_member.subject_access` with counts and ids (never
    the name)."""
    session, principal = auditor.session, auditor.principal
    candidates = (
        select(col(Referral.id), col(Referral.family), col(Referral.case_id))
        .where(referral_visible_to(principal))
        .order_by(col(Referral.id))
    )
    referral_ids: list[uuid.UUID] = []
    led_to: list[uuid.UUID] = []
    result = await session.stream(candidates.execution_options(yield_per=YIELD_PER))
    async for referral_id, family, case_id in result:
        if any(names_person(entry, query) for entry in family or []):
            referral_ids.append(referral_id)
            if case_id is not None:
                led_to.append(case_id)
    reachable = await cases_in_reach(session, principal, led_to)
    case_ids = tuple(sorted(reachable))
    await auditor.record(
        "family_member.subject_access",
        "family_member",
        details={
            "referrals": len(referral_ids),
            "cases": len(case_ids),
            "referral_ids": [str(r) for r in referral_ids],
            "case_ids": [str(c) for c in case_ids],
            "phone_given": query.phone is not None,
            "email_given": query.email is not None,
        },
    )
    return FamilyScope(query, tuple(referral_ids), case_ids)


FAMILY_ENTRY_KEYS = (
    "name",
    "relationship",
    "phone",
    "email",
    "preferred_contact",
    "language",
    "interpreter_needed",
)


def family_export(scope: FamilyScope) -> Callable[[AsyncSession], Export]:
    query = scope.query

    def build(session: AsyncSession) -> Export:
        referrals = table_of(Referral)
        cases = table_of(Case)

        def whole(name: str, table: Any, ids: Sequence[uuid.UUID]) -> Section:
            columns = [table.c[c] for c in columns_of(FAMILY_RECORDS[name])]
            statement = core_select(*columns).where(table.c.id.in_(ids)).order_by(table.c.id)
            return _section(name, _stream(session, statement), FAMILY_RECORDS)

        lists = core_select(referrals.c.id, referrals.c.family).where(
            referrals.c.id.in_(scope.referral_ids)
        )

        async def entries() -> AsyncIterator[Batch]:
            async for batch in _stream(session, lists.order_by(referrals.c.id))():
                yield [
                    {"referral_id": row["id"], "position": position}
                    | {key: entry.get(key) for key in FAMILY_ENTRY_KEYS}
                    for row in batch
                    for position, entry in enumerate(row["family"] or [])
                    if names_person(entry, query)
                ]

        async def consents() -> AsyncIterator[Batch]:
            # Two short lists (a person's referrals and cases): read one after the other.
            for kind, table, ids in (
                ("referral", referrals, scope.referral_ids),
                ("case", cases, scope.case_ids),
            ):
                statement = (
                    core_select(table.c.id, table.c.consent)
                    .where(table.c.id.in_(ids))
                    .order_by(table.c.id)
                )
                async for batch in _stream(session, statement)():
                    yield [
                        {
                            "record_type": kind,
                            "record_id": row["id"],
                            "given": row["consent"].get("given"),
                            "given_by": row["consent"].get("given_by"),
                            "date": row["consent"].get("date"),
                            "share_with": row["consent"].get("share_with") or [],
                        }
                        for row in batch
                        if row["consent"] and gave_consent(row["consent"], query.name)
                    ]

        subject = FamilyMemberSubject(name=query.name, phone=query.phone, email=query.email)
        return Export(
            header={"subject": subject.model_dump(mode="json"), "generated_at": utcnow()},
            sections=[
                whole("referrals", referrals, scope.referral_ids),
                _section("family_entries", entries, FAMILY_RECORDS),
                _section("consents", consents, FAMILY_RECORDS),
                whole("cases", cases, scope.case_ids),
            ],
            title="Subject access export: what Liaison holds about one family member.",
        )

    return build


# --- streaming ---------------------------------------------------------------------------


async def _snapshot(session: AsyncSession) -> None:
    """Begin the export's one read-only snapshot. SQLite's transaction already reads one
    snapshot (WAL) from its first read to its end."""
    if is_postgresql(session):
        await session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )
    else:
        await session.connection()


async def stream(
    factory: SessionFactory,
    build: Callable[[AsyncSession], Export],
    *,
    as_zip: bool,
) -> AsyncIterator[bytes]:
    """The export's bytes, read in a session of its own (the request's has been committed
    and closed by the time a streamed body is sent). A failure part way can no longer
    change the status: it ends the stream (the client gets truncated JSON or a zip without
    its central directory) and is logged by its type alone, never with a record's values."""
    write = zip_chunks if as_zip else json_chunks
    try:
        async with factory() as session:
            await _snapshot(session)
            async for chunk in write(build(session)):
                yield chunk
    except Exception as exc:
        log.error("subject_access.stream_failed", error=type(exc).__name__)
