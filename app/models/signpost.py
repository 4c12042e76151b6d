"""Signposts: a family or child pointed to a partner service in the directory, and what
came of it."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy import Index, String
from sqlmodel import Field as ColumnField
from sqlmodel import SQLModel

from app.models.base import InputModel, Moment, new_id, utcnow
from app.models.referral import Json, Reason


class SignpostStatus(StrEnum):
    suggested = "suggested"
    referred = "referred"
    engaged = "engaged"
    declined = "declined"
    no_response = "no_response"
    waitlisted = "waitlisted"


_ENDINGS = {SignpostStatus.engaged, SignpostStatus.declined, SignpostStatus.no_response}
NEXT_STATUSES: dict[SignpostStatus, set[SignpostStatus]] = {
    SignpostStatus.suggested: {
        SignpostStatus.referred,
        SignpostStatus.declined,
        SignpostStatus.no_response,
    },
    SignpostStatus.referred: _ENDINGS | {SignpostStatus.waitlisted},
    SignpostStatus.waitlisted: set(_ENDINGS),
    SignpostStatus.engaged: set(),
    SignpostStatus.declined: set(),
    SignpostStatus.no_response: set(),
}


class Signpost(SQLModel, table=True):
    __tablename__ = "signpost"
    __table_args__ = (Index("ix_signpost_case_id_id", "case_id", "id"),)

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    case_id: uuid.UUID = ColumnField(foreign_key="early_help_case.id", ondelete="CASCADE")
    service_id: uuid.UUID = ColumnField(
        foreign_key="directory_service.id", ondelete="RESTRICT", index=True
    )
    child_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="pupil.id", ondelete="SET NULL"
    )
    reason: str = ColumnField(max_length=2000)
    status: SignpostStatus = ColumnField(sa_type=String(16))
    history: list[dict[str, Any]] = ColumnField(default_factory=list, sa_type=Json)
    created_at: datetime = ColumnField(default_factory=utcnow)
    created_by: str = ColumnField(max_length=300)
    updated_at: datetime = ColumnField(default_factory=utcnow)


# --- API schemas -------------------------------------------------------------------------


class SignpostCreate(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    service_id: uuid.UUID
    child_id: uuid.UUID | None = None
    reason: Reason


class SignpostUpdate(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    status: SignpostStatus
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class SignpostEvent(BaseModel):
    status: SignpostStatus
    at: datetime
    by: str
    note: str | None


class SignpostRead(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    service_id: uuid.UUID
    service_name: str
    child_id: uuid.UUID | None
    reason: str
    status: SignpostStatus
    history: list[SignpostEvent]
    created_at: Moment
    updated_at: Moment


class SignpostList(BaseModel):
    items: list[SignpostRead]
