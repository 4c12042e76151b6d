"""Attendance storage for scale: migration 0013 keeps every mark (up and down, with marks
held), PostgreSQL partitions by academic year and `liaison attendance-partitions`."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import Uuid, bindparam, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel.sql.sqltypes import UTCDateTime
from typer.testing import CliRunner

from app.cli import cli
from app.config import get_settings
from app.main import create_app
from app.models.attendance import CATEGORY_OF_NUMBER, SESSION_OF_NUMBER
from app.services.attendance_partitions import years_ahead
from app.services.school_calendar import school_today
from tests.builders.schools import Setup, make_school, push_marks
from tests.conftest import TEST_SIGNING_KEY, World, make_postgres_database, migrate, settings_for

runner = CliRunner()

# Two academic years the API accepts (no mark may be dated in the future), and one far back
# that only the old table held before the migration (its year needs a partition too).
SUMMER_2026 = date(2026, 6, 1)  # a Monday of 2025/26
AUTUMN_2026 = date(2026, 9, 7)  # a Monday of 2026/27
OLD_DAY = date(2019, 10, 14)  # 2019/20
COLUMNS = (
    "pupil_id, date, session, school_id, code, statutory_code, category, late, unexplained, "
    "minutes_late, comment, source_record_id"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgresql":
        yield make_postgres_database("liaison_partitions_test")
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'partitions.db'}"


@asynccontextmanager
async def running(url: str) -> AsyncIterator[tuple[httpx.AsyncClient, World]]:
    application = create_app(settings_for(url))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http, World(application, http)


async def query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run `sql`; ids bound as UUIDs, times as aware datetimes, on either database."""
    typed = [
        bindparam(name, type_=Uuid() if isinstance(value, uuid.UUID) else UTCDateTime())
        for name, value in params.items()
        if isinstance(value, uuid.UUID | datetime)
    ]
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            statement = text(sql).bindparams(*typed)
            result = await connection.execute(statement, params)
            return [tuple(r) for r in result.all()] if result.returns_rows else []
    finally:
        await engine.dispose()


def _as_text(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A mark row of either shape with its session and category as text."""
    values = list(row)
    pupil_id, school_id = values[0], values[3]
    values[0] = uuid.UUID(str(pupil_id)) if not isinstance(pupil_id, uuid.UUID) else pupil_id
    values[3] = uuid.UUID(str(school_id)) if not isinstance(school_id, uuid.UUID) else school_id
    values[1] = date.fromisoformat(values[1]) if isinstance(values[1], str) else values[1]
    if isinstance(values[2], int):
        values[2] = SESSION_OF_NUMBER[values[2]]
    if isinstance(values[6], int):
        values[6] = CATEGORY_OF_NUMBER[values[6]].value
    values[7], values[8] = bool(values[7]), bool(values[8])
    return tuple(values)


async def every_mark(url: str) -> list[tuple[Any, ...]]:
    found = await query(url, f"SELECT {COLUMNS} FROM attendance_mark")
    return sorted(map(_as_text, found), key=lambda r: (str(r[0]), r[1], r[2]))


def _marks(setup: Setup) -> list[dict[str, Any]]:
    codes = ["/", "\\", "N", "L", "I", "O", "#", "B"]
    out = []
    for n, start in enumerate((SUMMER_2026, AUTUMN_2026)):
        for pupil in ("P0", "P1"):
            for day in range(5):
                for s, session in enumerate(("AM", "PM")):
                    code = codes[(n + day * 2 + s + int(pupil[1])) % len(codes)]
                    extra: dict[str, Any] = {}
                    if code == "L":
                        extra["minutes_late"] = 12
                    if day == 3:
                        extra["comment"] = "seen by the office"
                        extra["source_record_id"] = f"{pupil}-{day}-{session}"
                    out.append(
                        setup.mark(
                            pupil, start.replace(day=start.day + day), session, code, **extra
                        )
                    )
    return out


async def _answers(http: httpx.AsyncClient, setup: Setup) -> dict[str, Any]:
    answers = {}
    for pupil, pupil_id in setup.pupil_ids.items():
        response = await http.get(
            f"/v1/pupils/{pupil_id}/attendance",
            params={"from": "2019-08-01", "to": "2022-07-31"},
            headers=setup.mis,
        )
        assert response.status_code == 200, response.text
        old = response.json()
        response = await http.get(
            f"/v1/pupils/{pupil_id}/attendance",
            params={"from": "2025-08-01", "to": school_today().isoformat()},
            headers=setup.mis,
        )
        assert response.status_code == 200, response.text
        answers[pupil] = (old, response.json())
    return answers


async def test_the_migration_keeps_every_mark_up_and_down(database_url: str) -> None:
    # Marks pushed through the API into today's schema, then the schema taken back to
    # 0012 (marks converted to the wide row) where older marks are added as 0012 held them.
    await asyncio.to_thread(migrate, database_url)
    async with running(database_url) as (http, world):
        setup = await make_school(world, http, pupils=2)
        pushed = await push_marks(http, setup, _marks(setup))
        assert pushed["created"] == 40 and not pushed["rejected"]
        answers = await _answers(http, setup)
    held = await every_mark(database_url)
    assert len(held) == 40

    from alembic import command

    from app.cli import alembic_config

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0012")
    assert await every_mark(database_url) == held
    pupil_id = setup.pupil_ids["P0"]
    old_marks = [
        (pupil_id, OLD_DAY.replace(day=OLD_DAY.day + d), session, setup.school["id"], code)
        for d, (session, code) in enumerate([("AM", "N"), ("PM", "/"), ("AM", "C"), ("PM", "G")])
    ]
    for pupil, day, session, school, code in old_marks:
        category = {"N": "unauthorised_absence", "/": "present", "C": "authorised_absence"}
        await query(
            database_url,
            "INSERT INTO attendance_mark (pupil_id, date, session, school_id, code, "
            "statutory_code, category, late, unexplained, minutes_late, comment, "
            "source_record_id, created_at, updated_at) VALUES (:p, :d, :s, :school, :c, :c, "
            ":category, false, :unexplained, NULL, NULL, NULL, :t, :t)",
            p=uuid.UUID(pupil),
            d=day,
            s=session,
            school=uuid.UUID(school),
            c=code,
            category=category.get(code, "unauthorised_absence"),
            unexplained=code == "N",
            t=datetime.now(UTC),
        )
    held_at_0012 = await every_mark(database_url)
    assert len(held_at_0012) == 44

    await asyncio.to_thread(migrate, database_url)
    assert await every_mark(database_url) == held_at_0012
    async with running(database_url) as (http, _):
        after = await _answers(http, setup)
    assert after["P1"] == answers["P1"]
    assert after["P0"][1] == answers["P0"][1]
    old_year = after["P0"][0]
    assert (old_year["possible_sessions"], old_year["present_sessions"]) == (4, 1)
    assert (old_year["authorised_absence_sessions"], old_year["unauthorised_absence_sessions"]) == (
        1,
        2,
    )

    if database_url.startswith("postgresql"):
        # One partition per academic year held marks need, the current and next, a DEFAULT.
        current = years_ahead(0)[0]
        names = {
            name
            for (name,) in await query(
                database_url,
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'attendance_mark'::regclass",
            )
        }
        assert {f"attendance_mark_{y}" for y in (2019, 2025, 2026, current, current + 1)} | {
            "attendance_mark_default"
        } == names
        placed = await query(
            database_url,
            "SELECT DISTINCT tableoid::regclass::text FROM attendance_mark WHERE date < :d",
            d=date(2020, 8, 1),
        )
        assert placed == [("attendance_mark_2019",)]

    # A pupil's marks still go with them (the delete trigger, on the new table).
    await query(database_url, "DELETE FROM pupil WHERE id = :p", p=uuid.UUID(pupil_id))
    left = await query(
        database_url,
        "SELECT count(*) FROM attendance_mark WHERE pupil_id = :p",
        p=uuid.UUID(pupil_id),
    )
    assert left == [(0,)]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0012")
    assert await every_mark(database_url) == [m for m in held_at_0012 if str(m[0]) != pupil_id]


async def _cli(url: str, *args: str) -> Any:
    """The command, in a thread of its own (it runs its own event loop)."""
    return await asyncio.to_thread(_cli_now, url, *args)


def _cli_now(url: str, *args: str) -> Any:
    env = {
        "LIAISON_DATABASE_URL": url,
        "LIAISON_SIGNING_KEY": TEST_SIGNING_KEY,
        "LIAISON_ENVIRONMENT": "test",
    }
    get_settings.cache_clear()
    try:
        return runner.invoke(cli, ["attendance-partitions", *args], env=env)
    finally:
        get_settings.cache_clear()


async def test_later_years_are_made_ahead_and_marks_leave_the_default_partition() -> None:
    url = await asyncio.to_thread(make_postgres_database, "liaison_partitions_cli_test")
    await asyncio.to_thread(migrate, url)
    current = years_ahead(0)[0]
    # A mark no year's partition holds lands in the DEFAULT partition: the write never fails.
    stray = uuid.uuid4()
    await query(
        url,
        "INSERT INTO attendance_mark (pupil_id, school_id, date, session, category, late, "
        "unexplained, updated_at, code, statutory_code) VALUES (:p, :p, :d, 0, 1, false, "
        "false, now(), '/', '/')",
        p=stray,
        d=date(current + 5, 10, 1),
    )
    where = "SELECT tableoid::regclass::text FROM attendance_mark WHERE pupil_id = :p"
    assert await query(url, where, p=stray) == [("attendance_mark_default",)]

    result = await _cli(url, "--year", str(current + 5))
    assert result.exit_code == 0, result.output
    [made] = json.loads(result.stdout)
    assert made["partition"] == f"attendance_mark_{current + 5}"
    assert (made["created"], made["moved_from_default"]) == (True, 1)
    assert made["from"] == f"{current + 5}-08-01" and made["until"] == f"{current + 6}-08-01"
    assert await query(url, where, p=stray) == [(f"attendance_mark_{current + 5}",)]
    # The new partition carries the parent's key and index.
    indexes = await query(
        url,
        "SELECT count(*) FROM pg_indexes WHERE tablename = :t",
        t=f"attendance_mark_{current + 5}",
    )
    assert indexes == [(2,)]

    again = await _cli(url, "--year", str(current + 5))
    assert again.exit_code == 0 and json.loads(again.stdout)[0]["created"] is False

    ahead = await _cli(url, "--ahead", "2")
    assert ahead.exit_code == 0, ahead.output
    assert [(p["partition"], p["created"]) for p in json.loads(ahead.stdout)] == [
        (f"attendance_mark_{current}", False),
        (f"attendance_mark_{current + 1}", False),
        (f"attendance_mark_{current + 2}", True),
    ]

    bad = await _cli(url, "--year", "31")
    assert bad.exit_code == 2
    assert bad.stderr.strip() == "error: year: 31 is not between 2000 and 2099."


def test_sqlite_has_no_partitions_to_make(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'one-table.db'}"
    migrate(url)
    result = _cli_now(url, "--ahead", "1")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: The attendance mark table is not partitioned")
    assert len(result.stderr.strip().splitlines()) == 1
