"""The public Open Referral UK directory: Liaison over HTTP beside raw asyncpg, in the same run.

The `/oruk/` routes are public (council websites and partner apps read them), so they are
a hot path of their own. Starts `liaison serve` (one worker) on a fresh PostgreSQL
database, writes `--services` services through `PUT /v1/directory/services/{id}` (not
timed), then times, request by request, interleaved with raw asyncpg doing the same reads:

1. a page of the service list (`GET /oruk/services?page=N&per_page=50`) beside the raw
   `SELECT ... ORDER BY name LIMIT 50 OFFSET ...` plus `count(*)`;
2. one service in full (`GET /oruk/services/{id}`) beside the raw `SELECT` of its row.

Absolute times drift on shared machines; the ratios are the result.

    .venv/bin/python bench/directory.py [--services 500] [--reads 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    SERVER,
    client_headers,
    host_speed,
    liaison,
    percentile,
    recreate_database,
    serve,
)

DATABASE = "liaison_bench_directory"
PER_PAGE = 50
KINDS = ["Counselling", "Benefits advice", "Parenting support", "Young carers", "Housing advice"]


def service(n: int) -> dict[str, object]:
    kind = KINDS[n % len(KINDS)]
    return {
        "name": f"{kind} {n:04d}",
        "description": f"{kind} for families across the borough, drop-in and by referral.",
        "status": "active",
        "email": f"service{n}@example.org",
        "minimum_age": 0,
        "maximum_age": 18,
    }


def report(label: str, ours: list[float], raw: list[float]) -> None:
    ours_p50, raw_p50 = percentile(ours, 0.5), percentile(raw, 0.5)
    print(
        f"{label}: liaison HTTP p50 {ours_p50:7.2f} ms p95 {percentile(ours, 0.95):7.2f} ms"
        f"   raw asyncpg p50 {raw_p50:6.2f} ms p95 {percentile(raw, 0.95):6.2f} ms"
        f"   p50 ratio {raw_p50 / ours_p50:.3f}x of raw"
    )


async def main(services: int, reads: int) -> None:
    print(host_speed())
    await recreate_database(DATABASE)
    env = {
        **os.environ,
        "LIAISON_DATABASE_URL": f"{SERVER.replace('postgresql', 'postgresql+asyncpg')}/{DATABASE}",
        "LIAISON_ENVIRONMENT": "development",
        "LIAISON_LOG_LEVEL": "WARNING",
    }
    liaison("migrate", env=env)
    credentials = json.loads(
        liaison(
            "create-client",
            "--name",
            "bench directory",
            "--scope",
            "directory:write",
            "--no-reach",
            env=env,
        )
    )
    server, base = serve(env)
    raw = await asyncpg.connect(f"{SERVER}/{DATABASE}")
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            headers = await client_headers(http, credentials)
            ids = [uuid.UUID(int=n + 1) for n in range(services)]
            for n, service_id in enumerate(ids):
                written = await http.put(
                    f"/v1/directory/services/{service_id}", json=service(n), headers=headers
                )
                assert written.status_code in (200, 201), written.text
            print(f"directory: {services} services written through the API (not timed)")
            pages = max(1, services // PER_PAGE)
            rng = random.Random(3)
            list_ours: list[float] = []
            list_raw: list[float] = []
            one_ours: list[float] = []
            one_raw: list[float] = []
            for _ in range(reads):
                page = rng.randint(1, pages)
                started = time.perf_counter()
                answer = await http.get(
                    "/oruk/services", params={"page": page, "per_page": PER_PAGE}
                )
                list_ours.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200 and len(answer.json()["contents"]) == PER_PAGE
                started = time.perf_counter()
                await raw.fetchval("SELECT count(*) FROM directory_service")
                rows = await raw.fetch(
                    "SELECT * FROM directory_service ORDER BY name, id LIMIT $1 OFFSET $2",
                    PER_PAGE,
                    (page - 1) * PER_PAGE,
                )
                list_raw.append((time.perf_counter() - started) * 1000)
                assert len(rows) == PER_PAGE

                service_id = rng.choice(ids)
                started = time.perf_counter()
                answer = await http.get(f"/oruk/services/{service_id}")
                one_ours.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200
                started = time.perf_counter()
                await raw.fetchrow("SELECT * FROM directory_service WHERE id = $1", service_id)
                one_raw.append((time.perf_counter() - started) * 1000)
            report(f"ORUK service list, {PER_PAGE} a page ({reads} requests)", list_ours, list_raw)
            report(f"ORUK service in full ({reads} requests)", one_ours, one_raw)
    finally:
        await raw.close()
        server.terminate()
        server.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--reads", type=int, default=300)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.services, arguments.reads))
