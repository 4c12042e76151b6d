"""Audited reads beside a bare FastAPI + asyncpg app reading the same rows (issue 16).

Three reads a practitioner's screen or an MIS makes all day, each driven by `wrk` (Debian's
package) at the same concurrency against Liaison (`liaison serve`, one worker: auth, reach,
audit in the same transaction, logs, metrics) and against `bench/bare_reads.py` (one uvicorn
worker: the same rows, nothing else), interleaved in rounds so both meet the machine at the
same moment. Prints requests per second, latency percentiles and the ratio.

    .venv/bin/python bench/reads.py                    # 3 rounds of 10 s per read and side
    .venv/bin/python bench/reads.py --duration 5 --rounds 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    ROOT,
    SERVER,
    drop_databases,
    free_port,
    host_speed,
    liaison,
    recreate_database,
    serve,
)

DATABASE = "liaison_bench_reads"
ASYNC_SERVER = SERVER.replace("postgresql:", "postgresql+asyncpg:")
CONSENT = {"given": True, "given_by": "A parent", "date": "2025-09-01", "share_with": ["school"]}


@dataclass
class Run:
    requests_per_second: float
    p50_ms: float
    p99_ms: float


def _ms(text: str) -> float:
    value = float(re.sub(r"[a-z]+$", "", text))
    if text.endswith("us"):
        return value / 1000
    if text.endswith("ms"):
        return value
    if text.endswith("s"):
        return value * 1000
    raise ValueError(text)


def wrk(url: str, headers: dict[str, str], seconds: int, connections: int) -> Run:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    for name, value in headers.items():
        command[1:1] = ["-H", f"{name}: {value}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors on {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    return Run(rps, p50, p99)


async def _wait(http: httpx.AsyncClient, path: str) -> None:
    for _ in range(300):
        try:
            if (await http.get(path)).status_code < 500:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"{http.base_url} did not come up")


async def _token(http: httpx.AsyncClient, **form: str) -> dict[str, str]:
    auth = None
    if form.get("grant_type") == "client_credentials":
        auth = (form.pop("client_id"), form.pop("client_secret"))
    answer = await http.post("/oauth/token", data=form, auth=auth)
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def prepare(base: str) -> tuple[dict[str, str], dict[str, str], str, str]:
    """Tokens for the demo MIS and practitioner, a pupil with marks and a case about it."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        await _wait(http, "/livez")
        mis = await _token(
            http,
            grant_type="client_credentials",
            client_id="demo-mis",
            client_secret="demo-mis-secret-for-demo-only",
        )
        staff = await _token(
            http,
            grant_type="password",
            username="practitioner@demo.liaison",
            password="practitioner-secret-for-demo-only",
        )
        schools = (await http.get("/v1/schools", headers=mis)).json()["items"]
        school = next(s for s in schools if s["code"] == "990001")
        pupils = (
            await http.get(f"/v1/pupils?school_id={school['id']}&limit=1", headers=mis)
        ).json()["items"]
        pupil_id = pupils[0]["id"]
        case = await http.post(
            "/v1/cases",
            headers=staff,
            json={
                "children": [{"pupil_id": pupil_id}],
                "level_of_need": "targeted_early_help",
                "consent": CONSENT,
            },
        )
        case.raise_for_status()
        return mis, staff, pupil_id, case.json()["id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    print(host_speed())
    asyncio.run(recreate_database(DATABASE))
    env = {
        **os.environ,
        "LIAISON_DATABASE_URL": f"{ASYNC_SERVER}/{DATABASE}",
        "LIAISON_SIGNING_KEY": "bench-reads-signing-key-0123456789abcdef",
        "LIAISON_TOKEN_LIFETIME_SECONDS": "7200",
        "LIAISON_WEBHOOK_WORKER_IN_SERVE": "false",
        "LIAISON_TOKEN_IDENTITY_LIMITS": "1000 per minute",
        "LIAISON_TOKEN_ADDRESS_LIMITS": "1000 per minute",
    }
    liaison("migrate", env=env)
    liaison("seed-demo", env=env)
    server, base = serve(env, workers=1)
    bare_port = free_port()
    bare = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/uvicorn"),
            "bench.bare_reads:app",
            "--port",
            str(bare_port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env={**os.environ, "BARE_READS_DSN": f"{SERVER}/{DATABASE}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bare_base = f"http://127.0.0.1:{bare_port}"
    try:
        mis, staff, pupil_id, case_id = asyncio.run(prepare(base))

        async def wait_bare() -> None:
            async with httpx.AsyncClient(base_url=bare_base) as http:
                await _wait(http, f"/pupils/{pupil_id}")

        asyncio.run(wait_bare())
        end = date.today()
        start = end - timedelta(days=120)
        reads = [
            (
                "GET /v1/pupils/{id}",
                (f"{base}/v1/pupils/{pupil_id}", mis),
                (f"{bare_base}/pupils/{pupil_id}", {}),
            ),
            (
                "GET /v1/pupils/{id}/attendance",
                (f"{base}/v1/pupils/{pupil_id}/attendance?from={start}&to={end}", mis),
                (f"{bare_base}/pupils/{pupil_id}/attendance?start={start}&end={end}", {}),
            ),
            (
                "GET /v1/cases/{id}",
                (f"{base}/v1/cases/{case_id}", staff),
                (f"{bare_base}/cases/{case_id}", {}),
            ),
        ]
        # A short warm-up of each, so neither side is timed while it fills its caches.
        for _, (url, headers), (bare_url, _none) in reads:
            wrk(url, headers, 2, args.connections)
            wrk(bare_url, {}, 2, args.connections)
        results: dict[str, list[tuple[Run, Run]]] = {name: [] for name, *_ in reads}
        print(
            f"{args.rounds} rounds x {args.duration} s per read and side, "
            f"wrk -c{args.connections}, one worker each, interleaved"
        )
        for round_no in range(1, args.rounds + 1):
            for name, (url, headers), (bare_url, _none) in reads:
                ours = wrk(url, headers, args.duration, args.connections)
                theirs = wrk(bare_url, {}, args.duration, args.connections)
                results[name].append((ours, theirs))
                print(
                    f"  round {round_no} {name:32} liaison {ours.requests_per_second:8.0f} req/s "
                    f"p50 {ours.p50_ms:6.2f} ms p99 {ours.p99_ms:6.2f} ms | bare "
                    f"{theirs.requests_per_second:8.0f} req/s p50 {theirs.p50_ms:6.2f} ms "
                    f"p99 {theirs.p99_ms:6.2f} ms | "
                    f"{ours.requests_per_second / theirs.requests_per_second:.2f}x",
                    flush=True,
                )
        print("summary (sum of requests over the rounds, ours / bare):")
        for name, runs in results.items():
            ours_total = sum(o.requests_per_second for o, _ in runs)
            bare_total = sum(b.requests_per_second for _, b in runs)
            print(
                f"  {name:32} liaison {ours_total / len(runs):8.0f} req/s   bare "
                f"{bare_total / len(runs):8.0f} req/s   ratio {ours_total / bare_total:.2f}x"
            )
    finally:
        for process in (server, bare):
            process.terminate()
        for process in (server, bare):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        time.sleep(0.5)
        if not args.keep:
            asyncio.run(drop_databases(DATABASE))


if __name__ == "__main__":
    main()
