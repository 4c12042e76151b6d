"""The append-only audit trail of every read or write of child-level data."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Index
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from app.models.base import new_id, utcnow


class AuditEvent(SQLModel, table=True):
    """One read or write. `la_code` and `school_id` record whose data it was, when written:
    the trail is read within reach like everything else (a DPO sees their LA's)."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_la_code_id", "la_code", "id"),
        Index("ix_audit_event_school_id_id", "school_id", "id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    occurred_at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=300, index=True, description="`staff:<id>` or `client:<id>`.")
    client_id: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=64)
    resource_type: str = Field(max_length=64)
    resource_id: str | None = Field(default=None, max_length=64)
    request_id: str | None = Field(default=None, max_length=128)
    client_address: str | None = Field(default=None, max_length=64)
    details: dict[str, Any] = Field(
        default_factory=dict, sa_type=JSON().with_variant(JSONB(), "postgresql")
    )
    # No foreign key to `school`: the trail outlives what it describes.
    la_code: str | None = Field(default=None, max_length=10)
    school_id: uuid.UUID | None = None


class AuditEventPupil(SQLModel, table=True):
    """Which children an event touched; one row per child so the trail filters by child.
    `school_id` is the child's school when the event was written, which decides who may
    read the link.

    No foreign key to `pupil` or `school`: the trail must outlive any record it describes.
    """

    __tablename__ = "audit_event_pupil"
    __table_args__ = (Index("ix_audit_event_pupil_pupil_id_event_id", "pupil_id", "event_id"),)

    event_id: uuid.UUID = Field(foreign_key="audit_event.id", primary_key=True)
    pupil_id: uuid.UUID = Field(primary_key=True)
    school_id: uuid.UUID | None = None


class AuditEventRead(BaseModel):
    id: uuid.UUID
    occurred_at: datetime
    actor: str
    client_id: str | None
    action: str
    resource_type: str
    resource_id: str | None
    request_id: str | None
    client_address: str | None
    pupil_ids: list[uuid.UUID] = Field(
        description="The children the event touched that are within the reader's reach."
    )
    details: dict[str, Any]
    la_code: str | None = Field(description="Whose data it was: the LA.")
    school_id: uuid.UUID | None = Field(description="Whose data it was: the school, if one.")


class AuditEventPage(BaseModel):
    items: list[AuditEventRead]
    next_cursor: str | None
