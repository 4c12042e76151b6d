"""A storage for the `limits` library backed by the application's own database.

`limits` (rate strings, windows, strategies) does the limiting; its own storages are
process memory, Redis, Memcached and MongoDB. Liaison already has a database that every
worker and host shares, so this storage keeps each counter as a row of
`rate_limit_counter` and a deployment needs nothing new to run.

It supports the fixed-window strategy (`limits.aio.strategies.FixedWindowRateLimiter`): a
window opens at the first hit on its key and lasts the limit's period. Every hit is one
`INSERT … ON CONFLICT DO UPDATE … RETURNING`, on SQLite and PostgreSQL alike, so hits from
many workers at once are all counted and each sees the count its own hit made. An expired
window is reused in place by the next hit on its key; `prune` deletes those nobody hits
again, so the table holds about one row per key hit within the longest period.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from limits.aio.storage import Storage
from sqlalchemy import Update, case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import ping, table_of
from app.models.ratelimit import RateLimitCounter

_COUNTERS = table_of(RateLimitCounter)


def release(key: str, now: float, amount: int = 1) -> Update:
    """Give back `amount` hits to `key`'s window if it is still open: for a hit that turned
    out not to count. Run on whichever connection the caller is using.

    Should the window end between the hit and this, and another hit open a new one, the
    new one gets the hits back instead: at a window's edge a count can be short by one.
    """
    return (
        update(_COUNTERS)
        .where(
            _COUNTERS.c.key == key,
            _COUNTERS.c.expires_at > now,
            _COUNTERS.c.hits >= amount,
        )
        .values(hits=_COUNTERS.c.hits - amount)
    )


class DatabaseStorage(Storage):
    """Fixed-window counters in `rate_limit_counter`.

    Over an engine, each call is a short transaction of its own, committed before it
    returns. Over a connection, calls join the caller's transaction: several hits then
    commit, or roll back, together.
    """

    def __init__(self, bind: AsyncEngine | AsyncConnection) -> None:
        super().__init__()
        self._bind = bind

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return (SQLAlchemyError, OSError)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        if isinstance(self._bind, AsyncConnection):
            yield self._bind
        else:
            async with self._bind.begin() as connection:
                yield connection

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Count `amount` hits on `key` and return its window's count, opening a window of
        `expiry` seconds if none is open."""
        now = time.time()
        insert = postgresql_insert if self._bind.dialect.name == "postgresql" else sqlite_insert
        statement = insert(_COUNTERS).values(key=key, hits=amount, expires_at=now + expiry)
        expired = _COUNTERS.c.expires_at <= now
        statement = statement.on_conflict_do_update(
            index_elements=[_COUNTERS.c.key],
            set_={
                "hits": case(
                    (expired, statement.excluded.hits),
                    else_=_COUNTERS.c.hits + statement.excluded.hits,
                ),
                "expires_at": case(
                    (expired, statement.excluded.expires_at), else_=_COUNTERS.c.expires_at
                ),
            },
        )
        async with self._connection() as connection:
            hits = (await connection.execute(statement.returning(_COUNTERS.c.hits))).scalar_one()
        return int(hits)

    async def get(self, key: str) -> int:
        window = await self._open_window(key)
        return window[0] if window else 0

    async def get_expiry(self, key: str) -> float:
        window = await self._open_window(key)
        return window[1] if window else time.time()

    async def _open_window(self, key: str) -> tuple[int, float] | None:
        statement = select(_COUNTERS.c.hits, _COUNTERS.c.expires_at).where(
            _COUNTERS.c.key == key, _COUNTERS.c.expires_at > time.time()
        )
        async with self._connection() as connection:
            row = (await connection.execute(statement)).first()
        return (int(row.hits), float(row.expires_at)) if row else None

    async def check(self) -> bool:
        if isinstance(self._bind, AsyncConnection):
            return not self._bind.closed
        return await ping(self._bind)

    async def reset(self) -> int | None:
        async with self._connection() as connection:
            return (await connection.execute(delete(_COUNTERS))).rowcount

    async def clear(self, key: str) -> None:
        async with self._connection() as connection:
            await connection.execute(delete(_COUNTERS).where(_COUNTERS.c.key == key))

    async def prune(self, now: float | None = None) -> int:
        """Delete windows that have ended; the next hit on their key starts afresh anyway."""
        cutoff = time.time() if now is None else now
        async with self._connection() as connection:
            result = await connection.execute(
                delete(_COUNTERS).where(_COUNTERS.c.expires_at <= cutoff)
            )
        return result.rowcount
