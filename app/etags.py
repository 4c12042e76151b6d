"""Optimistic concurrency for referrals and cases: `ETag` out, `If-Match` in.

A record's tag is its version. A change names the version it was based on; the version is
then claimed with one conditional UPDATE, so of two people deciding at once exactly one
wins and the other gets 412, on either database, whatever the interleaving.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Header
from sqlalchemy import update
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import IF_MATCH_REQUIRED, PreconditionFailed, PreconditionRequired

IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The `ETag` of the version this change is based on.",
        max_length=100,
    ),
]
# Where a change needs `If-Match`, the contract says so; its absence is answered with 428
# (by the validation handler in app/errors.py), not 422.
IfMatchRequired = Annotated[
    str,
    Header(
        alias="If-Match",
        description="The `ETag` of the version this change is based on (required).",
        max_length=100,
    ),
]


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(if_match: str | None, current: int, *, required: bool = True) -> int:
    """The version `If-Match` names; 428 when it is missing and required, 412 when it names
    anything but the current version. Without a header (not required): the current one."""
    if if_match is None or not if_match.strip():
        if required:
            raise PreconditionRequired(IF_MATCH_REQUIRED)
        return current
    tags = [tag.strip() for tag in if_match.split(",")]
    if "*" in tags:
        return current
    for tag in tags:
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag(current):
            return current
    raise PreconditionFailed(
        "This record has changed since you read it; read it again and resend your change."
    )


async def claim_version(
    session: AsyncSession, model: Any, record_id: uuid.UUID, version: int
) -> None:
    """Move the record from `version` to the next one, or fail with 412 if someone else did
    first. On PostgreSQL the row stays locked until the transaction ends, so a concurrent
    claim waits, then finds the version gone."""
    result = await session.exec(
        update(model)
        .where(model.id == record_id, model.version == version)
        .values(version=version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise PreconditionFailed(
            "This record was changed by someone else a moment ago; read it again."
        )
