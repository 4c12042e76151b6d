"""Subject access for a child: everything Liaison holds about them, within the data
protection officer's reach, streamed as JSON or as a zip of CSV files.

An export runs in two steps. In the request's own transaction the subject is found within
reach (404 otherwise), the records about them are pinned down by id (their pupil records,
the referrals and cases naming them) and the export is audited; the request commits that.
Then the answer streams from a session of its own, in one read-only snapshot (REPEATABLE
READ on PostgreSQL), reading each record type with a server-side cursor: nothing is held
in memory beyond one batch of rows and one buffer of output (app/services/export_files.py).
A family member's export is app/services/subject_access_family.py.

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
- the documents on those cases (what each is, not its bytes: each is fetched from its
  download route, which a DPO's `audit:read` opens);
- the casework events (the chronology) of those referrals and cases.
A child known only by name (never on a roll) is every referral or case entry, within
reach, with no pupil record and the same given name, family name and date of birth (case
ignored); a child on a referral whose pupil record is at a school outside reach (a
cross-border pupil) is every entry within reach linked to that record, and no pupil-level
record is exported. For both, the audit events are those about the referrals and cases
naming them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Executable, and_, null, or_, union
from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.db import table_of
from app.errors import NotFound
from app.models.action import CaseAction, CaseActionStatus
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
from app.models.case_team import CaseTeamMember
from app.models.document import CaseDocument
from app.models.intervention import Intervention, Timetable
from app.models.measure import Measure
from app.models.meeting import Meeting
from app.models.plan import Goal, Review, ReviewScore
from app.models.pupil import Pupil, PupilIdentityChange
from app.models.referral import Referral, ReferralChild
from app.models.school import School
from app.models.signpost import Signpost
from app.models.subject_access import (
    CHILD_RECORDS,
    ChildSubject,
    columns_of,
)
from app.reach import within_reach
from app.security import Principal
from app.services.access import case_in_reach, get_referral, referral_visible_to
from app.services.attendance import TermTally
from app.services.audit_events import event_in_reach
from app.services.children import named_as
from app.services.export_files import Batch, Export, Rows, Section, rows_of, section

# --- who the export is about -------------------------------------------------------------


@dataclass(frozen=True)
class ChildScope:
    """A child and the records about them, pinned down by id in the request's transaction."""

    subject: ChildSubject
    referral_ids: tuple[uuid.UUID, ...]
    case_ids: tuple[uuid.UUID, ...]

    @property
    def pupil_ids(self) -> list[uuid.UUID]:
        """The pupil records whose own records (marks, flags, audit links) are exported."""
        return self.subject.pupil_ids

    @property
    def child_ids(self) -> list[uuid.UUID]:
        """The ids records on referrals and cases name this child by (`child_id`,
        `child_ids`, `pupil_id`): none for a child known only by name."""
        linked = self.subject.linked_pupil_id
        return [*self.pupil_ids, *([linked] if linked is not None else [])]

    def names_child(self, model: type[ReferralChild] | type[CaseChild]) -> ColumnElement[bool]:
        """A referral's or case's entry for this child."""
        if self.subject.kind != "named_child":
            return col(model.pupil_id).in_(self.child_ids)
        subject = self.subject
        return and_(
            col(model.pupil_id).is_(None),
            named_as(model, subject.given_name, subject.family_name, subject.date_of_birth),
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


async def _audit(
    auditor: Auditor,
    scope: ChildScope,
    action: str,
    resource: tuple[str, uuid.UUID | None],
    **details: Any,
) -> None:
    """The export's audit event: the child's pupil records, and the ids (never the content)
    of the referrals and cases it covers."""
    await auditor.record(
        action,
        *resource,
        pupil_ids=scope.pupil_ids,
        details={
            "pupil_records": len(scope.pupil_ids),
            "referral_ids": [str(r) for r in scope.referral_ids],
            "case_ids": [str(c) for c in scope.case_ids],
            **details,
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
    await _audit(auditor, scope, "pupil.subject_access", ("pupil", pupil.id))
    return scope


async def for_referral_child(auditor: Auditor, referral_id: uuid.UUID, position: int) -> ChildScope:
    """The child at `position` on a referral within reach (404 otherwise). A child linked to
    a pupil within reach gets the pupil's export; a child known only by name, or linked to a
    pupil record at a school outside reach, is exported from every referral and case within
    reach naming them, audited as `referral_child.subject_access`."""
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
    linked = child.pupil_id
    if linked is not None:
        on_roll = select(Pupil.id).where(
            Pupil.id == linked, within_reach(Pupil.school_id, principal)
        )
        if (await session.exec(on_roll)).first() is not None:
            return await for_pupil(auditor, linked)
    subject = ChildSubject(
        kind="named_child" if linked is None else "linked_child",
        pupil_ids=[],
        linked_pupil_id=linked,
        given_name=child.given_name,
        family_name=child.family_name,
        date_of_birth=child.date_of_birth,
        upn=child.upn,
        referral_id=referral.id,
        position=position,
    )
    scope = await _casework_naming(session, principal, ChildScope(subject, (), ()))
    await _audit(
        auditor,
        scope,
        "referral_child.subject_access",
        ("referral", referral.id),
        position=position,
    )
    return scope


# --- a child's records -------------------------------------------------------------------


def _columns(table_model: Any, name: str) -> list[Any]:
    table = table_of(table_model)
    return [table.c[column] for column in columns_of(CHILD_RECORDS.get(name) or table_model)]


def _records(name: str, rows: Rows) -> Section:
    return section(name, CHILD_RECORDS[name], rows)


def _table(
    session: AsyncSession,
    name: str,
    table_model: Any,
    *where: Any,
    order_by: Sequence[Any],
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> Section:
    statement = core_select(*_columns(table_model, name)).where(*where).order_by(*order_by)
    return section(name, CHILD_RECORDS[name], rows_of(session, statement, keep))


def _terms(session: AsyncSession, pupil_ids: list[uuid.UUID]) -> Rows:
    """Figures by term for each pupil record, tallied from its marks as they stream."""
    marks = (
        core_select(
            col(AttendanceMark.pupil_id),
            col(AttendanceMark.date),
            col(AttendanceMark.category),
            col(AttendanceMark.late),
            col(School.jurisdiction),
        )
        .join(School, col(School.id) == col(AttendanceMark.school_id))
        .where(col(AttendanceMark.pupil_id).in_(pupil_ids))
        .order_by(col(AttendanceMark.pupil_id))
    )

    async def rows() -> AsyncIterator[Batch]:
        tallies: dict[uuid.UUID, TermTally] = {}
        async for batch in rows_of(session, marks)():
            for mark in batch:
                tally = tallies.get(mark["pupil_id"])
                if tally is None:
                    tally = tallies[mark["pupil_id"]] = TermTally(mark["jurisdiction"])
                tally.add(mark["date"], mark["category"], mark["late"])
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
        children = scope.child_ids
        for_child = col(Goal.child_id).is_(None) | col(Goal.child_id).in_(children)
        goals = select(Goal.id).where(col(Goal.case_id).in_(cases), for_child)
        reviews = select(Review.id).where(col(Review.case_id).in_(cases))
        owned_here = col(CaseAction.owner_child_id).is_(None) | col(CaseAction.owner_child_id).in_(
            children
        )
        actions = select(CaseAction.id).where(col(CaseAction.case_id).in_(cases), owned_here)
        named = {str(c) for c in children}

        def whole_family_or_theirs(row: dict[str, Any]) -> bool:
            # Contacts and meetings name their children in a JSON list: one with the
            # whole family names none.
            return not row["child_ids"] or bool(named & set(row["child_ids"]))

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
            _records("attendance_terms", _terms(session, pupils)),
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
                keep=whole_family_or_theirs,
            ),
            _records(
                "actions",
                _not_others(
                    session,
                    scope,
                    "actions",
                    CaseAction,
                    "id",
                    col(CaseAction.case_id).in_(cases),
                    owned_here,
                    order_by=[col(CaseAction.case_id), col(CaseAction.id)],
                ),
            ),
            _records(
                "action_statuses",
                _not_others(
                    session,
                    scope,
                    "action_statuses",
                    CaseActionStatus,
                    "action_id",
                    col(CaseActionStatus.action_id).in_(actions),
                    order_by=[col(CaseActionStatus.action_id), col(CaseActionStatus.changed_at)],
                ),
            ),
            _table(
                session,
                "meetings",
                Meeting,
                col(Meeting.case_id).in_(cases),
                order_by=[col(Meeting.case_id), col(Meeting.scheduled_at), col(Meeting.id)],
                keep=whole_family_or_theirs,
            ),
            _table(
                session,
                "team_members",
                CaseTeamMember,
                col(CaseTeamMember.case_id).in_(cases),
                order_by=[
                    col(CaseTeamMember.case_id),
                    col(CaseTeamMember.joined_on),
                    col(CaseTeamMember.id),
                ],
            ),
            _table(
                session,
                "measures",
                Measure,
                col(Measure.case_id).in_(cases),
                col(Measure.child_id).in_(children),
                order_by=[col(Measure.case_id), col(Measure.measured_on), col(Measure.id)],
            ),
            _table(
                session,
                "timetables",
                Timetable,
                col(Timetable.case_id).in_(cases),
                col(Timetable.child_id).in_(children),
                order_by=[col(Timetable.case_id), col(Timetable.child_id)],
            ),
            _table(
                session,
                "signposts",
                Signpost,
                col(Signpost.case_id).in_(cases),
                col(Signpost.child_id).is_(None) | col(Signpost.child_id).in_(children),
                order_by=[col(Signpost.case_id), col(Signpost.id)],
            ),
            _table(
                session,
                "documents",
                CaseDocument,
                col(CaseDocument.case_id).in_(cases),
                order_by=[col(CaseDocument.case_id), col(CaseDocument.id)],
            ),
            _records("chronology", _chronology(session, scope)),
            section(
                "audit_events",
                CHILD_RECORDS["audit_events"],
                rows_of(session, _audit_events(principal, scope)),
            ),
        ]
        return Export(
            header={"subject": scope.subject.model_dump(mode="json"), "generated_at": utcnow()},
            sections=sections,
            title="Subject access export: everything Liaison holds about one child.",
        )

    return build


# Casework event details that name a record of the case, by its kind.
_RECORD_KEYS = (
    "goal_id",
    "signpost_id",
    "measure_id",
    "intervention_id",
    "action_id",
    "meeting_id",
)


async def _other_childrens_records(session: AsyncSession, scope: ChildScope) -> set[str]:
    """Ids of the records on the child's cases that are specific to another child."""
    children, cases = scope.child_ids, scope.case_ids
    found: set[str] = set()
    for model in (Goal, Signpost, Measure):
        rows = await session.exec(
            select(model.id).where(
                col(model.case_id).in_(cases),
                col(model.child_id).is_not(None),
                col(model.child_id).not_in(children),
            )
        )
        found.update(str(i) for i in rows.all())
    owned = await session.exec(
        select(CaseAction.id).where(
            col(CaseAction.case_id).in_(cases),
            col(CaseAction.owner_child_id).is_not(None),
            col(CaseAction.owner_child_id).not_in(children),
        )
    )
    found.update(str(i) for i in owned.all())
    named = {str(c) for c in children}
    for contact in (Intervention, Meeting):
        listed = await session.exec(
            select(contact.id, contact.child_ids).where(col(contact.case_id).in_(cases))
        )
        found.update(str(i) for i, ids in listed.all() if ids and not named & set(ids))
    # An action agreed on another child's contact or meeting, or for their goal, is theirs too.
    sourced = await session.exec(
        select(CaseAction.id, CaseAction.source_id).where(
            col(CaseAction.case_id).in_(cases), col(CaseAction.source_id).is_not(None)
        )
    )
    found.update(str(i) for i, source in sourced.all() if str(source) in found)
    return found


def _not_others(
    session: AsyncSession,
    scope: ChildScope,
    name: str,
    table_model: Any,
    key: str,
    *where: Any,
    order_by: Sequence[Any],
) -> Rows:
    """The rows of `table_model` but those about a record specific to another child (by
    the row's `key`: an action, or the action a status belongs to)."""
    statement = core_select(*_columns(table_model, name)).where(*where).order_by(*order_by)

    async def rows() -> AsyncIterator[Batch]:
        others = await _other_childrens_records(session, scope)
        async for batch in rows_of(session, statement, lambda row: str(row[key]) not in others)():
            yield batch

    return rows


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
    named = {str(c) for c in scope.child_ids}

    async def rows() -> AsyncIterator[Batch]:
        others = await _other_childrens_records(session, scope)

        def about_this_child(row: dict[str, Any]) -> bool:
            details = row["details"] or {}
            child = details.get("child_id")
            if child is not None and str(child) not in named:
                return False
            return not any(str(details.get(key)) in others for key in _RECORD_KEYS)

        async for batch in rows_of(session, statement, about_this_child)():
            yield batch

    return rows


def _audit_events(principal: Principal, scope: ChildScope) -> Executable:
    """The trail about the child: events naming their pupil records (read within reach as
    the audit trail is), or, for a child with none within reach, events about the
    referrals and cases naming them."""
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
