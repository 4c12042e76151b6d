"""Migrations are the only way a schema is made: they go up, down and up again, and they
agree with the models, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

from app.cli import alembic_config
from app.models.attendance import in_models
from tests.conftest import make_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgresql":
        yield make_postgres_database("liaison_migrations_test")
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"


def _differences(url: str) -> list[object]:
    async def compare() -> list[object]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(
                            sync, opts={"compare_type": True, "include_name": in_models}
                        ),
                        SQLModel.metadata,
                    )
                )
        finally:
            await engine.dispose()

    return asyncio.run(compare())


def _tables(url: str) -> set[str]:
    async def names() -> set[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                from sqlalchemy import inspect

                return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(names())


def test_single_head() -> None:
    assert len(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()) == 1


def test_upgrade_downgrade_upgrade_and_models_agree(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "head")
    assert _differences(empty_database) == []
    command.downgrade(config, "base")
    assert _tables(empty_database) <= {"alembic_version"}
    command.upgrade(config, "head")
    assert _differences(empty_database) == []
    assert {t.name for t in SQLModel.metadata.sorted_tables} <= _tables(empty_database)
