"""The `liaison` command against the test database."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.config import get_settings
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
    bad = runner.invoke(cli, ["create-client", "--name", "x", "--scope", "pupils:write everything"])
    assert bad.exit_code == 1 and "everything" in bad.output
    bad = runner.invoke(
        cli, ["create-client", "--name", "x", "--scope", "admin", "--school", "000000"]
    )
    assert bad.exit_code == 1 and "000000" in bad.output
    bad = runner.invoke(cli, ["create-school", "--code", "12", "--name", "x", "--la", "202"])
    assert bad.exit_code == 1
    short = runner.invoke(
        cli,
        ["create-staff", "--username", "a@b.c", "--name", "A", "--role", "dpo"],
        env={"LIAISON_STAFF_PASSWORD": "short"},
    )
    assert short.exit_code == 1


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
