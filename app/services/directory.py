"""The service directory: partner services read in the Open Referral UK shape, written
through the API, and pulled from a council's ORUK feed.

Everything here is public information about services; nothing about children or families.
A service is written whole (the profile's fully nested record): its organization, taxonomy
terms and locations are created or updated by id, and its own lists (schedules, links to
terms and locations, contacts and the like) are replaced.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import ColumnElement, delete, exists, func, insert, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import BadRequest, Conflict, Forbidden, NotFound, ProblemItem, ValidationFailed
from app.models.base import new_id, utcnow
from app.models.directory import (
    DirectoryLocation,
    DirectoryOrganization,
    DirectorySchedule,
    DirectoryService,
    DirectoryServiceAtLocation,
    DirectoryServiceTerm,
    DirectoryTaxonomy,
    DirectoryTaxonomyTerm,
    OrukApiInfo,
    OrukAttribute,
    OrukLocation,
    OrukLocationSummary,
    OrukOrganization,
    OrukPage,
    OrukSchedule,
    OrukService,
    OrukServiceAtLocation,
    OrukServiceAtLocationFull,
    OrukServiceAtLocationSummary,
    OrukServiceSummary,
    OrukServiceWrite,
    OrukTaxonomy,
    OrukTaxonomyTerm,
    ServiceStatus,
)

T = TypeVar("T")
HSDS_VERSION = "3.0"
ORUK_PROFILE_URL = "https://github.com/openreferral/uk-profile"
# The service's own lists, kept as JSON in the profile's shape.
_JSON_LISTS = ("service_areas", "languages", "funding", "cost_options", "contacts")


def api_info(openapi_url: str) -> OrukApiInfo:
    return OrukApiInfo(version=HSDS_VERSION, profile=ORUK_PROFILE_URL, openapi_url=openapi_url)


# --- reads ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageRequest:
    number: int
    size: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


@dataclass(frozen=True)
class ServiceFilters:
    """The profile's service filters. Ages and times compare as the profile words them:
    `minimum_age` keeps services whose minimum age is at least the value, `maximum_age`
    those whose maximum is at most it; `start_time`, `end_time` and `day` must hold for one
    and the same schedule."""

    search: str | None = None
    taxonomy_term_id: uuid.UUID | None = None
    taxonomy_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    minimum_age: float | None = None
    maximum_age: float | None = None
    start_time: time | None = None
    end_time: time | None = None
    day: str | None = None  # RFC 5545 two-letter code or English day name
    modified_after: datetime | None = None
    postcode: str | None = None
    proximity: str | None = None


async def get_service(session: AsyncSession, service_id: uuid.UUID) -> DirectoryService:
    """The directory service with this id; `NotFound` if there is none."""
    service = await session.get(DirectoryService, service_id)
    if service is None:
        raise NotFound(f"No directory service with id {service_id}.")
    return service


async def check_services(
    session: AsyncSession, service_ids: Sequence[uuid.UUID], field: str
) -> None:
    """422 naming each id that is not a service in the directory."""
    if not service_ids:
        return
    query = select(DirectoryService.id).where(col(DirectoryService.id).in_(set(service_ids)))
    known = set((await session.exec(query)).all())
    problems = [
        ProblemItem(loc=["body", field, n], detail="no such service in the directory")
        for n, service_id in enumerate(service_ids)
        if service_id not in known
    ]
    if problems:
        raise ValidationFailed("Some services are not in the directory.", errors=problems)


def _envelope(contents: list[T], total: int, page: PageRequest) -> OrukPage[T]:
    total_pages = math.ceil(total / page.size)
    return OrukPage[T](
        total_items=total,
        total_pages=total_pages,
        page_number=page.number,
        size=len(contents),
        first_page=page.number == 1,
        last_page=page.number >= total_pages,
        empty=not contents,
        contents=contents,
    )


def _service_conditions(filters: ServiceFilters) -> list[ColumnElement[bool]]:
    if filters.postcode is not None or filters.proximity is not None:
        raise BadRequest(
            "This directory does not search by postcode or proximity: it holds no postcode "
            "geography. Filter by taxonomy term, age, day or time instead."
        )
    service = DirectoryService
    conditions: list[ColumnElement[bool]] = []
    if filters.search:
        needle = filters.search.strip().lower()
        conditions.append(
            or_(
                func.lower(col(service.name)).contains(needle, autoescape=True),
                func.lower(col(service.description)).contains(needle, autoescape=True),
                exists().where(
                    col(DirectoryOrganization.id) == col(service.organization_id),
                    func.lower(col(DirectoryOrganization.name)).contains(needle, autoescape=True),
                ),
            )
        )
    if filters.taxonomy_term_id is not None:
        conditions.append(
            exists().where(
                col(DirectoryServiceTerm.service_id) == col(service.id),
                col(DirectoryServiceTerm.taxonomy_term_id) == filters.taxonomy_term_id,
            )
        )
    if filters.taxonomy_id is not None:
        conditions.append(
            exists().where(
                col(DirectoryServiceTerm.service_id) == col(service.id),
                col(DirectoryTaxonomyTerm.id) == col(DirectoryServiceTerm.taxonomy_term_id),
                col(DirectoryTaxonomyTerm.taxonomy_id) == filters.taxonomy_id,
            )
        )
    if filters.organization_id is not None:
        conditions.append(col(service.organization_id) == filters.organization_id)
    if filters.minimum_age is not None:
        conditions.append(col(service.minimum_age) >= filters.minimum_age)
    if filters.maximum_age is not None:
        conditions.append(col(service.maximum_age) <= filters.maximum_age)
    if filters.modified_after is not None:
        conditions.append(col(service.last_modified) >= filters.modified_after)
    schedule: list[ColumnElement[bool]] = []
    if filters.day is not None:
        schedule.append(col(DirectorySchedule.byday).contains(filters.day[:2].upper()))
    if filters.start_time is not None:
        schedule.append(col(DirectorySchedule.opens_at) >= filters.start_time)
    if filters.end_time is not None:
        schedule.append(col(DirectorySchedule.closes_at) <= filters.end_time)
    if schedule:
        conditions.append(
            exists().where(col(DirectorySchedule.service_id) == col(service.id), *schedule)
        )
    return conditions


async def list_services(
    session: AsyncSession, filters: ServiceFilters, page: PageRequest
) -> OrukPage[OrukServiceSummary]:
    conditions = _service_conditions(filters)
    total = (
        await session.exec(select(func.count()).select_from(DirectoryService).where(*conditions))
    ).one()
    query = (
        select(DirectoryService)
        .where(*conditions)
        .order_by(col(DirectoryService.name), col(DirectoryService.id))
        .offset(page.offset)
        .limit(page.size)
    )
    services = list((await session.exec(query)).all())
    organizations = await _organizations(session, [s.organization_id for s in services])
    contents = [_summary(s, organizations) for s in services]
    return _envelope(contents, total, page)


async def read_service(session: AsyncSession, service_id: uuid.UUID) -> OrukService:
    return await present_service(session, await get_service(session, service_id))


async def present_service(
    session: AsyncSession, service: DirectoryService, *, with_locations: bool = True
) -> OrukService:
    """The fully nested service, as `/services/{id}` returns it."""
    organizations = await _organizations(session, [service.organization_id])
    terms = (
        await session.exec(
            select(DirectoryServiceTerm, DirectoryTaxonomyTerm)
            .join(
                DirectoryTaxonomyTerm,
                col(DirectoryTaxonomyTerm.id) == col(DirectoryServiceTerm.taxonomy_term_id),
            )
            .where(col(DirectoryServiceTerm.service_id) == service.id)
            .order_by(col(DirectoryTaxonomyTerm.name), col(DirectoryTaxonomyTerm.id))
        )
    ).all()
    schedules = (
        await session.exec(
            select(DirectorySchedule)
            .where(col(DirectorySchedule.service_id) == service.id)
            .order_by(col(DirectorySchedule.id))
        )
    ).all()
    places: Sequence[tuple[DirectoryServiceAtLocation, DirectoryLocation]] = []
    if with_locations:
        places = (
            await session.exec(
                select(DirectoryServiceAtLocation, DirectoryLocation)
                .join(
                    DirectoryLocation,
                    col(DirectoryLocation.id) == col(DirectoryServiceAtLocation.location_id),
                )
                .where(col(DirectoryServiceAtLocation.service_id) == service.id)
                .order_by(col(DirectoryLocation.name), col(DirectoryServiceAtLocation.id))
            )
        ).all()
    summary = _summary(service, organizations)
    return OrukService(
        **dict(summary),
        **{name: getattr(service, name) for name in _JSON_LISTS},
        schedules=[OrukSchedule.model_validate(s) for s in schedules],
        service_at_locations=[
            OrukServiceAtLocation(
                id=link.id,
                service_id=service.id,
                location_id=place.id,
                location=OrukLocation.model_validate(place),
            )
            for link, place in places
        ],
        attributes=[
            OrukAttribute(
                id=link.id,
                link_id=service.id,
                link_type=link.link_type,
                taxonomy_term_id=term.id,
                taxonomy_term=OrukTaxonomyTerm.model_validate(term),
            )
            for link, term in terms
        ],
    )


def _summary(
    service: DirectoryService, organizations: dict[uuid.UUID, DirectoryOrganization]
) -> OrukServiceSummary:
    organization = organizations.get(service.organization_id) if service.organization_id else None
    summary = OrukServiceSummary.model_validate(service)
    if organization is not None:
        summary.organization = OrukOrganization.model_validate(organization)
    return summary


async def _organizations(
    session: AsyncSession, ids: Sequence[uuid.UUID | None]
) -> dict[uuid.UUID, DirectoryOrganization]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    query = select(DirectoryOrganization).where(col(DirectoryOrganization.id).in_(wanted))
    return {o.id: o for o in (await session.exec(query)).all()}


async def list_taxonomies(session: AsyncSession, page: PageRequest) -> OrukPage[OrukTaxonomy]:
    total = (await session.exec(select(func.count()).select_from(DirectoryTaxonomy))).one()
    query = (
        select(DirectoryTaxonomy)
        .order_by(col(DirectoryTaxonomy.name), col(DirectoryTaxonomy.id))
        .offset(page.offset)
        .limit(page.size)
    )
    rows = (await session.exec(query)).all()
    return _envelope([OrukTaxonomy.model_validate(t) for t in rows], total, page)


async def read_taxonomy(session: AsyncSession, taxonomy_id: uuid.UUID) -> OrukTaxonomy:
    taxonomy = await session.get(DirectoryTaxonomy, taxonomy_id)
    if taxonomy is None:
        raise NotFound(f"No taxonomy with id {taxonomy_id}.")
    terms = (
        await session.exec(
            select(DirectoryTaxonomyTerm)
            .where(col(DirectoryTaxonomyTerm.taxonomy_id) == taxonomy_id)
            .order_by(col(DirectoryTaxonomyTerm.name), col(DirectoryTaxonomyTerm.id))
        )
    ).all()
    read = OrukTaxonomy.model_validate(taxonomy)
    read.taxonomy_terms = [OrukTaxonomyTerm.model_validate(t) for t in terms]
    return read


async def list_taxonomy_terms(
    session: AsyncSession, page: PageRequest
) -> OrukPage[OrukTaxonomyTerm]:
    total = (await session.exec(select(func.count()).select_from(DirectoryTaxonomyTerm))).one()
    query = (
        select(DirectoryTaxonomyTerm)
        .order_by(col(DirectoryTaxonomyTerm.name), col(DirectoryTaxonomyTerm.id))
        .offset(page.offset)
        .limit(page.size)
    )
    rows = (await session.exec(query)).all()
    return _envelope([OrukTaxonomyTerm.model_validate(t) for t in rows], total, page)


async def read_taxonomy_term(session: AsyncSession, term_id: uuid.UUID) -> OrukTaxonomyTerm:
    term = await session.get(DirectoryTaxonomyTerm, term_id)
    if term is None:
        raise NotFound(f"No taxonomy term with id {term_id}.")
    return OrukTaxonomyTerm.model_validate(term)


async def list_services_at_locations(
    session: AsyncSession, filters: ServiceFilters, page: PageRequest
) -> OrukPage[OrukServiceAtLocationSummary]:
    conditions = _service_conditions(filters)
    joined = (
        select(DirectoryServiceAtLocation, DirectoryService, DirectoryLocation)
        .join(
            DirectoryService, col(DirectoryService.id) == col(DirectoryServiceAtLocation.service_id)
        )
        .join(
            DirectoryLocation,
            col(DirectoryLocation.id) == col(DirectoryServiceAtLocation.location_id),
        )
        .where(*conditions)
    )
    total = (
        await session.exec(
            select(func.count())
            .select_from(DirectoryServiceAtLocation)
            .join(
                DirectoryService,
                col(DirectoryService.id) == col(DirectoryServiceAtLocation.service_id),
            )
            .where(*conditions)
        )
    ).one()
    rows = (
        await session.exec(
            joined.order_by(
                col(DirectoryService.name),
                col(DirectoryLocation.name),
                col(DirectoryServiceAtLocation.id),
            )
            .offset(page.offset)
            .limit(page.size)
        )
    ).all()
    organizations = await _organizations(session, [s.organization_id for _, s, _ in rows])
    contents = [
        OrukServiceAtLocationSummary(
            id=link.id,
            service_id=service.id,
            location_id=place.id,
            location=OrukLocationSummary.model_validate(place),
            service=_summary(service, organizations),
        )
        for link, service, place in rows
    ]
    return _envelope(contents, total, page)


async def read_service_at_location(
    session: AsyncSession, link_id: uuid.UUID
) -> OrukServiceAtLocationFull:
    link = await session.get(DirectoryServiceAtLocation, link_id)
    if link is None:
        raise NotFound(f"No service_at_location with id {link_id}.")
    place = await session.get(DirectoryLocation, link.location_id)
    assert place is not None  # a foreign key guarantees it
    service = await present_service(
        session, await get_service(session, link.service_id), with_locations=False
    )
    return OrukServiceAtLocationFull(
        id=link.id,
        service_id=link.service_id,
        location_id=link.location_id,
        location=OrukLocation.model_validate(place),
        service=service,
    )


# --- writes --------------------------------------------------------------------------------


def _owner_name(owner: str | None) -> str:
    return f"LA {owner}" if owner is not None else "the operator"


def _check_owner(row: Any, owner: str | None, what: str) -> None:
    """Only a record's owner changes it (the directory is public, so saying whose it is
    tells nobody anything new)."""
    if row.owner_la_code != owner:
        raise Forbidden(
            f"This {what} belongs to {_owner_name(row.owner_la_code)}; only its owner changes it."
        )


async def create_service(
    session: AsyncSession, new: OrukServiceWrite, owner: str | None
) -> DirectoryService:
    """A new service owned by `owner`; `Conflict` if the body names the id of one that
    exists."""
    if new.id is not None and await session.get(DirectoryService, new.id) is not None:
        raise Conflict(f"A directory service with id {new.id} exists; PUT it to replace it.")
    service, _ = await upsert_service(session, new, owner)
    return service


async def put_service(
    session: AsyncSession, service_id: uuid.UUID, new: OrukServiceWrite, owner: str | None
) -> tuple[DirectoryService, bool]:
    """Create or replace the service with this id; also says whether it was created."""
    if new.id is not None and new.id != service_id:
        raise ValidationFailed(
            "The body's id differs from the URL's.",
            errors=[ProblemItem(loc=["body", "id"], detail="differs from the id in the URL")],
        )
    return await upsert_service(session, new.model_copy(update={"id": service_id}), owner)


async def change_status(
    session: AsyncSession, service_id: uuid.UUID, status: ServiceStatus, owner: str | None
) -> DirectoryService:
    """Retire (`defunct`), pause or restore a service. Services are never deleted: the
    signposts that point at them are part of a child's record."""
    service = await get_service(session, service_id)
    _check_owner(service, owner, "service")
    if service.status != status:
        service.status = status
        service.last_modified = utcnow()
        await session.flush()
    return service


async def put_taxonomy(
    session: AsyncSession, taxonomy_id: uuid.UUID, new: OrukTaxonomy, owner: str | None
) -> tuple[DirectoryTaxonomy, bool]:
    """Create or update a taxonomy owned by `owner` and any terms given with it (terms not
    given stay)."""
    if new.id != taxonomy_id:
        raise ValidationFailed(
            "The body's id differs from the URL's.",
            errors=[ProblemItem(loc=["body", "id"], detail="differs from the id in the URL")],
        )
    taxonomy = await session.get(DirectoryTaxonomy, taxonomy_id)
    created = taxonomy is None
    values = new.model_dump(exclude={"id", "taxonomy_terms"})
    if taxonomy is None:
        taxonomy = DirectoryTaxonomy(id=taxonomy_id, owner_la_code=owner, **values)
        session.add(taxonomy)
    else:
        _check_owner(taxonomy, owner, "taxonomy")
        taxonomy.sqlmodel_update(values)
    await session.flush()
    for term in new.taxonomy_terms or []:
        await _upsert_term(session, term.model_copy(update={"taxonomy_id": taxonomy_id}), owner)
    await session.flush()
    return taxonomy, created


async def upsert_service(
    session: AsyncSession,
    new: OrukServiceWrite,
    owner: str | None,
    *,
    source: str | None = None,
    keep_last_modified: bool = False,
) -> tuple[DirectoryService, bool]:
    """Create or replace a service from its fully nested record, as `owner` (an LA, or None
    for the operator); says whether it was created. Records nested in it that belong to
    someone else may be named, and sent back unchanged, but not changed. `keep_last_modified`
    keeps the record's own time (imports), else it is now."""
    await _check_references(session, new)
    try:
        async with session.begin_nested():
            return await _write_service(session, new, owner, source, keep_last_modified)
    except IntegrityError:
        raise Conflict(
            "The service, or a record in it, was written by someone else at the same time, "
            "or an id in the body (a schedule, attribute or service_at_location) belongs to "
            "another service."
        ) from None


async def _write_service(
    session: AsyncSession,
    new: OrukServiceWrite,
    owner: str | None,
    source: str | None,
    keep_last_modified: bool,
) -> tuple[DirectoryService, bool]:
    service = await session.get(DirectoryService, new.id) if new.id is not None else None
    if service is not None:
        _check_owner(service, owner, "service")
    if new.organization is not None:
        await _upsert_organization(session, new.organization, owner)
    for attribute in new.attributes:
        if attribute.taxonomy_term is not None:
            await _upsert_term(session, attribute.taxonomy_term, owner)
    for place in new.service_at_locations:
        if place.location is not None:
            await _upsert_location(session, place.location, owner)
    created = service is None
    values: dict[str, Any] = new.model_dump(
        include=set(OrukServiceSummary.model_fields) - {"id", "organization", "last_modified"}
    )
    values["status"] = new.status.value
    values.update({name: _json_list(getattr(new, name)) for name in _JSON_LISTS})
    values["last_modified"] = (
        new.last_modified if keep_last_modified and new.last_modified else utcnow()
    )
    values["source"] = source
    if service is None:
        service = DirectoryService(id=new.id or new_id(), owner_la_code=owner, **values)
        session.add(service)
    else:
        service.sqlmodel_update(values)
    await session.flush()
    await _replace_lists(session, service.id, new)
    return service, created


async def _check_references(session: AsyncSession, new: OrukServiceWrite) -> None:
    """Records named only by id must exist, and a service lists a term or a location once."""
    problems: list[ProblemItem] = []

    async def missing(model: Any, ids: set[uuid.UUID]) -> set[uuid.UUID]:
        if not ids:
            return set()
        found = (await session.exec(select(model.id).where(col(model.id).in_(ids)))).all()
        return ids - set(found)

    if (
        new.organization is None
        and new.organization_id is not None
        and await missing(DirectoryOrganization, {new.organization_id})
    ):
        problems.append(ProblemItem(loc=["body", "organization_id"], detail="no such organization"))
    by_id = {
        a.taxonomy_term_id for a in new.attributes if a.taxonomy_term is None and a.taxonomy_term_id
    }
    absent = await missing(DirectoryTaxonomyTerm, by_id)
    nested_terms = {a.taxonomy_term.id for a in new.attributes if a.taxonomy_term is not None}
    for n, attribute in enumerate(new.attributes):
        if attribute.taxonomy_term_id in absent and attribute.taxonomy_term_id not in nested_terms:
            problems.append(
                ProblemItem(
                    loc=["body", "attributes", n, "taxonomy_term_id"], detail="no such term"
                )
            )
    taxonomy_ids = {
        a.taxonomy_term.taxonomy_id
        for a in new.attributes
        if a.taxonomy_term is not None and a.taxonomy_term.taxonomy_id is not None
    }
    absent_taxonomies = await missing(DirectoryTaxonomy, taxonomy_ids)
    for n, attribute in enumerate(new.attributes):
        term = attribute.taxonomy_term
        if term is not None and term.taxonomy_id in absent_taxonomies:
            problems.append(
                ProblemItem(
                    loc=["body", "attributes", n, "taxonomy_term", "taxonomy_id"],
                    detail="no such taxonomy",
                )
            )
    by_location = {
        p.location_id for p in new.service_at_locations if p.location is None and p.location_id
    }
    absent = await missing(DirectoryLocation, by_location)
    for n, place in enumerate(new.service_at_locations):
        if place.location is None and place.location_id in absent:
            problems.append(
                ProblemItem(
                    loc=["body", "service_at_locations", n, "location_id"],
                    detail="no such location",
                )
            )
    problems += _duplicates([a.taxonomy_term_id for a in new.attributes], "attributes")
    problems += _duplicates(
        [p.location_id for p in new.service_at_locations], "service_at_locations"
    )
    if problems:
        raise ValidationFailed("The service refers to records that are not valid.", errors=problems)


def _duplicates(ids: list[uuid.UUID | None], where: str) -> list[ProblemItem]:
    seen: set[uuid.UUID | None] = set()
    problems = []
    for n, one in enumerate(ids):
        if one in seen:
            problems.append(ProblemItem(loc=["body", where, n], detail="listed twice"))
        seen.add(one)
    return problems


async def _replace_lists(
    session: AsyncSession, service_id: uuid.UUID, new: OrukServiceWrite
) -> None:
    """Replace the service's schedules and links, keeping the ids of links that stay."""
    kept_links: dict[uuid.UUID | None, uuid.UUID] = dict(
        (
            await session.exec(
                select(DirectoryServiceAtLocation.location_id, DirectoryServiceAtLocation.id).where(
                    col(DirectoryServiceAtLocation.service_id) == service_id
                )
            )
        ).all()
    )
    kept_terms: dict[uuid.UUID | None, uuid.UUID] = dict(
        (
            await session.exec(
                select(DirectoryServiceTerm.taxonomy_term_id, DirectoryServiceTerm.id).where(
                    col(DirectoryServiceTerm.service_id) == service_id
                )
            )
        ).all()
    )
    for table in (DirectorySchedule, DirectoryServiceAtLocation, DirectoryServiceTerm):
        await session.exec(delete(table).where(col(table.service_id) == service_id))
    schedules = [
        {**s.model_dump(exclude={"service_id"}), "service_id": service_id} for s in new.schedules
    ]
    links = [
        {
            "id": _given_id(p) or kept_links.get(p.location_id) or p.id,
            "service_id": service_id,
            "location_id": p.location_id,
        }
        for p in new.service_at_locations
    ]
    terms = [
        {
            "id": _given_id(a) or kept_terms.get(a.taxonomy_term_id) or a.id,
            "service_id": service_id,
            "taxonomy_term_id": a.taxonomy_term_id,
            "link_type": a.link_type,
        }
        for a in new.attributes
    ]
    for table, rows in (
        (DirectorySchedule, schedules),
        (DirectoryServiceAtLocation, links),
        (DirectoryServiceTerm, terms),
    ):
        if rows:
            await session.exec(insert(table), params=rows)


def _given_id(record: BaseModel) -> uuid.UUID | None:
    """The record's id if the writer gave one (not one made up by default)."""
    return getattr(record, "id", None) if "id" in record.model_fields_set else None


def _json_list(records: Sequence[BaseModel]) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json", exclude_none=True) for r in records]


async def _upsert(
    session: AsyncSession,
    model: Any,
    record_id: uuid.UUID,
    values: dict[str, Any],
    owner: str | None,
) -> None:
    """Create a nested record owned by `owner`, or update one `owner` owns. Another owner's
    record is left as it is when the body repeats it unchanged (a service may name another
    LA's organization or location), and refused when the body would change it."""
    row = await session.get(model, record_id)
    if row is None:
        session.add(model(id=record_id, owner_la_code=owner, **values))
        return
    changed = any(
        getattr(row, name) != value for name, value in values.items() if name != "updated_at"
    )
    if changed:
        _check_owner(row, owner, model.__tablename__.removeprefix("directory_").replace("_", " "))
        row.sqlmodel_update(values)


async def _upsert_organization(
    session: AsyncSession, new: OrukOrganization, owner: str | None
) -> None:
    values = new.model_dump(exclude={"id", "organization_identifiers"})
    values["organization_identifiers"] = _json_list(new.organization_identifiers)
    values["updated_at"] = utcnow()
    await _upsert(session, DirectoryOrganization, new.id, values, owner)


async def _upsert_term(session: AsyncSession, new: OrukTaxonomyTerm, owner: str | None) -> None:
    """A term is part of its taxonomy: putting a term into another owner's taxonomy changes
    that taxonomy, so only its owner may."""
    if new.taxonomy_id is not None:
        existing = await session.get(DirectoryTaxonomyTerm, new.id)
        if existing is None or existing.taxonomy_id != new.taxonomy_id:
            taxonomy = await session.get(DirectoryTaxonomy, new.taxonomy_id)
            if taxonomy is not None:
                _check_owner(taxonomy, owner, "taxonomy")
    await _upsert(session, DirectoryTaxonomyTerm, new.id, new.model_dump(exclude={"id"}), owner)


async def _upsert_location(session: AsyncSession, new: OrukLocation, owner: str | None) -> None:
    values = new.model_dump(exclude={"id", "addresses", "accessibility"})
    values["addresses"] = _json_list(new.addresses)
    values["accessibility"] = _json_list(new.accessibility)
    await _upsert(session, DirectoryLocation, new.id, values, owner)
