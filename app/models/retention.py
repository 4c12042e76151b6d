"""Retention bookkeeping: how far back each record type's detail has been disposed of, and
the permit that lets the disposal transaction, and nothing else, delete old audit events."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import PrimaryKeyConstraint
from sqlmodel import Field as ColumnField
from sqlmodel import SQLModel

from app.models.base import new_id, utcnow


class RetentionCutoff(SQLModel, table=True):
    """Records of `record_type` in `jurisdiction` from before `disposed_before` have been
    disposed of (held ones apart): reports read it to say which period's detail is gone."""

    __tablename__ = "retention_cutoff"
    __table_args__ = (PrimaryKeyConstraint("record_type", "jurisdiction"),)

    record_type: str = ColumnField(max_length=40)
    jurisdiction: str = ColumnField(max_length=16)
    disposed_before: date
    recorded_at: datetime = ColumnField(default_factory=utcnow)


class AuditDisposalPermit(SQLModel, table=True):
    """While a row exists, the audit trail's triggers let audit events older than
    `disposes_before` be deleted. The retention run inserts its permit and deletes it again
    inside one transaction, so no other transaction ever sees one: every other UPDATE or
    DELETE of the trail is still refused."""

    __tablename__ = "audit_disposal_permit"

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    disposes_before: datetime
