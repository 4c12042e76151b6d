"""Early-help cases: opened, run, closed with approval, reopened, and their chronology."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.deps import (
    AuditorDep,
    CaseApprover,
    CaseReader,
    CaseWriter,
    ExpectedVersion,
    OptionalExpectedVersion,
    PageDep,
    SessionDep,
    SettingsDep,
)
from app.errors import problem_responses
from app.etags import etag
from app.idempotency import Answer, IdempotencyKeyHeader, create_once
from app.models.case import (
    Case,
    CaseCreate,
    CasePage,
    CaseRead,
    CaseStatus,
    CaseUpdate,
    Chronology,
    ClosureRequest,
    Reopen,
)
from app.models.referral import Approval
from app.security import Principal
from app.services import cases, chronology

router = APIRouter(tags=["cases"], responses=problem_responses(401, 403, 500, 503))


_CHANGE_RESPONSES = problem_responses(404, 409, 412, 422, 428)
# Closing, approving a closure and reopening take If-Match when sent; without it they act on
# the current version (never 428).
_STEP_RESPONSES = problem_responses(404, 409, 412, 422)


async def _answer(
    session: SessionDep,
    settings: SettingsDep,
    principal: Principal,
    case: Case,
    response: Response,
) -> CaseRead:
    [read] = await cases.present(session, principal, [case], settings.review_interval_weeks)
    response.headers["ETag"] = etag(case.version)
    return read


@router.post(
    "/v1/cases",
    response_model=CaseRead,
    status_code=201,
    responses=problem_responses(409, 422),
)
async def open_case(
    new: CaseCreate,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: CaseWriter,
    auditor: AuditorDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Open a case directly, for example from an attendance flag (`attendance_flag_id`)."""

    async def open_it() -> Answer:
        case = await cases.create(auditor, new)
        [read] = await cases.present(session, principal, [case], settings.review_interval_weeks)
        headers = {"ETag": etag(case.version), "Location": f"/v1/cases/{case.id}"}
        return Answer(201, read.model_dump_json(), headers)

    return await create_once(request, auditor, idempotency_key, settings.idempotency_hours, open_it)


@router.get("/v1/cases", response_model=CasePage, responses=problem_responses(400, 422))
async def list_cases(
    session: SessionDep,
    settings: SettingsDep,
    principal: CaseReader,
    auditor: AuditorDep,
    page: PageDep,
    status: CaseStatus | None = None,
    lead_practitioner_id: uuid.UUID | None = None,
    school_id: uuid.UUID | None = None,
    level_of_need: Annotated[str | None, Query(max_length=64)] = None,
    review_overdue: Annotated[
        bool | None, Query(description="Open cases whose next review is before today.")
    ] = None,
) -> CasePage:
    """Cases within reach, oldest first."""
    weeks = settings.review_interval_weeks
    filters = cases.CaseFilters(
        status, lead_practitioner_id, school_id, level_of_need, review_overdue, weeks
    )
    items, next_cursor = await cases.get_all(auditor, page, filters)
    return CasePage(
        items=await cases.present(session, principal, items, weeks), next_cursor=next_cursor
    )


@router.get("/v1/cases/{case_id}", response_model=CaseRead, responses=problem_responses(404, 422))
async def read_case(
    case_id: uuid.UUID,
    response: Response,
    settings: SettingsDep,
    _principal: CaseReader,
    auditor: AuditorDep,
) -> CaseRead:
    case, shown = await cases.read(auditor, case_id, settings.review_interval_weeks)
    response.headers["ETag"] = etag(case.version)
    return shown


@router.patch("/v1/cases/{case_id}", response_model=CaseRead, responses=_CHANGE_RESPONSES)
async def update_case(
    case_id: uuid.UUID,
    change: CaseUpdate,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    principal: CaseWriter,
    auditor: AuditorDep,
    expected: ExpectedVersion,
) -> CaseRead:
    """Change the lead practitioner, level of need, children (the list is replaced) or
    consent. Consent given `false` records it withdrawn: contacts are then refused until it
    is given again."""
    case = await cases.update(auditor, case_id, expected, change)
    return await _answer(session, settings, principal, case, response)


@router.post("/v1/cases/{case_id}/closure", response_model=CaseRead, responses=_STEP_RESPONSES)
async def close_case(
    case_id: uuid.UUID,
    request: ClosureRequest,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    principal: CaseWriter,
    auditor: AuditorDep,
    expected: OptionalExpectedVersion,
) -> CaseRead:
    """Ask to close the case. It closes at once for a caller with `cases:approve`; otherwise
    it stays open with `pending_closure` until a manager approves."""
    case = await cases.request_closure(auditor, case_id, expected, request)
    return await _answer(session, settings, principal, case, response)


@router.post(
    "/v1/cases/{case_id}/closure/approval", response_model=CaseRead, responses=_STEP_RESPONSES
)
async def approve_case_closure(
    case_id: uuid.UUID,
    approval: Approval,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    principal: CaseApprover,
    auditor: AuditorDep,
    expected: OptionalExpectedVersion,
) -> CaseRead:
    """A manager approves the pending closure (the case closes with its reason) or refuses
    it (the case stays open)."""
    case = await cases.decide_closure(auditor, case_id, expected, approval.approve, approval.note)
    return await _answer(session, settings, principal, case, response)


@router.post("/v1/cases/{case_id}/reopen", response_model=CaseRead, responses=_STEP_RESPONSES)
async def reopen_case(
    case_id: uuid.UUID,
    body: Reopen,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    principal: CaseWriter,
    auditor: AuditorDep,
    expected: OptionalExpectedVersion,
) -> CaseRead:
    case = await cases.reopen(auditor, case_id, expected, body.reason)
    return await _answer(session, settings, principal, case, response)


@router.get(
    "/v1/cases/{case_id}/chronology",
    response_model=Chronology,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        **problem_responses(404, 422),
    },
)
async def case_chronology(
    case_id: uuid.UUID,
    request: Request,
    _principal: CaseReader,
    auditor: AuditorDep,
) -> Response:
    """Every event of the case in time order: its referrals and their decisions, its own
    changes, and its children's attendance flags. CSV with `Accept: text/csv`."""
    items = await cases.chronology_of(auditor, case_id)
    if "text/csv" in request.headers.get("accept", ""):
        return Response(
            chronology.as_csv(items),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="case-{case_id}.csv"'},
        )
    return Response(
        Chronology(case_id=case_id, items=items).model_dump_json(), media_type="application/json"
    )
