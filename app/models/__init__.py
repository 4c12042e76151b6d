"""Every table, imported here so `SQLModel.metadata` is complete for Alembic and the tests."""

from app.models.action import CaseAction, CaseActionStatus
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
from app.models.case_team import CaseTeamMember
from app.models.directory import (
    DirectoryLocation,
    DirectoryOrganization,
    DirectorySchedule,
    DirectoryService,
    DirectoryServiceAtLocation,
    DirectoryServiceTerm,
    DirectoryTaxonomy,
    DirectoryTaxonomyTerm,
)
from app.models.document import CaseDocument, LetterTemplate
from app.models.event import OutboxEvent
from app.models.idempotency import IdempotentRequest
from app.models.intervention import Intervention, Timetable
from app.models.legal_hold import LegalHold
from app.models.measure import Measure, MeasureInstrument
from app.models.meeting import Meeting
from app.models.plan import Goal, OutcomeCategory, Review, ReviewScore
from app.models.principal import ApiClient, ApiClientSchool, StaffMember, StaffMemberSchool
from app.models.pupil import Pupil, PupilIdentityChange
from app.models.ratelimit import RateLimitCounter
from app.models.referral import NeedLevel, Referral, ReferralChild, ReferralConcern
from app.models.retention import AuditDisposalPermit, RetentionCutoff
from app.models.school import School
from app.models.signpost import Signpost
from app.models.webhook import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookSecret,
    WebhookSubscription,
)

__all__ = [
    "ApiClient",
    "ApiClientSchool",
    "AttendanceCode",
    "AttendanceFlag",
    "AttendanceFlagEvent",
    "AttendanceMark",
    "AttendanceWeek",
    "AuditDisposalPermit",
    "AuditEvent",
    "AuditEventPupil",
    "Case",
    "CaseAction",
    "CaseActionStatus",
    "CaseChild",
    "CaseDocument",
    "CaseTeamMember",
    "CaseworkEvent",
    "DirectoryLocation",
    "DirectoryOrganization",
    "DirectorySchedule",
    "DirectoryService",
    "DirectoryServiceAtLocation",
    "DirectoryServiceTerm",
    "DirectoryTaxonomy",
    "DirectoryTaxonomyTerm",
    "Goal",
    "IdempotentRequest",
    "Intervention",
    "LegalHold",
    "LetterTemplate",
    "Measure",
    "MeasureInstrument",
    "Meeting",
    "NeedLevel",
    "OutboxEvent",
    "OutcomeCategory",
    "Pupil",
    "PupilIdentityChange",
    "RateLimitCounter",
    "Referral",
    "ReferralChild",
    "ReferralConcern",
    "RetentionCutoff",
    "Review",
    "ReviewScore",
    "School",
    "SchoolCodeMapping",
    "Signpost",
    "StaffMember",
    "StaffMemberSchool",
    "Timetable",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSecret",
    "WebhookSubscription",
    "new_id",
    "utcnow",
]
