"""Keyset pagination with opaque cursors.

Lists are ordered by their time-ordered UUIDv7 id, so a cursor is just the last id seen.
Cursors are opaque to clients (base64url JSON with a version) and a malformed one is a 400.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request

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


class Page:
    """The validated `cursor` and `limit` of a list request."""

    def __init__(self, after: uuid.UUID | None, limit: int) -> None:
        self.after = after
        self.limit = limit

    def split(self, rows: Sequence[T]) -> tuple[list[T], str | None]:
        """Rows of this page and the next cursor; the query fetched `limit + 1` rows."""
        items = list(rows[: self.limit])
        if len(rows) <= self.limit or not items:
            return items, None
        return items, encode_cursor(items[-1].id)  # type: ignore[attr-defined]


def get_page(
    request: Request,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` from the previous page.")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Items per page (capped by the server).")
    ] = DEFAULT_LIMIT,
) -> Page:
    cap: int = request.app.state.settings.page_max_limit
    return Page(decode_cursor(cursor) if cursor else None, min(limit, cap))


PageDep = Annotated[Page, Depends(get_page)]
