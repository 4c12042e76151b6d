"""Referrals: made by hubs and schools, triaged and decided by practitioners."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.deps import (
    Admin,
    AnyPrincipal,
    AuditorDep,
    ExpectedVersion,
    LaCodeQuery,
    PageDep,
    ReferralDecider,
    ReferralReader,
    ReferralWriter,
    SessionDep,
    SettingsDep,
    StepUpApprover,
)
from app.errors import problem_responses
from app.etags import etag
from app.idempotency import Answer, IdempotencyKeyHeader, create_once
from app.models.base import IsoDate
from app.models.referral import (
    Approval,
    ConcernCreate,
    ConcernList,
    ConcernRead,
    NeedLevelCreate,
    NeedLevelList,
    NeedLevelRead,
    Referral,
    ReferralConcern,
    ReferralCreate,
    ReferralDecide,
    ReferralPage,
    ReferralRead,
    ReferralStatus,
    Withdrawal,
)
from app.reach import readable_las
from app.security import Principal
from app.services import reference, referral_terms, referrals

router = APIRouter(tags=["referrals"], responses=problem_responses(401, 403, 500, 503))


_CHANGE_RESPONSES = problem_responses(404, 409, 412, 422, 428)


async def _answer(
    session: SessionDep,
    principal: Principal,
    referral: Referral,
    response: Response,
    *,
    with_history: bool = True,
) -> ReferralRead:
    [read] = await referrals.present(session, principal, [referral], with_history=with_history)
    response.headers["ETag"] = etag(referral.version)
    return read


# --- reference data ------------------------------------------------------------------------


@router.get(
    "/v1/referral-concerns", response_model=ConcernList, responses=problem_responses(404, 422)
)
async def list_concerns(
    session: SessionDep, principal: AnyPrincipal, la_code: LaCodeQuery = None
) -> ConcernList:
    """The concerns a referral may name: the national ones and the caller's LAs' own."""
    items = await referral_terms.concerns(session, readable_las(principal, la_code))
    return ConcernList(items=[ConcernRead.model_validate(c) for c in items])


@router.post(
    "/v1/referral-concerns",
    response_model=ConcernRead,
    status_code=201,
    responses=problem_responses(409, 422),
)
async def create_concern(new: ConcernCreate, session: SessionDep, admin: Admin) -> ConcernRead:
    """Add a concern to the admin's own LA's list (national concerns are the operator's:
    `liaison reference add`)."""
    concern = await reference.add_own(session, admin, ReferralConcern, new, "concern")
    return ConcernRead.model_validate(concern)


@router.get(
    "/v1/levels-of-need", response_model=NeedLevelList, responses=problem_responses(404, 422)
)
async def list_levels(
    session: SessionDep,
    principal: AnyPrincipal,
    la_code: Annotated[
        str | None,
        Query(
            max_length=10,
            pattern=r"^[0-9A-Z]{1,10}$",
            description="An LA the caller works in (default: the caller's own LA).",
        ),
    ] = None,
) -> NeedLevelList:
    """The LA's levels of need (the default set when it has none of its own)."""
    if la_code is not None:
        readable_las(principal, la_code)
    items = await referral_terms.levels(session, la_code or principal.reach.home_la)
    return NeedLevelList(items=[referral_terms.present_level(level) for level in items])


@router.post(
    "/v1/levels-of-need",
    response_model=NeedLevelRead,
    status_code=201,
    responses=problem_responses(409, 422),
)
async def create_level(new: NeedLevelCreate, session: SessionDep, admin: Admin) -> NeedLevelRead:
    """Add a level of need to the admin's own LA's set. An LA with any level of its own uses
    only its own set; the default set is the operator's (`liaison reference add`)."""
    return referral_terms.present_level(await referral_terms.add_level(session, admin, new))


# --- referrals ----------------------------------------------------------------------------


@router.post(
    "/v1/referrals",
    response_model=ReferralRead,
    status_code=201,
    responses={
        200: {
            "model": ReferralRead,
            "description": "This referrer already sent this `external_reference`.",
        },
        **problem_responses(409, 422),
    },
)
async def create_referral(
    new: ReferralCreate,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: ReferralWriter,
    auditor: AuditorDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Refer children and their family for early help. Retrying is safe: the same
    `Idempotency-Key`, or the same `external_reference` from the same referrer, answers with
    the original referral and never makes a second one."""

    async def refer() -> Answer:
        referral, created = await referrals.create(auditor, new)
        [read] = await referrals.present(session, principal, [referral], with_history=True)
        headers = {"ETag": etag(referral.version), "Location": f"/v1/referrals/{referral.id}"}
        if not created:
            headers["Idempotent-Replayed"] = "true"
        return Answer(201 if created else 200, read.model_dump_json(), headers)

    return await create_once(request, auditor, idempotency_key, settings.idempotency_hours, refer)


@router.get("/v1/referrals", response_model=ReferralPage, responses=problem_responses(400, 422))
async def list_referrals(
    session: SessionDep,
    principal: ReferralReader,
    auditor: AuditorDep,
    page: PageDep,
    status: ReferralStatus | None = None,
    school_id: uuid.UUID | None = None,
    received_from: Annotated[IsoDate | None, Query(description="Received on or after.")] = None,
    received_to: Annotated[IsoDate | None, Query(description="Received on or before.")] = None,
) -> ReferralPage:
    """Referrals the caller may see, oldest first: a client only those it sent; staff those
    about children at schools within their reach, or of their LA."""
    filters = referrals.ReferralFilters(status, school_id, received_from, received_to)
    items, next_cursor = await referrals.get_all(auditor, page, filters)
    return ReferralPage(
        items=await referrals.present(session, principal, items), next_cursor=next_cursor
    )


@router.get(
    "/v1/referrals/{referral_id}",
    response_model=ReferralRead,
    responses=problem_responses(404, 422),
)
async def read_referral(
    referral_id: uuid.UUID,
    response: Response,
    session: SessionDep,
    principal: ReferralReader,
    auditor: AuditorDep,
) -> ReferralRead:
    """The referral with its status, decision and reason, and its history."""
    referral = await referrals.read(auditor, referral_id)
    return await _answer(session, principal, referral, response)


@router.post(
    "/v1/referrals/{referral_id}/review",
    response_model=ReferralRead,
    responses=_CHANGE_RESPONSES,
)
async def review_referral(
    referral_id: uuid.UUID,
    response: Response,
    session: SessionDep,
    principal: ReferralDecider,
    auditor: AuditorDep,
    expected: ExpectedVersion,
) -> ReferralRead:
    """Take a received referral into review (`received` → `under_review`)."""
    referral = await referrals.review(auditor, referral_id, expected)
    return await _answer(session, principal, referral, response)


@router.post(
    "/v1/referrals/{referral_id}/decision",
    response_model=ReferralRead,
    responses=_CHANGE_RESPONSES,
)
async def decide_referral(
    referral_id: uuid.UUID,
    decision: ReferralDecide,
    response: Response,
    session: SessionDep,
    principal: ReferralDecider,
    auditor: AuditorDep,
    expected: ExpectedVersion,
) -> ReferralRead:
    """Decide a referral, with a reason the referrer will read.

    - `accept` opens a case (or joins the open case of one of its children);
    - `decline` says what the family was signposted to;
    - `step_up` to children's social care takes effect at once for a caller with
      `cases:approve`, and otherwise waits as `awaiting_approval`;
    - `redirect` names where the referral went."""
    referral = await referrals.decide(auditor, referral_id, expected, decision)
    return await _answer(session, principal, referral, response)


@router.post(
    "/v1/referrals/{referral_id}/approval",
    response_model=ReferralRead,
    responses=_CHANGE_RESPONSES,
)
async def approve_referral_step_up(
    referral_id: uuid.UUID,
    approval: Approval,
    response: Response,
    session: SessionDep,
    principal: StepUpApprover,
    auditor: AuditorDep,
    expected: ExpectedVersion,
) -> ReferralRead:
    """A manager approves a step-up (→ `stepped_up`) or refuses it (→ `under_review`)."""
    referral = await referrals.approve_step_up(
        auditor, referral_id, expected, approval.approve, approval.note
    )
    return await _answer(session, principal, referral, response)


@router.post(
    "/v1/referrals/{referral_id}/withdrawal",
    response_model=ReferralRead,
    responses=_CHANGE_RESPONSES,
)
async def withdraw_referral(
    referral_id: uuid.UUID,
    withdrawal: Withdrawal,
    response: Response,
    session: SessionDep,
    principal: ReferralWriter,
    auditor: AuditorDep,
    expected: ExpectedVersion,
) -> ReferralRead:
    """The referrer withdraws its referral before a decision."""
    referral = await referrals.withdraw(auditor, referral_id, expected, withdrawal.reason)
    return await _answer(session, principal, referral, response)
