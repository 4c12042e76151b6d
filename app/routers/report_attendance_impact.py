"""The attendance-impact report (scope `reports:read`): children's attendance before their
case opened and since, pooled, per term and per child. Definitions: docs/reports.md."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.deps import AuditorDep, ReportReader
from app.errors import problem_responses
from app.models.report_attendance_impact import AttendanceImpactReport
from app.routers.reports import REPORT_RESPONSES, PeriodQueryDep, respond
from app.services import report_attendance_impact

router = APIRouter(tags=["reports"], responses=problem_responses(401, 403, 500, 503))


@router.get(
    "/v1/reports/attendance-impact",
    response_model=AttendanceImpactReport,
    responses=REPORT_RESPONSES,
)
async def attendance_impact_report(
    request: Request,
    _principal: ReportReader,
    auditor: AuditorDep,
    query: PeriodQueryDep,
    before_weeks: Annotated[
        int,
        Query(
            ge=1,
            le=52,
            description="School weeks (weeks with a possible session) in the before window.",
        ),
    ] = report_attendance_impact.DEFAULT_BEFORE_WEEKS,
) -> Response:
    """For the children of the cases open in the period: attendance in the school weeks
    before their case opened and since (to its closure or `to`), pooled and per child, with
    the number who improved; and the same children's attendance term by term."""
    report = await report_attendance_impact.attendance_impact(
        auditor, query.start, query.end, query.school_id, before_weeks, query.suppress_below
    )
    return respond(request, report)
