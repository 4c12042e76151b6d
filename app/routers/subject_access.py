"""Subject access (scope `audit:read`): everything Liaison holds about a child or a family
member, as JSON or, with `Accept: application/zip`, a zip of CSV files. Answers stream."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import StreamingResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import SessionFactory
from app.deps import AuditorDep, AuditReader, SessionDep, SessionFactoryDep
from app.errors import NotAcceptable, problem_responses
from app.models.subject_access import ChildExport, FamilyMemberExport, FamilyMemberQuery
from app.services import export_files, subject_access, subject_access_family

router = APIRouter(tags=["subject access"], responses=problem_responses(401, 403, 500, 503))

JSON, ZIP = "application/json", "application/zip"
_ZIP_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The export: JSON, or with `Accept: application/zip` a zip holding "
        "README.txt, one CSV file per record type and the JSON.",
        "content": {ZIP: {"schema": {"type": "string", "format": "binary"}}},
    }
}
Position = Annotated[
    int, Path(ge=0, le=1000, description="The child's place on the referral (0-based).")
]


def _accepted(header: str) -> list[str]:
    """The media ranges of an `Accept` header, but those refused outright (`q=0`)."""
    ranges = []
    for part in header.split(","):
        media, *parameters = (p.strip().lower() for p in part.split(";"))
        refused = any(
            p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in parameters
        )
        if media and not refused:
            ranges.append(media)
    return ranges


def _wants_zip(request: Request) -> bool:
    """Whether `Accept` asks for the zip; JSON is the default. Anything else is a 406, before
    any work is done or audited."""
    header = request.headers.get("accept", "")
    if not header.strip():
        return False
    ranges = _accepted(header)
    if ZIP in ranges:
        return True
    if any(r in (JSON, "application/*", "*/*") for r in ranges):
        return False
    raise NotAcceptable("This export is given as application/json or application/zip.")


async def _streamed(
    session: AsyncSession,
    factory: SessionFactory,
    build: Callable[[AsyncSession], export_files.Export],
    as_zip: bool,
) -> StreamingResponse:
    """The export's answer. The body streams after this request's session is gone: the
    audit event is committed first, and the export reads in a session of its own."""
    await session.commit()
    headers = {"Cache-Control": "no-store"}
    if as_zip:
        headers["Content-Disposition"] = 'attachment; filename="subject-access.zip"'
    body = export_files.stream(factory, build, as_zip=as_zip)
    return StreamingResponse(body, media_type=ZIP if as_zip else JSON, headers=headers)


@router.get(
    "/v1/pupils/{pupil_id}/subject-access",
    response_model=ChildExport,
    responses={**_ZIP_RESPONSE, **problem_responses(404, 406, 422)},
)
async def pupil_subject_access(
    pupil_id: uuid.UUID,
    request: Request,
    _principal: AuditReader,
    auditor: AuditorDep,
    session: SessionDep,
    factory: SessionFactoryDep,
) -> StreamingResponse:
    """Everything Liaison holds about a child on a roll (for a data protection officer):
    their pupil records within reach (this one and any with the same UPN) and each record
    type about them. Audited as `pupil.subject_access`, which the next export shows."""
    as_zip = _wants_zip(request)
    scope = await subject_access.for_pupil(auditor, pupil_id)
    build = subject_access.child_export(auditor.principal, scope)
    return await _streamed(session, factory, build, as_zip)


@router.get(
    "/v1/referrals/{referral_id}/children/{position}/subject-access",
    response_model=ChildExport,
    responses={**_ZIP_RESPONSE, **problem_responses(404, 406, 422)},
)
async def referral_child_subject_access(
    referral_id: uuid.UUID,
    position: Position,
    request: Request,
    _principal: AuditReader,
    auditor: AuditorDep,
    session: SessionDep,
    factory: SessionFactoryDep,
) -> StreamingResponse:
    """Everything Liaison holds about a child named on a referral: for a child known only by
    name, every referral and case within reach naming a child of the same names and date of
    birth, and what hangs off them for that child; for a child on a roll, the pupil's
    export."""
    as_zip = _wants_zip(request)
    scope = await subject_access.for_referral_child(auditor, referral_id, position)
    build = subject_access.child_export(auditor.principal, scope)
    return await _streamed(session, factory, build, as_zip)


@router.post(
    "/v1/subject-access/family-members",
    response_model=FamilyMemberExport,
    responses={**_ZIP_RESPONSE, **problem_responses(406, 422)},
)
async def family_member_subject_access(
    query: FamilyMemberQuery,
    request: Request,
    _principal: AuditReader,
    auditor: AuditorDep,
    session: SessionDep,
    factory: SessionFactoryDep,
) -> StreamingResponse:
    """What Liaison holds about an adult named in referrals' family lists (POST, so that a
    name never sits in a URL or an access log): the referrals within reach naming them,
    their entries, the consents they gave, and the cases those referrals led to. Audited as
    `family_member.subject_access` with counts and ids, never the name."""
    as_zip = _wants_zip(request)
    scope = await subject_access_family.for_family_member(auditor, query)
    build = subject_access_family.family_export(scope)
    return await _streamed(session, factory, build, as_zip)
