"""A case's family plan and record: goals, reviews, contacts, timetables, measures and
signposts. Reading needs `cases:read`, writing `cases:write`; the case must be within reach."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import (
    Admin,
    AnyPrincipal,
    AuditorDep,
    CaseReader,
    CaseWriter,
    LaCodeQuery,
    SessionDep,
)
from app.errors import problem_responses
from app.models.intervention import (
    InterventionCreate,
    InterventionList,
    InterventionRead,
    TimetableRead,
    TimetableSet,
)
from app.models.measure import (
    InstrumentCreate,
    InstrumentList,
    InstrumentRead,
    MeasureCreate,
    MeasureInstrument,
    MeasureList,
    MeasureRead,
)
from app.models.plan import (
    GoalCreate,
    GoalList,
    GoalRead,
    OutcomeCategory,
    OutcomeCategoryCreate,
    OutcomeCategoryList,
    OutcomeCategoryRead,
    ReviewCreate,
    ReviewList,
    ReviewRead,
)
from app.models.signpost import SignpostCreate, SignpostList, SignpostRead, SignpostUpdate
from app.reach import readable_las
from app.services import interventions, measures, plans, reference, signposts

router = APIRouter(tags=["family plans"], responses=problem_responses(401, 403, 500, 503))


_READ = problem_responses(404, 422)
_WRITE = problem_responses(404, 409, 422)


# --- reference data ------------------------------------------------------------------------


@router.get("/v1/outcome-categories", response_model=OutcomeCategoryList, responses=_READ)
async def list_outcome_categories(
    session: SessionDep, principal: AnyPrincipal, la_code: LaCodeQuery = None
) -> OutcomeCategoryList:
    """The outcome categories goals are counted in: the national ones and the caller's
    LAs' own."""
    items = await plans.categories(session, readable_las(principal, la_code))
    return OutcomeCategoryList(items=[OutcomeCategoryRead.model_validate(c) for c in items])


@router.post(
    "/v1/outcome-categories",
    response_model=OutcomeCategoryRead,
    status_code=201,
    responses=problem_responses(409, 422),
)
async def create_outcome_category(
    new: OutcomeCategoryCreate, session: SessionDep, admin: Admin
) -> OutcomeCategoryRead:
    """Add a category to the admin's own LA's list."""
    category = await reference.add_own(session, admin, OutcomeCategory, new, "outcome category")
    return OutcomeCategoryRead.model_validate(category)


@router.get("/v1/measure-instruments", response_model=InstrumentList, responses=_READ)
async def list_instruments(
    session: SessionDep, principal: AnyPrincipal, la_code: LaCodeQuery = None
) -> InstrumentList:
    """The scored instruments measures are recorded on: the national ones and the caller's
    LAs' own (attendance is not one: it comes from the attendance data)."""
    items = await measures.instruments(session, readable_las(principal, la_code))
    return InstrumentList(items=[InstrumentRead.model_validate(i) for i in items])


@router.post(
    "/v1/measure-instruments",
    response_model=InstrumentRead,
    status_code=201,
    responses=problem_responses(409, 422),
)
async def create_instrument(
    new: InstrumentCreate, session: SessionDep, admin: Admin
) -> InstrumentRead:
    """Add an instrument to the admin's own LA's list."""
    instrument = await reference.add_own(session, admin, MeasureInstrument, new, "instrument")
    return InstrumentRead.model_validate(instrument)


# --- goals and reviews ---------------------------------------------------------------------


@router.post(
    "/v1/cases/{case_id}/goals", response_model=GoalRead, status_code=201, responses=_WRITE
)
async def add_goal(
    case_id: uuid.UUID,
    new: GoalCreate,
    _principal: CaseWriter,
    auditor: AuditorDep,
) -> GoalRead:
    """Add a goal of the family plan, in an outcome category, optionally for one child."""
    return await plans.add_goal(auditor, case_id, new)


@router.get("/v1/cases/{case_id}/goals", response_model=GoalList, responses=_READ)
async def list_goals(case_id: uuid.UUID, _principal: CaseReader, auditor: AuditorDep) -> GoalList:
    return GoalList(items=await plans.goals(auditor, case_id))


@router.post(
    "/v1/cases/{case_id}/reviews", response_model=ReviewRead, status_code=201, responses=_WRITE
)
async def hold_review(
    case_id: uuid.UUID,
    new: ReviewCreate,
    _principal: CaseWriter,
    auditor: AuditorDep,
) -> ReviewRead:
    """Record a review: what worries, what is working well, next steps, and each goal's
    agreed 0-10 scaling (with each respondent's own view kept beside it)."""
    return await plans.hold_review(auditor, case_id, new)


@router.get("/v1/cases/{case_id}/reviews", response_model=ReviewList, responses=_READ)
async def list_reviews(
    case_id: uuid.UUID, _principal: CaseReader, auditor: AuditorDep
) -> ReviewList:
    return ReviewList(items=await plans.reviews(auditor, case_id))


# --- contacts and timetables ---------------------------------------------------------------


@router.post(
    "/v1/cases/{case_id}/interventions",
    response_model=InterventionRead,
    status_code=201,
    responses=_WRITE,
)
async def record_intervention(
    case_id: uuid.UUID,
    new: InterventionCreate,
    _principal: CaseWriter,
    auditor: AuditorDep,
) -> InterventionRead:
    """Record a contact or intervention. A phone or online contact with a child needs the
    parent's recorded consent; a home visit records its risk assessment; a formal meeting
    carries an agenda and a record. Nothing is recorded while consent is withdrawn (409)."""
    return await interventions.record(auditor, case_id, new)


@router.get("/v1/cases/{case_id}/interventions", response_model=InterventionList, responses=_READ)
async def list_interventions(
    case_id: uuid.UUID, _principal: CaseReader, auditor: AuditorDep
) -> InterventionList:
    return InterventionList(items=await interventions.get_all(auditor, case_id))


@router.put(
    "/v1/cases/{case_id}/timetables/{child_id}", response_model=TimetableRead, responses=_WRITE
)
async def set_timetable(
    case_id: uuid.UUID,
    child_id: uuid.UUID,
    plan: TimetableSet,
    _principal: CaseWriter,
    auditor: AuditorDep,
) -> TimetableRead:
    """Set (or replace) a child's phased return to full-time school."""
    return await interventions.set_timetable(auditor, case_id, child_id, plan)


@router.get(
    "/v1/cases/{case_id}/timetables/{child_id}", response_model=TimetableRead, responses=_READ
)
async def read_timetable(
    case_id: uuid.UUID,
    child_id: uuid.UUID,
    _principal: CaseReader,
    auditor: AuditorDep,
) -> TimetableRead:
    """The timetable with where the child is today and whether they are on a full week."""
    return await interventions.get_timetable(auditor, case_id, child_id)


# --- measures and signposts ----------------------------------------------------------------


@router.post(
    "/v1/cases/{case_id}/measures", response_model=MeasureRead, status_code=201, responses=_WRITE
)
async def record_measure(
    case_id: uuid.UUID,
    new: MeasureCreate,
    _principal: CaseWriter,
    auditor: AuditorDep,
) -> MeasureRead:
    return await measures.record(auditor, case_id, new)


@router.get("/v1/cases/{case_id}/measures", response_model=MeasureList, responses=_READ)
async def list_measures(
    case_id: uuid.UUID,
    _principal: CaseReader,
    auditor: AuditorDep,
    child_id: uuid.UUID | None = None,
    instrument: Annotated[str | None, Query(max_length=64)] = None,
) -> MeasureList:
    items = await measures.get_all(auditor, case_id, child_id, instrument)
    return MeasureList(items=items)


@router.post(
    "/v1/cases/{case_id}/signposts",
    response_model=SignpostRead,
    status_code=201,
    responses=_WRITE,
)
async def suggest_signpost(
    case_id: uuid.UUID,
    new: SignpostCreate,
    _principal: CaseWriter,
    auditor: AuditorDep,
) -> SignpostRead:
    """Signpost the family (or one child) to a service in the directory."""
    return await signposts.suggest(auditor, case_id, new)


@router.patch(
    "/v1/cases/{case_id}/signposts/{signpost_id}", response_model=SignpostRead, responses=_WRITE
)
async def update_signpost(
    case_id: uuid.UUID,
    signpost_id: uuid.UUID,
    change: SignpostUpdate,
    _principal: CaseWriter,
    auditor: AuditorDep,
) -> SignpostRead:
    """Move a signpost on: suggested → referred | declined | no_response; referred →
    engaged | declined | no_response | waitlisted; waitlisted → engaged | declined |
    no_response."""
    return await signposts.move(auditor, case_id, signpost_id, change)


@router.get("/v1/cases/{case_id}/signposts", response_model=SignpostList, responses=_READ)
async def list_signposts(
    case_id: uuid.UUID, _principal: CaseReader, auditor: AuditorDep
) -> SignpostList:
    return SignpostList(items=await signposts.get_all(auditor, case_id))
