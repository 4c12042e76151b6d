"""The Open Referral UK API (HSDS 3.0 UK profile): the service directory, public and read-only.

Deliberately open: these routes take no token, because the directory is public
information about services and holds no personal data. Every answer, errors included,
carries `Access-Control-Allow-Origin: *` so that other councils' and partners' web pages
can read it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.routing import APIRoute

from app.deps import SessionDep
from app.errors import NotFound, problem_responses
from app.models.base import IsoTime
from app.models.directory import (
    OrukApiInfo,
    OrukPage,
    OrukService,
    OrukServiceAtLocationFull,
    OrukServiceAtLocationSummary,
    OrukServiceSummary,
    OrukTaxonomy,
    OrukTaxonomyTerm,
    UtcDatetime,
)
from app.services import directory
from app.services.directory import PageRequest, ServiceFilters

DEFAULT_PER_PAGE = 50
# Bounds that keep the SQL OFFSET (page x per_page) far inside a 64-bit integer; the server
# caps `per_page` lower still.
MAX_PAGE = 1_000_000
MAX_PER_PAGE = 10_000
DAYS = r"(?i)^(MO|TU|WE|TH|FR|SA|SU|monday|tuesday|wednesday|thursday|friday|saturday|sunday)$"


class OpenToAnyOrigin(APIRoute):
    """A route whose every response, errors included, may be read from any web origin."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await handle(request)
            except Exception as exc:
                response = await _render(request, exc)
            response.headers["Access-Control-Allow-Origin"] = "*"
            return response

        return handler


async def _render(request: Request, exc: Exception) -> Response:
    """The app's own answer to `exc` (its problem+json handlers), so that CORS applies."""
    handlers = request.app.exception_handlers
    for kind in type(exc).__mro__:
        if kind in handlers:
            response: Response = await handlers[kind](request, exc)
            return response
    raise exc


# No `security`: open by design (see the module docstring).
PUBLIC: dict[str, Any] = {"security": []}

router = APIRouter(
    prefix="/oruk",
    tags=["oruk"],
    route_class=OpenToAnyOrigin,
    responses=problem_responses(500, 503),
)


async def page_request(
    request: Request,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1.")] = 1,
    per_page: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_PER_PAGE,
            description="Items per page; larger values are capped by the server.",
        ),
    ] = DEFAULT_PER_PAGE,
) -> PageRequest:
    cap: int = request.app.state.settings.page_max_limit
    return PageRequest(number=page, size=min(per_page, cap))


PageDep = Annotated[PageRequest, Depends(page_request)]


async def service_filters(
    search: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Words in a service's or organization's name, or "
            "the service's description.",
        ),
    ] = None,
    taxonomy_term_id: Annotated[uuid.UUID | None, Query()] = None,
    taxonomy_id: Annotated[
        uuid.UUID | None, Query(description="Services with any term of this taxonomy.")
    ] = None,
    organization_id: Annotated[uuid.UUID | None, Query()] = None,
    minimum_age: Annotated[
        float | None,
        Query(
            ge=0,
            le=150,
            allow_inf_nan=False,
            description="Services whose minimum age is at least this.",
        ),
    ] = None,
    maximum_age: Annotated[
        float | None,
        Query(
            ge=0,
            le=150,
            allow_inf_nan=False,
            description="Services whose maximum age is at most this.",
        ),
    ] = None,
    start_time: Annotated[
        IsoTime | None, Query(description="Services with a schedule opening at or after this.")
    ] = None,
    end_time: Annotated[
        IsoTime | None, Query(description="Services with a schedule closing at or before this.")
    ] = None,
    day: Annotated[
        str | None,
        Query(pattern=DAYS, description="`MO`…`SU` or a day's English name."),
    ] = None,
    modified_after: Annotated[
        UtcDatetime | None, Query(description="Without an offset, taken as UTC.")
    ] = None,
) -> ServiceFilters:
    return ServiceFilters(
        search=search,
        taxonomy_term_id=taxonomy_term_id,
        taxonomy_id=taxonomy_id,
        organization_id=organization_id,
        minimum_age=minimum_age,
        maximum_age=maximum_age,
        start_time=start_time,
        end_time=end_time,
        day=day,
        modified_after=modified_after,
    )


FiltersDep = Annotated[ServiceFilters, Depends(service_filters)]
# The profile's ids are strings: one that is not a UUID names nothing here (404, not 422).
RecordId = Annotated[str, Path(max_length=100)]


def _known(raw: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"No {what} with id {raw!r}.") from None


_ONE = problem_responses(404)
_PAGE = problem_responses(422)


@router.get("/", response_model=OrukApiInfo, openapi_extra=PUBLIC)
async def api_info(request: Request) -> OrukApiInfo:
    """Which HSDS version and profile this API follows, and where its OpenAPI is."""
    return directory.api_info(str(request.url_for("openapi")))


@router.get(
    "/services",
    response_model=OrukPage[OrukServiceSummary],
    response_model_exclude_none=True,
    openapi_extra=PUBLIC,
    responses=_PAGE,
)
async def list_services(
    session: SessionDep, page: PageDep, filters: FiltersDep
) -> OrukPage[OrukServiceSummary]:
    """Services with their one-to-one fields and organization, by name."""
    return await directory.list_services(session, filters, page)


@router.get(
    "/services/{service_id}",
    response_model=OrukService,
    response_model_exclude_none=True,
    openapi_extra=PUBLIC,
    responses=_ONE,
)
async def read_service(service_id: RecordId, session: SessionDep) -> OrukService:
    """A fully nested service."""
    return await directory.read_service(session, _known(service_id, "service"))


@router.get(
    "/taxonomies",
    response_model=OrukPage[OrukTaxonomy],
    response_model_exclude_none=True,
    openapi_extra=PUBLIC,
    responses=_PAGE,
)
async def list_taxonomies(session: SessionDep, page: PageDep) -> OrukPage[OrukTaxonomy]:
    return await directory.list_taxonomies(session, page)


@router.get(
    "/taxonomies/{taxonomy_id}",
    response_model=OrukTaxonomy,
    response_model_exclude_none=True,
    openapi_extra=PUBLIC,
    responses=_ONE,
)
async def read_taxonomy(taxonomy_id: RecordId, session: SessionDep) -> OrukTaxonomy:
    """A taxonomy with its terms."""
    return await directory.read_taxonomy(session, _known(taxonomy_id, "taxonomy"))


@router.get(
    "/taxonomy_terms",
    response_model=OrukPage[OrukTaxonomyTerm],
    response_model_exclude_none=True,
    openapi_extra=PUBLIC,
    responses=_PAGE,
)
async def list_taxonomy_terms(session: SessionDep, page: PageDep) -> OrukPage[OrukTaxonomyTerm]:
    return await directory.list_taxonomy_terms(session, page)


@router.get(
    "/taxonomy_terms/{term_id}",
    response_model=OrukTaxonomyTerm,
    response_model_exclude_none=True,
    openapi_extra=PUBLIC,
    responses=_ONE,
)
async def read_taxonomy_term(term_id: RecordId, session: SessionDep) -> OrukTaxonomyTerm:
    return await directory.read_taxonomy_term(session, _known(term_id, "taxonomy term"))


@router.get(
    "/service_at_locations",
    response_model=OrukPage[OrukServiceAtLocationSummary],
    response_model_exclude_none=True,
    openapi_extra=PUBLIC,
    responses=problem_responses(400, 422),
)
async def list_services_at_locations(
    session: SessionDep,
    page: PageDep,
    filters: FiltersDep,
    postcode: Annotated[
        str | None, Query(max_length=10, description="Not supported: answers 400.")
    ] = None,
    proximity: Annotated[
        str | None, Query(max_length=20, description="Not supported: answers 400.")
    ] = None,
) -> OrukPage[OrukServiceAtLocationSummary]:
    """Each service at each of its locations, with one-to-one fields."""
    filters = replace(filters, postcode=postcode, proximity=proximity)
    return await directory.list_services_at_locations(session, filters, page)


@router.get(
    "/service_at_locations/{service_at_location_id}",
    response_model=OrukServiceAtLocationFull,
    response_model_exclude_none=True,
    openapi_extra=PUBLIC,
    responses=_ONE,
)
async def read_service_at_location(
    service_at_location_id: RecordId, session: SessionDep
) -> OrukServiceAtLocationFull:
    """A service at one location, with the location and the service fully nested."""
    link_id = _known(service_at_location_id, "service_at_location")
    return await directory.read_service_at_location(session, link_id)
