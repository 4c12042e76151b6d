"""The closures and sustained-outcomes reports (scope `reports:read`). Definitions of every
figure: docs/reports.md."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.deps import AuditorDep, ReportReader
from app.errors import problem_responses
from app.models.report_closures import ClosureReport, SustainedReport
from app.routers.reports import REPORT_RESPONSES, PeriodQueryDep, respond
from app.services import report_closures, report_sustained

router = APIRouter(tags=["reports"], responses=problem_responses(401, 403, 500, 503))


@router.get("/v1/reports/closures", response_model=ClosureReport, responses=REPORT_RESPONSES)
async def closure_report(
    request: Request, _principal: ReportReader, auditor: AuditorDep, query: PeriodQueryDep
) -> Response:
    """The cases whose latest closure falls in the period: in total, by reason, by school,
    by lead practitioner and by where they went; cases, children, families and days open."""
    report = await report_closures.closures(
        auditor, query.start, query.end, query.school_id, query.suppress_below
    )
    return respond(request, report)


@router.get(
    "/v1/reports/sustained-outcomes", response_model=SustainedReport, responses=REPORT_RESPONSES
)
async def sustained_outcome_report(
    request: Request, _principal: ReportReader, auditor: AuditorDep, query: PeriodQueryDep
) -> Response:
    """The cases closed as needs met or stepped down to school from `from` to six months
    before `to`: how many had no re-referral, no new persistent-absence flag and no step-up
    in the six months after closure."""
    report = await report_sustained.sustained_outcomes(
        auditor, query.start, query.end, query.school_id, query.suppress_below
    )
    return respond(request, report)
