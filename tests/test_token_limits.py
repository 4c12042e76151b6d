"""The token endpoint resists guessing: failed client-secret and password checks are limited
per client id, per username and per address (429 `slow_down` with `Retry-After`), counted in
the database so the limit holds across workers, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from limits import parse
from limits.aio.strategies import FixedWindowRateLimiter
from sqlalchemy import text

from app.db import create_engine, create_session_factory
from app.ratelimit import DatabaseStorage
from app.services import principals
from app.services.token_attempts import TokenAttempts
from tests.builders.api import standalone
from tests.conftest import (
    TEST_SIGNING_KEY,
    Credentials,
    DatabaseUnderTest,
    World,
    make_postgres_database,
    migrate,
    settings_for,
)

# The default, "10 per 15 minutes; 100 per day", as the session's app runs with it.
IDENTITY_LIMIT, WINDOW_SECONDS = 10, 15 * 60


def _password_form(username: str, password: str) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


async def _client_token(http: httpx.AsyncClient, credentials: Credentials) -> httpx.Response:
    return await http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=credentials.basic
    )


def _assert_slowed_down(response: httpx.Response, longest: int = WINDOW_SECONDS) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["cache-control"] == "no-store"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= longest
    body = response.json()
    assert body["error"] == "slow_down"
    assert body["type"] == "urn:liaison:problem:oauth-slow-down"
    assert body["status"] == 429
    assert body["detail"] == body["error_description"]
    assert str(retry_after) in body["detail"]
    return retry_after


async def _end_every_window(application: FastAPI) -> None:
    """Time passes: every counter's window ends, the daily ones included."""
    async with application.state.engine.begin() as connection:
        await connection.execute(
            text("UPDATE rate_limit_counter SET expires_at = expires_at - :s"), {"s": 2 * 86_400}
        )


async def _counters(application: FastAPI) -> list[tuple[str, int]]:
    async with application.state.engine.connect() as connection:
        rows = await connection.execute(text("SELECT key, hits FROM rate_limit_counter"))
        return [(row.key, row.hits) for row in rows]


async def test_the_storage_keeps_fixed_windows_for_the_limits_library(
    fresh_app: FastAPI,
) -> None:
    storage = DatabaseStorage(fresh_app.state.engine)
    limiter = FixedWindowRateLimiter(storage)
    limit = parse("2 per 1 hour")
    started = time.time()
    assert [await limiter.hit(limit, "k") for _ in range(3)] == [True, True, False]
    reset_time, remaining = await limiter.get_window_stats(limit, "k")
    assert remaining == 0
    assert started + 3600 <= reset_time <= time.time() + 3600  # opened by the first hit
    assert await storage.check()

    await _end_every_window(fresh_app)
    assert await limiter.test(limit, "k")
    assert await storage.prune() == 1  # the ended window goes
    assert await limiter.hit(limit, "k")
    assert await storage.get(limit.key_for("k")) == 1
    await limiter.clear(limit, "k")
    assert await storage.get(limit.key_for("k")) == 0
    assert await limiter.hit(limit, "other")
    assert await storage.reset() == 1


async def test_client_secret_guesses_are_limited_per_client_id(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    target = await world.api_client("pupils:read")
    bystander = await world.api_client("pupils:read")
    wrong = Credentials(target.client_id, "not-the-secret")
    for _ in range(IDENTITY_LIMIT):
        response = await _client_token(client, wrong)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"

    # Locked: even the right secret is refused, so guessing cannot go on.
    _assert_slowed_down(await _client_token(client, target))
    _assert_slowed_down(await _client_token(client, wrong))
    # Form fields are the same client id as HTTP Basic.
    form = {
        "grant_type": "client_credentials",
        "client_id": target.client_id,
        "client_secret": target.client_secret,
    }
    _assert_slowed_down(await client.post("/oauth/token", data=form))
    # Another client id is untouched.
    assert (await _client_token(client, bystander)).status_code == 200

    await _end_every_window(fresh_app)
    assert (await _client_token(client, target)).status_code == 200


async def test_unknown_client_ids_are_limited_too(client: httpx.AsyncClient, world: World) -> None:
    unknown = Credentials("no-such-client", "guess")
    for _ in range(IDENTITY_LIMIT):
        assert (await _client_token(client, unknown)).status_code == 401
    _assert_slowed_down(await _client_token(client, unknown))


async def test_password_guesses_are_limited_per_username(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    staff = await world.staff("practitioner", username="sam.jones@example.org")
    colleague = await world.staff("practitioner")
    for attempt in range(IDENTITY_LIMIT):
        # Usernames are case-insensitive, and so is their count.
        username = staff["username"].upper() if attempt % 2 else staff["username"]
        response = await client.post(
            "/oauth/token", data=_password_form(username, f"guess {attempt}")
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"

    right = _password_form(staff["username"], staff["password"])
    _assert_slowed_down(await client.post("/oauth/token", data=right))
    others = _password_form(colleague["username"], colleague["password"])
    assert (await client.post("/oauth/token", data=others)).status_code == 200

    await _end_every_window(fresh_app)
    assert (await client.post("/oauth/token", data=right)).status_code == 200


async def test_unknown_usernames_are_limited_like_real_ones(client: httpx.AsyncClient) -> None:
    """Same answers whether the account exists or not: the limit tells no one which do."""
    form = _password_form("nobody@example.org", "guess")
    for _ in range(IDENTITY_LIMIT):
        response = await client.post("/oauth/token", data=form)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
    _assert_slowed_down(await client.post("/oauth/token", data=form))


async def test_a_wrong_client_secret_counts_against_the_client_not_the_user(
    client: httpx.AsyncClient, world: World
) -> None:
    staff = await world.staff("manager")
    api_client = await world.api_client("pupils:read")
    wrong_client = Credentials(api_client.client_id, "wrong").basic
    form = _password_form(staff["username"], staff["password"])
    for _ in range(IDENTITY_LIMIT):
        assert (
            await client.post("/oauth/token", data=form, headers=wrong_client)
        ).status_code == 401
    _assert_slowed_down(await client.post("/oauth/token", data=form, headers=api_client.basic))
    # The password was never checked, so the user is not held back without that client.
    assert (await client.post("/oauth/token", data=form)).status_code == 200


async def test_successes_neither_count_nor_wipe_the_failures(
    client: httpx.AsyncClient, world: World
) -> None:
    """A success in between does not use up an attempt, and does not hand a guesser a fresh
    allowance either (a busy system succeeds every few minutes)."""
    target = await world.api_client("pupils:read")
    wrong = Credentials(target.client_id, "wrong")
    for _ in range(IDENTITY_LIMIT - 1):
        assert (await _client_token(client, wrong)).status_code == 401
    for _ in range(3):
        assert (await _client_token(client, target)).status_code == 200
    assert (await _client_token(client, wrong)).status_code == 401
    _assert_slowed_down(await _client_token(client, target))


async def test_the_address_limit_holds_across_identities(
    database: DatabaseUnderTest, fresh_app: FastAPI, world: World
) -> None:
    staff = await world.staff("practitioner")
    async with standalone(
        database.url, address="203.0.113.9", token_address_limits="4 per 15 minutes"
    ) as (_, http):
        for n in range(4):
            form = _password_form(f"someone-{n}@example.org", "spray")
            assert (await http.post("/oauth/token", data=form)).status_code == 400
        right = _password_form(staff["username"], staff["password"])
        _assert_slowed_down(await http.post("/oauth/token", data=right))
    async with standalone(
        database.url, address="198.51.100.20", token_address_limits="4 per 15 minutes"
    ) as (_, http):
        assert (await http.post("/oauth/token", data=right)).status_code == 200


async def test_ipv6_addresses_count_by_their_64_block(
    database: DatabaseUnderTest, fresh_app: FastAPI
) -> None:
    limits: dict[str, Any] = {"token_address_limits": "2 per 15 minutes"}
    for n, address in enumerate(["2001:db8:1:2::a", "2001:db8:1:2:ffff::1"]):
        async with standalone(database.url, address=address, **limits) as (_, http):
            form = _password_form(f"someone-{n}@example.org", "spray")
            assert (await http.post("/oauth/token", data=form)).status_code == 400
    async with standalone(database.url, address="2001:db8:1:2::77", **limits) as (_, http):
        _assert_slowed_down(
            await http.post("/oauth/token", data=_password_form("x@example.org", "y"))
        )
    async with standalone(database.url, address="2001:db8:1:3::a", **limits) as (_, http):
        assert (
            await http.post("/oauth/token", data=_password_form("x@example.org", "y"))
        ).status_code == 400


@pytest.mark.parametrize(
    ("address", "same_as"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:db8::1", "2001:db8::ffff:1"),
        ("2001:db8:0:0:1::1", "2001:db8::9"),
        ("testclient", "testclient"),
    ],
)
def test_address_subjects(address: str, same_as: str) -> None:
    settings = settings_for("sqlite+aiosqlite://")
    attempts = TokenAttempts(create_engine(settings), settings)
    assert attempts.address(address) == attempts.address(same_as)
    assert attempts.address(address) != attempts.address("192.0.2.2")


async def test_retry_after_is_when_the_window_lets_an_attempt_through(
    database: DatabaseUnderTest, fresh_app: FastAPI, world: World
) -> None:
    target = await world.api_client("pupils:read")
    async with standalone(database.url, token_identity_limits="2 per 2 seconds") as (_, http):
        for _ in range(2):
            assert (
                await _client_token(http, Credentials(target.client_id, "x"))
            ).status_code == 401
        retry_after = _assert_slowed_down(await _client_token(http, target), longest=2)
        await asyncio.sleep(retry_after)
        assert (await _client_token(http, target)).status_code == 200


async def test_neither_secrets_nor_identities_reach_the_log_or_the_table(
    client: httpx.AsyncClient, fresh_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    username, password = "pat.private@example.org", "Hunter2-Secret"
    for _ in range(IDENTITY_LIMIT + 2):
        await client.post("/oauth/token", data=_password_form(username, password))
        await _client_token(client, Credentials("client-pat-private", password))
    assert "token_attempt_refused" in caplog.text
    keys = " ".join(key for key, _ in await _counters(fresh_app))
    for value in (username, password, "pat.private", "client-pat-private", "127.0.0.1"):
        assert value not in caplog.text
        assert value.lower() not in keys


async def test_a_database_fault_in_the_limiter_is_503_not_500(database: DatabaseUnderTest) -> None:
    """The limiter is the first thing a token request asks of the database."""
    unreachable = (
        "sqlite+aiosqlite:////nonexistent-dir/liaison.db"
        if database.backend == "sqlite"
        else "postgresql+asyncpg://postgres@127.0.0.1:9/liaison"
    )
    async with standalone(unreachable, db_connect_timeout_seconds=2) as (_, http):
        response = await _client_token(http, Credentials("some-client", "some-secret"))
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert response.json()["type"] == "urn:liaison:problem:service-unavailable"


async def test_concurrent_guesses_get_exactly_the_limit(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    """Attempts sent all at once get no more secret checks than the limit allows."""
    target = await world.api_client("pupils:read")
    wrong = Credentials(target.client_id, "wrong")
    responses = await asyncio.gather(
        *(_client_token(client, wrong) for _ in range(3 * IDENTITY_LIMIT))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [401] * IDENTITY_LIMIT + [429] * (2 * IDENTITY_LIMIT)
    # Each window holds exactly the failures: refused attempts counted nowhere.
    assert sorted(hits for _, hits in await _counters(fresh_app)) == [IDENTITY_LIMIT] * 4
    _assert_slowed_down(await _client_token(client, target))


async def test_overlapping_sign_ins_all_succeed(client: httpx.AsyncClient, world: World) -> None:
    """Successes write (their hits given back, a client's last use) after reading: on SQLite
    that must not fail when another sign-in wrote in between."""
    staff = [await world.staff("practitioner") for _ in range(6)]
    systems = [await world.api_client("pupils:read") for _ in range(3)]
    responses = await asyncio.gather(
        *(
            client.post("/oauth/token", data=_password_form(s["username"], s["password"]))
            for s in staff
        ),
        *(_client_token(client, credentials) for credentials in systems),
    )
    assert [r.status_code for r in responses] == [200] * 9, [r.text for r in responses]
    # Nothing failed, so nothing is counted.
    assert {hits for _, hits in await _counters(world.app)} == {0}


# --- Several workers -------------------------------------------------------------------

WORKER_LIMIT = 4


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _create_client(url: str) -> Credentials:
    async def work() -> Credentials:
        engine = create_engine(settings_for(url))
        try:
            async with create_session_factory(engine)() as session:
                new = await principals.create_client(session, name="workers", scopes="pupils:read")
                await session.commit()
                return Credentials(new.client.client_id, new.client_secret)
        finally:
            await engine.dispose()

    return asyncio.run(work())


@contextmanager
def _serve(url: str, workers: int, folder: Path) -> Iterator[str]:
    """`liaison serve --workers N` as its own process group, every worker started and the
    service answering /livez; the whole group ended at exit."""
    port = _free_port()
    env = {
        **os.environ,
        "LIAISON_DATABASE_URL": url,
        "LIAISON_ENVIRONMENT": "test",
        "LIAISON_SIGNING_KEY": TEST_SIGNING_KEY,
        "LIAISON_LOG_LEVEL": "INFO",  # each worker logs its start-up
        "LIAISON_TOKEN_IDENTITY_LIMITS": f"{WORKER_LIMIT} per 15 minutes",
        "PYTHONUNBUFFERED": "1",
    }
    liaison = Path(sys.executable).with_name("liaison")
    log_path = folder / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(  # noqa: S603 (our own executable, fixed arguments)
            [str(liaison), "serve", "--workers", str(workers), "--port", str(port)],
            env=env,
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        # The workers start one after the other, seconds apart on a busy machine; a test
        # that began when only the first was up would never reach the second.
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"liaison serve exited with {process.returncode}: {log_path.read_text()}"
                )
            started = log_path.read_text().count("Application startup complete")
            with suppress(httpx.TransportError):
                if started >= workers and httpx.get(f"{base}/livez", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"liaison serve was not ready within 90 s: {log_path.read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


_TOKEN_REQUESTS = re.compile(
    r'^liaison_http_requests_total\{[^}]*route="/oauth/token"[^}]*\} (\S+)$', re.M
)


def _token_requests_seen_by_one_worker(base: str) -> int:
    """The worker that answers counts its own requests (metrics live in each process)."""
    with httpx.Client(timeout=10) as http:  # a fresh connection: any worker may answer
        body = http.get(f"{base}/metrics").text
    return int(sum(float(value) for value in _TOKEN_REQUESTS.findall(body)))


@pytest.fixture(params=["sqlite", "postgresql"])
def served_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        url = make_postgres_database("liaison_token_limits_workers")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'workers.db'}"
    migrate(url)
    return url


def test_the_limit_holds_across_workers(served_database: str, tmp_path: Path) -> None:
    credentials = _create_client(served_database)
    wrong = Credentials(credentials.client_id, "wrong")
    attempts = 4 * WORKER_LIMIT
    with _serve(served_database, workers=2, folder=tmp_path) as base:

        def attempt(secret: Credentials) -> int:
            # A fresh connection per attempt, so the kernel hands them to either worker; a
            # worker busy checking a secret cannot accept, so the other one does.
            with httpx.Client(timeout=30) as http:
                response = http.post(
                    f"{base}/oauth/token",
                    data={"grant_type": "client_credentials"},
                    headers=secret.basic,
                )
                return response.status_code

        with ThreadPoolExecutor(max_workers=4) as pool:
            statuses = sorted(pool.map(attempt, [wrong] * attempts, timeout=120))
        assert statuses == [401] * WORKER_LIMIT + [429] * (attempts - WORKER_LIMIT)
        assert attempt(credentials) == 429

        # Both workers answered token requests: each one's own count is short of the total.
        with ThreadPoolExecutor(max_workers=4) as pool:
            seen = set(pool.map(lambda _: _token_requests_seen_by_one_worker(base), range(40)))
        assert any(0 < count < attempts + 1 for count in seen), seen
