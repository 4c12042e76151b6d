"""The async engine, the session factory, and the few places SQLite and PostgreSQL differ."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import CursorResult, Executable, Table, event, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from app.config import Settings
from app.db_errors import connection_lost

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(settings: Settings) -> AsyncEngine:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        _configure_sqlite(engine)
    else:
        engine = _create_postgresql_engine(settings)
        _ping_after_idle(engine)
    event.listen(engine.sync_engine, "handle_error", _flag_lost_connections)
    return engine


def _flag_lost_connections(context: ExceptionContext) -> None:
    """Tell SQLAlchemy about the disconnects its asyncpg dialect does not recognise: a
    connection that could not be made at all (the database starting, shutting down, not
    accepting connections, over its connection limit), or one the server ended (an
    administrator's or a fast shutdown's termination). Flagged, the error is a 503 and the
    pool drops its other connections, which the same event has most likely ended too."""
    if context.is_pre_ping:
        return
    if context.connection is None or connection_lost(context.original_exception):
        context.is_disconnect = True


# Connections PostgreSQL keeps for administrators, migrations, `psql` and the delivery
# workers' own pools, out of `max_connections`, before the API workers share the rest.
RESERVED_CONNECTIONS = 20
MAX_POOL_SIZE = 10


def default_workers(settings: Settings) -> int:
    """`liaison serve`'s worker processes unless told: one per core the process may use on
    PostgreSQL; one on SQLite, which has a single writer however many processes wait."""
    if settings.is_sqlite:
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def pool_for(workers: int, max_connections: int) -> tuple[int, int]:
    """Each worker's pool size and overflow so that every worker at its peak stays within
    PostgreSQL's `max_connections`, less `RESERVED_CONNECTIONS`: half the share kept open,
    half as overflow, at most `MAX_POOL_SIZE` of each and at least one kept open."""
    share = max(1, (max_connections - RESERVED_CONNECTIONS) // max(1, workers))
    pool_size = max(1, min(MAX_POOL_SIZE, share // 2 or 1))
    overflow = max(0, min(MAX_POOL_SIZE, share - pool_size))
    return pool_size, overflow


async def max_connections(settings: Settings) -> int:
    """PostgreSQL's `max_connections`, asked of the server."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(text("SHOW max_connections"))).scalar_one())
    finally:
        await engine.dispose()


def _create_postgresql_engine(settings: Settings) -> AsyncEngine:
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        # Pinged only after an idle spell (`_ping_after_idle`), not on every checkout: the
        # driver's ping is three round trips (BEGIN, a query, ROLLBACK), a fifth of a read.
        pool_pre_ping=False,
        # Error messages would otherwise quote the statement's parameters: children's data.
        hide_parameters=True,
        pool_recycle=1800,
        pool_timeout=settings.db_connect_timeout_seconds,
        connect_args={
            "timeout": settings.db_connect_timeout_seconds,
            "command_timeout": settings.db_command_timeout_seconds,
            # JIT compiles for tens of milliseconds whenever a plan's estimate is high
            # (a LATERAL per pupil is), and short OLTP statements never repay it.
            "server_settings": {"application_name": "liaison", "jit": "off"},
        },
    )


# A connection back in the pool for longer than this is pinged before it is lent again.
IDLE_BEFORE_PING_SECONDS = 1.0


def _ping_after_idle(engine: AsyncEngine) -> None:
    """Pessimistic disconnect handling, paid only where it can matter: a connection that sat
    in the pool is pinged before use, so one that a restart or an administrator ended while
    idle is replaced and the request never sees it. A connection in steady use is not: if the
    database goes away under load, the statement that finds out is a 503 and the pool drops
    every connection made before it (`_flag_lost_connections`)."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < IDLE_BEFORE_PING_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except Exception as error:
            # The pool replaces the connection and tries again with a new one.
            raise DisconnectionError("the pooled connection was lost while idle") from error


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own implicit BEGIN breaks SAVEPOINT; we emit BEGIN ourselves below
        # (SQLAlchemy's documented recipe for pysqlite/aiosqlite).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE: nearly every request writes (an audit event at least), and a deferred
        # transaction that reads and then writes cannot wait for a writer that got there
        # first: SQLite refuses the upgrade at once (SQLITE_BUSY, a 503). Taking the write
        # lock at BEGIN makes it wait its turn under busy_timeout instead.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def ping(engine: AsyncEngine, timeout: float = 2.0) -> bool:
    """True when the database answers `SELECT 1` within `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


async def run(
    session: AsyncSession, statement: Executable, params: Any = None
) -> CursorResult[Any]:
    """Execute a Core statement (text, a multi-column select, a bulk write) on the session's
    connection and transaction, where the ORM's `exec` has no typed overload for it."""
    connection = await session.connection()
    return await connection.execute(statement, params)


def table_of(model: Any) -> Table:
    """A table model's `Table`, typed."""
    table: Table = model.__table__
    return table


T = TypeVar("T")
# Ids per `IN (...)` list or array parameter: under both databases' bind-parameter limits.
CHUNK = 5000


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def is_postgresql(session: AsyncSession) -> bool:
    """Whether the session's database is PostgreSQL, where bulk paths use arrays."""
    return session.get_bind().dialect.name == "postgresql"


async def add_unique(session: AsyncSession, row: Any, conflict: str) -> None:
    """Add and flush `row`, or answer 409 with `conflict` when it breaks a unique constraint.
    A savepoint keeps the request's transaction usable either way."""
    from app.errors import Conflict

    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        raise Conflict(conflict) from None
