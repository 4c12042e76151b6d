"""Documents on a case: uploaded as multipart form data, listed, read, downloaded and
deleted. The case must be within reach (404 otherwise)."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile

from app.config import DEFAULT_DOCUMENT_MAX_BYTES
from app.deps import (
    AnyPrincipal,
    AuditorDep,
    CaseReader,
    CaseWriter,
    DocumentStoreDep,
    SessionDep,
    SettingsDep,
)
from app.errors import InsufficientScope, problem_responses
from app.models.document import DocumentKind, DocumentList, DocumentRead, DocumentTitle
from app.openapi import SCOPES_ANY_OF
from app.security import Scope
from app.services import documents

router = APIRouter(tags=["documents"], responses=problem_responses(401, 403, 500, 503))

DOCUMENTS = "/v1/cases/{case_id}/documents"
# The upload route, for its own body limit (app/middleware.py): the document's limit and
# room for the form's other fields and the multipart framing.
UPLOAD_PATH = re.compile(r"/v1/cases/[^/]+/documents")
MULTIPART_ALLOWANCE = 64 * 1024

_READ = problem_responses(404, 422)


@router.post(
    DOCUMENTS,
    response_model=DocumentRead,
    status_code=201,
    responses=problem_responses(404, 409, 413, 415, 422),
)
async def upload_document(
    case_id: uuid.UUID,
    file: Annotated[
        UploadFile,
        File(
            description="The document (at most `LIAISON_DOCUMENT_MAX_BYTES`, by default 10 MiB).",
            json_schema_extra={"maxLength": DEFAULT_DOCUMENT_MAX_BYTES},
        ),
    ],
    kind: Annotated[DocumentKind, Form()],
    title: Annotated[DocumentTitle, Form()],
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    store: DocumentStoreDep,
    _principal: CaseWriter,
    auditor: AuditorDep,
) -> DocumentRead:
    """Keep a document on the case (`multipart/form-data`: `file`, `kind`, `title`). Its type
    is read from its content and must be PDF, PNG, JPEG, plain UTF-8 text, DOCX or ODT
    (415 otherwise, and when the part's declared type disagrees); at most
    `LIAISON_DOCUMENT_MAX_BYTES` (413 otherwise). Nothing is kept when it is refused."""
    limit = settings.document_max_bytes
    data = await file.read(limit + 1)
    new = documents.NewDocument(kind, title, file.filename, file.content_type, data)
    document = await documents.upload(auditor, store, case_id, new, limit)
    try:
        await session.commit()
    except BaseException:
        await documents.remove_quietly(store, document.storage_key)
        raise
    response.headers["Location"] = f"{DOCUMENTS.format(case_id=case_id)}/{document.id}"
    return documents.present(document)


@router.get(DOCUMENTS, response_model=DocumentList, responses=_READ)
async def list_documents(
    case_id: uuid.UUID, _principal: CaseReader, auditor: AuditorDep
) -> DocumentList:
    """The case's documents, oldest first (what they are, not their content)."""
    found = await documents.get_all(auditor, case_id)
    return DocumentList(items=[documents.present(d) for d in found])


@router.get(DOCUMENTS + "/{document_id}", response_model=DocumentRead, responses=_READ)
async def read_document(
    case_id: uuid.UUID, document_id: uuid.UUID, _principal: CaseReader, auditor: AuditorDep
) -> DocumentRead:
    return documents.present(await documents.get(auditor, case_id, document_id))


@router.get(
    DOCUMENTS + "/{document_id}/content",
    responses={
        200: {
            "description": "The document, as the type Liaison detected, as an attachment.",
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        },
        **_READ,
    },
    openapi_extra={SCOPES_ANY_OF: [[Scope.cases_read.value], [Scope.audit_read.value]]},
)
async def download_document(
    case_id: uuid.UUID,
    document_id: uuid.UUID,
    principal: AnyPrincipal,
    auditor: AuditorDep,
    store: DocumentStoreDep,
) -> Response:
    """The document's content, served as the type Liaison detected when it was uploaded
    (never one a client chose), as an attachment that a browser will not render or sniff.
    Readable with `cases:read`, or `audit:read` for a data protection officer fetching the
    documents a subject access export lists. Audited as `document.download`."""
    if not (principal.has(Scope.cases_read) or principal.has(Scope.audit_read)):
        raise InsufficientScope([Scope.cases_read.value], alternatives=[Scope.audit_read.value])
    document, data = await documents.content(auditor, store, case_id, document_id)
    return Response(
        data,
        media_type=document.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{document.filename}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@router.delete(
    DOCUMENTS + "/{document_id}", status_code=204, responses=problem_responses(404, 409, 422)
)
async def delete_document(
    case_id: uuid.UUID,
    document_id: uuid.UUID,
    session: SessionDep,
    store: DocumentStoreDep,
    _principal: CaseWriter,
    auditor: AuditorDep,
) -> Response:
    """Delete a document from an open case: by whoever uploaded it, or by a manager
    (`cases:approve`); anyone else gets 403. Audited as `document.delete`; the chronology
    keeps that it was deleted."""
    key = await documents.delete(auditor, case_id, document_id)
    await session.commit()
    await documents.remove_quietly(store, key)
    return Response(status_code=204)
