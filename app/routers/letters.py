"""Letters: an LA's own wording of its letters (admins), and a meeting's invitation letter
rendered from it and kept on the case as documents."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from app.deps import Admin, AuditorDep, CaseWriter, DocumentStoreDep, SessionDep
from app.errors import problem_responses
from app.models.document import (
    LetterDocuments,
    LetterKind,
    LetterTemplateRead,
    LetterTemplateWrite,
)
from app.services import documents, letter_templates, meeting_letters

router = APIRouter(tags=["letters"], responses=problem_responses(401, 403, 500, 503))

TEMPLATE = "/v1/letter-templates/invitation"


@router.get(TEMPLATE, response_model=LetterTemplateRead, responses=problem_responses(422))
async def read_invitation_template(session: SessionDep, admin: Admin) -> LetterTemplateRead:
    """The admin's LA's invitation letter template, or Liaison's default while it has none
    (`builtin: true`). An admin not bound to an LA gets 403."""
    return await letter_templates.get(session, admin, LetterKind.invitation)


@router.put(TEMPLATE, response_model=LetterTemplateRead, responses=problem_responses(422))
async def set_invitation_template(
    body: LetterTemplateWrite, session: SessionDep, admin: Admin
) -> LetterTemplateRead:
    """Set the LA's invitation letter template: Jinja2 producing HTML, rendered in a sandbox
    with autoescaping. It must parse and render against a sample letter's values (a syntax
    error, an unknown field or a reach outside its values is a 422 saying where). Its
    values are listed in docs/casework.md, "Letters"."""
    return await letter_templates.put(session, admin, LetterKind.invitation, body.body)


@router.post(
    "/v1/cases/{case_id}/meetings/{meeting_id}/invitation-letter",
    response_model=LetterDocuments,
    status_code=201,
    responses=problem_responses(404, 409, 422),
)
async def write_invitation_letter(
    case_id: uuid.UUID,
    meeting_id: uuid.UUID,
    session: SessionDep,
    store: DocumentStoreDep,
    _principal: CaseWriter,
    auditor: AuditorDep,
) -> LetterDocuments:
    """Write a planned meeting's invitation letter with the LA's template (or the default):
    its date and time (UK time), place, agenda and invitees, the children and family as the
    case holds them. Kept on the case as two documents of kind `letter` with the meeting's
    id, the PDF to send and the HTML it was laid out from. Only a planned meeting (409 once
    held or not happened), on an open case with consent (409)."""
    pdf, html = await meeting_letters.write_invitation(auditor, store, case_id, meeting_id)
    try:
        await session.commit()
    except BaseException:
        for document in (pdf, html):
            await documents.remove_quietly(store, document.storage_key)
        raise
    return LetterDocuments(pdf=documents.present(pdf), html=documents.present(html))
