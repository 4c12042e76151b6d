"""Optimistic concurrency for referrals and cases: `ETag` out, `If-Match` in (read from the
header by `app.deps`, handed to services as an `Expected` value).

A record's tag is its version. A change names the version it was based on; the version is
then claimed with one conditional UPDATE, so of two people deciding at once exactly one
wins and the other gets 412, on either database, whatever the interleaving.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import PreconditionFailed

_VERSION_TAG = re.compile(r'"[0-9]{1,18}"')


def etag(version: int) -> str:
    return f'"{version}"'


@dataclass(frozen=True)
class Expected:
    """The versions a change may be applied to, from `If-Match`: the ones it lists, or any
    (`*`, or no header where the change does not need one)."""

    versions: frozenset[int] | None

    @classmethod
    def parse(cls, if_match: str | None) -> Expected:
        """`"3"`, `W/"3"`, a list of them, or `*`; a tag that is not a version matches none."""
        if if_match is None or not if_match.strip():
            return cls(None)
        tags = [tag.strip().removeprefix("W/") for tag in if_match.split(",")]
        if "*" in tags:
            return cls(None)
        return cls(frozenset(int(t[1:-1]) for t in tags if _VERSION_TAG.fullmatch(t)))

    def check(self, current: int) -> int:
        """`current`, if the change may apply to it; 412 if it names another version."""
        if self.versions is None or current in self.versions:
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
