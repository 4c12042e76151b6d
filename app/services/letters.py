"""A meeting's invitation letter: rendered from the case's LA's template (or the default)
with the meeting's date, time, place, agenda and invitees, the children's and family's
names as the case holds them and the school's name, then kept on the case as two
documents of kind `letter`: the PDF (what is sent) and the HTML it was laid out from.

The meeting comes in as `MeetingFacts`, plain values: the template never sees a database
row, and this module does not depend on how meetings are stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from app.errors import NotFound
from app.models.base import as_utc, utcnow
from app.models.case import CaseChild
from app.models.document import CaseDocument, DocumentKind, LetterKind
from app.models.referral import ChildRead, Referral
from app.models.school import School
from app.services import case_records, documents, letter_templates
from app.services.children import identity_for, present_child
from app.services.document_store import DocumentStore

# Letters are read by families in England, Wales and Scotland: their clocks.
LETTER_TIME_ZONE = ZoneInfo("Europe/London")


@dataclass(frozen=True)
class Invitee:
    name: str
    role: str | None = None


@dataclass(frozen=True)
class MeetingFacts:
    """What an invitation letter says about a scheduled meeting."""

    id: uuid.UUID
    case_id: uuid.UUID
    type: str
    starts_at: datetime
    place: str
    agenda: str
    invitees: list[Invitee] = field(default_factory=list)


async def case_children(work: case_records.CaseWork) -> list[ChildRead]:
    """The case's children as the case holds them and as the writer may see them (the one
    rule, `children.identity_for`): a letter names no child its writer could not."""
    rows = await work.session.exec(
        select(CaseChild).where(CaseChild.case_id == work.case.id).order_by(col(CaseChild.position))
    )
    identity = identity_for(work.auditor.principal)
    return [present_child(row, identity) for row in rows.all()]


def child_name(child: ChildRead) -> str:
    return f"{child.given_name or ''} {child.family_name or ''}".strip()


async def _context(work: case_records.CaseWork, meeting: MeetingFacts) -> dict[str, Any]:
    session, case = work.session, work.case
    children = await case_children(work)
    families = (
        await session.exec(
            select(Referral.family).where(Referral.case_id == case.id).order_by(col(Referral.id))
        )
    ).all()
    seen: set[str] = set()
    family = []
    for members in families:
        for member in members or []:
            name = str(member.get("name") or "").strip()
            if name and name.casefold() not in seen:
                seen.add(name.casefold())
                family.append({"name": name, "relationship": member.get("relationship")})
    school = await session.get(School, case.school_id) if case.school_id else None
    starts = as_utc(meeting.starts_at).astimezone(LETTER_TIME_ZONE)
    agenda_items = [line.strip() for line in meeting.agenda.splitlines() if line.strip()]
    return {
        "today": letter_templates.long_date(utcnow().astimezone(LETTER_TIME_ZONE)),
        "la_code": case.la_code,
        "school": {"name": school.name if school else ""},
        "children": [
            {
                "name": child_name(c),
                "given_name": c.given_name or "",
                "family_name": c.family_name or "",
            }
            for c in children
        ],
        "family": family,
        "meeting": {
            "type": meeting.type,
            "type_label": meeting.type.replace("_", " "),
            "date": letter_templates.long_date(starts),
            "time": f"{starts:%H:%M}",
            "starts_at": starts.isoformat(),
            "place": meeting.place,
            "agenda": meeting.agenda,
            "agenda_items": agenda_items,
            "invitees": [{"name": i.name, "role": i.role} for i in meeting.invitees],
        },
        "sender": {"name": work.auditor.principal.name},
    }


async def write_invitation(
    work: case_records.CaseWork, store: DocumentStore, meeting: MeetingFacts
) -> tuple[CaseDocument, CaseDocument]:
    """The meeting's invitation letter, rendered and kept on its case (`work`, found within
    reach and open for work): the PDF document and the HTML document."""
    if meeting.case_id != work.case.id:
        raise NotFound("No such meeting.")
    body = await letter_templates.body_for(work.session, work.case.la_code, LetterKind.invitation)
    html = letter_templates.render_html(body, await _context(work, meeting))
    pdf = await letter_templates.render_pdf(html)
    day = as_utc(meeting.starts_at).astimezone(LETTER_TIME_ZONE).date()  # the letter's day
    title = f"Invitation letter: {meeting.type.replace('_', ' ')} on {day:%Y-%m-%d}"
    name = f"invitation-{day:%Y-%m-%d}"
    kept: list[CaseDocument] = []
    try:
        for data, media_type, extension in (
            (pdf, "application/pdf", "pdf"),
            (html.encode(), "text/html", "html"),
        ):
            new = documents.NewDocument(
                DocumentKind.letter, title[:200], None, None, data, meeting.id
            )
            kept.append(await documents.keep(work, store, new, media_type, f"{name}.{extension}"))
    except BaseException:
        for document in kept:
            await documents.remove_quietly(store, document.storage_key)
        raise
    return kept[0], kept[1]
