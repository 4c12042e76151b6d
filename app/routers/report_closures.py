"""The closures report (scope `reports:read`). Definitions of every
figure: docs/reports.md."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.deps import AuditorDep, ReportReader
from app.errors import problem_responses
from app.models.report_closures import ClosureReport
from app.routers.reports import REPORT_RESPONSES, PeriodQueryDep, respond
from app.services import report_closures

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
