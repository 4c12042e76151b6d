"""Subject access exports: everything Liaison holds about one child or one family member.

An export is a `subject` (who it is about), `generated_at`, and one list per record type.
Each record type is a table's row as stored, every column (`row_of`), so the export can
never drop a column the table gains; the few computed types (figures by term, a family
member's entries and consents) are declared here. The same names are the CSV files of the
zip and their header rows.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlmodel import SQLModel

from app.models.action import CaseAction, CaseActionStatus
from app.models.attendance import (
    AttendanceCode,
    AttendanceFlag,
    AttendanceFlagEvent,
    AttendanceMark,
    AttendanceWeek,
    SchoolCodeMapping,
    TermFigures,
)
from app.models.base import InputModel
from app.models.case import Case, CaseChild, CaseworkEvent
from app.models.case_team import CaseTeamMember
from app.models.document import CaseDocument
from app.models.intervention import Intervention, Timetable
from app.models.measure import Measure
from app.models.meeting import Meeting
from app.models.plan import Goal, Review, ReviewScore
from app.models.pupil import Pupil, PupilIdentityChange
from app.models.referral import Referral, ReferralChild, Text200
from app.models.signpost import Signpost


def row_of(table: type[SQLModel], name: str, doc: str, *, without: tuple[str, ...] = ()) -> Any:
    """A read model of every column of `table` (but `without`), in the table's order."""
    fields: dict[str, Any] = {
        column: (info.annotation, ...)
        for column, info in table.model_fields.items()
        if column not in without
    }
    return create_model(name, __doc__=doc, **fields)


def columns_of(model: type[BaseModel]) -> tuple[str, ...]:
    """A record type's columns: its CSV header, in order."""
    return tuple(model.model_fields)


class AttendanceTermRow(TermFigures):
    """A pupil record's attendance figures for one term, worked out from its marks."""

    pupil_id: uuid.UUID


class AuditEventRow(BaseModel):
    """An audit event about the child: who read or changed what, when, from where."""

    pupil_id: uuid.UUID | None = Field(
        description="The child's pupil record the event names (none for a child known by name)."
    )
    id: uuid.UUID
    occurred_at: datetime
    actor: str
    client_id: str | None
    action: str
    resource_type: str
    resource_id: str | None
    request_id: str | None
    client_address: str | None
    details: dict[str, Any]
    la_code: str | None
    school_id: uuid.UUID | None


# The record types of a child's export, in the order they are written, and their rows.
CHILD_RECORDS: dict[str, Any] = {
    "pupils": row_of(
        Pupil, "SubjectAccessPupil", "The child's pupil record(s) on a school's roll."
    ),
    "identity_changes": row_of(
        PupilIdentityChange,
        "SubjectAccessIdentityChange",
        "The rectification trail of those records.",
    ),
    "attendance_marks": row_of(AttendanceMark, "SubjectAccessAttendanceMark", "Session marks."),
    "attendance_codes": row_of(
        AttendanceCode,
        "SubjectAccessAttendanceCode",
        "The statutory code table rows (every version) of the codes the marks use.",
    ),
    "school_attendance_codes": row_of(
        SchoolCodeMapping, "SubjectAccessSchoolAttendanceCode", "The schools' display-code maps."
    ),
    "attendance_weeks": row_of(
        AttendanceWeek, "SubjectAccessAttendanceWeek", "Running counts by week."
    ),
    "attendance_terms": AttendanceTermRow,
    "attendance_flags": row_of(AttendanceFlag, "SubjectAccessAttendanceFlag", "Absence flags."),
    "attendance_flag_events": row_of(
        AttendanceFlagEvent, "SubjectAccessAttendanceFlagEvent", "The history of those flags."
    ),
    "referrals": row_of(
        Referral, "SubjectAccessReferral", "Referrals naming the child, with family and consent."
    ),
    "referral_children": row_of(
        ReferralChild, "SubjectAccessReferralChild", "How each referral names this child."
    ),
    "cases": row_of(Case, "SubjectAccessCase", "Early-help cases naming the child."),
    "case_children": row_of(CaseChild, "SubjectAccessCaseChild", "How each case names this child."),
    "goals": row_of(
        Goal, "SubjectAccessGoal", "Goals of those cases: the child's own and the family's."
    ),
    "reviews": row_of(Review, "SubjectAccessReview", "Reviews of those cases."),
    "review_scores": row_of(
        ReviewScore,
        "SubjectAccessReviewScore",
        "Each review's scores (every respondent's) of those goals.",
    ),
    "interventions": row_of(
        Intervention,
        "SubjectAccessIntervention",
        "Contacts and interventions with the child or the whole family, with their written "
        "records and action plans.",
    ),
    "actions": row_of(
        CaseAction,
        "SubjectAccessAction",
        "Actions agreed on those cases (but those owned by another child), with their owners.",
    ),
    "action_statuses": row_of(
        CaseActionStatus,
        "SubjectAccessActionStatus",
        "Every status those actions took, with its note.",
    ),
    "meetings": row_of(
        Meeting,
        "SubjectAccessMeeting",
        "Planned contacts and meetings with the child or the whole family: when and where, the "
        "agenda, who was invited and who attended, earlier times, a visit's outcome, why one "
        "did not happen (a held one's record is its contact in `interventions`).",
    ),
    "team_members": row_of(
        CaseTeamMember,
        "SubjectAccessTeamMember",
        "The team around the family on those cases: staff and partner agencies, with when "
        "each joined and left.",
    ),
    "measures": row_of(Measure, "SubjectAccessMeasure", "The child's measures."),
    "timetables": row_of(
        Timetable, "SubjectAccessTimetable", "The child's re-integration timetables."
    ),
    "signposts": row_of(
        Signpost, "SubjectAccessSignpost", "Signposts for the child or the family."
    ),
    "documents": row_of(
        CaseDocument,
        "SubjectAccessDocument",
        "Documents on those cases (what each is; its content is fetched from "
        "`GET /v1/cases/{case_id}/documents/{id}/content`).",
        without=("storage_key",),
    ),
    "chronology": row_of(
        CaseworkEvent,
        "SubjectAccessCaseworkEvent",
        "Every step of those referrals' and cases' lives.",
    ),
    "audit_events": AuditEventRow,
}


class ChildSubject(BaseModel):
    """Who a child's export is about. A child on a roll is every pupil record of theirs
    within reach (the same UPN); a child known only by name is matched by given name,
    family name and date of birth on referrals and cases; a child on a referral whose pupil
    record is at a school outside reach (a cross-border pupil) is matched by that record's
    id on referrals and cases, and no pupil-level record is exported."""

    kind: Literal["pupil", "named_child", "linked_child"]
    pupil_ids: list[uuid.UUID] = Field(description="The child's pupil records exported.")
    linked_pupil_id: uuid.UUID | None = Field(
        default=None, description="For a linked child: the pupil record outside reach."
    )
    given_name: str
    family_name: str
    date_of_birth: date | None
    upn: str | None
    referral_id: uuid.UUID | None = Field(
        default=None, description="For a child known by name: the referral asked about."
    )
    position: int | None = Field(default=None, description="The child's place on it (0-based).")


def export_of(name: str, doc: str, subject: type[BaseModel], records: dict[str, Any]) -> Any:
    """An export's read model: its subject, when it was made, one list per record type."""
    fields: dict[str, Any] = {"subject": (subject, ...), "generated_at": (datetime, ...)}
    fields |= {record: (list[model], ...) for record, model in records.items()}  # type: ignore[valid-type]
    return create_model(name, __doc__=doc, **fields)


ChildExport = export_of(
    "ChildSubjectAccess",
    "Everything Liaison holds about one child, one list per record type.",
    ChildSubject,
    CHILD_RECORDS,
)


# --- a family member ---------------------------------------------------------------------


class FamilyMemberQuery(InputModel):
    """Who to look for: the name as recorded (any case); a phone or email narrows it to
    entries recorded with the same one."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Text200
    phone: str | None = Field(default=None, min_length=1, max_length=40)
    email: str | None = Field(default=None, min_length=1, max_length=254)


class FamilyEntryRow(BaseModel):
    """What a referral records about the person: their entry in its family list."""

    referral_id: uuid.UUID
    position: int = Field(description="The entry's place in the referral's family list.")
    name: str
    relationship: str | None
    phone: str | None
    email: str | None
    preferred_contact: str | None
    language: str | None
    interpreter_needed: bool | None


class ConsentRow(BaseModel):
    """A consent the person gave, on a referral or a case."""

    record_type: Literal["referral", "case"]
    record_id: uuid.UUID
    given: bool | None
    given_by: str
    date: str | None
    share_with: list[str]


FAMILY_RECORDS: dict[str, Any] = {
    "referrals": row_of(
        Referral,
        "SubjectAccessFamilyReferral",
        "Referrals naming the person (their family list is in `family_entries`).",
        without=("family",),
    ),
    "family_entries": FamilyEntryRow,
    "consents": ConsentRow,
    "cases": row_of(Case, "SubjectAccessFamilyCase", "The cases those referrals led to."),
    "actions": row_of(
        CaseAction,
        "SubjectAccessFamilyAction",
        "Actions on those cases the person owns by name: as a family member, or as written on "
        "a contact's or meeting's action plan.",
    ),
    "action_statuses": row_of(
        CaseActionStatus,
        "SubjectAccessFamilyActionStatus",
        "Every status those actions took, with its note.",
    ),
    "meetings": row_of(
        Meeting,
        "SubjectAccessFamilyMeeting",
        "Planned contacts and meetings on those cases the person was invited to or attended, "
        "as recorded: when and where, the agenda, everyone invited and attending, earlier "
        "times, a visit's outcome, why one did not happen.",
    ),
}


class FamilyMemberSubject(BaseModel):
    name: str
    phone: str | None
    email: str | None


FamilyMemberExport = export_of(
    "FamilyMemberSubjectAccess",
    "Everything Liaison holds about one family member, one list per record type.",
    FamilyMemberSubject,
    FAMILY_RECORDS,
)
