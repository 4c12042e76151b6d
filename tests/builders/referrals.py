"""A referral's life through the API: sent, taken into review, decided (with a reason
category), approved, withdrawn; and a directory service to signpost families to."""

from __future__ import annotations

from typing import Any

import httpx

from tests.builders.api import created, expect, read_with_etag


async def refer(
    http: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    """A referral that must be accepted for triage (201)."""
    return await created(http, "/v1/referrals", body, headers)


async def act(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    referral_id: str,
    action: str,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A state change (`review`, `decision`, `approval`, `withdrawal`) made against the
    referral's current ETag, which must succeed; the referral after it."""
    _, etag = await read_with_etag(http, f"/v1/referrals/{referral_id}", headers)
    response = await http.post(
        f"/v1/referrals/{referral_id}/{action}",
        json=body,
        headers={**headers, "If-Match": etag},
    )
    changed: dict[str, Any] = expect(response)
    return changed


def decision(
    kind: str,
    category: str | None = None,
    reason: str = "Decided at the front door.",
    **fields: Any,
) -> dict[str, Any]:
    """A decision body; `category` is its `reason_category`, left out when None."""
    body: dict[str, Any] = {"decision": kind, "reason": reason, **fields}
    if category is not None:
        body["reason_category"] = category
    return body


async def service(http: httpx.AsyncClient, headers: dict[str, str], name: str) -> str:
    """A directory service (by a `directory:write` caller); its id."""
    made = await created(
        http, "/v1/directory/services", {"name": name, "status": "active"}, headers
    )
    return str(made["id"])
