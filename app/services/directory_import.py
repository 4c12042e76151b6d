"""Importing a council's Open Referral UK feed into the directory.

All or nothing: a page that cannot be read stops the import with a message naming it, and
nothing is written; a service that does not fit the profile is skipped with its reason
(or stops a `strict` import).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import Conflict, Forbidden, LiaisonError, ValidationFailed
from app.models.directory import (
    DirectoryTaxonomy,
    OrukPage,
    OrukServiceWrite,
    OrukTaxonomy,
)
from app.services.directory import put_taxonomy, upsert_service

MAX_FEED_PAGES = 10_000
_ENVELOPE_FIELDS = (
    "total_items", "total_pages", "page_number", "size", "first_page", "last_page", "empty",
    "contents",
)  # fmt: skip


class FeedError(LiaisonError):
    """The feed could not be read; the detail names the URL or page that failed."""

    status, slug, title = 502, "feed-unusable", "The directory feed could not be read"


@dataclass
class ImportReport:
    feed: str
    pages: int = 0
    created: int = 0
    updated: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def services(self) -> int:
        return self.created + self.updated


Progress = Callable[[int, int | None], None]  # services done, services in the feed


async def import_feed(
    session: AsyncSession,
    base_url: str,
    http: httpx.AsyncClient,
    *,
    per_page: int = 100,
    strict: bool = False,
    on_progress: Progress | None = None,
    owner: str | None = None,
) -> ImportReport:
    """Pull every service of an ORUK feed and upsert it by id, with its organization,
    taxonomy terms (and their taxonomies) and locations.

    Pages `/services?page=N` until the feed says `last_page`, and fetches each service's
    full record from `/services/{id}` (the profile's list carries one-to-one fields only).
    An unusable page (not JSON, no envelope, an error status) stops the import with a
    `FeedError` naming it; nothing is written, as the caller rolls the session back. A
    service whose record is missing or invalid is skipped and reported, unless `strict`.
    What the import writes is `owner`'s (an LA, or None for the operator); a record that
    belongs to someone else is not changed: that service is skipped and reported.
    """
    base = base_url.rstrip("/")
    report = ImportReport(feed=base)
    known_taxonomies: dict[uuid.UUID, bool] = {}
    number = 1
    done = 0
    while True:
        page = await _feed_page(http, base, number, per_page)
        report.pages += 1
        for position, item in enumerate(page["contents"], start=1):
            where = f"page {number}, item {position}"
            try:
                record = await _feed_service(http, base, item, where)
                await _resolve_taxonomies(
                    session, http, base, record, known_taxonomies, report, owner
                )
                async with session.begin_nested():
                    _, created = await upsert_service(
                        session, record, owner, source=base, keep_last_modified=True
                    )
            except _SkippedItem as skipped:
                if strict:
                    raise FeedError(str(skipped)) from None
                report.skipped.append(str(skipped))
            except (ValidationFailed, Conflict, Forbidden) as refused:
                reasons = "; ".join(
                    f"{'.'.join(map(str, e.loc))}: {e.detail}" for e in refused.errors or []
                )
                message = f"{where}: service {item.get('id')} refused: {refused.detail} {reasons}"
                if strict:
                    raise FeedError(message.strip()) from None
                report.skipped.append(message.strip())
            else:
                report.created += created
                report.updated += not created
            done += 1
            if on_progress is not None:
                on_progress(done, page["total_items"])
        if page["last_page"] or number >= page["total_pages"] or not page["contents"]:
            return report
        number += 1
        if number > MAX_FEED_PAGES:
            raise FeedError(f"{base}: more than {MAX_FEED_PAGES} pages; stopped.")


class _SkippedItem(Exception):
    """One service could not be imported; the rest can."""


class _Unreadable(Exception):
    """A document the feed did not give; `fatal` for outages, which no skipping mends."""

    def __init__(self, reason: str, *, fatal: bool) -> None:
        super().__init__(reason)
        self.fatal = fatal


async def _get_json(http: httpx.AsyncClient, url: str, params: dict[str, Any] | None = None) -> Any:
    try:
        response = await http.get(url, params=params, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise _Unreadable(f"{type(exc).__name__}: {exc}", fatal=True) from None
    if response.status_code != 200:
        reason = f"the feed answered {response.status_code}"
        raise _Unreadable(reason, fatal=response.status_code >= 500)
    try:
        return response.json()
    except ValueError:
        raise _Unreadable("the answer is not JSON", fatal=False) from None


async def _feed_page(
    http: httpx.AsyncClient, base: str, number: int, per_page: int
) -> dict[str, Any]:
    url = f"{base}/services"
    try:
        page = await _get_json(http, url, {"page": number, "per_page": per_page})
    except _Unreadable as exc:
        raise FeedError(f"page {number} of {url}: {exc}.") from None
    if not isinstance(page, dict):
        raise FeedError(f"page {number} of {url}: not an ORUK page (a JSON object).")
    absent = [name for name in _ENVELOPE_FIELDS if name not in page]
    if absent:
        raise FeedError(f"page {number} of {url}: the page envelope lacks {', '.join(absent)}.")
    try:
        checked = OrukPage[dict[str, Any]].model_validate(page)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise FeedError(f"page {number} of {url}: {where}: {first['msg']}.") from None
    if checked.page_number != number:
        raise FeedError(
            f"page {number} of {url}: the feed answered page {checked.page_number}; "
            "it does not page with `page`."
        )
    return checked.model_dump()


async def _feed_service(
    http: httpx.AsyncClient, base: str, item: dict[str, Any], where: str
) -> OrukServiceWrite:
    service_id = item.get("id")
    try:
        uuid.UUID(str(service_id))
    except ValueError:
        raise _SkippedItem(f"{where}: the service id {service_id!r} is not a UUID") from None
    url = f"{base}/services/{service_id}"
    try:
        document = await _get_json(http, url)
    except _Unreadable as exc:
        if exc.fatal:
            raise FeedError(f"{where}: {url}: {exc}.") from None
        raise _SkippedItem(f"{where}: {url}: {exc}") from None
    try:
        record = OrukServiceWrite.model_validate(document)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise _SkippedItem(f"{where}: service {service_id} is not valid: {reasons}") from None
    if record.id != uuid.UUID(str(service_id)):
        raise _SkippedItem(f"{where}: {url} holds service {record.id}, not {service_id}")
    return record


async def _resolve_taxonomies(
    session: AsyncSession,
    http: httpx.AsyncClient,
    base: str,
    record: OrukServiceWrite,
    known: dict[uuid.UUID, bool],
    report: ImportReport,
    owner: str | None,
) -> None:
    """Fetch the taxonomies the record's terms belong to, once each; a term whose taxonomy
    the feed does not publish keeps its taxonomy's name but loses the id."""
    for attribute in record.attributes:
        term = attribute.taxonomy_term
        if term is None or term.taxonomy_id is None:
            continue
        taxonomy_id = term.taxonomy_id
        if taxonomy_id not in known:
            known[taxonomy_id] = await _import_taxonomy(
                session, http, base, taxonomy_id, report, owner
            )
        if not known[taxonomy_id]:
            term.taxonomy_id = None


async def _import_taxonomy(
    session: AsyncSession,
    http: httpx.AsyncClient,
    base: str,
    taxonomy_id: uuid.UUID,
    report: ImportReport,
    owner: str | None,
) -> bool:
    url = f"{base}/taxonomies/{taxonomy_id}"
    try:
        taxonomy = OrukTaxonomy.model_validate(await _get_json(http, url))
    except _Unreadable as exc:
        if exc.fatal:
            raise FeedError(f"{url}: {exc}.") from None
        reason = str(exc)
    except ValidationError as exc:
        reason = f"not a valid taxonomy ({exc.error_count()} errors)"
    else:
        existing = await session.get(DirectoryTaxonomy, taxonomy.id)
        if existing is None or existing.owner_la_code == owner:
            await put_taxonomy(session, taxonomy.id, taxonomy, owner)
        # Another owner's taxonomy stays as it is; the feed's terms may still belong to it.
        return True
    report.skipped.append(f"taxonomy {taxonomy_id}: {reason}; its terms are kept without it")
    return False
