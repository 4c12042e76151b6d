"""Roster upsert and pupil read: Liaison over HTTP beside raw asyncpg, in the same run.

Starts `liaison serve` (uvicorn, one worker) on a fresh PostgreSQL database, then:

1. pushes full rosters for N schools over HTTP (auth, validation, reach, audit on), first
   creating every pupil and then re-pushing with a tenth changed, and times the same
   upserts done with raw asyncpg (`INSERT ... SELECT FROM unnest(...) ON CONFLICT`);
2. reads single pupils over HTTP (`GET /v1/pupils/{id}`, audited) beside a raw asyncpg
   `SELECT` by id, and prints p50/p95.

Absolute times drift on shared machines; the ratios are the result.

    .venv/bin/python bench/roster.py [--schools 10] [--pupils 1000] [--reads 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.services.upn import check_letter
from bench.common import (
    SERVER,
    client_headers,
    host_speed,
    liaison,
    percentile,
    recreate_database,
    serve,
)

DATABASE = "liaison_bench"


def rows(school: int, pupils: int, changed: float = 0.0) -> list[dict[str, Any]]:
    rng = random.Random(school)
    out = []
    for n in range(pupils):
        body = f"202{2000 + school:04d}24{n % 1000:03d}"
        out.append(
            {
                "mis_id": f"{school}-{n}",
                "upn": check_letter(body) + body if n < 1000 else None,
                "given_name": f"Given{n}",
                "family_name": "Changed" if rng.random() < changed else f"Family{n % 97}",
                "date_of_birth": (date(2012, 9, 1) + timedelta(days=n % 1500)).isoformat(),
                "year_group": str(1 + n % 11),
                "free_school_meals": n % 5 == 0,
            }
        )
    return out


RAW_UPSERT = """
INSERT INTO raw_pupil (id, school_id, mis_id, upn, given_name, family_name, date_of_birth,
                       year_group, free_school_meals)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::date[], $8::text[], $9::bool[])
ON CONFLICT (school_id, mis_id) DO UPDATE SET
    upn = EXCLUDED.upn, given_name = EXCLUDED.given_name, family_name = EXCLUDED.family_name,
    date_of_birth = EXCLUDED.date_of_birth, year_group = EXCLUDED.year_group,
    free_school_meals = EXCLUDED.free_school_meals
WHERE (raw_pupil.upn, raw_pupil.given_name, raw_pupil.family_name, raw_pupil.date_of_birth,
       raw_pupil.year_group, raw_pupil.free_school_meals)
  IS DISTINCT FROM (EXCLUDED.upn, EXCLUDED.given_name, EXCLUDED.family_name,
                    EXCLUDED.date_of_birth, EXCLUDED.year_group, EXCLUDED.free_school_meals)
"""


async def raw_push(
    connection: asyncpg.Connection, school_id: uuid.UUID, batch: list[dict[str, Any]]
) -> None:
    await connection.execute(
        RAW_UPSERT,
        [uuid.uuid4() for _ in batch],
        [school_id] * len(batch),
        [r["mis_id"] for r in batch],
        [r["upn"] for r in batch],
        [r["given_name"] for r in batch],
        [r["family_name"] for r in batch],
        [date.fromisoformat(r["date_of_birth"]) for r in batch],
        [r["year_group"] for r in batch],
        [r["free_school_meals"] for r in batch],
    )


async def main(schools: int, pupils: int, reads: int) -> None:
    await recreate_database(DATABASE)
    url = f"{SERVER.replace('postgresql://', 'postgresql+asyncpg://')}/{DATABASE}"
    env = {
        **os.environ,
        "LIAISON_DATABASE_URL": url,
        "LIAISON_ENVIRONMENT": "development",
        "LIAISON_LOG_LEVEL": "WARNING",
    }
    liaison("migrate", env=env)
    codes = [str(700000 + s) for s in range(schools)]
    for code in codes:
        liaison("create-school", "--code", code, "--name", f"Bench {code}", "--la", "202", env=env)
    credentials = json.loads(
        liaison(
            "create-client", "--name", "bench", "--la", "202",
            "--scope", "pupils:write pupils:read cases:read", env=env,
        )
    )  # fmt: skip
    server, base = serve(env, 1)
    raw = await asyncpg.connect(f"{SERVER}/{DATABASE}")
    await raw.execute(
        "CREATE TABLE raw_pupil (id uuid PRIMARY KEY, school_id uuid, mis_id text, upn text, "
        "given_name text, family_name text, date_of_birth date, year_group text, "
        "free_school_meals bool, UNIQUE (school_id, mis_id))"
    )
    try:
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            headers = await client_headers(http, credentials)
            school_ids = [
                s["id"] for s in (await http.get("/v1/schools", headers=headers)).json()["items"]
            ]

            results: dict[str, tuple[float, float]] = {}
            for label, changed in (("create", 0.0), ("re-push, 10% changed", 0.1)):
                batches = [rows(s, pupils, changed) for s in range(schools)]
                started = time.perf_counter()
                for school_id, batch in zip(school_ids, batches, strict=True):
                    response = await http.put(
                        f"/v1/schools/{school_id}/pupils", json={"pupils": batch}, headers=headers
                    )
                    assert response.status_code == 200 and not response.json()["rejected"], (
                        response.text
                    )
                http_seconds = time.perf_counter() - started
                started = time.perf_counter()
                for school_id, batch in zip(school_ids, batches, strict=True):
                    await raw_push(raw, uuid.UUID(school_id), batch)
                raw_seconds = time.perf_counter() - started
                results[label] = (http_seconds, raw_seconds)

            total = schools * pupils
            print(host_speed())
            print(f"roster upsert: {schools} schools x {pupils} pupils = {total} rows per pass")
            for label, (http_seconds, raw_seconds) in results.items():
                print(
                    f"  {label:22s} liaison HTTP {total / http_seconds:9.0f} rows/s   "
                    f"raw asyncpg {total / raw_seconds:9.0f} rows/s   "
                    f"ratio {raw_seconds / http_seconds:.2f}x of raw"
                )

            ids = [
                p["id"]
                for p in (
                    await http.get("/v1/pupils", params={"limit": 200}, headers=headers)
                ).json()["items"]
            ]
            http_times, raw_times = [], []
            for n in range(reads):
                pupil_id = ids[n % len(ids)]
                started = time.perf_counter()
                response = await http.get(f"/v1/pupils/{pupil_id}", headers=headers)
                http_times.append(time.perf_counter() - started)
                assert response.status_code == 200
                started = time.perf_counter()
                await raw.fetchrow("SELECT * FROM pupil WHERE id = $1", uuid.UUID(pupil_id))
                raw_times.append(time.perf_counter() - started)
            print(f"pupil read ({reads} requests, sequential):")
            print(
                f"  liaison HTTP p50 {statistics.median(http_times) * 1000:6.2f} ms  "
                f"p95 {percentile(http_times, 0.95) * 1000:6.2f} ms   "
                f"raw asyncpg p50 {statistics.median(raw_times) * 1000:6.2f} ms  "
                f"p95 {percentile(raw_times, 0.95) * 1000:6.2f} ms"
            )
    finally:
        await raw.close()
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--schools", type=int, default=10)
    parser.add_argument("--pupils", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=500)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.schools, arguments.pupils, arguments.reads))
