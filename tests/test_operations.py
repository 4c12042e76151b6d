"""Operations: health, readiness during an outage, metrics, request ids, logs that never
carry secrets or children's details, and problem+json for every error."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.builders.api import standalone
from tests.builders.schools import pupil, push_roster
from tests.conftest import World


async def test_livez_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/livez")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://liaison@127.0.0.1:1/liaison",
        "sqlite+aiosqlite:////nonexistent-directory/liaison.db",
    ],
    ids=["postgresql-refused", "sqlite-unopenable"],
)
async def test_database_outage_is_503_with_retry_after(url: str) -> None:
    async with standalone(url, db_connect_timeout_seconds=1) as (_app, http):
        assert (await http.get("/livez")).status_code == 200
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.headers["content-type"] == "application/problem+json"
        assert ready.headers["retry-after"] == "5"
        for response in [
            await http.get("/v1/pupils", headers={"Authorization": "Bearer x.y.z"}),
            await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials", "client_id": "a", "client_secret": "b"},
            ),
        ]:
            if response.status_code == 401:  # token refused before the database is touched
                continue
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "5"
            assert response.json()["type"] == "urn:liaison:problem:service-unavailable"


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"] == "urn:liaison:problem:not-found"
    wrong = await client.delete("/v1/pupils")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/problem+json"
    assert "GET" in wrong.headers["allow"]


async def test_unexpected_errors_are_500_problems_without_internals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with standalone(f"sqlite+aiosqlite:///{tmp_path}/x.db") as (application, http):

        @application.get("/boom")
        async def boom() -> None:
            child_name = "Ada Lovelace-Example"
            raise RuntimeError(f"secret internal detail {len(child_name)}")

        capsys.readouterr()
        response = await http.get(
            "/boom", headers={"X-Request-ID": "req-500", "Authorization": "Bearer tok-abc"}
        )
        logged = capsys.readouterr().out
        assert "unhandled_exception" in logged
        # The traceback is logged without frame locals: no child's name, no token.
        assert "Ada Lovelace" not in logged
        assert "tok-abc" not in logged
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["type"] == "urn:liaison:problem:internal-error"
        assert body["request_id"] == "req-500"
        assert "secret internal detail" not in response.text
        assert "Traceback" not in response.text


async def test_validation_errors_reach_the_log_without_their_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A response that fails its model is a bug (500), and pydantic's message quotes the
    value it refused: the log keeps where and why, never the value."""
    from pydantic import BaseModel

    class Child(BaseModel):
        date_of_birth: int

    async with standalone(f"sqlite+aiosqlite:///{tmp_path}/x.db") as (application, http):

        @application.get("/bad-answer", response_model=Child)
        async def bad_answer() -> dict[str, str]:
            return {"date_of_birth": "Ada Lovelace-Example born 2015-03-14"}

        capsys.readouterr()
        response = await http.get("/bad-answer")
        logged = capsys.readouterr().out
        assert response.status_code == 500
        assert "ResponseValidationError" in logged and "date_of_birth" in logged
        assert "Ada Lovelace" not in logged and "2015-03-14" not in logged


async def test_body_over_the_limit_is_413(tmp_path: Path) -> None:
    async with standalone(f"sqlite+aiosqlite:///{tmp_path}/x.db", max_body_bytes=2048) as (
        _app,
        http,
    ):
        big = b'{"pupils": [' + b" " * 4096 + b"]}"
        response = await http.put(
            "/v1/schools/00000000-0000-0000-0000-000000000000/pupils",
            content=big,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert "2048" in response.json()["detail"]

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(8):
                yield b"x" * 1024

        response = await http.post(
            "/oauth/token",
            content=chunks(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 413


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/livez", headers={"X-Request-ID": "abc-123.def"})
    assert given.headers["x-request-id"] == "abc-123.def"
    made = await client.get("/livez", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces"
    assert len(made.headers["x-request-id"]) == 32
    problem = await client.get("/v1/schools", headers={"X-Request-ID": "trace-401"})
    assert problem.json()["request_id"] == "trace-401"


async def test_metrics_are_labelled_by_route_template(
    client: httpx.AsyncClient, world: World
) -> None:
    school = await world.school()
    headers = await world.client_headers("pupils:read", schools=[school])
    await client.get(f"/v1/schools/{school['id']}", headers=headers)
    text = (await client.get("/metrics")).text
    assert 'route="/v1/schools/{school_id}"' in text
    assert school["id"] not in text
    assert "liaison_http_request_duration_seconds_bucket" in text


async def test_logs_carry_no_tokens_secrets_or_children(
    client: httpx.AsyncClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    school = await world.school()
    credentials = await world.api_client("pupils:write", schools=[school])
    token = await world.token(credentials)
    mis = {"Authorization": f"Bearer {token}"}
    staff = await world.staff("practitioner", schools=[school], password="a-very-private-password")
    practitioner = await world.headers(staff)
    await push_roster(
        client, school, [pupil(1, given_name="Zebedee", family_name="Quintrell")], mis
    )
    await push_roster(client, school, [pupil(2, given_name="Xanthe", upn="bad")], mis)
    await client.get("/v1/pupils", params={"name": "Quintrell"}, headers=practitioner)
    await client.get("/v1/pupils", headers={"Authorization": "Bearer " + token[:-4] + "AAAA"})

    formatter = next(
        h.formatter for h in logging.getLogger().handlers if type(h) is logging.StreamHandler
    )
    assert formatter is not None
    lines = [formatter.format(record) for record in caplog.records]
    liaison_lines = [line for line in lines if '"logger": "liaison' in line]
    assert any('"route": "/v1/schools/{school_id}/pupils"' in line for line in liaison_lines)
    for line in lines:
        for secret in (
            credentials.client_secret,
            token,
            token.split(".")[2],
            "a-very-private-password",
            "Zebedee",
            "Quintrell",
            "Xanthe",
            "2015-03-14",
        ):
            assert secret not in line, line
