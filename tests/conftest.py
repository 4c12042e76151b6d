"""Test fixtures: the same suite against SQLite and PostgreSQL, schemas built by Alembic.

Every database test runs twice, once per backend. The app runs as in production (its own
engine, its own commits); isolation comes from resetting the database before each test:
SQLite gets a fresh copy of a migrated template file, PostgreSQL a TRUNCATE of every table.

PostgreSQL runs when `LIAISON_TEST_POSTGRES_URL` names a server (any database on it; the
tests make their own). Without it those tests skip, except under CI (`CI` set), where a
missing or unreachable PostgreSQL, or any skipped test, fails the run.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import app.models
from app.cli import alembic_config
from app.config import Settings, get_settings
from app.main import create_app
from app.models.principal import StaffRole
from app.services import principals
from tests.builders.demo import DemoServer, demo_server

POSTGRES_ENV = "LIAISON_TEST_POSTGRES_URL"
IN_CI = bool(os.environ.get("CI"))
TEST_SIGNING_KEY = "test-signing-key-0123456789abcdef-0123456789"
# Documents' bytes (the filesystem store) go here, never into the checkout.
TEST_DOCUMENT_DIR = tempfile.mkdtemp(prefix="liaison-test-documents-")
# Tables whose rows come from migrations: never truncated between tests.
REFERENCE_TABLES = frozenset(
    {"attendance_code", "referral_concern", "need_level", "outcome_category", "measure_instrument"}
)


@dataclass(frozen=True)
class DatabaseUnderTest:
    backend: str
    url: str
    template: Path | None = None  # SQLite only

    @property
    def path(self) -> Path:
        return Path(make_url(self.url).database or "")


def postgres_server_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


async def _recreate_postgres_database(server_url: str, name: str) -> str:
    import asyncpg

    url = make_url(server_url)
    admin_dsn = url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    connection = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return url.set(database=name).render_as_string(hide_password=False)


def _checkout_suffix() -> str:
    """A short tag for this checkout, so two checkouts testing against one PostgreSQL
    server at once each get databases of their own."""
    digest = hashlib.sha256(str(Path(__file__).resolve().parent.parent).encode()).hexdigest()
    return digest[:8]


def make_postgres_database(name: str) -> str:
    """A new, empty database called `name` plus this checkout's tag."""
    name = f"{name}_{_checkout_suffix()}"
    server_url = postgres_server_url()
    if server_url is None:
        if IN_CI:
            pytest.fail(f"{POSTGRES_ENV} must be set in CI: PostgreSQL tests may not skip")
        pytest.skip(f"set {POSTGRES_ENV} to run the PostgreSQL half of the suite")
    try:
        return asyncio.run(_recreate_postgres_database(server_url, name))
    except (OSError, Exception) as exc:  # unreachable server, bad credentials
        pytest.fail(f"PostgreSQL at {POSTGRES_ENV} is not usable: {exc!r}")


def migrate(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> DatabaseUnderTest:
    if request.param == "postgresql":
        url = make_postgres_database("liaison_test")
        migrate(url)
        return DatabaseUnderTest("postgresql", url)
    folder = tmp_path_factory.mktemp("sqlite")
    template = folder / "template.db"
    migrate(f"sqlite+aiosqlite:///{template}")
    return DatabaseUnderTest("sqlite", f"sqlite+aiosqlite:///{folder / 'liaison.db'}", template)


def settings_for(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": url,
        "signing_key": SecretStr(TEST_SIGNING_KEY),
        "log_format": "json",
        # Tests deliver webhooks themselves, when they choose (tests/builders/deliveries.py).
        "webhook_worker_in_serve": False,
        "document_dir": TEST_DOCUMENT_DIR,
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
async def app(database: DatabaseUnderTest) -> AsyncIterator[FastAPI]:
    if database.template is not None:
        shutil.copyfile(database.template, database.path)
    application = create_app(settings_for(database.url))
    async with LifespanManager(application):
        yield application


async def reset_database(application: FastAPI, database: DatabaseUnderTest) -> None:
    engine = application.state.engine
    if database.template is not None:
        await engine.dispose()
        for suffix in ("-wal", "-shm"):
            Path(f"{database.path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(database.template, database.path)
        return
    tables = ", ".join(
        f'"{t.name}"' for t in SQLModel.metadata.sorted_tables if t.name not in REFERENCE_TABLES
    )
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} CASCADE"))
        # Reference data seeded by migrations stays; what tests added goes.
        await connection.execute(text("DELETE FROM attendance_code WHERE NOT statutory"))
        await connection.execute(text("DELETE FROM referral_concern WHERE NOT builtin"))
        await connection.execute(text("DELETE FROM need_level WHERE NOT builtin"))
        await connection.execute(text("DELETE FROM outcome_category WHERE NOT builtin"))
        await connection.execute(text("DELETE FROM measure_instrument WHERE NOT builtin"))


@pytest.fixture
async def fresh_app(app: FastAPI, database: DatabaseUnderTest) -> FastAPI:
    """The app over an empty, migrated database."""
    await reset_database(app, database)
    return app


@pytest.fixture
async def client(fresh_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=fresh_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str

    @property
    def basic(self) -> dict[str, str]:
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return {"Authorization": f"Basic {base64.b64encode(raw).decode()}"}


class World:
    """Builds schools and accounts straight through the services, and gets real tokens
    from the real token endpoint."""

    def __init__(self, application: FastAPI, http: httpx.AsyncClient) -> None:
        self.app = application
        self.http = http
        self._codes = iter(range(100_001, 999_999))

    async def _in_session(self, work: Any) -> Any:
        async with self.app.state.session_factory() as session:
            result = await work(session)
            await session.commit()
            return result

    async def school(self, la_code: str = "202", **fields: Any) -> dict[str, Any]:
        from app.models.school import SchoolCreate
        from app.services import schools

        values = {
            "code": str(next(self._codes)),
            "name": "Test School",
            "la_code": la_code,
            "jurisdiction": "england",
            "phase": "primary",
            **fields,
        }

        async def work(session: Any) -> dict[str, Any]:
            school = await schools.create(session, None, SchoolCreate(**values))
            return {"id": str(school.id), **values}

        result: dict[str, Any] = await self._in_session(work)
        return result

    async def attendance_code(self, **fields: Any) -> None:
        """A code added to a jurisdiction's table, as the operator adds one (the CLI)."""
        from app.models.attendance import CodeCreate
        from app.services import attendance_codes

        new = CodeCreate(**fields)
        await self._in_session(lambda session: attendance_codes.create(session, new))

    async def api_client(
        self, scopes: str, schools: list[dict[str, Any]] | None = None, la_code: str | None = None
    ) -> Credentials:
        async def work(session: Any) -> Credentials:
            new = await principals.create_client(
                session,
                name="test client",
                scopes=scopes,
                school_codes=[s["code"] for s in schools or []],
                la_code=la_code,
            )
            return Credentials(new.client.client_id, new.client_secret)

        credentials: Credentials = await self._in_session(work)
        return credentials

    async def staff(
        self,
        role: StaffRole | str,
        schools: list[dict[str, Any]] | None = None,
        la_code: str | None = None,
        username: str | None = None,
        password: str = "correct horse battery staple",
        external_subject: str | None = None,
    ) -> dict[str, str]:
        username = username or f"{role}-{next(self._codes)}@example.org"

        async def work(session: Any) -> dict[str, str]:
            staff = await principals.create_staff(
                session,
                username=username,
                display_name=f"Test {role}",
                role=StaffRole(role),
                password=password,
                school_codes=[s["code"] for s in schools or []],
                la_code=la_code,
                external_subject=external_subject,
            )
            return {"id": str(staff.id), "username": username, "password": password}

        result: dict[str, str] = await self._in_session(work)
        return result

    async def token(
        self, credentials: Credentials | dict[str, str], scope: str | None = None
    ) -> str:
        form: dict[str, str] = {}
        headers: dict[str, str] = {}
        if isinstance(credentials, Credentials):
            form["grant_type"] = "client_credentials"
            headers = credentials.basic
        else:
            form.update(
                grant_type="password",
                username=credentials["username"],
                password=credentials["password"],
            )
        if scope is not None:
            form["scope"] = scope
        response = await self.http.post("/oauth/token", data=form, headers=headers)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def headers(
        self, credentials: Credentials | dict[str, str], scope: str | None = None
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(credentials, scope)}"}

    async def client_headers(
        self, scopes: str, schools: list[dict[str, Any]] | None = None, la_code: str | None = None
    ) -> dict[str, str]:
        return await self.headers(await self.api_client(scopes, schools, la_code))


@pytest.fixture
def world(fresh_app: FastAPI, client: httpx.AsyncClient) -> World:
    return World(fresh_app, client)


@pytest.fixture
def cli_env(
    database: DatabaseUnderTest, fresh_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The `liaison` command's environment: the test database, over an empty schema."""
    monkeypatch.setenv("LIAISON_DATABASE_URL", database.url)
    monkeypatch.setenv("LIAISON_SIGNING_KEY", TEST_SIGNING_KEY)
    monkeypatch.setenv("LIAISON_ENVIRONMENT", "test")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """One live demo server (`scripts/demo`'s steps, over HTTP) for the whole session: the
    browser test, the README's commands and the example clients share it."""
    with demo_server(tmp_path_factory.mktemp("demo")) as server:
        yield server


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `postgresql_only` are not collected for SQLite at all (deselected, not
    skipped: under CI a skip fails the run)."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("database") if callspec else None
        if item.get_closest_marker("postgresql_only") and backend == "sqlite":
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# --- CI: a skipped test is a failed run --------------------------------------------------

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if IN_CI and _skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if IN_CI and _skipped:
        terminalreporter.write_line(
            f"FAILED: {len(_skipped)} test(s) skipped under CI, where every test must run "
            f"(first: {_skipped[0]})",
            red=True,
        )
