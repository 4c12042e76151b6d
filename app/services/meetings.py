"""Planned contacts and meetings: scheduled ahead, then held, rescheduled, or marked as not
having happened (app/models/meeting.py has the states).

The rules of a contact apply when they matter: a formal meeting's agenda when it is planned
(the invitation carries it), its written record when it is held; the parent's consent for a
phone or online contact with a child and a home visit's risk assessment when it takes place
(either may be recorded with the plan). Holding a meeting writes its contact record
(`intervention`), so a held meeting is a contact like any other.

Who is invited or attends is a member of the case's team, a child on the case, an adult in
the family lists of the referrals that led to the case, or anyone else by name and role (a
grandmother who came along, an interpreter): an id or name that is none of these on this
case is a 422.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NoReturn

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.errors import Conflict, NotFound, ProblemItem, ValidationFailed
from app.models.action import ActionSource
from app.models.base import as_utc, shown_as, utcnow
from app.models.case import Case
from app.models.case_team import CaseTeamMember
from app.models.intervention import FORMAL_MEETINGS, HOME_TYPES, Intervention, safety_problem
from app.models.meeting import (
    ChildPerson,
    FamilyPerson,
    Meeting,
    MeetingHeld,
    MeetingNotHappened,
    MeetingRead,
    MeetingReschedule,
    MeetingSchedule,
    MeetingStatus,
    NamedPerson,
    NotHappenedReason,
    PersonKind,
    PersonRef,
    TeamMemberPerson,
    home_visit,
)
from app.models.referral import Referral
from app.services import access, actions, case_dates, case_records
from app.services.school_calendar import SCHOOL_TIME, school_day, school_today

# The note on a meeting still planned when its case closed (`cancel_on_closure`).
CASE_CLOSED = "case closed"

# --- who may be named ---------------------------------------------------------------------


def _plain(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


@dataclass(frozen=True)
class People:
    """Who can be invited to or attend a case's meetings, by what names them."""

    team: dict[uuid.UUID, CaseTeamMember]
    children: frozenset[uuid.UUID]
    family: dict[str, dict[str, Any]]  # plain name -> the family entry


async def _people(session: AsyncSession, case: Case, pupils: Sequence[uuid.UUID]) -> People:
    members = await session.exec(select(CaseTeamMember).where(CaseTeamMember.case_id == case.id))
    family: dict[str, dict[str, Any]] = {}
    lists = await session.exec(
        select(col(Referral.family)).where(Referral.case_id == case.id).order_by(col(Referral.id))
    )
    for entries in lists.all():
        for entry in entries or []:
            family.setdefault(_plain(entry.get("name")), entry)
    return People({m.id: m for m in members.all()}, frozenset(pupils), family)


def _key(person: dict[str, Any]) -> tuple[str, str]:
    """What makes two mentions the same person: an id, or a name (case and spacing ignored)."""
    kind = person["kind"]
    if kind == PersonKind.team_member:
        return kind, str(person["team_member_id"])
    if kind == PersonKind.child:
        return kind, str(person["child_id"])
    return kind, _plain(person["name"])


def _resolve(
    people: People, refs: Sequence[PersonRef], field: str, *, invitation: bool
) -> list[dict[str, Any]]:
    """The people as stored, or a 422 naming each one who is not on this case. Only a team
    member who has not left is invited (one who has left may still be recorded as having
    attended); each person is named once."""
    found: list[dict[str, Any]] = []
    problems: list[ProblemItem] = []
    seen: set[tuple[str, str]] = set()
    for index, ref in enumerate(refs):
        loc: list[str | int] = ["body", field, index]
        person: dict[str, Any] = {"kind": None, "team_member_id": None, "child_id": None}
        if isinstance(ref, TeamMemberPerson):
            member = people.team.get(ref.team_member_id)
            if member is None:
                problems.append(
                    ProblemItem(loc=[*loc, "team_member_id"], detail="not on this case's team")
                )
                continue
            if invitation and member.left_on is not None and member.left_on <= school_today():
                problems.append(
                    ProblemItem(
                        loc=[*loc, "team_member_id"], detail="no longer on this case's team"
                    )
                )
                continue
            person |= {
                "kind": PersonKind.team_member,
                "team_member_id": str(member.id),
                "name": member.name,
                "role": member.role,
            }
        elif isinstance(ref, ChildPerson):
            if ref.child_id not in people.children:
                problems.append(
                    ProblemItem(loc=[*loc, "child_id"], detail="not a child on this case")
                )
                continue
            person |= {"kind": PersonKind.child, "child_id": str(ref.child_id)}
            person |= {"name": None, "role": None}
        elif isinstance(ref, FamilyPerson):
            entry = people.family.get(_plain(ref.family_member))
            if entry is None:
                problems.append(
                    ProblemItem(
                        loc=[*loc, "family_member"],
                        detail="not in the family list of a referral on this case; name them "
                        "with their role instead",
                    )
                )
                continue
            person |= {
                "kind": PersonKind.family_member,
                "name": entry.get("name"),
                "role": entry.get("relationship"),
            }
        else:
            assert isinstance(ref, NamedPerson)
            person |= {"kind": PersonKind.named, "name": ref.name, "role": ref.role}
        key = _key(person)
        if key in seen:
            problems.append(ProblemItem(loc=loc, detail="this person is named twice"))
            continue
        seen.add(key)
        found.append(person)
    if problems:
        raise ValidationFailed("Some people are not on this case.", errors=problems)
    return found


def _label(person: dict[str, Any]) -> str | None:
    """How the contact record's `participants` names an attendee (children are its
    `child_ids`)."""
    if person["kind"] == PersonKind.child:
        return None
    return f"{person['name']} ({person['role']})" if person.get("role") else person["name"]


# --- steps ---------------------------------------------------------------------------------


def _when(moment: datetime) -> str:
    return as_utc(moment).astimezone(SCHOOL_TIME).strftime("%Y-%m-%d %H:%M")


def _what(meeting: Meeting) -> str:
    return str(meeting.type).replace("_", " ").capitalize()


def _problem(
    field: str, detail: str, title: str = "The meeting cannot be recorded so."
) -> NoReturn:
    raise ValidationFailed(title, errors=[ProblemItem(loc=["body", field], detail=detail)])


def _not_before_opening(case: Case, scheduled_at: datetime) -> None:
    day, opened = school_day(scheduled_at), case_dates.opened_on(case)
    if day < opened:
        _problem(
            "scheduled_at",
            f"scheduled_at {day.isoformat()} is before the case opened ({opened.isoformat()})",
        )


async def schedule(auditor: Auditor, case_id: uuid.UUID, new: MeetingSchedule) -> MeetingRead:
    work = await case_records.begin(
        auditor, case_id, child_ids=new.child_ids, field="child_ids", needs_consent=True
    )
    scheduled_at = as_utc(new.scheduled_at)
    _not_before_opening(work.case, scheduled_at)
    people = await _people(work.session, work.case, work.pupils)
    invitees = _resolve(people, new.invitees, "invitees", invitation=True)
    meeting = Meeting(
        case_id=work.case.id,
        type=new.type,
        status=MeetingStatus.scheduled,
        scheduled_at=scheduled_at,
        minutes=new.minutes,
        location=new.location,
        place=new.place,
        agenda=new.agenda,
        child_ids=[str(c) for c in new.child_ids],
        invitees=invitees,
        parent_consent_recorded=new.parent_consent_recorded,
        risk_assessment_done=new.risk_assessment_done,
        created_by=work.by,
    )
    await case_records.add(
        work,
        meeting,
        event="meeting.scheduled",
        summary=f"{_what(meeting)} planned for {_when(scheduled_at)} ({new.location}, "
        f"{len(invitees)} invited)",
        details={"meeting_id": str(meeting.id), "scheduled_at": scheduled_at.isoformat()},
        action="meeting.schedule",
        children=new.child_ids or None,
    )
    return (await present(work.session, [meeting]))[0]


async def planned(work: case_records.CaseWork, meeting_id: uuid.UUID, why: str) -> Meeting:
    """The case's meeting, locked for the step, and still planned: 404 if the case has no
    such meeting, 409 (with `why` the step needs a planned one) if it is no longer planned."""
    query = (
        select(Meeting)
        .where(Meeting.id == meeting_id, Meeting.case_id == work.case.id)
        .with_for_update()
    )
    meeting = (await work.session.exec(query)).first()
    if meeting is None:
        raise NotFound("No such meeting on this case.")
    if meeting.status != MeetingStatus.scheduled:
        status = str(meeting.status).replace("_", " ")
        raise Conflict(f"This meeting is {status}: {why}.")
    return meeting


def _children(meeting: Meeting) -> list[uuid.UUID] | None:
    return [uuid.UUID(c) for c in meeting.child_ids] or None


async def reschedule(
    auditor: Auditor, case_id: uuid.UUID, meeting_id: uuid.UUID, change: MeetingReschedule
) -> MeetingRead:
    work = await case_records.begin(auditor, case_id, needs_consent=True)
    meeting = await planned(work, meeting_id, "only a planned meeting can be rescheduled")
    scheduled_at = as_utc(change.scheduled_at)
    _not_before_opening(work.case, scheduled_at)
    now = utcnow()
    before = as_utc(meeting.scheduled_at)
    meeting.previous_times = [
        *meeting.previous_times,
        {
            "scheduled_at": before.isoformat(),
            "location": str(meeting.location),
            "place": meeting.place,
            "rescheduled_at": now.isoformat(),
            "rescheduled_by": work.by,
            "reason": change.reason,
        },
    ]
    meeting.scheduled_at = scheduled_at
    if change.location is not None:
        meeting.location = change.location
    if change.place is not None:
        meeting.place = change.place
    meeting.updated_at = now
    await case_records.add(
        work,
        meeting,
        event="meeting.rescheduled",
        summary=f"{_what(meeting)} moved from {_when(before)} to {_when(scheduled_at)}",
        details={
            "meeting_id": str(meeting.id),
            "from": before.isoformat(),
            "to": scheduled_at.isoformat(),
        },
        action="meeting.reschedule",
        children=_children(meeting),
    )
    return (await present(work.session, [meeting]))[0]


async def hold(
    auditor: Auditor, case_id: uuid.UUID, meeting_id: uuid.UUID, held: MeetingHeld
) -> MeetingRead:
    work = await case_records.begin(auditor, case_id, needs_consent=True)
    meeting = await planned(work, meeting_id, "only a planned meeting can be held")
    now = utcnow()
    occurred = as_utc(held.occurred_at or min(as_utc(meeting.scheduled_at), now))
    case_dates.check_within(work.case, "occurred_at", school_day(occurred))
    minutes = held.minutes if held.minutes is not None else meeting.minutes
    if minutes is None:
        _problem("minutes", "say how long it took: no length was planned")
    if meeting.type in FORMAL_MEETINGS and not held.record:
        _problem("record", "a formal meeting is held with its written record")
    if meeting.type in HOME_TYPES and held.visit_outcome is None:
        _problem("visit_outcome", "a doorstep or home visit records its outcome")
    if held.visit_outcome is not None and not home_visit(meeting.type, meeting.location):
        _problem("visit_outcome", "only a doorstep or home visit has an outcome")
    people = await _people(work.session, work.case, work.pupils)
    attendees = _resolve(people, held.attendees, "attendees", invitation=False)
    invited = {_key(p) for p in meeting.invitees}
    for person in attendees:
        person["invited"] = _key(person) in invited
    attending_children = [p["child_id"] for p in attendees if p["kind"] == PersonKind.child]
    child_ids = list(dict.fromkeys([*meeting.child_ids, *attending_children]))
    consent = _given(held.parent_consent_recorded, meeting.parent_consent_recorded)
    assessed = _given(held.risk_assessment_done, meeting.risk_assessment_done)
    problem = safety_problem(
        meeting.type,
        meeting.location,
        with_child=bool(child_ids),
        parent_consent_recorded=consent,
        risk_assessment_done=assessed,
    )
    if problem:
        field, _, detail = problem.partition(": ")
        _problem(field, detail)
    if held.child_seen is not None:
        child_seen = held.child_seen
    elif held.visit_outcome is not None:
        child_seen = held.visit_outcome == "seen"
    else:
        child_seen = bool(attending_children)
    contact = Intervention(
        case_id=work.case.id,
        type=meeting.type,
        occurred_at=occurred,
        minutes=minutes,
        location=meeting.location,
        participants=[label for p in attendees if (label := _label(p)) is not None][:50],
        child_ids=child_ids,
        child_seen=child_seen,
        agenda=meeting.agenda,
        record=held.record,
        actions=[a.model_dump(mode="json") for a in held.actions],
        parent_consent_recorded=consent,
        risk_assessment_done=assessed,
        created_by=work.by,
    )
    meeting.status = MeetingStatus.held
    meeting.attendees = attendees
    meeting.visit_outcome = held.visit_outcome
    meeting.parent_consent_recorded = consent
    meeting.risk_assessment_done = assessed
    meeting.intervention_id = contact.id
    meeting.updated_at = now
    outcome = f", {str(held.visit_outcome).replace('_', ' ')}" if held.visit_outcome else ""
    seen = "child seen" if child_seen else "child not seen"
    # The action plan becomes action records sourced from the meeting (not the contact
    # written with it: one source, so no action is recorded twice).
    agreed = actions.rows_for_plan(
        work.case.id, (ActionSource.meeting, meeting.id), held.actions, work.by, now
    )
    await case_records.add(
        work,
        meeting,
        also=[contact, *agreed],
        event="meeting.held",
        summary=f"{_what(meeting)} planned for {_when(meeting.scheduled_at)} held "
        f"({meeting.location}, {minutes} min, {len(attendees)} attended{outcome}, {seen})",
        details={
            "meeting_id": str(meeting.id),
            "intervention_id": str(contact.id),
            "occurred_at": occurred.isoformat(),
        },
        action="meeting.held",
        children=[uuid.UUID(c) for c in child_ids] or None,
    )
    return (await present(work.session, [meeting]))[0]


def _given(now: bool | None, planned: bool) -> bool:
    return planned if now is None else now


async def not_happened(
    auditor: Auditor, case_id: uuid.UUID, meeting_id: uuid.UUID, change: MeetingNotHappened
) -> MeetingRead:
    # Recorded even while consent is withdrawn: that is often why it did not happen.
    work = await case_records.begin(auditor, case_id)
    meeting = await planned(
        work, meeting_id, "only a planned meeting can be marked as not having happened"
    )
    await _did_not_happen(work, meeting, change.reason, change.note)
    return (await present(work.session, [meeting]))[0]


async def _did_not_happen(
    work: case_records.CaseWork,
    meeting: Meeting,
    reason: NotHappenedReason,
    note: str | None,
    because: str = "",
) -> None:
    """The planned meeting did not happen: its state, its chronology entry (`because` ends
    the summary, never a child's details), its audit event."""
    meeting.status = MeetingStatus.did_not_happen
    meeting.not_happened_reason = reason
    meeting.not_happened_note = note
    meeting.updated_at = utcnow()
    details = {"meeting_id": str(meeting.id), "reason": str(reason)}
    await case_records.add(
        work,
        meeting,
        event="meeting.did_not_happen",
        summary=f"{_what(meeting)} planned for {_when(meeting.scheduled_at)} did not happen: "
        f"{str(reason).replace('_', ' ')}{because}",
        details={**details, "note": note} if because else details,
        action="meeting.not_happened",
        children=_children(meeting),
    )


async def cancel_on_closure(auditor: Auditor, case: Case) -> int:
    """When the case's closure takes effect (in its transaction): each meeting still planned
    did not happen, cancelled by the service with the note `case closed`, each with its
    chronology entry and audit event as `did-not-happen` writes them. Reopening the case
    leaves them so. The number cancelled."""
    session = auditor.session
    query = (
        select(Meeting)
        .where(Meeting.case_id == case.id, Meeting.status == MeetingStatus.scheduled)
        .order_by(col(Meeting.scheduled_at), col(Meeting.id))
        .with_for_update()
    )
    planned = list((await session.exec(query)).all())
    if not planned:
        return 0
    work = case_records.CaseWork(auditor, case, await access.pupils_of(session, case.id))
    for meeting in planned:
        await _did_not_happen(
            work,
            meeting,
            NotHappenedReason.cancelled_by_service,
            CASE_CLOSED,
            because=" (case closed)",
        )
    return len(planned)


# --- reads ---------------------------------------------------------------------------------


async def get_all(
    auditor: Auditor,
    case_id: uuid.UUID,
    status: MeetingStatus | None = None,
    from_day: date | None = None,
    to_day: date | None = None,
) -> list[MeetingRead]:
    """The case's meetings by planned time, filtered by status and by the planned day (UTC)
    from and to, both included."""
    where: list[Any] = []
    if status is not None:
        where.append(col(Meeting.status) == status)
    if from_day is not None:
        where.append(col(Meeting.scheduled_at) >= case_dates.start_of(from_day))
    if to_day is not None:
        where.append(col(Meeting.scheduled_at) < case_dates.start_of(to_day + timedelta(days=1)))
    rows = await case_records.records(
        auditor,
        case_id,
        Meeting,
        col(Meeting.scheduled_at),
        col(Meeting.id),
        action="meeting.list",
        where=where,
    )
    return await present(auditor.session, rows)


async def get_one(auditor: Auditor, case_id: uuid.UUID, meeting_id: uuid.UUID) -> MeetingRead:
    rows = await case_records.records(
        auditor,
        case_id,
        Meeting,
        col(Meeting.id),
        action="meeting.read",
        where=[col(Meeting.id) == meeting_id],
    )
    if not rows:
        raise NotFound("No such meeting on this case.")
    return (await present(auditor.session, rows))[0]


async def present(session: AsyncSession, rows: Sequence[Meeting]) -> list[MeetingRead]:
    contacts: dict[uuid.UUID, Intervention] = {}
    ids = [r.intervention_id for r in rows if r.intervention_id is not None]
    if ids:
        found = await session.exec(select(Intervention).where(col(Intervention.id).in_(ids)))
        contacts = {c.id: c for c in found.all()}
    answers = []
    for row in rows:
        contact = contacts.get(row.intervention_id) if row.intervention_id else None
        answers.append(
            shown_as(
                MeetingRead,
                row,
                occurred_at=contact.occurred_at if contact else None,
                record=contact.record if contact else None,
                actions=contact.actions if contact else [],
            )
        )
    return answers
