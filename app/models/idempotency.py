"""Stored answers to requests sent with an `Idempotency-Key`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import PrimaryKeyConstraint, Text
from sqlmodel import Field, SQLModel


class IdempotentRequest(SQLModel, table=True):
    __tablename__ = "idempotent_request"
    __table_args__ = (PrimaryKeyConstraint("owner", "key"),)

    owner: str = Field(max_length=200, description="The principal that sent the key.")
    key: str = Field(max_length=255)
    fingerprint: str = Field(max_length=64, description="SHA-256 of method, path and body.")
    status_code: int | None = None
    body: str | None = Field(default=None, sa_type=Text())
    created_at: datetime
    expires_at: datetime = Field(index=True)
