"""A planned meeting's invitation letter: the meeting row read as the letter's facts
(`letters.MeetingFacts`), rendered with the LA's template and kept on the case.

`letters` knows nothing of how meetings are stored; this module is the seam between the
two. Only a meeting still planned gets a letter: one that was held or did not happen has
nothing to invite anyone to (409). A rescheduled meeting's new letter has its new time.
"""

from __future__ import annotations

import uuid

from app.audit import Auditor
from app.models.base import as_utc
from app.models.document import CaseDocument
from app.models.meeting import Meeting, PersonKind
from app.services import case_records, documents, letters, meetings
from app.services.document_store import DocumentStore
from app.services.school_calendar import SCHOOL_TIME


async def _facts(work: case_records.CaseWork, meeting: Meeting) -> letters.MeetingFacts:
    """The meeting as its letter tells it: invitees by name and role, a child by their name
    as the writer may see it, the place as planned (or where, when no place was given)."""
    children = {c.pupil_id: c for c in await letters.case_children(work) if c.pupil_id}
    invitees: list[letters.Invitee] = []
    for person in meeting.invitees:
        if person.get("kind") == PersonKind.child:
            child = children.get(uuid.UUID(str(person["child_id"])))
            name = letters.child_name(child) if child is not None else ""
            if name:
                invitees.append(letters.Invitee(name))
            continue
        invitees.append(letters.Invitee(str(person.get("name") or ""), person.get("role")))
    return letters.MeetingFacts(
        id=meeting.id,
        case_id=meeting.case_id,
        type=str(meeting.type),
        starts_at=as_utc(meeting.scheduled_at),
        place=meeting.place or str(meeting.location).replace("_", " "),
        agenda=meeting.agenda or "",
        invitees=invitees,
    )


async def write_invitation(
    auditor: Auditor, store: DocumentStore, case_id: uuid.UUID, meeting_id: uuid.UUID
) -> tuple[CaseDocument, CaseDocument]:
    """The invitation letter of a planned meeting of a case within reach (404), open (409)
    and with consent (409 while withdrawn, as for planning it): its PDF and HTML documents,
    the letter in the chronology and audited naming the case's children. The caller
    commits, and removes the documents' bytes if that fails."""
    work = await case_records.begin(auditor, case_id, needs_consent=True)
    meeting = await meetings.planned(
        work, meeting_id, "an invitation letter is written only for a planned meeting"
    )
    pdf, html = await letters.write_invitation(work, store, await _facts(work, meeting))
    when = as_utc(meeting.scheduled_at).astimezone(SCHOOL_TIME).strftime("%Y-%m-%d %H:%M")
    try:
        await case_records.add(
            work,
            meeting,
            event="meeting.invitation_letter",
            summary=f"Invitation letter written for the "
            f"{str(meeting.type).replace('_', ' ')} planned for {when}",
            details={
                "meeting_id": str(meeting.id),
                "scheduled_at": as_utc(meeting.scheduled_at).isoformat(),
                "document_ids": [str(pdf.id), str(html.id)],
            },
            action="letter.create",
        )
    except BaseException:
        for document in (pdf, html):
            await documents.remove_quietly(store, document.storage_key)
        raise
    return pdf, html
