"""Actions as records of their own: what was agreed at a meeting, a review or in the plan,
who owns it, when it is due, and what became of it.

An action is `open` until it is `done`, `not_done` or `superseded`; those three are final
(a change of mind is a new action, and the old one `superseded`), so the record an
attendance officer relies on never rewrites what happened. Every change of status is a row
of `case_action_status`: dated, signed and with its note.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import Index, String, Text
from sqlmodel import Field as ColumnField
from sqlmodel import SQLModel

from app.models.base import InputModel, IsoDate, Moment, new_id, utcnow
from app.models.referral import Text200

ActionText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
StatusNote = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class ActionSource(StrEnum):
    """Where the action was agreed."""

    meeting = "meeting"
    review = "review"
    plan = "plan"
    contact = "contact"
    other = "other"


class OwnerKind(StrEnum):
    staff = "staff"  # a Liaison staff account that reaches the case
    family_member = "family_member"  # a child on the case, or a family member by name
    agency = "agency"  # a directory organisation, or a partner agency by name
    team_member = "team_member"  # a member of the case's team around the family
    # An owner written as free text on a contact's action plan (`actions[].owner`), before
    # actions were records: kept as written, never matched to a person.
    named = "named"


class GivenOwnerKind(StrEnum):
    """The owners a caller names (`named` comes only from a contact's free text)."""

    staff = "staff"
    family_member = "family_member"
    agency = "agency"
    team_member = "team_member"


class ActionStatus(StrEnum):
    open = "open"
    done = "done"
    not_done = "not_done"
    superseded = "superseded"


FINAL_STATUSES = frozenset({ActionStatus.done, ActionStatus.not_done, ActionStatus.superseded})
# A status that says the action did not happen as agreed carries the reason.
NEEDS_NOTE = frozenset({ActionStatus.not_done, ActionStatus.superseded})


class CaseAction(SQLModel, table=True):
    __tablename__ = "case_action"
    __table_args__ = (
        Index("ix_case_action_case_id_id", "case_id", "id"),
        Index("ix_case_action_owner_staff_id_id", "owner_staff_id", "id"),
        Index("ix_case_action_status_due_on", "status", "due_on"),
    )

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    case_id: uuid.UUID = ColumnField(foreign_key="early_help_case.id", ondelete="CASCADE")
    text: str = ColumnField(sa_type=Text)
    source_kind: ActionSource = ColumnField(sa_type=String(16))
    # The review, goal (`plan`), contact or meeting the action came from, on the same case.
    source_id: uuid.UUID | None = None
    owner_kind: OwnerKind = ColumnField(sa_type=String(16))
    owner_staff_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="staff_member.id", ondelete="SET NULL"
    )
    # A child on the case (a pupil id) owning an action as a family member.
    owner_child_id: uuid.UUID | None = None
    owner_organization_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="directory_organization.id", ondelete="SET NULL"
    )
    owner_team_member_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="case_team_member.id", ondelete="SET NULL"
    )
    # A family member's or an agency's name (or a contact's free-text owner), and their
    # relationship or role. Cleared when the case is de-identified.
    owner_name: str | None = ColumnField(default=None, max_length=200)
    owner_role: str | None = ColumnField(default=None, max_length=200)
    due_on: date | None = None
    status: ActionStatus = ColumnField(sa_type=String(16))
    status_changed_at: datetime = ColumnField(default_factory=utcnow)
    # When `case.action_overdue` announced the action: each action is announced once.
    overdue_notified_at: datetime | None = None
    created_at: datetime = ColumnField(default_factory=utcnow)
    created_by: str = ColumnField(max_length=300)


class CaseActionStatus(SQLModel, table=True):
    """One status an action took: the first row is `open`, when it was recorded."""

    __tablename__ = "case_action_status"
    __table_args__ = (
        Index("ix_case_action_status_action_id_changed_at", "action_id", "changed_at"),
    )

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    action_id: uuid.UUID = ColumnField(foreign_key="case_action.id", ondelete="CASCADE")
    status: ActionStatus = ColumnField(sa_type=String(16))
    note: str | None = ColumnField(default=None, sa_type=Text)
    changed_at: datetime = ColumnField(default_factory=utcnow)
    changed_by: str = ColumnField(max_length=300)


# --- API schemas -------------------------------------------------------------------------


class ActionOwner(InputModel):
    """Who owns the action. By kind: `staff` names `staff_id`; `family_member` names
    `child_id` (a child on the case) or `name` (and `relationship`); `agency` names
    `organization_id` (a directory organisation) or `name` (and `role`); `team_member`
    names `team_member_id`."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: GivenOwnerKind
    staff_id: uuid.UUID | None = None
    child_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    team_member_id: uuid.UUID | None = None
    name: Text200 | None = None
    relationship: Text200 | None = None
    role: Text200 | None = None

    def naming_problem(self) -> str | None:
        """Why the owner is not named in one of its kind's ways; None when it is. Checked by
        the service once the case is found, so a case outside reach is a 404 whatever the
        body says."""
        given = {f for f in self.model_fields_set if getattr(self, f) is not None} - {"kind"}
        allowed: dict[GivenOwnerKind, list[set[str]]] = {
            GivenOwnerKind.staff: [{"staff_id"}],
            GivenOwnerKind.family_member: [{"child_id"}, {"name"}, {"name", "relationship"}],
            GivenOwnerKind.agency: [{"organization_id"}, {"name"}, {"name", "role"}],
            GivenOwnerKind.team_member: [{"team_member_id"}],
        }
        if given in allowed[self.kind]:
            return None
        ways = " or ".join("+".join(sorted(w)) for w in allowed[self.kind])
        return (
            f"an owner of kind {self.kind.value} is named by {ways} (given: "
            f"{', '.join(sorted(given)) or 'nothing'})"
        )


class ActionCreate(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: ActionText
    source_kind: ActionSource
    source_id: uuid.UUID | None = Field(
        default=None,
        description="The review (`review`), goal (`plan`), contact (`contact`) or meeting "
        "(`meeting`) on this case the action came from; none for `other`.",
    )
    owner: ActionOwner
    due_on: IsoDate = Field(
        description="The day it is due: not before the case opened, at most two years ahead."
    )

    @model_validator(mode="after")
    def _source(self) -> ActionCreate:
        if self.source_kind == ActionSource.other and self.source_id is not None:
            raise ValueError("source_id: an action from `other` names no source")
        return self


class StatusChange(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    status: ActionStatus
    note: StatusNote | None = Field(
        default=None, description="Required for `not_done` and `superseded`: why."
    )

    @model_validator(mode="after")
    def _note(self) -> StatusChange:
        if self.status in NEEDS_NOTE and self.note is None:
            raise ValueError(f"note: an action marked {self.status.value} says why")
        return self


class OwnerRead(BaseModel):
    kind: OwnerKind
    staff_id: uuid.UUID | None
    child_id: uuid.UUID | None
    organization_id: uuid.UUID | None
    team_member_id: uuid.UUID | None
    name: str | None = Field(
        description="A family member's or agency's name (for `named`, the owner as a contact "
        "recorded it); for staff and directory organisations, null."
    )
    relationship: str | None
    role: str | None


class StatusRead(BaseModel):
    status: ActionStatus
    note: str | None
    changed_at: Moment
    changed_by: str


class ActionRead(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    text: str
    source_kind: ActionSource
    source_id: uuid.UUID | None
    owner: OwnerRead
    due_on: date | None
    status: ActionStatus
    overdue: bool = Field(description="Open, and due before today.")
    history: list[StatusRead] = Field(description="Every status it took, oldest first.")
    created_at: Moment
    created_by: str


class ActionList(BaseModel):
    items: list[ActionRead]


class ActionPage(BaseModel):
    items: list[ActionRead]
    next_cursor: str | None
