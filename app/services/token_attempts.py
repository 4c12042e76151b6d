"""Guessing at the token endpoint: failed client-secret and password checks are limited
per identity (client id, username) and per client address, in windows every worker shares.

An attempt first *reserves* a hit in each window it falls under, one atomic increment per
window, and gives the hits back unless its secret turns out wrong. So only failures stay
counted, and attempts sent all at once still get no more secret checks than the limit: the
increment decides, not a read before it. A window at its limit refuses every attempt, one
with the right secret included, until it ends; otherwise guessing would go on and the right
guess would stand out.

A success gives back only its own hits; earlier failures stay until their window ends. If a
success cleared them, every token a busy system fetches would hand a guesser of its client
id a fresh allowance.

Identities and addresses are stored as keyed hashes (HMAC under the signing key): the
counters hold no usernames, no client ids, no addresses, and no password typed into the
username field by mistake. Nothing here logs them either.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from limits import RateLimitItem, parse_many
from limits.aio.strategies import FixedWindowRateLimiter
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from app.config import Settings
from app.db import is_postgresql, run
from app.ratelimit import DatabaseStorage, release

log = structlog.get_logger("liaison.token_attempts")

# Reservations between two deletions of ended windows, per process.
PRUNE_EVERY = 500


class TooManyAttempts(Exception):
    """A window the attempt falls under is full: retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed attempts; retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Window:
    """One limit applied to one subject (`client:…`, `user:…` or `address:…`)."""

    limit: RateLimitItem
    subject: str

    @property
    def key(self) -> str:
        return self.limit.key_for(self.subject)

    @property
    def kind(self) -> str:
        return self.subject.partition(":")[0]


@dataclass(frozen=True)
class Reservation:
    """The hits an attempt holds until `TokenAttempts.settle` says whether they count."""

    windows: tuple[Window, ...] = ()
    address: str | None = None


class TokenAttempts:
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self._engine = engine
        self._identity_limits = parse_many(settings.token_identity_limits)
        self._address_limits = parse_many(settings.token_address_limits)
        # Rotating the signing key starts every count afresh, which is harmless.
        self._hash_key = settings.signing_key.get_secret_value().encode()
        self._reservations = 0

    def client(self, client_id: str) -> str:
        """The subject for guesses at `client_id`'s secret, whether or not it exists."""
        return self._subject("client", client_id)

    def user(self, username: str) -> str:
        """The subject for guesses at `username`'s password, whether or not it exists."""
        return self._subject("user", username.lower())

    def _subject(self, kind: str, value: str) -> str:
        message = f"{kind}:{value}".encode(errors="surrogatepass")
        return f"{kind}:{hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()[:32]}"

    def address(self, address: str) -> str:
        """The subject for guesses from `address`: IPv4 addresses count one by one, IPv6 ones
        by /64, the block a single host is usually given."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return self._subject("address", address)
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            else:
                return self._subject("address", str(ipaddress.IPv6Network(f"{ip}/64", False)))
        return self._subject("address", str(ip))

    async def reserve(
        self, session: AsyncSession, identities: Sequence[str], address: str | None
    ) -> Reservation:
        """Reserve a hit in every window of `identities` (subjects from `client`/`user`) and
        of `address`, or raise `TooManyAttempts`, holding none, if one of them is full.

        The hits commit or roll back together, so a refused attempt leaves no trace. They go
        in key order, so attempts that share windows lock them in one order.
        """
        if not identities:
            return Reservation()
        address_subject = self.address(address) if address else None
        windows = [Window(limit, i) for i in identities for limit in self._identity_limits]
        if address_subject:
            windows += [Window(limit, address_subject) for limit in self._address_limits]
        windows.sort(key=lambda w: w.key)
        await self._prune_now_and_then()
        async with self._hits(session) as connection:
            limiter = FixedWindowRateLimiter(DatabaseStorage(connection))
            full = [w for w in windows if not await limiter.hit(w.limit, w.subject)]
            if full:
                stats = [await limiter.get_window_stats(w.limit, w.subject) for w in full]
                raise self._refusal(full, max(stat.reset_time for stat in stats))
        return Reservation(tuple(windows), address_subject)

    @asynccontextmanager
    async def _hits(self, session: AsyncSession) -> AsyncIterator[AsyncConnection]:
        """Where an attempt's hits are written, rolled back if the block raises.

        On PostgreSQL, a transaction of their own, committed at once: every worker counts
        them straight away, and no row stays locked while the secret is checked.

        On SQLite, a savepoint in the request's transaction, which so takes the database's
        write lock before it reads anything. SQLite cannot turn a transaction that has read
        into one that writes once another connection has written, and the request writes
        after its secret check (hits given back, a client's last use), so otherwise two
        overlapping sign-ins would end in a 503. Token requests take turns instead, as
        writers to a SQLite file always do.
        """
        if is_postgresql(session):
            async with self._engine.begin() as connection:
                yield connection
        else:
            async with session.begin_nested():
                yield await session.connection()

    def _refusal(self, full: Sequence[Window], reset_time: float) -> TooManyAttempts:
        retry_after = max(1, math.ceil(reset_time - time.time()))
        log.warning(
            "token_attempt_refused",
            limited=sorted({w.kind for w in full}),
            retry_after=retry_after,
        )
        return TooManyAttempts(retry_after)

    async def _prune_now_and_then(self) -> None:
        self._reservations += 1
        if self._reservations % PRUNE_EVERY == 0:
            await DatabaseStorage(self._engine).prune()

    async def settle(
        self, session: AsyncSession, reservation: Reservation, failed: Collection[str]
    ) -> None:
        """Keep the hits of the identities in `failed` (and the address's, if any failed);
        give back the rest.

        Given back in the request's transaction: the request already holds a connection,
        and waiting for a second one while holding it could exhaust the pool under load. In
        key order, as `reserve` takes them, so requests lock rows in one order and never
        deadlock. An attempt cut short by a database fault settles nothing: on PostgreSQL it
        errs towards counting; on SQLite its hits roll back with the request.
        """
        kept = set(failed)
        if kept and reservation.address:
            kept.add(reservation.address)
        now = time.time()
        for window in sorted(reservation.windows, key=lambda w: w.key):
            if window.subject not in kept:
                await run(session, release(window.key, now))
