"""The `liaison` command against the test database."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.config import get_settings
from app.db import RESERVED_CONNECTIONS, pool_for
from tests.conftest import World

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(cli, list(args), env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_create_school_client_and_staff(cli_env: None) -> None:
    school = run("create-school", "--code", "654321", "--name", "CLI School", "--la", "202")
    assert school["code"] == "654321"
    client = run(
        "create-client", "--name", "CLI MIS", "--scope", "pupils:write", "--school", "654321"
    )
    assert client["client_id"].startswith("lsn_") and len(client["client_secret"]) >= 40
    staff = run(
        "create-staff", "--username", "Cli.User@Example.org", "--name", "Cli User",
        "--role", "manager", "--la", "202", env={"LIAISON_STAFF_PASSWORD": "long enough password"},
    )  # fmt: skip
    assert staff["username"] == "cli.user@example.org"


def test_cli_refuses_bad_input(cli_env: None) -> None:
    bad = runner.invoke(
        cli, ["create-client", "--name", "x", "--scope", "pupils:write everything", "--la", "202"]
    )
    assert bad.exit_code == 2 and "everything" in bad.output
    bad = runner.invoke(
        cli, ["create-client", "--name", "x", "--scope", "admin", "--school", "000000"]
    )
    assert bad.exit_code == 1 and "000000" in bad.output
    bad = runner.invoke(cli, ["create-school", "--code", "12", "--name", "x", "--la", "202"])
    assert bad.exit_code == 2
    short = runner.invoke(
        cli,
        ["create-staff", "--username", "a@b.c", "--name", "A", "--role", "dpo", "--la", "202"],
        env={"LIAISON_STAFF_PASSWORD": "short"},
    )
    assert short.exit_code == 2
    assert short.stderr == "error: a password has at least 12 characters\n"


LA_CODE = (
    "an LA code is three digits: the DfE LA code in England and Wales (e.g. 202), the "
    "council's code in Scotland (e.g. 100)"
)


def one_line_error(args: list[str], status: int, env: dict[str, str] | None = None) -> str:
    """The command fails with `status`, says why in one line on stderr, prints nothing on
    stdout, and no exception escaped it."""
    result = runner.invoke(cli, args, env=env)
    assert (result.exit_code, result.stdout) == (status, ""), result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "status", "line"),
    [
        (
            ["create-school", "--code", "ABC", "--name", "x", "--la", "202"],
            2,
            "error: a school code in england is a six-digit URN",
        ),
        (
            ["create-school", "--code", "12345", "--name", "x", "--la", "100",
             "--jurisdiction", "scotland"],
            2,
            "error: a school code in scotland is a seven-digit SEED code",
        ),
        (
            ["create-school", "--code", "654321", "--name", "x", "--la", "ZZZZ"],
            2,
            "error: --la 'ZZZZ': an LA code in england is the three-digit DfE LA code, e.g. 202",
        ),
        (
            ["create-school", "--code", "5244439", "--name", "x", "--la", "S12",
             "--jurisdiction", "scotland"],
            2,
            "error: --la 'S12': an LA code in scotland is the three-digit council code, e.g. 100",
        ),
        (
            ["create-school", "--code", "6602001", "--name", "x", "--la", "202",
             "--jurisdiction", "wales"],
            2,
            "error: --code '6602001': a Welsh school code starts with its LA code (202)",
        ),
        (
            ["create-school", "--name", "x", "--la", "202"],
            2,
            "error: Missing option '--code' (see 'liaison create-school --help')",
        ),
        (
            ["create-school", "--code", "654321", "--name", "x", "--la", "202", "--phase", "x"],
            2,
            "error: Invalid value for '--phase': 'x' is not one of 'nursery', 'primary', "
            "'middle', 'secondary', 'all_through', 'special', 'alternative_provision', "
            "'post_16' (see 'liaison create-school --help')",
        ),
        (
            ["create-client", "--name", "x", "--scope", "pupils:write", "--la", "2020"],
            2,
            f"error: --la '2020': {LA_CODE}",
        ),
        (
            ["create-staff", "--username", "a@b.c", "--name", "A", "--role", "dpo", "--la", "z"],
            2,
            f"error: --la 'z': {LA_CODE}",
        ),
        (
            ["reference", "concern", "--code", "x", "--label", "x", "--la", "ZZZZ"],
            2,
            f"error: --la 'ZZZZ': {LA_CODE}",
        ),
        (
            ["reference", "concern", "--code", "Bad Code", "--label", "x"],
            2,
            "error: --code: String should match pattern '^[a-z][a-z0-9_]{0,63}$'",
        ),
        (
            ["directory", "import", "https://example.org/api", "--la", "ZZZZ"],
            2,
            f"error: --la 'ZZZZ': {LA_CODE}",
        ),
        (
            ["retention", "schedule", "--today", "soon"],
            2,
            "error: Invalid value: 'soon' is not a date (YYYY-MM-DD) "
            "(see 'liaison retention schedule --help')",
        ),
        (["nosuch"], 2, "error: No such command 'nosuch' (see 'liaison --help')"),
        (
            ["create-client", "--name", "x", "--scope", "admin", "--school", "000000"],
            1,
            "error: No school with code(s): 000000.",
        ),
    ],
)  # fmt: skip
def test_errors_are_one_line(cli_env: None, args: list[str], status: int, line: str) -> None:
    assert (
        one_line_error(args, status, env={"LIAISON_STAFF_PASSWORD": "long enough password"}) == line
    )


def test_codes_are_checked_per_jurisdiction_and_help_says_what_each_takes(cli_env: None) -> None:
    welsh = run(
        "create-school", "--code", "6602001", "--name", "Ysgol", "--la", "660",
        "--jurisdiction", "wales",
    )  # fmt: skip
    assert welsh == {"id": welsh["id"], "code": "6602001", "name": "Ysgol"}
    scottish = run(
        "create-school", "--code", "5244439", "--name", "Academy", "--la", "100",
        "--jurisdiction", "scotland",
    )  # fmt: skip
    assert scottish == {"id": scottish["id"], "code": "5244439", "name": "Academy"}
    school_help, client_help = (
        help_text(command) for command in ("create-school", "create-client")
    )
    for says in (
        "in England a six-digit URN (e.g. 100000)",
        "in Wales a seven-digit LA and establishment number (e.g. 6602001)",
        "in Scotland a seven-digit SEED code (e.g. 5244439)",
        "in England and Wales the three-digit DfE LA code (e.g. 202, or 660 in Wales)",
        "in Scotland the three-digit council code, e.g. 100",
    ):
        assert says in school_help, says
    assert "three digits: the DfE LA code in England and Wales (e.g. 202)" in client_help
    assert "--no-reach" in client_help


def help_text(command: str) -> str:
    """A command's --help as one line of words, without the boxes around it."""
    shown = runner.invoke(cli, [command, "--help"], env={"COLUMNS": "400"})
    assert shown.exit_code == 0, shown.output
    return " ".join(shown.stdout.replace("│", " ").split())


def test_a_client_with_no_reach_is_refused_unless_asked_for(cli_env: None) -> None:
    args = ["create-client", "--name", "Nobody's", "--scope", "pupils:write"]
    assert one_line_error(args, 2) == (
        "error: a client with no --school and no --la reaches no school: give one, "
        "or --no-reach to create it anyway"
    )
    assert one_line_error([*args, "--la", "202", "--no-reach"], 2) == (
        "error: --no-reach is for a client with no --school and no --la"
    )
    made = runner.invoke(cli, [*args, "--no-reach"])
    assert made.exit_code == 0, made.output
    assert made.stderr == "warning: this client reaches no school (--no-reach)\n"
    created = json.loads(made.stdout)
    assert created == {
        "client_id": created["client_id"], "client_secret": created["client_secret"],
        "name": "Nobody's", "scope": "pupils:write", "schools": [], "la": None,
    }  # fmt: skip


def test_a_staff_account_with_no_reach_is_refused_unless_asked_for(cli_env: None) -> None:
    args = ["create-staff", "--username", "nobody@example.org", "--name", "N", "--role", "dpo"]
    password = {"LIAISON_STAFF_PASSWORD": "long enough password"}
    assert one_line_error(args, 2, env=password) == (
        "error: a staff account with no --school and no --la reaches no school: give one, "
        "or --no-reach to create it anyway"
    )
    assert one_line_error([*args, "--school", "100000", "--no-reach"], 2, env=password) == (
        "error: --no-reach is for a staff account with no --school and no --la"
    )
    # Refused before any password is asked for.
    assert one_line_error(args, 2, env={}).startswith("error: a staff account with no --school")
    made = runner.invoke(cli, [*args, "--no-reach"], env=password)
    assert made.exit_code == 0, made.output
    assert made.stderr == "warning: this staff account reaches no school (--no-reach)\n"
    assert json.loads(made.stdout)["username"] == "nobody@example.org"
    assert "--no-reach" in help_text("create-staff")


def test_an_unexpected_failure_is_one_line_with_status_1(
    cli_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIAISON_DATABASE_URL", "postgresql+asyncpg://nobody@127.0.0.1:9/none")
    get_settings.cache_clear()
    line = one_line_error(["create-school", "--code", "654321", "--name", "x", "--la", "202"], 1)
    assert line.startswith("error: ") and "Connect" in line, line


def liaison(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed command as an operator runs it, in its own process."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", "from app.cli import main; main()", *args],
        env={**keep, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_migrate_errors_are_one_line_in_a_real_process(tmp_path: Path) -> None:
    """What the operator sees: no traceback for an unknown revision or a production
    configuration without a signing key (the same line `serve` prints)."""
    db = {"LIAISON_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    unknown = liaison("migrate", "nosuchrev", env=db)
    assert (unknown.returncode, unknown.stdout, unknown.stderr) == (
        2, "", "error: migrate nosuchrev: Can't locate revision identified by 'nosuchrev'\n",
    )  # fmt: skip
    production = {**db, "LIAISON_ENVIRONMENT": "production"}
    refused = {command: liaison(command, env=production) for command in ("migrate", "serve")}
    line = (
        "refusing to start: LIAISON_SIGNING_KEY must be set to a secret of your own in production\n"
    )
    for command, answer in refused.items():
        assert (answer.returncode, answer.stdout, answer.stderr) == (2, "", line), command


async def test_created_client_gets_a_token(
    cli_env: None, client: httpx.AsyncClient, world: World
) -> None:
    # The CLI runs its own event loop, so from an async test it runs on a thread.
    await asyncio.to_thread(run, "create-school", "--code", "654321", "--name", "S", "--la", "202")
    created = await asyncio.to_thread(
        run, "create-client", "--name", "MIS", "--scope", "pupils:write", "--school", "654321"
    )
    response = await client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": created["client_id"],
            "client_secret": created["client_secret"],
        },
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "pupils:write"


async def test_seed_demo_is_idempotent_and_its_credentials_work(
    cli_env: None, client: httpx.AsyncClient
) -> None:
    first = await asyncio.to_thread(run, "seed-demo")
    second = await asyncio.to_thread(run, "seed-demo")
    assert first == second
    assert {c["client_id"] for c in first["clients"]} >= {"demo-mis", "demo-hub", "demo-admin"}
    assert {s["role"] for s in first["staff"]} == {"practitioner", "manager", "dpo", "admin"}
    practitioner = next(s for s in first["staff"] if s["role"] == "practitioner")
    token = await client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": practitioner["username"],
            "password": practitioner["password"],
        },
    )
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    pupils = (await client.get("/v1/pupils", params={"limit": 200}, headers=headers)).json()[
        "items"
    ]
    assert len(pupils) == 60  # two of the three demo schools, thirty pupils each
    assert all(p["given_name"] for p in pupils)
    # Six weeks of registers came with them, and the worklist has flags on it.
    flags = (await client.get("/v1/attendance/flags", headers=headers)).json()["items"]
    kinds = {f["kind"] for f in flags}
    assert {"persistent_absence", "severe_absence", "unexplained_absence"} <= kinds
    figures = (await client.get(f"/v1/pupils/{pupils[0]['id']}/attendance", headers=headers)).json()
    assert figures["possible_sessions"] > 0


def test_seed_demo_is_refused_in_production(cli_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIAISON_ENVIRONMENT", "production")
    monkeypatch.setenv("LIAISON_SIGNING_KEY", "p" * 48)
    get_settings.cache_clear()
    result = runner.invoke(cli, ["seed-demo"])
    assert result.exit_code == 1
    assert "production" in result.output


def test_serve_refuses_production_without_a_signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LIAISON_SIGNING_KEY", "LIAISON_PREVIOUS_SIGNING_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LIAISON_ENVIRONMENT", "production")
    get_settings.cache_clear()
    try:
        result = runner.invoke(cli, ["serve"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "LIAISON_SIGNING_KEY" in result.output


async def test_the_operator_adds_national_and_la_reference_data(
    cli_env: None, client: httpx.AsyncClient, world: World
) -> None:
    """National lists (and, with --la, an LA's own) are the operator's, written with the CLI;
    an LA's admins see them through the API like everyone in reach."""
    concern = await asyncio.to_thread(
        run, "reference", "concern", "--code", "online_safety", "--label", "Online safety"
    )
    assert (concern["code"], concern["la_code"]) == ("online_safety", "")
    local = await asyncio.to_thread(
        run, "reference", "outcome-category", "--code", "pets_rehomed", "--label", "Pets",
        "--la", "303",
    )  # fmt: skip
    assert local["la_code"] == "303"
    level = await asyncio.to_thread(
        run, "reference", "level-of-need", "--code", "crisis", "--label", "Crisis", "--rank", "9"
    )
    assert (level["code"], level["rank"]) == ("crisis", 9)
    instrument = await asyncio.to_thread(
        run, "reference", "instrument", "--code", "sdq_total", "--label", "SDQ", "--min", "0",
        "--max", "40", "--unit", "points",
    )  # fmt: skip
    assert (instrument["min_score"], instrument["max_score"]) == (0, 40)

    hub_202 = await world.client_headers("referrals:read", la_code="202")
    concerns = await client.get("/v1/referral-concerns", headers=hub_202)
    assert "online_safety" in {c["code"] for c in concerns.json()["items"]}
    categories = await client.get("/v1/outcome-categories", headers=hub_202)
    assert "pets_rehomed" not in {c["code"] for c in categories.json()["items"]}
    hub_303 = await world.client_headers("referrals:read", la_code="303")
    categories = await client.get("/v1/outcome-categories", headers=hub_303)
    assert {"code": "pets_rehomed", "label": "Pets", "active": True, "la_code": "303"} in (
        categories.json()["items"]
    )

    again = await asyncio.to_thread(
        runner.invoke, cli, ["reference", "concern", "--code", "neglect", "--label", "x"]
    )
    assert again.exit_code == 1 and "already exists" in again.output
    bad = await asyncio.to_thread(
        runner.invoke, cli, ["reference", "concern", "--code", "Bad Code", "--label", "x"]
    )
    assert bad.exit_code == 2 and "code" in bad.output


def test_the_operator_extends_an_attendance_code_table(cli_env: None) -> None:
    """A jurisdiction's table applies to every LA in it, so only the operator adds codes;
    dates of one code may not overlap."""
    args = [
        "reference", "attendance-code", "--jurisdiction", "scotland", "--code", "31",
        "--description", "Unauthorised absence", "--category", "unauthorised_absence",
        "--unexplained", "--from", "2019-06-01", "--code-set", "scotland-local",
    ]  # fmt: skip
    created = run(*args)
    assert (created["code"], created["statutory"], created["unexplained"]) == ("31", False, True)
    again = runner.invoke(cli, args)
    assert again.exit_code == 1 and "overlap" in again.output
    clash = runner.invoke(
        cli,
        ["reference", "attendance-code", "--jurisdiction", "england", "--code", "N",
         "--description", "x", "--category", "unauthorised_absence", "--from", "2025-01-01"],
    )  # fmt: skip
    assert clash.exit_code == 1
    bad = runner.invoke(
        cli,
        ["reference", "attendance-code", "--jurisdiction", "england", "--code", "Q9",
         "--description", "x", "--category", "nonsense", "--from", "2025-01-01"],
    )  # fmt: skip
    assert bad.exit_code == 2 and "category" in bad.output


def test_serve_trusts_the_proxies_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """LIAISON_FORWARDED_ALLOW_IPS reaches uvicorn, whose forwarded headers it governs."""
    import uvicorn

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    for value, passed in [
        (None, "127.0.0.1,::1"),
        ("10.0.0.5, 10.1.0.0/16,fd00::/8", "10.0.0.5,10.1.0.0/16,fd00::/8"),
        ("*", "*"),
    ]:
        if value is None:
            monkeypatch.delenv("LIAISON_FORWARDED_ALLOW_IPS", raising=False)
        else:
            monkeypatch.setenv("LIAISON_FORWARDED_ALLOW_IPS", value)
        get_settings.cache_clear()
        result = runner.invoke(cli, ["serve"])
        assert result.exit_code == 0, result.output
        assert (calls[-1]["proxy_headers"], calls[-1]["forwarded_allow_ips"]) == (True, passed)
    get_settings.cache_clear()


@pytest.mark.parametrize("value", ["proxy.internal", "10.1.0.1/16", "10.0.0.5,", "300.1.1.1"])
def test_serve_refuses_proxies_that_are_not_addresses(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LIAISON_FORWARDED_ALLOW_IPS", value)
    get_settings.cache_clear()
    try:
        line = one_line_error(["serve"], 2)
    finally:
        get_settings.cache_clear()
    assert line.startswith("refusing to start: forwarded_allow_ips: ")
    assert "is not an IP address or network" in line


@pytest.mark.parametrize(
    ("workers", "max_connections", "expected"),
    [
        (1, 100, (10, 10)),  # plenty: the caps
        (2, 100, (10, 10)),  # 40 each
        (4, 100, (10, 10)),  # 20 each: 10 open, 10 overflow
        (8, 100, (5, 5)),  # 10 each
        (16, 100, (2, 3)),  # 5 each
        (100, 100, (1, 0)),  # less than one each: one open, no overflow
        (2, 25, (1, 1)),  # 2 each
    ],
)
def test_each_workers_pool_fits_max_connections(
    workers: int, max_connections: int, expected: tuple[int, int]
) -> None:
    pool_size, overflow = pool_for(workers, max_connections)
    assert (pool_size, overflow) == expected
    if max_connections - RESERVED_CONNECTIONS >= workers:
        assert workers * (pool_size + overflow) <= max_connections - RESERVED_CONNECTIONS


def test_serve_runs_a_worker_per_core_on_postgresql_and_sizes_its_pools(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One worker per core on PostgreSQL (one on SQLite), each with a pool that fits the
    server's max_connections; an explicit --workers or pool size wins."""
    import uvicorn

    import app.cli as cli_module

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})

    async def fake_max_connections(_settings: object) -> int:
        return 100

    monkeypatch.setattr(cli_module, "max_connections", fake_max_connections)
    for name in ("LIAISON_DB_POOL_SIZE", "LIAISON_DB_MAX_OVERFLOW"):
        monkeypatch.delenv(name, raising=False)
    try:
        monkeypatch.setenv("LIAISON_DATABASE_URL", "sqlite+aiosqlite:///./x.db")
        get_settings.cache_clear()
        assert runner.invoke(cli, ["serve"]).exit_code == 0
        assert calls[-1]["workers"] == 1

        monkeypatch.setenv("LIAISON_DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1/db")
        get_settings.cache_clear()
        result = runner.invoke(cli, ["serve"])
        assert result.exit_code == 0, result.output
        assert calls[-1]["workers"] == 4
        assert os.environ["LIAISON_DB_POOL_SIZE"] == "10"  # (100 - 20) / 4 = 20 each
        assert os.environ["LIAISON_DB_MAX_OVERFLOW"] == "10"

        monkeypatch.setenv("LIAISON_DB_POOL_SIZE", "3")
        get_settings.cache_clear()
        assert runner.invoke(cli, ["serve", "--workers", "2"]).exit_code == 0
        assert calls[-1]["workers"] == 2
        assert os.environ["LIAISON_DB_POOL_SIZE"] == "3"
    finally:
        for name in ("LIAISON_DB_POOL_SIZE", "LIAISON_DB_MAX_OVERFLOW"):
            os.environ.pop(name, None)
        get_settings.cache_clear()
