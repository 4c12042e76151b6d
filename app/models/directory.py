"""The service directory: partner services in the Open Referral UK (HSDS 3.0 UK profile) shape.

Tables hold what the profile's one-to-many records need to be queried by (services,
organizations, taxonomies and their terms, locations, the links between them, and
schedules, which the `day`/`start_time`/`end_time` filters read). Records that are only
ever returned whole (contacts, languages, funding, cost options, service areas, addresses,
accessibility, organization identifiers) are JSON columns kept in the profile's shape.

No table here holds personal data about children or families: the directory is public.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from sqlalchemy import JSON, Index, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field as ColumnField
from sqlmodel import SQLModel

from app.models.base import InputModel, IsoDate, IsoDatetime, IsoTime, new_id, utcnow

Json = JSON().with_variant(JSONB(), "postgresql")


class ServiceStatus(StrEnum):
    """The profile's service statuses (note the space in "temporarily closed")."""

    active = "active"
    inactive = "inactive"
    defunct = "defunct"
    temporarily_closed = "temporarily closed"


class LocationType(StrEnum):
    physical = "physical"
    postal = "postal"
    virtual = "virtual"


# --- tables ------------------------------------------------------------------------------


class _Owned(SQLModel):
    """A directory record written through Liaison has an owner: the LA whose account wrote
    it, or the operator (null: a feed import or the demo data). Only its owner changes it;
    everyone reads it."""

    owner_la_code: str | None = ColumnField(default=None, max_length=10)


class DirectoryOrganization(_Owned, table=True):
    __tablename__ = "directory_organization"

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    name: str = ColumnField(max_length=500)
    description: str = ColumnField(default="", sa_type=Text)
    email: str | None = ColumnField(default=None, max_length=320)
    website: str | None = ColumnField(default=None, max_length=2000)
    logo: str | None = ColumnField(default=None, max_length=2000)
    uri: str | None = ColumnField(default=None, max_length=2000)
    # Not a foreign key: a feed may name a parent it does not publish.
    parent_organization_id: uuid.UUID | None = None
    organization_identifiers: list[dict[str, Any]] = ColumnField(default_factory=list, sa_type=Json)
    updated_at: datetime = ColumnField(default_factory=utcnow)


class DirectoryTaxonomy(_Owned, table=True):
    __tablename__ = "directory_taxonomy"

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    name: str = ColumnField(max_length=500)
    description: str = ColumnField(default="", sa_type=Text)
    uri: str | None = ColumnField(default=None, max_length=2000)
    version: str | None = ColumnField(default=None, max_length=100)


class DirectoryTaxonomyTerm(_Owned, table=True):
    __tablename__ = "directory_taxonomy_term"

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    name: str = ColumnField(max_length=500)
    description: str = ColumnField(default="", sa_type=Text)
    # Not a foreign key: terms arrive in any order and a feed may omit a parent.
    parent_id: uuid.UUID | None = None
    # The profile's free-text taxonomy name, kept even when the taxonomy is unknown here.
    taxonomy: str | None = ColumnField(default=None, max_length=500)
    taxonomy_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="directory_taxonomy.id", ondelete="SET NULL", index=True
    )
    term_uri: str | None = ColumnField(default=None, max_length=2000)
    term: str | None = ColumnField(default=None, max_length=500)


class DirectoryLocation(_Owned, table=True):
    __tablename__ = "directory_location"

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    location_type: LocationType = ColumnField(sa_type=String(16))
    name: str | None = ColumnField(default=None, max_length=500)
    description: str | None = ColumnField(default=None, sa_type=Text)
    latitude: float | None = None
    longitude: float | None = None
    external_identifier: str | None = ColumnField(default=None, max_length=200)
    external_identifier_type: str | None = ColumnField(default=None, max_length=100)
    addresses: list[dict[str, Any]] = ColumnField(default_factory=list, sa_type=Json)
    accessibility: list[dict[str, Any]] = ColumnField(default_factory=list, sa_type=Json)


class DirectoryService(_Owned, table=True):
    """A partner service. Signposts point here, so a service is retired by its status
    (`defunct`), never deleted."""

    __tablename__ = "directory_service"
    __table_args__ = (
        Index("ix_directory_service_status_name", "status", "name"),
        Index("ix_directory_service_last_modified", "last_modified"),
    )

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    organization_id: uuid.UUID | None = ColumnField(
        default=None, foreign_key="directory_organization.id", ondelete="RESTRICT", index=True
    )
    name: str = ColumnField(max_length=500)
    description: str | None = ColumnField(default=None, sa_type=Text)
    url: str | None = ColumnField(default=None, max_length=2000)
    email: str | None = ColumnField(default=None, max_length=320)
    status: str = ColumnField(sa_type=String(24))
    fees: str | None = ColumnField(default=None, sa_type=Text)
    accreditations: str | None = ColumnField(default=None, sa_type=Text)
    minimum_age: float | None = None
    maximum_age: float | None = None
    assured_date: date | None = None
    assurer_email: str | None = ColumnField(default=None, max_length=320)
    alert: str | None = ColumnField(default=None, sa_type=Text)
    last_modified: datetime = ColumnField(default_factory=utcnow)
    service_areas: list[dict[str, Any]] = ColumnField(default_factory=list, sa_type=Json)
    languages: list[dict[str, Any]] = ColumnField(default_factory=list, sa_type=Json)
    funding: list[dict[str, Any]] = ColumnField(default_factory=list, sa_type=Json)
    cost_options: list[dict[str, Any]] = ColumnField(default_factory=list, sa_type=Json)
    contacts: list[dict[str, Any]] = ColumnField(default_factory=list, sa_type=Json)
    # Where the record came from: null when written through the API, else the feed's URL.
    source: str | None = ColumnField(default=None, max_length=2000)


class DirectoryServiceTerm(SQLModel, table=True):
    """A service's taxonomy term: the profile's `attribute` with a `taxonomy_term`."""

    __tablename__ = "directory_service_term"
    __table_args__ = (UniqueConstraint("service_id", "taxonomy_term_id"),)

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    service_id: uuid.UUID = ColumnField(foreign_key="directory_service.id", ondelete="CASCADE")
    taxonomy_term_id: uuid.UUID = ColumnField(
        foreign_key="directory_taxonomy_term.id", ondelete="RESTRICT", index=True
    )
    link_type: str | None = ColumnField(default=None, max_length=100)


class DirectoryServiceAtLocation(SQLModel, table=True):
    __tablename__ = "directory_service_at_location"
    __table_args__ = (UniqueConstraint("service_id", "location_id"),)

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    service_id: uuid.UUID = ColumnField(foreign_key="directory_service.id", ondelete="CASCADE")
    location_id: uuid.UUID = ColumnField(
        foreign_key="directory_location.id", ondelete="RESTRICT", index=True
    )


class DirectorySchedule(SQLModel, table=True):
    """When a service runs (the profile's `schedule`, RFC 5545 style)."""

    __tablename__ = "directory_schedule"

    id: uuid.UUID = ColumnField(default_factory=new_id, primary_key=True)
    service_id: uuid.UUID = ColumnField(
        foreign_key="directory_service.id", ondelete="CASCADE", index=True
    )
    valid_from: date | None = None
    valid_to: date | None = None
    dtstart: date | None = None
    freq: str | None = ColumnField(default=None, max_length=16)
    interval: float | None = None
    byday: str | None = ColumnField(default=None, max_length=100)
    bymonthday: str | None = ColumnField(default=None, max_length=200)
    description: str | None = ColumnField(default=None, sa_type=Text)
    opens_at: time | None = None
    closes_at: time | None = None
    schedule_link: str | None = ColumnField(default=None, max_length=2000)
    attending_type: str | None = ColumnField(default=None, max_length=500)
    notes: str | None = ColumnField(default=None, sa_type=Text)


# --- API schemas: the profile's shapes, read and written ---------------------------------
#
# Writes and imports accept what the reads return (round trip), so inputs ignore fields the
# server derives (`service_id`, `link_id`, nested `service`) instead of refusing them.
# Blank strings, common in council feeds, count as absent.


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _scheme_for_bare_www(value: Any) -> Any:
    """`www.example.org`, common in feeds, is read as `https://www.example.org`."""
    value = _blank_is_none(value)
    if isinstance(value, str) and value.strip().lower().startswith("www."):
        return "https://" + value.strip()
    return value


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=20_000)]
OptionalText = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True, max_length=20_000)] | None,
    BeforeValidator(_blank_is_none),
]
OptionalShort = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None,
    BeforeValidator(_blank_is_none),
]
OptionalUrl = Annotated[
    Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, max_length=2000, pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$"
        ),
    ]
    | None,
    BeforeValidator(_scheme_for_bare_www),
]
OptionalEmail = Annotated[
    Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
        ),
    ]
    | None,
    BeforeValidator(_blank_is_none),
]
OptionalId = Annotated[uuid.UUID | None, BeforeValidator(_blank_is_none)]
OptionalDate = Annotated[IsoDate | None, BeforeValidator(_blank_is_none)]
OptionalTime = Annotated[IsoTime | None, BeforeValidator(_blank_is_none)]


def _utc_if_naive(moment: datetime) -> datetime:
    """A time without an offset, as some feeds write them, is taken as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


UtcDatetime = Annotated[IsoDatetime, AfterValidator(_utc_if_naive)]
_DAY = r"-?[0-9]{0,2}(MO|TU|WE|TH|FR|SA|SU)"
BYDAY = rf"^{_DAY}(,{_DAY})*$"


def _rfc5545_days(value: Any) -> Any:
    """`mo, we` as `MO,WE`: one spelling, so that the `day` filter can find it."""
    value = _blank_is_none(value)
    return "".join(value.split()).upper() if isinstance(value, str) else value


Age = Annotated[Annotated[float, Field(ge=0, le=150)] | None, BeforeValidator(_blank_is_none)]


class _Record(InputModel):
    """A profile record: its id is kept when given and made when not."""

    model_config = ConfigDict(extra="ignore", from_attributes=True, str_strip_whitespace=True)

    id: uuid.UUID = Field(default_factory=new_id)


class OrukTaxonomyTerm(_Record):
    id: uuid.UUID
    name: Name
    description: Description = ""
    parent_id: OptionalId = None
    taxonomy: OptionalShort = Field(default=None, description="The taxonomy's name.")
    taxonomy_id: OptionalId = None
    term_uri: OptionalUrl = None
    term: OptionalShort = Field(default=None, description="The term's code in its taxonomy.")


class OrukTaxonomy(_Record):
    id: uuid.UUID
    name: Name
    description: Description = ""
    uri: OptionalUrl = None
    version: OptionalShort = Field(default=None, max_length=100)
    taxonomy_terms: list[OrukTaxonomyTerm] | None = Field(
        default=None, description="On the single-taxonomy read, and accepted on writes."
    )


class OrukOrganizationIdentifier(_Record):
    identifier_scheme: OptionalShort = None
    identifier_type: Name
    identifier: Name


class OrukOrganization(_Record):
    id: uuid.UUID
    name: Name
    description: Description = ""
    email: OptionalEmail = None
    website: OptionalUrl = None
    logo: OptionalUrl = None
    uri: OptionalUrl = None
    parent_organization_id: OptionalId = None
    organization_identifiers: list[OrukOrganizationIdentifier] = Field(
        default_factory=list, max_length=50
    )


class OrukAddress(_Record):
    attention: OptionalShort = None
    address_1: Name
    city: Name
    region: OptionalShort = None
    state_province: Annotated[str, BeforeValidator(lambda v: v or "")] = Field(
        default="", max_length=500, description="The county, in the UK; may be empty."
    )
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)]
    country: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2)] = "GB"
    address_type: LocationType = LocationType.physical


class OrukAccessibility(_Record):
    description: OptionalText = None
    details: OptionalText = None
    url: OptionalUrl = None
    accessibility: OptionalText = None


class OrukLocation(_Record):
    id: uuid.UUID
    location_type: LocationType
    name: OptionalShort = None
    description: OptionalText = None
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    external_identifier: OptionalShort = Field(default=None, max_length=200)
    external_identifier_type: OptionalShort = Field(default=None, max_length=100)
    addresses: list[OrukAddress] = Field(default_factory=list, max_length=20)
    accessibility: list[OrukAccessibility] = Field(default_factory=list, max_length=50)


class OrukLocationSummary(BaseModel):
    """A location's one-to-one fields, as the service-at-location list shows them."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    location_type: LocationType
    name: str | None = None
    description: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    external_identifier: str | None = None
    external_identifier_type: str | None = None


class OrukSchedule(_Record):
    service_id: uuid.UUID | None = None
    valid_from: OptionalDate = None
    valid_to: OptionalDate = None
    dtstart: OptionalDate = None
    freq: Annotated[Literal["WEEKLY", "MONTHLY"] | None, BeforeValidator(_blank_is_none)] = None
    interval: Annotated[float, Field(ge=0, le=1000)] | None = None
    byday: Annotated[
        Annotated[str, StringConstraints(pattern=BYDAY)] | None,
        BeforeValidator(_rfc5545_days),
    ] = Field(default=None, max_length=100, description="RFC 5545 BYDAY, e.g. `MO,WE,FR`.")
    bymonthday: OptionalShort = Field(default=None, max_length=200)
    description: OptionalText = None
    opens_at: OptionalTime = None
    closes_at: OptionalTime = None
    schedule_link: OptionalUrl = None
    attending_type: OptionalShort = None
    notes: OptionalText = None


class OrukServiceArea(_Record):
    name: OptionalShort = None
    extent: OptionalText = None
    extent_type: OptionalShort = None
    uri: OptionalUrl = None
    service_area: OptionalText = None


class OrukLanguage(_Record):
    # The UK profile keeps only `id`; HSDS 3.0's name, code and note say which language.
    name: OptionalShort = None
    code: OptionalShort = None
    note: OptionalText = None


class OrukFunding(_Record):
    source: OptionalText = None


class OrukCostOption(_Record):
    valid_from: OptionalDate = None
    valid_to: OptionalDate = None
    option: OptionalText = None
    amount: Annotated[float | None, BeforeValidator(_blank_is_none)] = None
    amount_description: OptionalText = None


class OrukContact(_Record):
    name: OptionalShort = None
    title: OptionalShort = None


class OrukAttribute(_Record):
    """A taxonomy term on a service, by id (`taxonomy_term_id`) or whole (`taxonomy_term`,
    which is created or updated)."""

    link_id: uuid.UUID | None = None
    link_type: OptionalShort = Field(default=None, max_length=100)
    taxonomy_term_id: OptionalId = None
    taxonomy_term: OrukTaxonomyTerm | None = None

    @model_validator(mode="after")
    def _names_a_term(self) -> OrukAttribute:
        if self.taxonomy_term is None and self.taxonomy_term_id is None:
            raise ValueError("an attribute names its taxonomy_term or taxonomy_term_id")
        if self.taxonomy_term is not None:
            if self.taxonomy_term_id not in (None, self.taxonomy_term.id):
                raise ValueError("taxonomy_term_id differs from taxonomy_term.id")
            self.taxonomy_term_id = self.taxonomy_term.id
        return self


class OrukServiceAtLocation(_Record):
    """A service at one of its locations, by id (`location_id`) or whole (`location`,
    which is created or updated)."""

    service_id: uuid.UUID | None = None
    location_id: OptionalId = None
    location: OrukLocation | None = None

    @model_validator(mode="after")
    def _names_a_location(self) -> OrukServiceAtLocation:
        if self.location is None and self.location_id is None:
            raise ValueError("a service_at_location names its location or location_id")
        if self.location is not None:
            if self.location_id not in (None, self.location.id):
                raise ValueError("location_id differs from location.id")
            self.location_id = self.location.id
        return self


class _ServiceFields(InputModel):
    model_config = ConfigDict(extra="ignore", from_attributes=True, str_strip_whitespace=True)

    organization_id: OptionalId = None
    name: Name
    description: OptionalText = None
    url: OptionalUrl = None
    email: OptionalEmail = None
    status: ServiceStatus
    fees: OptionalText = None
    accreditations: OptionalText = None
    minimum_age: Age = None
    maximum_age: Age = None
    assured_date: OptionalDate = None
    assurer_email: OptionalEmail = None
    alert: OptionalText = None

    @model_validator(mode="after")
    def _ages_in_order(self) -> _ServiceFields:
        if (
            self.minimum_age is not None
            and self.maximum_age is not None
            and self.minimum_age > self.maximum_age
        ):
            raise ValueError("minimum_age is above maximum_age")
        return self


class OrukServiceWrite(_ServiceFields):
    """A service as written through the API or read from a feed: the profile's fully nested
    service. `organization`, `attributes[].taxonomy_term` and `service_at_locations[].location`
    are created or updated by id; the service's own lists are replaced."""

    id: uuid.UUID | None = Field(default=None, description="Optional on create.")
    last_modified: UtcDatetime | None = Field(
        default=None, description="Kept from a feed on import; set by the server on writes."
    )
    organization: OrukOrganization | None = None
    schedules: list[OrukSchedule] = Field(default_factory=list, max_length=50)
    service_areas: list[OrukServiceArea] = Field(default_factory=list, max_length=50)
    service_at_locations: list[OrukServiceAtLocation] = Field(default_factory=list, max_length=100)
    languages: list[OrukLanguage] = Field(default_factory=list, max_length=50)
    funding: list[OrukFunding] = Field(default_factory=list, max_length=50)
    cost_options: list[OrukCostOption] = Field(default_factory=list, max_length=50)
    contacts: list[OrukContact] = Field(default_factory=list, max_length=50)
    attributes: list[OrukAttribute] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _one_organization(self) -> OrukServiceWrite:
        if self.organization is not None:
            if self.organization_id not in (None, self.organization.id):
                raise ValueError("organization_id differs from organization.id")
            self.organization_id = self.organization.id
        return self


class OrukServiceSummary(_ServiceFields):
    """A service's one-to-one fields and its organization, as lists show them."""

    id: uuid.UUID
    last_modified: datetime
    organization: OrukOrganization | None = None


class OrukService(OrukServiceSummary):
    """The fully nested service."""

    schedules: list[OrukSchedule]
    service_areas: list[OrukServiceArea]
    service_at_locations: list[OrukServiceAtLocation]
    languages: list[OrukLanguage]
    funding: list[OrukFunding]
    cost_options: list[OrukCostOption]
    contacts: list[OrukContact]
    attributes: list[OrukAttribute]


class OrukServiceAtLocationSummary(BaseModel):
    id: uuid.UUID
    service_id: uuid.UUID
    location_id: uuid.UUID
    location: OrukLocationSummary
    service: OrukServiceSummary


class OrukServiceAtLocationFull(BaseModel):
    id: uuid.UUID
    service_id: uuid.UUID
    location_id: uuid.UUID
    location: OrukLocation
    service: OrukService = Field(description="Without its own `service_at_locations`.")


T = TypeVar("T")


class OrukPage(BaseModel, Generic[T]):
    """The profile's page envelope."""

    total_items: int
    total_pages: int
    page_number: int
    size: int = Field(description="The number of items on this page.")
    first_page: bool
    last_page: bool
    empty: bool = Field(description="Whether this page has no items.")
    contents: list[T]


class OrukApiInfo(BaseModel):
    version: str = Field(description="The HSDS version of this API.")
    profile: str = Field(description="The HSDS profile this API follows.")
    openapi_url: str = Field(description="Where this API's OpenAPI description is.")


class ServiceStatusChange(InputModel):
    model_config = ConfigDict(extra="forbid")

    status: ServiceStatus
