"""Reports (scope `reports:read`): one envelope as JSON, or its table as CSV with
`Accept: text/csv`. Definitions of every figure: docs/reports.md."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from app.deps import AuditorDep, ReportReader
from app.errors import problem_responses
from app.models.base import IsoDate
from app.models.report import OutcomeReport, Report
from app.services import report_tables, reports

router = APIRouter(tags=["reports"], responses=problem_responses(401, 403, 500, 503))

# What every report route declares it answers.
REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "name,count\r\nexample,12\r\n",
            }
        },
        "description": "The report as JSON, or its table as CSV with `Accept: text/csv`.",
    },
    **problem_responses(404, 422),
}


# The query parameters every report takes.
SchoolFilter = Annotated[
    uuid.UUID | None, Query(description="Only this school's (within reach, else 404).")
]
SuppressBelow = Annotated[
    int | None,
    Query(
        ge=2,
        le=100,
        description="For publication: withhold every count from 1 to N-1, and any cell "
        "that would reveal one.",
    ),
]


@dataclass
class PeriodQuery:
    """`from`, `to`, `school_id` and `suppress_below`, as every period report takes them."""

    start: Annotated[
        IsoDate | None,
        Query(alias="from", description="First day (default: 1 August of the academic year)."),
    ] = None
    end: Annotated[IsoDate | None, Query(alias="to", description="Last day (default: today).")] = (
        None
    )
    school_id: SchoolFilter = None
    suppress_below: SuppressBelow = None


PeriodQueryDep = Annotated[PeriodQuery, Depends()]


def respond(request: Request, report: Report[Any]) -> Response:
    """JSON, or the table as CSV when the caller asks for `text/csv`."""
    if "text/csv" in request.headers.get("accept", ""):
        span = report.period
        name = "_".join(
            part
            for part in (report.report, str(span.from_) if span.from_ else "", str(span.to))
            if part
        )
        return Response(
            report_tables.as_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return Response(report.model_dump_json(by_alias=True), media_type="application/json")


@router.get("/v1/reports/outcomes", response_model=OutcomeReport, responses=REPORT_RESPONSES)
async def outcome_report(
    request: Request, _principal: ReportReader, auditor: AuditorDep, query: PeriodQueryDep
) -> Response:
    """Goals of the cases open in the period, each counted once in the band of its latest
    review score (score x 10%) where that score rose above the goal's first: the positive
    impacts. Families are the cases with a goal scaled; the rest are too early to scale."""
    report = await reports.outcomes(
        auditor, query.start, query.end, query.school_id, query.suppress_below
    )
    return respond(request, report)
