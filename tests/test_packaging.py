"""The installed package carries what it needs: `liaison migrate` finds the migrations from
any working directory, in a source checkout and in a wheel built from exactly what the
Dockerfile copies (as the image installs it), and the image's settings are valid ones."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from app.cli import alembic_config
from app.config import Settings

SOURCE = Path(__file__).resolve().parent.parent
DOCKERFILE = (SOURCE / "Dockerfile").read_text()


def _head() -> str:
    [head] = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    return str(head)


def _liaison(
    *args: str, cwd: Path, env: dict[str, str], pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The command in its own process, with only the given LIAISON_ settings."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    if pythonpath is not None:
        keep["PYTHONPATH"] = str(pythonpath)
    code = "import sys, app; print(app.__file__, file=sys.stderr); from app.cli import main; main()"
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env={**keep, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _migrated_to(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        [(revision,)] = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    return str(revision)


def test_migrate_from_another_directory_in_a_source_checkout(tmp_path: Path) -> None:
    # The default URL is relative (./liaison.db): the database lands where the command runs.
    done = _liaison("migrate", cwd=tmp_path, env={"LIAISON_ENVIRONMENT": "development"})
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == str(SOURCE / "app" / "__init__.py")
    assert _migrated_to(tmp_path / "liaison.db") == _head()


def _build_stage_sources() -> list[str]:
    """What the Dockerfile's build stage copies into the folder it installs from."""
    build_stage = DOCKERFILE.split("\nFROM ", 2)[1]
    sources: list[str] = []
    for line in build_stage.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            sources += line.split()[1:-1]
    return sources


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built, as the image builds it, from only what the Dockerfile copies."""
    context = tmp_path_factory.mktemp("image-build") / "src"
    context.mkdir()
    for name in _build_stage_sources():
        source = SOURCE / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, context / name)
    out = context.parent / "dist"
    built = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out),
         str(context)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    [wheel_file] = out.glob("liaison-*.whl")
    return wheel_file


def test_the_image_build_copies_what_the_wheel_needs() -> None:
    assert set(_build_stage_sources()) >= {"pyproject.toml", "README.md", "app", "alembic"}
    assert "alembic.ini" not in DOCKERFILE, "the image needs no alembic.ini: migrations are inside"


def test_the_wheel_holds_every_package_and_every_migration(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {
        init.parent.relative_to(SOURCE).as_posix()
        for init in (SOURCE / "app").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    missing = {p for p in packages if f"{p}/__init__.py" not in names}
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"
    migrations = {
        f"app/migrations/versions/{script.name}"
        for script in (SOURCE / "alembic" / "versions").glob("*.py")
    }
    assert migrations
    shipped = {n for n in names if re.fullmatch(r"app/migrations/versions/[^/]+\.py", n)}
    assert shipped == migrations
    assert {"app/migrations/env.py", "app/migrations/script.py.mako"} <= names


def test_migrate_from_the_installed_wheel_in_another_directory(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site-packages"
    installed = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "data"
    elsewhere.mkdir()
    database = elsewhere / "liaison.db"
    done = _liaison(
        "migrate",
        cwd=elsewhere,
        env={"LIAISON_DATABASE_URL": f"sqlite+aiosqlite:///{database}"},
        pythonpath=target,
    )
    assert done.returncode == 0, done.stderr
    # The wheel's copy ran, not the source checkout's.
    assert done.stderr.splitlines()[0] == str(target / "app" / "__init__.py")
    assert _migrated_to(database) == _head()


def _image_env() -> dict[str, str]:
    runtime_stage = DOCKERFILE.split("\nFROM ", 2)[2]
    env_block = re.search(r"^ENV (.*?)(?<!\\)$", runtime_stage, re.M | re.S)
    assert env_block is not None
    pairs = re.findall(r"(\w+)=(\S+)", env_block.group(1).replace("\\\n", " "))
    return dict(pairs)


def test_the_image_keeps_sqlite_in_a_folder_its_user_owns_and_names_its_proxies() -> None:
    env = _image_env()
    settings = Settings(
        **{k.removeprefix("LIAISON_").lower(): v for k, v in env.items() if "LIAISON_" in k},
        signing_key="x" * 48,
        _env_file=None,
    )  # type: ignore[arg-type]
    assert settings.database_url == "sqlite+aiosqlite:////var/lib/liaison/liaison.db"
    assert settings.forwarded_allow_ips == "127.0.0.1,::1"
    folder = "/var/lib/liaison"
    assert re.search(
        rf"install --directory --owner=liaison --group=liaison --mode=0750 {folder}$",
        DOCKERFILE,
        re.M,
    )
    assert f"WORKDIR {folder}\nUSER liaison\n" in DOCKERFILE
