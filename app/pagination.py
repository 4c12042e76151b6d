"""Keyset pagination with opaque cursors: one recipe (`keyset`) for every list.

Lists are ordered by their time-ordered UUIDv7 id, so a cursor is just the last id seen.
Cursors are opaque to clients (base64url JSON with a version) and a malformed one is a 400.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.errors import BadRequest

T = TypeVar("T")
CURSOR_VERSION = 1
DEFAULT_LIMIT = 50
# Above any server cap (`LIAISON_PAGE_MAX_LIMIT` is at most 1000): a larger number is a
# mistake, not a wish for everything.
MAX_LIMIT = 10_000


def encode_position(position: dict[str, Any]) -> str:
    """An opaque cursor for any position in a list (base64url JSON with a version)."""
    raw = json.dumps({"v": CURSOR_VERSION, **position}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_position(cursor: str) -> dict[str, Any]:
    """The position in a cursor from `encode_position`; a malformed one is a 400."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
            raise ValueError("version")
        return data
    except (ValueError, binascii.Error):
        raise BadRequest("The cursor is not valid; start again without one.") from None


def encode_cursor(last_id: uuid.UUID) -> str:
    return encode_position({"id": str(last_id)})


def decode_cursor(cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(decode_position(cursor)["id"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BadRequest("The cursor is not valid; start again without one.") from None


@dataclass(frozen=True)
class Page:
    """Where a list request starts (`after`, the last id of the previous page) and how many
    items it wants. Plain values: services page with it, routers make it from the query."""

    after: uuid.UUID | None
    limit: int

    @classmethod
    def from_query(cls, cursor: str | None, limit: int, cap: int) -> Page:
        return cls(decode_cursor(cursor) if cursor else None, min(limit, cap))


async def keyset(
    session: AsyncSession,
    query: SelectOfScalar[T],
    id_column: Any,
    page: Page,
    *,
    newest_first: bool = False,
) -> tuple[list[T], str | None]:
    """One page of `query` in id order (the time order of UUIDv7 ids), and the cursor of the
    next page, or None on the last. The one keyset recipe of every list."""
    if page.after is not None:
        query = query.where(id_column < page.after if newest_first else id_column > page.after)
    order = id_column.desc() if newest_first else id_column
    rows = (await session.exec(query.order_by(order).limit(page.limit + 1))).all()
    items = list(rows[: page.limit])
    if len(rows) <= page.limit or not items:
        return items, None
    return items, encode_cursor(items[-1].id)  # type: ignore[attr-defined]
