"""Every table, imported here so `SQLModel.metadata` is complete for Alembic and the tests."""

from app.models.attendance import (
    AttendanceCode,
    AttendanceFlag,
    AttendanceFlagEvent,
    AttendanceMark,
    AttendanceWeek,
    SchoolCodeMapping,
)
from app.models.audit import AuditEvent, AuditEventPupil
from app.models.base import new_id, utcnow
from app.models.case import Case, CaseChild, CaseworkEvent
from app.models.event import OutboxEvent
from app.models.idempotency import IdempotentRequest
from app.models.principal import ApiClient, ApiClientSchool, StaffMember, StaffMemberSchool
from app.models.pupil import Pupil
from app.models.referral import NeedLevel, Referral, ReferralChild, ReferralConcern
from app.models.school import School

__all__ = [
    "ApiClient",
    "ApiClientSchool",
    "AttendanceCode",
    "AttendanceFlag",
    "AttendanceFlagEvent",
    "AttendanceMark",
    "AttendanceWeek",
    "AuditEvent",
    "AuditEventPupil",
    "Case",
    "CaseChild",
    "CaseworkEvent",
    "IdempotentRequest",
    "NeedLevel",
    "OutboxEvent",
    "Pupil",
    "Referral",
    "ReferralChild",
    "ReferralConcern",
    "School",
    "SchoolCodeMapping",
    "StaffMember",
    "StaffMemberSchool",
    "new_id",
    "utcnow",
]
