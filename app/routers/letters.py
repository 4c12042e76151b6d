"""Letters: an LA's own wording of its letters (admins), and a meeting's invitation letter
rendered from it and kept on the case as documents."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import Admin, SessionDep
from app.errors import problem_responses
from app.models.document import LetterKind, LetterTemplateRead, LetterTemplateWrite
from app.services import letter_templates

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
