"""The caseload report (scope `reports:read`): JSON, or CSV with `Accept: text/csv`.
Definitions of every figure: docs/reports.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from app.deps import AuditorDep, ReportReader, SettingsDep
from app.errors import problem_responses
from app.models.base import IsoDate
from app.models.report_caseload import CaseloadReport
from app.routers.reports import REPORT_RESPONSES, SchoolFilter, SuppressBelow, respond
from app.services import report_caseload

router = APIRouter(tags=["reports"], responses=problem_responses(401, 403, 500, 503))


@dataclass
class CaseloadQuery:
    """`as_of`, `school_id` and `suppress_below`."""

    as_of: Annotated[
        IsoDate | None,
        Query(description="The day the caseload stood on (default: today; not after it)."),
    ] = None
    school_id: SchoolFilter = None
    suppress_below: SuppressBelow = None


@router.get("/v1/reports/caseload", response_model=CaseloadReport, responses=REPORT_RESPONSES)
async def caseload_report(
    request: Request,
    _principal: ReportReader,
    auditor: AuditorDep,
    settings: SettingsDep,
    query: Annotated[CaseloadQuery, Depends()],
) -> Response:
    """Open cases and their children per lead practitioner as they stood on `as_of`, read
    from the recorded history (closures, reopenings, changes of lead), with the reviews
    overdue, the closures and step-ups awaiting approval, and the age of the open cases."""
    report = await report_caseload.caseload(
        auditor, query.as_of, query.school_id, query.suppress_below, settings.review_interval_weeks
    )
    return respond(request, report)
