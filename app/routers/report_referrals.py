"""The referrals report (scope `reports:read`): JSON, or CSV with `Accept: text/csv`.
Definitions of every figure: docs/reports.md."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.deps import AuditorDep, ReportReader
from app.errors import problem_responses
from app.models.report_referrals import ReferralReport
from app.routers.reports import REPORT_RESPONSES, PeriodQueryDep, respond
from app.services import report_referrals

router = APIRouter(tags=["reports"], responses=problem_responses(401, 403, 500, 503))


@router.get("/v1/reports/referrals", response_model=ReferralReport, responses=REPORT_RESPONSES)
async def referral_report(
    request: Request, _principal: ReportReader, auditor: AuditorDep, query: PeriodQueryDep
) -> Response:
    """Referrals received in the period: in total and by source (hub, school, attendance
    flag, other) with their decisions, the children referred, the median time to decision
    and the re-referrals; then by decision and reason category, and by the service each
    signposted the family to."""
    report = await report_referrals.referrals_report(
        auditor, query.start, query.end, query.school_id, query.suppress_below
    )
    return respond(request, report)
