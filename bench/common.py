"""What the benchmarks share: a fresh database, the `liaison` command, a served instance
and a token for it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("LIAISON_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


async def recreate_database(name: str) -> None:
    connection = await asyncpg.connect(f"{SERVER}/postgres")
    await connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await connection.execute(f"CREATE DATABASE {name}")
    await connection.close()


async def drop_databases(*names: str) -> None:
    """Give back the disk a benchmark's databases took (an LA-scale one is gigabytes)."""
    connection = await asyncpg.connect(f"{SERVER}/postgres")
    for name in names:
        await connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await connection.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def liaison(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(ROOT / ".venv/bin/liaison"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def serve(env: dict[str, str], workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    """`liaison serve` on a free port, its output discarded: (process, base URL)."""
    port = free_port()
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/liaison"), "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return server, f"http://127.0.0.1:{port}"


async def client_headers(http: httpx.AsyncClient, credentials: dict[str, Any]) -> dict[str, str]:
    """Wait for the server to come up, then get a client-credentials token."""
    for _ in range(200):
        try:
            if (await http.get("/livez")).status_code == 200:
                break
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    token = (
        await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(credentials["client_id"], credentials["client_secret"]),
        )
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def host_speed() -> str:
    """A fixed pure-Python loop, timed: shared hosts slow down and speed up, and this says
    which kind of moment a run's absolute figures come from."""
    started = time.perf_counter()
    total = 0
    for n in range(5_000_000):
        total += n
    return f"host check: a 5M-step Python loop took {time.perf_counter() - started:.2f} s"
