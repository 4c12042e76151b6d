"""The team around the family: the professionals working with a case, Liaison staff and
partner agencies, with when each joined and when each left.

A member is never deleted: leaving sets `left_on`, so the case keeps who was involved when
(a review's invitees and attendees, an action's owner, name members by id).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import Index, String
from sqlmodel import Field as ColumnField
from sqlmodel import SQLModel

from app.models.base import InputModel, IsoDate, Moment, new_id, utcnow
from app.models.referral import Reason, Text200


class TeamMemberKind(StrEnum):
    staff = "staff"  # a Liaison staff account
    agency = "agency"  # a partner agency: a directory organisation, or named


class CaseTeamMember(SQLModel, table=True):
    __tablename__ = "case_team_member"
    __table_args__ = (Index("ix_case_team_member_case_id_id", "case_id", "id"),)

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    case_id: uuid.UUID = ColumnField(foreign_key="early_help_case.id", ondelete="CASCADE")
    kind: TeamMemberKind = ColumnField(sa_type=String(16))
    staff_member_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="staff_member.id", ondelete="SET NULL", index=True
    )
    organization_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="directory_organization.id", ondelete="SET NULL"
    )
    # Who the member is, as known when they joined: the staff member's display name, the
    # organisation's name, or the agency as named. Kept when an account or a directory
    # record goes.
    name: str = ColumnField(max_length=500)
    role: str = ColumnField(max_length=200)
    contact: str | None = ColumnField(default=None, max_length=300)
    joined_on: date
    left_on: date | None = None
    leaving_note: str | None = ColumnField(default=None, max_length=2000)
    created_at: datetime = ColumnField(default_factory=utcnow)
    created_by: str = ColumnField(max_length=300)
    updated_at: datetime = ColumnField(default_factory=utcnow)


# --- API schemas -------------------------------------------------------------------------

Contact = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Username = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254)]


class TeamMemberAdd(InputModel):
    """A staff member (`username` of a Liaison account that reaches the case) or a partner
    agency (a directory `organization_id`, or a `name`), with the role they play."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: TeamMemberKind
    username: Username | None = Field(
        default=None, description="For staff: the account's username (often an email)."
    )
    organization_id: uuid.UUID | None = Field(
        default=None, description="For an agency: its organisation in the service directory."
    )
    name: Text200 | None = Field(
        default=None, description="For an agency not in the directory: its name."
    )
    role: Text200 = Field(examples=["Education Psychology", "school nurse", "EWO"])
    contact: Contact | None = Field(default=None, description="A phone number or email.")
    joined_on: IsoDate | None = Field(
        default=None, description="Default today; not before the case opened, nor in the future."
    )

    @model_validator(mode="after")
    def _one_identity(self) -> TeamMemberAdd:
        if self.kind == TeamMemberKind.staff:
            if self.username is None:
                raise ValueError("username: a staff member is named by their username")
            if self.organization_id is not None or self.name is not None:
                raise ValueError("organization_id and name are for an agency, not staff")
        else:
            if self.username is not None:
                raise ValueError("username is for staff, not an agency")
            if (self.organization_id is None) == (self.name is None):
                raise ValueError(
                    "organization_id or name: an agency is a directory organisation or named, "
                    "one of the two"
                )
        return self


class TeamMemberLeave(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    left_on: IsoDate | None = Field(
        default=None, description="Default today; not before they joined, nor in the future."
    )
    note: Reason | None = None


class TeamMemberRead(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    kind: TeamMemberKind
    name: str = Field(description="The staff member's, the organisation's or the agency's name.")
    username: str | None = Field(description="For staff: the account's username.")
    staff_member_id: uuid.UUID | None
    organization_id: uuid.UUID | None
    role: str
    contact: str | None
    joined_on: date
    left_on: date | None
    leaving_note: str | None
    current: bool = Field(description="Joined and not yet left, as of today.")
    created_at: Moment
    created_by: str


class TeamMemberList(BaseModel):
    items: list[TeamMemberRead]
