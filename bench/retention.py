"""The retention run at LA scale: rows disposed of per second beside a raw `DELETE` of the
same rows, and a hot read's p99 while the run goes beside the same read idle.

Builds an LA on a fresh PostgreSQL database with SQL `generate_series` inserts: `--pupils`
pupils over `--schools` schools, `--years` years of session marks (weekdays outside August,
AM and PM) and their weekly figures, and `--cases` closed cases (one child each, two goals,
a review with scores, two contacts), half of them closed 26 years ago. The issue's scale is
20,000 pupils, seven years of marks and 5,000 cases; `--scale` takes a fraction of it.

Then, on two identical copies of that database (`CREATE DATABASE ... TEMPLATE`):

1. copy A: `liaison retention run` (a separate process, as cron runs it) disposes of what
   is past its period, while this process reads `GET /v1/pupils/{id}/attendance` through
   `liaison serve` in a loop; the same reads were timed idle first;
2. copy B: the same marks and weekly figures go with one raw `DELETE` each (what the run
   does per batch, without batches, holds, audit or locks).

    .venv/bin/python bench/retention.py [--scale 0.1] [--batch-size 50] [--pause-ms 100]
        [--reads 300] [--schools 20] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    SERVER,
    client_headers,
    drop_databases,
    host_speed,
    liaison,
    percentile,
    recreate_database,
    serve,
)

BUILT = "liaison_bench_retention"
COPY_RUN = "liaison_bench_retention_run"
COPY_RAW = "liaison_bench_retention_raw"

BUILD = [
    (
        "schools",
        """
        INSERT INTO school (created_at, updated_at, id, code, name, la_code, jurisdiction, phase)
        SELECT now(), now(), gen_random_uuid(), (800000 + g)::text, 'Bench ' || g, '202',
               'england', 'primary'
        FROM generate_series(1, $1::int) AS g
        """,
    ),
    (
        "pupils",
        """
        INSERT INTO pupil (created_at, updated_at, id, school_id, mis_id, upn, given_name,
            family_name, date_of_birth, year_group, free_school_meals, looked_after,
            young_carer, forces_family, send, on_roll)
        SELECT now(), now(), gen_random_uuid(), s.id, 'B-' || g, NULL, 'Given' || g,
               'Family' || (g % 97), DATE '2014-09-01' + (g % 1500), '5', g % 5 = 0,
               false, false, false, false, true
        FROM generate_series(0, $1::int - 1) AS g
        JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM school) AS s
          ON s.n = g % $2::int
        """,
    ),
    (
        "marks",
        """
        INSERT INTO attendance_mark (pupil_id, date, session, school_id, code, statutory_code,
            category, late, unexplained, updated_at)
        SELECT p.id, d::date, s.session, p.school_id,
               CASE WHEN (hashtext(p.id::text || d::text) & 15) = 0 THEN 'N' ELSE '/' END,
               CASE WHEN (hashtext(p.id::text || d::text) & 15) = 0 THEN 'N' ELSE '/' END,
               -- 4 unauthorised, 1 present (app.models.attendance.CATEGORY_NUMBER)
               CASE WHEN (hashtext(p.id::text || d::text) & 15) = 0 THEN 4 ELSE 1 END,
               false, false, now()
        FROM pupil AS p
        CROSS JOIN generate_series($1::date, $2::date, INTERVAL '1 day') AS d
        CROSS JOIN (VALUES (0), (1)) AS s(session)
        WHERE extract(isodow FROM d) < 6 AND extract(month FROM d) <> 8
        """,
    ),
    (
        "weekly figures",
        """
        INSERT INTO attendance_week (pupil_id, week_start, academic_year, possible, attended,
            unauthorised)
        SELECT m.pupil_id, date_trunc('week', m.date)::date,
               extract(year FROM m.date - INTERVAL '7 months')::int,
               count(*), count(*) FILTER (WHERE m.category = 1),
               count(*) FILTER (WHERE m.category = 4)
        FROM attendance_mark AS m GROUP BY 1, 2, 3
        """,
    ),
    (
        "cases",
        """
        INSERT INTO early_help_case (id, la_code, school_id, status, version, level_of_need,
            consent, consent_given, summary, opened_at, opened_by, closed_at, closure_reason,
            closure_note, reopened_count, updated_at)
        SELECT md5(p.id::text || 'case')::uuid, '202', p.school_id, 'closed', 1,
               'targeted_early_help',
               '{"given": true, "given_by": "A parent", "date": "2000-01-01", "share_with": []}',
               true, 'Case summary ' || p.mis_id,
               now() - make_interval(years => CASE WHEN p.n % 2 = 0 THEN 27 ELSE 2 END),
               'bench', now() - make_interval(years => CASE WHEN p.n % 2 = 0 THEN 26 ELSE 1 END),
               'needs_met', 'Closure note', 0, now()
        FROM (SELECT id, school_id, mis_id, row_number() OVER (ORDER BY id) AS n FROM pupil)
             AS p
        WHERE p.n <= $1::int
        """,
    ),
    (
        "case children",
        """
        INSERT INTO case_child (id, case_id, position, pupil_id, school_id, upn, given_name,
            family_name, date_of_birth)
        SELECT gen_random_uuid(), c.id, 0, p.id, p.school_id, NULL, p.given_name,
               p.family_name, p.date_of_birth
        FROM early_help_case AS c JOIN pupil AS p ON c.id = md5(p.id::text || 'case')::uuid
        """,
    ),
    (
        "goals",
        """
        INSERT INTO goal (id, case_id, title, outcome_category, child_id, owner, due,
            created_at, created_by)
        SELECT gen_random_uuid(), c.id, 'Goal ' || g, 'school_attendance_managed', NULL,
               'Parent', NULL, c.opened_at, 'bench'
        FROM early_help_case AS c CROSS JOIN generate_series(1, 2) AS g
        """,
    ),
    (
        "reviews",
        """
        INSERT INTO review (id, case_id, held_on, worries, working_well, next_steps,
            created_at, created_by)
        SELECT gen_random_uuid(), c.id, (c.opened_at + INTERVAL '60 days')::date,
               'Worries', 'Working well', 'Next steps', c.opened_at, 'bench'
        FROM early_help_case AS c
        """,
    ),
    (
        "scores",
        """
        INSERT INTO review_score (id, review_id, goal_id, score, respondent_scores)
        SELECT gen_random_uuid(), r.id, g.id, 6, '{}'
        FROM review AS r JOIN goal AS g ON g.case_id = r.case_id
        """,
    ),
    (
        "contacts",
        """
        INSERT INTO intervention (id, case_id, type, occurred_at, minutes, location,
            participants, child_ids, child_seen, agenda, record, actions,
            parent_consent_recorded, risk_assessment_done, created_at, created_by)
        SELECT gen_random_uuid(), c.id, 'home_visit', c.opened_at + INTERVAL '10 days', 45,
               'home', '["Parent"]', '[]', true, NULL, 'Record of the visit', '[]',
               false, false, c.opened_at, 'bench'
        FROM early_help_case AS c CROSS JOIN generate_series(1, 2) AS g
        """,
    ),
]


async def build(pupils: int, schools: int, years: int, cases: int, today: date) -> None:
    await recreate_database(BUILT)
    url = f"{SERVER.replace('postgresql://', 'postgresql+asyncpg://')}/{BUILT}"
    liaison("migrate", env={**os.environ, "LIAISON_DATABASE_URL": url})
    connection = await asyncpg.connect(f"{SERVER}/{BUILT}", command_timeout=3600)
    first = today.replace(year=today.year - years)
    arguments = {
        "schools": (schools,),
        "pupils": (pupils, schools),
        "marks": (first, today),
        "cases": (cases,),
    }
    try:
        for label, sql in BUILD:
            started = time.perf_counter()
            status = await connection.execute(sql, *arguments.get(label, ()))
            print(
                f"  built {label:15s} {status.split()[-1]:>10s} rows "
                f"in {time.perf_counter() - started:6.1f} s",
                flush=True,
            )
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


async def copy(name: str) -> None:
    connection = await asyncpg.connect(f"{SERVER}/postgres")
    await connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await connection.execute(f"CREATE DATABASE {name} TEMPLATE {BUILT}")
    await connection.close()


async def read_loop(
    http: httpx.AsyncClient, headers: dict[str, str], ids: list[str], stop: asyncio.Event,
    limit: int | None = None,
) -> list[float]:  # fmt: skip
    times: list[float] = []
    n = 0
    while not stop.is_set() and (limit is None or n < limit):
        pupil_id = ids[n % len(ids)]
        started = time.perf_counter()
        response = await http.get(f"/v1/pupils/{pupil_id}/attendance", headers=headers)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
        n += 1
        await asyncio.sleep(0.005)
    return times


def summary_rows(output: str) -> dict[str, tuple[int, float]]:
    """record type -> (rows disposed, seconds), summed over jurisdictions, from the CLI."""
    found: dict[str, tuple[int, float]] = {}
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│|]", line) if c.strip()]
        if len(cells) == 8 and re.fullmatch(r"\d{4}-\d\d-\d\d", cells[3]):
            rows, seconds = found.get(cells[0], (0, 0.0))
            found[cells[0]] = (rows + int(cells[5]), seconds + float(cells[7]))
    return found


async def main(scale: float, batch_size: int, reads: int, schools: int, pause_ms: int) -> None:
    pupils, cases, years = int(20_000 * scale), int(5_000 * scale), 7
    today = datetime.now(UTC).date()
    print(host_speed())
    print(
        f"scale {scale}: {pupils} pupils, {schools} schools, {years} years of marks, "
        f"{cases} closed cases (half closed 26 years ago)"
    )
    started = time.perf_counter()
    await build(pupils, schools, years, cases, today)
    print(f"  built in {time.perf_counter() - started:.1f} s")
    await copy(COPY_RUN)
    await copy(COPY_RAW)

    url = f"{SERVER.replace('postgresql://', 'postgresql+asyncpg://')}/{COPY_RUN}"
    env = {
        **os.environ,
        "LIAISON_DATABASE_URL": url,
        "LIAISON_ENVIRONMENT": "development",
        "LIAISON_LOG_LEVEL": "WARNING",
    }
    credentials = json.loads(
        liaison(
            "create-client",
            "--name",
            "bench",
            "--la",
            "202",
            "--scope",
            "attendance:read pupils:read",
            env=env,
        )
    )
    server, base = serve(env, 1)
    raw = await asyncpg.connect(f"{SERVER}/{COPY_RUN}")
    ids = [str(r["id"]) for r in await raw.fetch("SELECT id FROM pupil ORDER BY id LIMIT 500")]
    await raw.close()
    try:
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            headers = await client_headers(http, credentials)
            await read_loop(http, headers, ids, asyncio.Event(), limit=50)  # warm up
            idle = await read_loop(http, headers, ids, asyncio.Event(), limit=reads)

            stop = asyncio.Event()
            reader = asyncio.create_task(read_loop(http, headers, ids, stop))
            began = time.perf_counter()
            run = await asyncio.create_subprocess_exec(
                str(ROOT / ".venv/bin/liaison"),
                "retention",
                "run",
                "--batch-size",
                str(batch_size),
                "--pause-ms",
                str(pause_ms),
                env={**env, "COLUMNS": "200"},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            out, _ = await run.communicate()
            run_seconds = time.perf_counter() - began
            stop.set()
            during = await reader
    finally:
        server.terminate()
        server.wait(timeout=10)
    output = out.decode()
    if run.returncode != 0:
        print(output)
        raise SystemExit("the retention run failed")
    per_type = summary_rows(output)
    total = sum(rows for rows, _ in per_type.values())

    raw = await asyncpg.connect(f"{SERVER}/{COPY_RAW}", command_timeout=3600)
    cutoff = today.replace(year=today.year - 6)
    try:
        started = time.perf_counter()
        async with raw.transaction():
            marks = await raw.execute("DELETE FROM attendance_mark WHERE date < $1", cutoff)
            weeks = await raw.execute("DELETE FROM attendance_week WHERE week_start < $1", cutoff)
        raw_seconds = time.perf_counter() - started
    finally:
        await raw.close()
    raw_rows = int(marks.split()[-1]) + int(weeks.split()[-1])
    run_rows = (
        per_type.get("attendance_mark", (0, 0.0))[0] + per_type.get("attendance_week", (0, 0.0))[0]
    )
    run_type_seconds = (
        per_type.get("attendance_mark", (0, 0.0))[1] + per_type.get("attendance_week", (0, 0.0))[1]
    )

    print(
        f"retention run (batch size {batch_size}, pause {pause_ms} ms): {total} rows disposed "
        f"in {run_seconds:.1f} s "
        f"wall ({total / run_seconds:.0f} rows/s, process start and counting included)"
    )
    for name, (rows, seconds) in sorted(per_type.items()):
        if rows:
            print(
                f"  {name:22s} {rows:9d} rows in {seconds:7.2f} s  "
                f"({rows / seconds if seconds else 0:9.0f} rows/s)"
            )
    print(
        f"marks + weekly figures: run {run_rows} rows in {run_type_seconds:.2f} s "
        f"({run_rows / run_type_seconds:.0f} rows/s); raw DELETE {raw_rows} rows in "
        f"{raw_seconds:.2f} s ({raw_rows / raw_seconds:.0f} rows/s); "
        f"the run at {raw_seconds / run_type_seconds:.2f}x of raw"
    )
    assert run_rows == raw_rows, (run_rows, raw_rows)
    idle_p99, during_p99 = percentile(idle, 0.99), percentile(during, 0.99)
    print(
        f"GET /v1/pupils/{{id}}/attendance: idle {len(idle)} reads p50 "
        f"{statistics.median(idle) * 1000:.1f} ms p99 {idle_p99 * 1000:.1f} ms; during the run "
        f"{len(during)} reads p50 {statistics.median(during) * 1000:.1f} ms p99 "
        f"{during_p99 * 1000:.1f} ms: {during_p99 / idle_p99:.2f}x idle (target <= 2x)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--schools", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--pause-ms", type=int, default=100)
    parser.add_argument(
        "--keep", action="store_true", help="Keep the databases built (dropped by default)."
    )
    arguments = parser.parse_args()
    try:
        asyncio.run(
            main(
                arguments.scale,
                arguments.batch_size,
                arguments.reads,
                arguments.schools,
                arguments.pause_ms,
            )
        )
    finally:
        if not arguments.keep:
            asyncio.run(drop_databases(BUILT, COPY_RUN, COPY_RAW))
