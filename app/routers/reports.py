"""Reports (scope `reports:read`), as JSON or as CSV with `Accept: text/csv`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.deps import AuditorDep, ReportReader
from app.errors import problem_responses
from app.models.base import IsoDate
from app.models.report import OutcomeReport
from app.services import reports

router = APIRouter(tags=["reports"], responses=problem_responses(401, 403, 500, 503))


@router.get(
    "/v1/reports/outcomes",
    response_model=OutcomeReport,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        **problem_responses(422),
    },
)
async def outcome_report(
    request: Request,
    _principal: ReportReader,
    auditor: AuditorDep,
    start: Annotated[
        IsoDate | None,
        Query(alias="from", description="First day (default: 1 August of this academic year)."),
    ] = None,
    end: Annotated[
        IsoDate | None, Query(alias="to", description="Last day (default: today).")
    ] = None,
    school_id: uuid.UUID | None = None,
) -> Response:
    """Goals of the cases open in the period, each counted once in the band of its latest
    review score (score x 10%) where that score rose above the goal's first: the positive
    impacts. Families with no scored review yet are "too early to scale"."""
    report = await reports.outcomes(auditor, start, end, school_id)
    if "text/csv" in request.headers.get("accept", ""):
        return Response(
            reports.outcomes_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="outcomes.csv"'},
        )
    return Response(report.model_dump_json(by_alias=True), media_type="application/json")
