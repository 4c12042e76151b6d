"""Documents on a case (consent forms, signed plans, letters, assessments) and the letter
templates an LA words its own letters with. A document's bytes live in the document store
(`app/services/document_store.py`); the row says what they are and where."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Index, String, Text
from sqlmodel import Field as ColumnField
from sqlmodel import SQLModel

from app.models.base import UNSTORABLE_TEXT, InputModel, Moment, new_id, unstorable, utcnow


class DocumentKind(StrEnum):
    consent_form = "consent_form"
    signed_plan = "signed_plan"
    letter = "letter"
    assessment = "assessment"
    other = "other"


class CaseDocument(SQLModel, table=True):
    __tablename__ = "case_document"
    __table_args__ = (Index("ix_case_document_case_id_id", "case_id", "id"),)

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    case_id: uuid.UUID = ColumnField(foreign_key="early_help_case.id", ondelete="CASCADE")
    kind: DocumentKind = ColumnField(sa_type=String(16))
    title: str = ColumnField(max_length=200)
    # The client's file name made safe (app/services/document_types.py), with the
    # extension of the detected type: what a download is called, never a storage path.
    filename: str = ColumnField(max_length=120)
    # The type Liaison detected from the bytes; what the client declared is not kept.
    content_type: str = ColumnField(max_length=100)
    size_bytes: int
    sha256: str = ColumnField(max_length=64)
    # Where the bytes are: made from the document's id, never from the client's name.
    storage_key: str = ColumnField(max_length=200, unique=True)
    # The meeting a letter was written for, when it was.
    meeting_id: uuid.UUID | None = None
    created_at: datetime = ColumnField(default_factory=utcnow)
    created_by: str = ColumnField(max_length=300)


class LetterTemplate(SQLModel, table=True):
    """An LA's own wording of one kind of letter (Jinja2, rendered sandboxed)."""

    __tablename__ = "letter_template"

    la_code: str = ColumnField(primary_key=True, max_length=10)
    kind: str = ColumnField(primary_key=True, max_length=32)
    body: str = ColumnField(sa_type=Text)
    updated_at: datetime = ColumnField(default_factory=utcnow)
    updated_by: str = ColumnField(max_length=300)


# --- API schemas -------------------------------------------------------------------------


def _storable(value: str) -> str:
    if unstorable(value):
        raise ValueError(UNSTORABLE_TEXT)
    return value


# A form field's text: multipart fields are not validated by an `InputModel`.
DocumentTitle = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_storable),
]


class DocumentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    case_id: uuid.UUID
    kind: DocumentKind
    title: str
    filename: str
    content_type: str = Field(description="The type Liaison detected from the content.")
    size_bytes: int
    sha256: str = Field(description="SHA-256 of the content, hex.")
    meeting_id: uuid.UUID | None
    created_at: Moment
    created_by: str
    content_url: str = Field(description="Where the content is downloaded from.")


class DocumentList(BaseModel):
    items: list[DocumentRead]


class LetterKind(StrEnum):
    invitation = "invitation"


class LetterTemplateRead(BaseModel):
    kind: LetterKind
    la_code: str | None = Field(description="The LA whose template this is; null: the default.")
    body: str
    builtin: bool = Field(description="Whether this is Liaison's default (no LA template yet).")
    updated_at: Moment | None
    updated_by: str | None


class LetterTemplateWrite(InputModel):
    model_config = ConfigDict(extra="forbid")

    body: Annotated[str, StringConstraints(min_length=1, max_length=50_000)] = Field(
        description="A Jinja2 template (HTML), rendered sandboxed with autoescaping."
    )


class LetterDocuments(BaseModel):
    """The letter as stored on the case: its PDF and its HTML."""

    pdf: DocumentRead
    html: DocumentRead
