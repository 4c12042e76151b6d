"""Who may call Liaison: machine clients and staff, each with scopes and a reach."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from app.models.base import Timestamped, new_id


class StaffRole(StrEnum):
    practitioner = "practitioner"
    manager = "manager"
    dpo = "dpo"
    admin = "admin"


class ApiClient(Timestamped, table=True):
    """A system calling with client credentials: an MIS integration, a hub, an admin tool."""

    __tablename__ = "api_client"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    client_id: str = Field(max_length=64, unique=True)
    secret_hash: str = Field(max_length=255)
    name: str = Field(max_length=200)
    scopes: str = Field(max_length=1000, description="Granted scopes, space-separated.")
    la_code: str | None = Field(default=None, max_length=10)
    is_active: bool = True
    last_used_at: datetime | None = None


class StaffMember(Timestamped, table=True):
    """A person: practitioner, manager, data protection officer or administrator."""

    __tablename__ = "staff_member"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    username: str = Field(max_length=254, unique=True)
    display_name: str = Field(max_length=200)
    role: StaffRole = Field(sa_type=String(32))
    password_hash: str | None = Field(default=None, max_length=255)
    external_subject: str | None = Field(default=None, max_length=255, unique=True)
    la_code: str | None = Field(default=None, max_length=10)
    is_active: bool = True


class ApiClientSchool(SQLModel, table=True):
    __tablename__ = "api_client_school"

    api_client_id: uuid.UUID = Field(
        foreign_key="api_client.id", primary_key=True, ondelete="CASCADE"
    )
    school_id: uuid.UUID = Field(foreign_key="school.id", primary_key=True, ondelete="CASCADE")


class StaffMemberSchool(SQLModel, table=True):
    __tablename__ = "staff_member_school"

    staff_member_id: uuid.UUID = Field(
        foreign_key="staff_member.id", primary_key=True, ondelete="CASCADE"
    )
    school_id: uuid.UUID = Field(foreign_key="school.id", primary_key=True, ondelete="CASCADE")
