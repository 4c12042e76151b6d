"""Documents on a case: uploaded, listed, read, downloaded and deleted, within reach.

An upload is checked before anything is kept: its size against the limit (413), its bytes
against the allow-list (`document_types.detect`, 415), and the type the client declared
against the one detected (415). Then the bytes go to the store under a key made from the
document's id, and the row, its chronology entry and its audit event are written through
the one recipe for case records (`case_records`). The caller commits; if the transaction
fails the bytes are removed again (`remove_quietly`), so no file outlives its row.

A download is a read of child-level data: audited, like any record of the case. A document
is deleted by its uploader or by a manager (`cases:approve`) within reach; its row goes in
the transaction and its bytes after the commit.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

import structlog
from sqlmodel import col, select

from app.audit import Auditor
from app.errors import Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType
from app.models.base import shown_as
from app.models.case import Case
from app.models.document import CaseDocument, DocumentKind, DocumentRead
from app.security import Scope
from app.services import access, case_records, chronology, document_types
from app.services.document_store import DocumentMissing, DocumentStore, key_for

log = structlog.get_logger("liaison.documents")


@dataclass(frozen=True)
class NewDocument:
    kind: DocumentKind
    title: str
    filename: str | None
    declared_type: str | None
    data: bytes
    meeting_id: uuid.UUID | None = None


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"A document may be at most {limit} bytes.")


def checked_type(new: NewDocument, limit: int) -> str:
    """The detected media type of an upload within the limit, or why it is refused."""
    if len(new.data) > limit:
        raise too_large(limit)
    found = document_types.detect(new.data)
    if isinstance(found, document_types.Refused):
        raise UnsupportedMediaType(
            f"This document cannot be kept: {found.reason}. Liaison keeps PDF, PNG, JPEG, "
            "plain text (UTF-8), Word (DOCX) and OpenDocument text (ODT) documents."
        )
    declared = document_types.declared_type(new.declared_type)
    if declared not in document_types.NO_CLAIM and declared != found:
        raise UnsupportedMediaType(
            f"The document was declared as {declared[:100]} but its content is {found}."
        )
    return found


def present(document: CaseDocument) -> DocumentRead:
    return shown_as(
        DocumentRead,
        document,
        content_url=f"/v1/cases/{document.case_id}/documents/{document.id}/content",
    )


async def upload(
    auditor: Auditor, store: DocumentStore, case_id: uuid.UUID, new: NewDocument, limit: int
) -> CaseDocument:
    """Keep an uploaded document on a case within reach and open for work."""
    work = await case_records.begin(auditor, case_id)
    media_type = checked_type(new, limit)
    filename = document_types.safe_filename(new.filename, media_type)
    return await keep(work, store, new, media_type, filename)


async def keep(
    work: case_records.CaseWork,
    store: DocumentStore,
    new: NewDocument,
    media_type: str,
    filename: str,
) -> CaseDocument:
    """Write a document's bytes to the store and its row to the case (chronology, audit).
    Its content type is one Liaison detected or made itself, never a client's."""
    document = CaseDocument(
        case_id=work.case.id,
        kind=new.kind,
        title=new.title,
        filename=filename,
        content_type=media_type,
        size_bytes=len(new.data),
        sha256=hashlib.sha256(new.data).hexdigest(),
        storage_key="",
        meeting_id=new.meeting_id,
        created_by=work.by,
    )
    document.storage_key = key_for(document.id)
    await store.put(document.storage_key, new.data)
    try:
        await case_records.add(
            work,
            document,
            event="document.added",
            summary=f"{str(new.kind).replace('_', ' ').capitalize()} added",
            action="document.create",
            details={
                "document_id": str(document.id),
                "kind": str(new.kind),
                "content_type": media_type,
                "size_bytes": len(new.data),
            },
        )
    except BaseException:
        await remove_quietly(store, document.storage_key)
        raise
    return document


async def remove_quietly(store: DocumentStore, key: str) -> None:
    """Remove bytes whose row was never committed (or has gone); a failure is logged, with
    the key only."""
    try:
        await store.delete(key)
    except Exception as exc:  # the store is down: the bytes stay, and the log says which
        log.warning("document_bytes_not_removed", storage_key=key, error=type(exc).__name__)


async def get_all(auditor: Auditor, case_id: uuid.UUID) -> list[CaseDocument]:
    return await case_records.records(
        auditor, case_id, CaseDocument, col(CaseDocument.id), action="document.list"
    )


async def _one(
    auditor: Auditor, case_id: uuid.UUID, document_id: uuid.UUID
) -> tuple[Case, CaseDocument]:
    """The case within reach, and its document (404 for either)."""
    session = auditor.session
    case = await access.get_case(session, auditor.principal, case_id)
    found = (
        await session.exec(
            select(CaseDocument).where(
                CaseDocument.id == document_id, CaseDocument.case_id == case.id
            )
        )
    ).first()
    if found is None:
        raise NotFound("No such document.")
    return case, found


async def _audited(auditor: Auditor, document: CaseDocument, action: str) -> None:
    pupils = await access.pupils_of(auditor.session, document.case_id)
    await auditor.record(
        action,
        "case_document",
        document.id,
        pupil_ids=pupils,
        details={"case_id": str(document.case_id), "kind": str(document.kind)},
    )


async def get(auditor: Auditor, case_id: uuid.UUID, document_id: uuid.UUID) -> CaseDocument:
    _, document = await _one(auditor, case_id, document_id)
    await _audited(auditor, document, "document.read")
    return document


async def content(
    auditor: Auditor, store: DocumentStore, case_id: uuid.UUID, document_id: uuid.UUID
) -> tuple[CaseDocument, bytes]:
    """A document and its bytes, audited as a download."""
    _, document = await _one(auditor, case_id, document_id)
    try:
        data = await store.get(document.storage_key)
    except DocumentMissing:
        log.error("document_bytes_missing", document_id=str(document.id))
        raise NotFound("This document's content is no longer held.") from None
    await _audited(auditor, document, "document.download")
    return document, data


async def delete(auditor: Auditor, case_id: uuid.UUID, document_id: uuid.UUID) -> str:
    """Delete a document's row (its uploader, or a manager); the storage key whose bytes
    the caller removes once the deletion is committed."""
    principal = auditor.principal
    case, document = await _one(auditor, case_id, document_id)
    access.require_open(case)
    if document.created_by != principal.subject and not principal.has(Scope.cases_approve):
        raise Forbidden("A document is deleted by whoever added it or by a manager.")
    await auditor.session.delete(document)
    await chronology.record(
        auditor.session,
        principal,
        "document.deleted",
        f"{str(document.kind).replace('_', ' ').capitalize()} deleted",
        case_id=document.case_id,
        details={"document_id": str(document.id), "kind": str(document.kind)},
    )
    await auditor.session.flush()
    await _audited(auditor, document, "document.delete")
    return document.storage_key
