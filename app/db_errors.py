"""What a database error means for the client, and what of it may reach the log.

A database shutting down, starting, out of connections or killing them surfaces as driver
exceptions that SQLAlchemy's asyncpg dialect wraps in a plain `DBAPIError`, seldom flagged as
a disconnect, and a request's rollback on a dead connection raises yet another error on top.
So the meaning is read from the SQLSTATE and the driver's class wherever they sit in the
exception's chain, never from the outermost type alone.

Driver messages quote the values they refused ("invalid input for query argument $1:
<value>"), so the log gets a summary of a driver exception, never its message.
"""

from __future__ import annotations

import enum
import re
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
from asyncpg.exceptions._base import DataError as ClientDataError
from sqlalchemy.exc import DBAPIError, DisconnectionError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# SQLSTATE classes and codes that mean "not now, retry": connection exceptions (08),
# insufficient resources (53: too many connections, disk full, out of memory), operator
# intervention (57: shutting down, starting up, crashed, cancelled or timed out);
# serialization failure and deadlock (retrying is the documented remedy), a lock timeout,
# a read-only transaction (a standby promoted, or not yet), an idle transaction timed out.
_UNAVAILABLE_CLASSES = frozenset({"08", "53", "57"})
_UNAVAILABLE_CODES = frozenset({"40001", "40P01", "55P03", "25006", "25P03"})
# Data exceptions: a value the database cannot store (NUL, out of range, too long, not a date).
_UNSTORABLE_CLASSES = frozenset({"22"})
# States after which the connection itself is gone, not just the statement.
_CONNECTION_LOST_CODES = frozenset({"57P01", "57P02", "57P03"})

# SQLite's primary result codes for a busy or locked database, one it cannot open, an I/O
# error and a full disk.
_SQLITE_UNAVAILABLE = frozenset({5, 6, 10, 13, 14})  # BUSY, LOCKED, IOERR, FULL, CANTOPEN
_SQLITE_UNAVAILABLE_MESSAGE = re.compile(r"database is locked|unable to open", re.IGNORECASE)
_CLOSED_CONNECTION_MESSAGE = re.compile(r"connection (is|was|has been) closed", re.IGNORECASE)
_SOCKET_ERRORS = (ConnectionError, TimeoutError, socket.gaierror, socket.herror)

# Exceptions of these libraries carry the database's or the driver's words, which may
# quote a value; SQLAlchemy's DB-API adapters live in these modules.
_DRIVER_MODULES = (
    "asyncpg", "aiosqlite", "sqlite3", "sqlalchemy.dialects", "sqlalchemy.connectors",
)  # fmt: skip


class Fault(enum.Enum):
    unavailable = "unavailable"  # the database cannot serve now: 503, retry
    unstorable = "unstorable"  # the database refused a value of the request: 422


@dataclass(frozen=True)
class DatabaseFault:
    kind: Fault
    error: str  # the driver error it is named after, e.g. "AdminShutdownError"
    sqlstate: str | None


def chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception behind it (SQLAlchemy's `.orig`, `__cause__`, `__context__`,
    the members of a group), each once."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        behind: list[object] = [
            getattr(current, "orig", None),
            current.__cause__,
            current.__context__,
        ]
        if isinstance(current, BaseExceptionGroup):
            behind.extend(current.exceptions)
        pending.extend(e for e in reversed(behind) if isinstance(e, BaseException))


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of an asyncpg error or of SQLAlchemy's adapter around one."""
    code = getattr(error, "sqlstate", None)
    return code if isinstance(code, str) and len(code) == 5 else None


def classify(exc: BaseException) -> DatabaseFault | None:
    """What the database fault in `exc`'s chain means for the client, or None when there is
    none. Unavailability wins over a refused value: a request that met both is retried."""
    errors = list(chain(exc))
    kinds = [_kind(error) for error in errors]
    for kind in (Fault.unavailable, Fault.unstorable):
        if kind in kinds:
            # Named after the driver's own error, the deepest one with a SQLSTATE (the
            # wrappers repeat it), or else the deepest of all.
            coded = [error for error in errors if sqlstate(error) is not None]
            named = coded[-1] if coded else errors[-1]
            return DatabaseFault(kind, type(named).__name__, sqlstate(named))
    return None


def connection_lost(exc: BaseException) -> bool:
    """Whether the error leaves the connection itself unusable (as opposed to a statement
    that failed on a good connection), so that the pool must not hand it out again."""
    for error in chain(exc):
        code = sqlstate(error)
        if code is not None and (code[:2] == "08" or code in _CONNECTION_LOST_CODES):
            return True
        if _closed_connection(error):
            return True
    return False


def _kind(error: BaseException) -> Fault | None:
    code = sqlstate(error)
    if code is not None:
        if code[:2] in _UNAVAILABLE_CLASSES or code in _UNAVAILABLE_CODES:
            return Fault.unavailable
        if code[:2] in _UNSTORABLE_CLASSES:
            return Fault.unstorable
        return None
    if isinstance(error, ClientDataError):
        # Refused by asyncpg before it reached the server: "invalid input for query
        # argument $1: ... (value out of int64 range)". asyncpg does not export this class:
        # its name `asyncpg.DataError` is SQLSTATE 22000's, handled above.
        return Fault.unstorable
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return Fault.unavailable
    if _closed_connection(error) or isinstance(error, (PoolTimeoutError, DisconnectionError)):
        return Fault.unavailable
    if isinstance(error, _SOCKET_ERRORS) or type(error) is OSError:
        # Refused, reset, unreachable, timed out; asyncio reports several addresses that all
        # failed as a plain OSError. Files (FileNotFoundError, ...) are not the database.
        return Fault.unavailable
    if isinstance(error, sqlite3.OperationalError) and _sqlite_unavailable(error):
        return Fault.unavailable
    return None


def _closed_connection(error: BaseException) -> bool:
    """asyncpg's word for a connection it can no longer use: closed under it, or left
    mid-protocol by an error that ended the session ("cannot switch to state 12; another
    operation (2) is in progress" after a termination)."""
    if isinstance(error, asyncpg.InternalClientError):
        return True
    return isinstance(error, asyncpg.InterfaceError) and bool(
        _CLOSED_CONNECTION_MESSAGE.search(str(error))
    )


def _sqlite_unavailable(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _SQLITE_UNAVAILABLE
    return bool(_SQLITE_UNAVAILABLE_MESSAGE.search(str(error)))


# --- what the log may say -----------------------------------------------------------------


def is_driver_error(error: BaseException) -> bool:
    """Whether `error` carries a database's or a driver's message, which may quote a value."""
    if isinstance(error, (StatementError, asyncpg.PostgresError, asyncpg.InterfaceError)):
        return True
    if isinstance(error, sqlite3.Error):
        return True
    return type(error).__module__.startswith(_DRIVER_MODULES)


def withheld(error: BaseException) -> str:
    """A driver exception as the log may show it: its class, SQLSTATE and the constraint it
    names (identifiers, not values), and never its message."""
    parts = [type(error).__name__]
    code = sqlstate(error) or getattr(getattr(error, "orig", None), "sqlstate", None)
    if isinstance(code, str):
        parts.append(f"SQLSTATE {code}")
    sqlite_name = getattr(error, "sqlite_errorname", None)
    if isinstance(sqlite_name, str):
        parts.append(sqlite_name)
    constraint = getattr(error, "constraint_name", None)
    if isinstance(constraint, str):
        parts.append(f"constraint {constraint}")
    return f"{' '.join(parts)}: message withheld"
