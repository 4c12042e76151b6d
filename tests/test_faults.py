"""Database faults: a database that is shutting down, starting, refusing connections or
killing them is a 503 with Retry-After, a value it cannot store is a 422, never a 500; and no
value a driver quotes in its error reaches the log.

The last test runs the service under concurrent reads and writes against a PostgreSQL cluster
of its own (`scripts/faults-cluster`, port 5433), kills its connections, stops and restarts
the cluster and refuses new connections, then checks every answer and every acknowledged
write.
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import logging
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.db import run
from app.db_errors import ClientDataError, classify
from app.deps import SessionDep
from tests.builders.api import standalone
from tests.builders.casework import HUB_SCOPES
from tests.builders.schools import make_school
from tests.conftest import (
    IN_CI,
    POSTGRES_ENV,
    DatabaseUnderTest,
    World,
    _checkout_suffix,
    migrate,
    settings_for,
)

UNAVAILABLE = "urn:liaison:problem:service-unavailable"
VALIDATION_FAILED = "urn:liaison:problem:validation-failed"
# Bound to a BIGINT parameter, asyncpg refuses it and quotes it in its message.
HUGE = 10**20
QUOTED_SECRET = "Quintrell-9f3a"


# --- what each error means -----------------------------------------------------------------

pg = asyncpg.exceptions


def _with_context(error: BaseException, context: BaseException) -> BaseException:
    error.__context__ = context
    return error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), "unavailable"),
        (OSError("Multiple exceptions: [Errno 111] Connect call failed"), "unavailable"),
        (TimeoutError(), "unavailable"),
        (FileNotFoundError("no such file"), None),
        (pg.AdminShutdownError("terminating connection"), "unavailable 57P01"),
        (pg.CrashShutdownError("crash"), "unavailable 57P02"),
        (pg.CannotConnectNowError("the database system is starting up"), "unavailable 57P03"),
        (pg.ConnectionDoesNotExistError("closed in the middle"), "unavailable 08003"),
        (pg.TooManyConnectionsError("too many connections"), "unavailable 53300"),
        (pg.QueryCanceledError("statement timeout"), "unavailable 57014"),
        (pg.SerializationError("could not serialize"), "unavailable 40001"),
        (pg.DeadlockDetectedError("deadlock"), "unavailable 40P01"),
        (pg.LockNotAvailableError("lock timeout"), "unavailable 55P03"),
        (asyncpg.InterfaceError("cannot perform operation: connection is closed"), "unavailable"),
        (asyncpg.InternalClientError("cannot switch to state 12"), "unavailable"),
        (asyncpg.InterfaceError("the server expects 2 arguments, 1 was passed"), None),
        (ClientDataError("invalid input for query argument $1: 1e20"), "unstorable"),
        (pg.CharacterNotInRepertoireError("invalid byte sequence"), "unstorable 22021"),
        (pg.UntranslatableCharacterError("\\u0000 cannot be converted"), "unstorable 22P05"),
        (pg.NumericValueOutOfRangeError("out of range"), "unstorable 22003"),
        (pg.StringDataRightTruncationError("value too long"), "unstorable 22001"),
        (pg.InvalidDatetimeFormatError("invalid input syntax"), "unstorable 22007"),
        (pg.UniqueViolationError("duplicate key"), None),
        (pg.UndefinedTableError("relation does not exist"), None),
        (sqlite3.OperationalError("database is locked"), "unavailable"),
        (sqlite3.OperationalError("unable to open database file"), "unavailable"),
        (sqlite3.OperationalError("no such table: pupil"), None),
        (sqlite3.IntegrityError("UNIQUE constraint failed"), None),
        (PoolTimeoutError("QueuePool limit of size 10 overflow 10 reached"), "unavailable"),
        (ValueError("not the database"), None),
        # What the request's rollback raises on a dead connection hides the first error.
        (_with_context(RuntimeError("rollback"), pg.AdminShutdownError("x")), "unavailable 57P01"),
        (
            _with_context(asyncpg.InterfaceError("connection is closed"), ClientDataError("v")),
            "unavailable",
        ),
        (ExceptionGroup("many", [ValueError(), ConnectionResetError()]), "unavailable"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_what_a_database_error_means(error: BaseException, expected: str | None) -> None:
    wrapped = DBAPIError("SELECT 1", None, error)
    wrapped.__cause__ = error
    for candidate in (error, wrapped):
        fault = classify(candidate)
        meaning = (
            None
            if fault is None
            else " ".join(part for part in (fault.kind.value, fault.sqlstate) if part)
        )
        assert meaning == expected, candidate


# --- a probe app: routes that meet a database fault through the request's own session ------


def add_fault_routes(application: FastAPI) -> None:
    @application.get("/fault/sqlstate/{code}")
    async def raise_sqlstate(code: str, session: SessionDep) -> None:
        """PostgreSQL raises `code` itself, so the driver and SQLAlchemy wrap it for real."""
        assert re.fullmatch(r"[0-9A-Z]{5}", code)
        await run(
            session,
            text(f"DO $$ BEGIN RAISE EXCEPTION 'probe' USING ERRCODE = '{code}'; END $$"),
        )

    @application.get("/fault/terminated")
    async def terminated(session: SessionDep) -> None:
        await run(session, text("SELECT 1"))
        await run(session, text("SELECT pg_terminate_backend(pg_backend_pid())"))

    @application.post("/fault/killed-before-commit")
    async def killed_before_commit(session: SessionDep) -> None:
        """The transaction's backend is killed from outside between the work and the commit
        that `get_session` makes when the route returns."""
        pid = (await run(session, text("SELECT pg_backend_pid()"))).scalar_one()
        await run(session, text("CREATE TEMPORARY TABLE probe (x integer)"))
        async with application.state.engine.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await other.commit()
        await asyncio.sleep(0.2)

    @application.get("/fault/statement-timeout")
    async def statement_timeout(session: SessionDep) -> None:
        await run(session, text("SET LOCAL statement_timeout = 50"))
        await run(session, text("SELECT pg_sleep(2)"))

    @application.get("/fault/huge-integer")
    async def huge_integer(session: SessionDep) -> None:
        await run(session, text("SELECT CAST(:v AS BIGINT)"), {"v": HUGE})

    @application.get("/fault/nul")
    async def nul(session: SessionDep) -> None:
        await run(session, text("SELECT CAST(:v AS TEXT)"), {"v": f"a\x00{QUOTED_SECRET}"})

    @application.get("/fault/quoting-error")
    async def quoting_error(session: SessionDep) -> None:
        """A server error that quotes a value and is no fault class: a 500, logged."""
        await run(
            session,
            text(f"DO $$ BEGIN RAISE EXCEPTION 'bad row {QUOTED_SECRET}'; END $$"),
        )

    @application.get("/fault/wrapped-quoting-error")
    async def wrapped_quoting_error(session: SessionDep) -> None:
        """The same, wrapped in an exception no handler knows: the middleware logs it."""
        try:
            await quoting_error(session)
        except DBAPIError as exc:
            raise RuntimeError("probe failed") from exc

    @application.post("/fault/locked")
    async def locked(session: SessionDep) -> None:
        """A write that gives up at once when another connection holds the lock."""
        if session.get_bind().dialect.name == "sqlite":
            await run(session, text("PRAGMA busy_timeout = 0"))
        else:
            await run(session, text("SET LOCAL lock_timeout = 50"))
        await run(session, text("UPDATE school SET name = name WHERE 1 = 0"))


def probe_app(url: str) -> AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]:
    """An app of its own over `url`, with the fault routes added."""
    return standalone(url, prepare=add_fault_routes, db_connect_timeout_seconds=2)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert response.json()["type"] == UNAVAILABLE


@pytest.mark.postgresql_only
@pytest.mark.parametrize(
    "sqlstate",
    [
        "57P01",  # admin shutdown: a fast stop, pg_terminate_backend
        "57P02",  # crash shutdown
        "57P03",  # cannot connect now: starting up, shutting down
        "08006",  # connection failure
        "53300",  # too many connections
        "57014",  # query cancelled, statement timeout
        "40001",  # serialization failure: retryable
        "40P01",  # deadlock: retryable
    ],
)
async def test_database_faults_are_503_with_retry_after(
    fresh_app: FastAPI, database: DatabaseUnderTest, sqlstate: str
) -> None:
    async with probe_app(database.url) as (_app, http):
        assert_unavailable(await http.get(f"/fault/sqlstate/{sqlstate}"))
        assert (await http.get("/readyz")).status_code == 200


@pytest.mark.postgresql_only
@pytest.mark.parametrize(
    "route",
    [
        "GET /fault/terminated",
        "POST /fault/killed-before-commit",
        "GET /fault/statement-timeout",
    ],
)
async def test_a_connection_killed_mid_transaction_is_503_and_the_pool_recovers(
    fresh_app: FastAPI, database: DatabaseUnderTest, route: str
) -> None:
    method, path = route.split()
    async with probe_app(database.url) as (_app, http):
        assert_unavailable(await http.request(method, path))
        for _ in range(3):  # every pooled connection, old or new, works again
            assert (await http.get("/readyz")).status_code == 200
            assert (await http.get("/v1/schools")).status_code == 401


@pytest.mark.postgresql_only
@pytest.mark.parametrize(
    "path", ["/fault/huge-integer", "/fault/nul", *(f"/fault/sqlstate/{c}" for c in ["22003"])]
)
async def test_a_value_the_database_cannot_store_is_422(
    fresh_app: FastAPI, database: DatabaseUnderTest, path: str
) -> None:
    async with probe_app(database.url) as (_app, http):
        response = await http.get(path)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["type"] == VALIDATION_FAILED
        assert body["detail"] == "A value in the request cannot be stored."
        assert str(HUGE) not in response.text and QUOTED_SECRET not in response.text


async def test_a_locked_database_is_503(fresh_app: FastAPI, database: DatabaseUnderTest) -> None:
    """Another connection holds the lock and the request's will not wait for it."""
    if database.backend == "sqlite":
        holder = sqlite3.connect(database.path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        release: Callable[[], Awaitable[None]] = _closer(holder)
    else:
        connection = await asyncpg.connect(
            database.url.replace("postgresql+asyncpg", "postgresql"), timeout=5
        )
        await connection.execute("BEGIN; LOCK TABLE school IN ACCESS EXCLUSIVE MODE")
        release = connection.close
    try:
        async with probe_app(database.url) as (_app, http):
            assert_unavailable(await http.post("/fault/locked"))
    finally:
        await release()


def _closer(holder: Any) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        holder.execute("ROLLBACK")
        holder.close()

    return close


# --- logs carry no values ---------------------------------------------------------------


def formatted(record: logging.LogRecord) -> str:
    """A log record as the service's own handler writes it."""
    handler = next(h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler)
    assert handler.formatter is not None
    return handler.formatter.format(record)


@pytest.mark.postgresql_only
async def test_driver_messages_quoting_values_never_reach_the_log(
    fresh_app: FastAPI, database: DatabaseUnderTest, capsys: pytest.CaptureFixture[str]
) -> None:
    async with probe_app(database.url) as (application, http):
        capsys.readouterr()
        # Our handlers: a value refused (422) and an unexpected error quoting one (500) ...
        assert (await http.get("/fault/huge-integer")).status_code == 422
        assert (await http.get("/fault/nul")).status_code == 422
        assert (await http.get("/fault/quoting-error")).status_code == 500
        # ... the middleware, for an exception no handler knows ...
        assert (await http.get("/fault/wrapped-quoting-error")).status_code == 500
        # ... and a library logging a driver exception on its own.
        try:
            async with application.state.engine.connect() as connection:
                await connection.execute(text("SELECT CAST(:v AS BIGINT)"), {"v": HUGE})
        except DBAPIError as exc:
            logging.getLogger("uvicorn.error").error("Exception in ASGI application", exc_info=exc)
        logged = capsys.readouterr().out
    assert '"unhandled_exception"' in logged and "Exception in ASGI application" in logged
    # The frames are kept; the messages are not.
    assert '"frames"' in logged and "message withheld" in logged
    assert str(HUGE) not in logged
    assert QUOTED_SECRET not in logged


def test_the_log_renderer_withholds_driver_messages_from_any_logger(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from app.logging import configure_logging

    configure_logging(settings_for("sqlite+aiosqlite://"))
    quoting: list[BaseException] = [
        asyncpg.exceptions.DataError(f"invalid input for query argument $1: '{QUOTED_SECRET}'"),
        asyncpg.exceptions.UniqueViolationError(
            f"duplicate key value; DETAIL: Key (code)=({QUOTED_SECRET}) already exists."
        ),
        sqlite3.IntegrityError(f"CHECK constraint failed: name <> '{QUOTED_SECRET}'"),
    ]
    for error in quoting:
        try:
            try:
                raise error
            except Exception as inner:
                raise DBAPIError("SELECT 1", None, inner) from inner
        except DBAPIError as exc:
            logging.getLogger("some.library").warning("failed", exc_info=exc)
    logged = capsys.readouterr().out
    assert QUOTED_SECRET not in logged
    for name in ("DataError", "UniqueViolationError", "23505", "IntegrityError", "DBAPIError"):
        assert name in logged


# --- the fault test: a cluster of its own, stopped and cut off under load -------------------

FAULTS_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "faults-cluster"
FAULTS_CLUSTER = os.environ.get("LIAISON_FAULTS_CLUSTER", "liaisonfaults")
FAULTS_PORT = int(os.environ.get("LIAISON_FAULTS_PORT", "5433"))
FAULTS_ADMIN = f"postgresql://postgres@127.0.0.1:{FAULTS_PORT}/postgres"
FAULTS_ROLE = "liaison_faults"  # not a superuser, so that a connection limit binds it
RETRY_PAUSE = 0.1  # seconds; a real client waits Retry-After, the test has no minutes
RECOVERY_LIMIT = 5.0
# One fault cluster per machine: another checkout's fault test waits for this one.
LOCK_FILE = Path(tempfile.gettempdir()) / "liaison-faults-cluster.lock"


def _cluster_version() -> str:
    versions = sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in v.split(".")])
    return os.environ.get("LIAISON_FAULTS_PG_VERSION") or versions[-1]


async def pg_ctl(action: str, *options: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "pg_ctlcluster", "--skip-systemctl-redirect", _cluster_version(), FAULTS_CLUSTER,
        action, *options, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode == 0, f"pg_ctlcluster {action}: {output.decode()}"


async def admin(sql: str, *args: Any) -> Any:
    connection = await asyncpg.connect(FAULTS_ADMIN, timeout=5)
    try:
        return await connection.fetch(sql, *args)
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def faults_database() -> Iterator[str]:
    """A migrated database on the fault cluster, owned by a role that is not a superuser.
    The cluster is prepared here too, so the test does not depend on `.ci/run` having done
    it; under CI a cluster that cannot be prepared fails the test."""
    if not IN_CI and os.environ.get(POSTGRES_ENV) is None:
        pytest.skip(f"set {POSTGRES_ENV} (or CI) to run the PostgreSQL fault test")
    with LOCK_FILE.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        prepared = subprocess.run(  # noqa: S603
            [str(FAULTS_SCRIPT)], capture_output=True, text=True, check=False, timeout=120
        )
        if prepared.returncode != 0:
            message = f"the fault cluster is not available: {prepared.stdout}{prepared.stderr}"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        name = f"liaison_faults_{_checkout_suffix()}"

        async def create() -> None:
            if not await admin("SELECT 1 FROM pg_roles WHERE rolname = $1", FAULTS_ROLE):
                await admin(f"CREATE ROLE {FAULTS_ROLE} LOGIN")
            await admin(f"ALTER ROLE {FAULTS_ROLE} CONNECTION LIMIT -1")
            await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin(f'CREATE DATABASE "{name}" OWNER {FAULTS_ROLE}')

        asyncio.run(create())
        url = f"postgresql+asyncpg://{FAULTS_ROLE}@127.0.0.1:{FAULTS_PORT}/{name}"
        migrate(url)
        yield url


@dataclass
class Tally:
    """Every answer the clients got, and every write the service acknowledged."""

    statuses: Counter[int] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    acknowledged: dict[str, list[str]] = field(default_factory=dict)
    abandoned: dict[str, list[str]] = field(default_factory=dict)
    replayed: int = 0  # retries answered from the first, committed attempt

    def record(self, method: str, url: str, response: httpx.Response) -> None:
        self.statuses[response.status_code] += 1
        if response.is_success:
            self.replayed += response.headers.get("idempotent-replayed") == "true"
            return
        if (
            response.status_code == 503
            and response.headers.get("retry-after")
            and response.headers.get("content-type") == "application/problem+json"
            and response.json().get("type") == UNAVAILABLE
        ):
            return
        self.wrong.append(f"{method} {url} -> {response.status_code} {response.text[:400]}")


@dataclass
class Load:
    http: httpx.AsyncClient
    tally: Tally
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    give_up_at: float = float("inf")

    async def call(self, method: str, url: str, **options: Any) -> httpx.Response:
        response = await self.http.request(method, url, **options)
        self.tally.record(method, url, response)
        return response

    async def reader(self, url: str, headers: dict[str, str]) -> None:
        while not self.stop.is_set():
            response = await self.call("GET", url, headers=headers)
            if response.status_code == 503:
                await asyncio.sleep(RETRY_PAUSE)

    async def writer(
        self, kind: str, url: str, headers: dict[str, str], body_for: Callable[[int], Any]
    ) -> None:
        """Writes one new thing after another, each retried on 503 with the same key and
        body until the service acknowledges it."""
        acknowledged = self.tally.acknowledged.setdefault(kind, [])
        abandoned = self.tally.abandoned.setdefault(kind, [])
        for n in itertools.count():
            if self.stop.is_set():
                return
            key = f"{kind}-{n:05d}"
            body = body_for(n)
            while True:
                response = await self.call(
                    "POST", url, json=body, headers={**headers, "Idempotency-Key": key}
                )
                if response.is_success:
                    acknowledged.append(key)
                    break
                if response.status_code != 503 or time.monotonic() > self.give_up_at:
                    abandoned.append(key)
                    break
                await asyncio.sleep(RETRY_PAUSE)


async def until_answered(
    probe: Callable[[], Awaitable[httpx.Response]], limit: float = 30.0
) -> float:
    """Seconds until `probe` answers 2xx."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if (await probe()).is_success:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    return float("inf")


async def test_faults_under_load_are_503_and_lose_nothing(faults_database: str) -> None:
    url = faults_database
    database_name = url.rsplit("/", 1)[1]
    async with standalone(url, db_connect_timeout_seconds=2) as (application, http):
        world = World(application, http)
        setup = await make_school(world, http, pupils=4)
        school, mis = setup.school, setup.mis
        pupil_ids = list(setup.pupil_ids.values())
        hub = await world.client_headers(HUB_SCOPES, la_code="202")
        practitioner = await world.headers(await world.staff("practitioner", schools=[school]))
        days = [date(2025, 9, 1) + timedelta(days=d) for d in range(2000)]

        def referral(n: int) -> dict[str, Any]:
            return {
                "external_reference": f"FAULT-{n:05d}",
                "children": [{"pupil_id": pupil_ids[n % len(pupil_ids)]}],
                "family": [{"name": "Alex Example", "relationship": "mother"}],
                "concerns": ["attendance"],
                "level_of_need": "targeted_early_help",
                "consent": {"given": True, "given_by": "Alex Example", "date": "2025-11-20"},
                "urgency": "routine",
                "summary": "Attendance has fallen since half term.",
            }

        def case(n: int) -> dict[str, Any]:
            return {
                "children": [{"pupil_id": pupil_ids[n % len(pupil_ids)]}],
                "level_of_need": "targeted_early_help",
                "consent": {"given": True, "given_by": "Alex Example", "date": "2025-09-01"},
                "summary": f"fault case {n:05d}",
            }

        def marks(n: int) -> dict[str, Any]:
            return {
                "marks": [
                    {
                        "school_code": school["code"],
                        "mis_id": "P0",
                        "date": days[n].isoformat(),
                        "session": "AM",
                        "code": "/",
                    }
                ]
            }

        tally = Tally()
        load = Load(http, tally)
        clients = [
            load.reader(f"/v1/pupils?school_id={school['id']}", mis),
            load.reader(f"/v1/schools/{school['id']}", mis),
            load.reader("/v1/referrals", hub),
            load.reader("/v1/cases", practitioner),
            load.writer("referral", "/v1/referrals", hub, referral),
            load.writer("case", "/v1/cases", practitioner, case),
            load.writer("marks", "/v1/attendance/marks", mis, marks),
        ]
        tasks = [asyncio.create_task(c) for c in clients]

        async def probe() -> httpx.Response:
            return await http.get(f"/v1/schools/{school['id']}", headers=mis)

        async def ready() -> httpx.Response:
            return await http.get("/readyz")

        async def terminate() -> None:
            await admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'liaison' AND datname = $1",
                database_name,
            )

        recoveries: dict[str, float] = {}
        readiness: list[int] = []
        started = time.monotonic()
        try:
            await asyncio.sleep(1.0)
            # (a) every backend of the service killed, several times
            for _ in range(3):
                await terminate()
                await asyncio.sleep(0.6)
            recoveries["terminated"] = await until_answered(probe)
            # (b) a fast shutdown and a start under load
            await pg_ctl("stop", "-m", "fast")
            await asyncio.sleep(0.5)
            readiness.append((await ready()).status_code)
            await asyncio.sleep(0.5)
            await pg_ctl("start")
            recoveries["restarted"] = await until_answered(probe)
            readiness.append((await ready()).status_code)
            # (c) new connections refused for a second, existing ones killed
            await admin(f"ALTER ROLE {FAULTS_ROLE} CONNECTION LIMIT 0")
            await terminate()
            await asyncio.sleep(0.5)
            readiness.append((await ready()).status_code)
            await asyncio.sleep(0.5)
            await admin(f"ALTER ROLE {FAULTS_ROLE} CONNECTION LIMIT -1")
            recoveries["connection limit"] = await until_answered(probe)
            await admin(f'ALTER DATABASE "{database_name}" ALLOW_CONNECTIONS false')
            await terminate()
            await asyncio.sleep(0.5)
            readiness.append((await ready()).status_code)
            await asyncio.sleep(0.5)
            await admin(f'ALTER DATABASE "{database_name}" ALLOW_CONNECTIONS true')
            recoveries["connections allowed"] = await until_answered(probe)
            readiness.append((await ready()).status_code)
            await asyncio.sleep(1.0)
        finally:
            load.give_up_at = time.monotonic() + 10
            load.stop.set()
            await asyncio.gather(*tasks)
            await admin(f"ALTER ROLE {FAULTS_ROLE} CONNECTION LIMIT -1")
            await admin(f'ALTER DATABASE "{database_name}" ALLOW_CONNECTIONS true')
        elapsed = time.monotonic() - started

    stored = await _stored(database_name, tally)
    report = (
        f"{sum(tally.statuses.values())} requests in {elapsed:.1f} s, statuses "
        f"{dict(sorted(tally.statuses.items()))}, acknowledged "
        f"{ {k: len(v) for k, v in tally.acknowledged.items()} }, abandoned "
        f"{ {k: len(v) for k, v in tally.abandoned.items()} }, {tally.replayed} replayed, "
        f"recovery seconds "
        f"{ {k: round(v, 2) for k, v in recoveries.items()} }, readiness {readiness}"
    )
    print(report, file=sys.stderr)  # noqa: T201 - the counts the closing note reports
    assert not tally.wrong, f"{len(tally.wrong)} answers neither 2xx nor 503:\n" + "\n".join(
        tally.wrong[:20]
    )
    assert tally.statuses[503] > 0, "no fault was met: the test proves nothing"
    assert all(v <= RECOVERY_LIMIT for v in recoveries.values()), report
    assert readiness == [503, 200, 503, 503, 200], report
    assert all(tally.acknowledged[kind] for kind in ("referral", "case", "marks")), report
    for kind, counts in stored.items():
        for key in tally.acknowledged[kind]:
            assert counts.get(key) == 1, f"{kind} {key} stored {counts.get(key, 0)} times"
        for key in tally.abandoned[kind]:
            assert counts.get(key, 0) <= 1, f"{kind} {key} stored {counts[key]} times"
    assert not any(tally.abandoned.values()), report


async def _stored(database_name: str, tally: Tally) -> dict[str, dict[str, int]]:
    """How many times each write the clients sent is in the database, by the client's key."""
    connection = await asyncpg.connect(
        f"postgresql://postgres@127.0.0.1:{FAULTS_PORT}/{database_name}", timeout=5
    )
    try:
        referrals = await connection.fetch(
            "SELECT 'referral-' || substr(external_reference, 7) AS key, count(*) AS n "
            "FROM referral GROUP BY external_reference"
        )
        cases = await connection.fetch(
            "SELECT 'case-' || substr(summary, 12) AS key, count(*) AS n "
            "FROM early_help_case GROUP BY summary"
        )
        marks = await connection.fetch(
            "SELECT 'marks-' || lpad((date - DATE '2025-09-01')::text, 5, '0') AS key, "
            "count(*) AS n FROM attendance_mark GROUP BY date"
        )
    finally:
        await connection.close()
    return {
        "referral": {r["key"]: r["n"] for r in referrals},
        "case": {r["key"]: r["n"] for r in cases},
        "marks": {r["key"]: r["n"] for r in marks},
    }
