"""Attendance ingestion, the flag worklist and a pupil's figures: Liaison over HTTP beside
raw asyncpg, in the same run.

A synthetic LA of `--schools` schools of `--pupils` pupils each. Starts `liaison serve`
(uvicorn, `--workers` processes) on a fresh PostgreSQL database (or SQLite with
`--database sqlite`), pushes the rosters (not timed), then
pushes `--days` school days of session marks, one school-week per request (10,000 marks
at the defaults: what an MIS or an aggregator sends after a week's registers), with auth,
validation, code resolution, reach, running counts, flag upkeep and audit all on,
`--concurrency` requests in flight (different schools, as an LA's MIS push). Each round of
requests is timed beside the same marks upserted by raw asyncpg on as many connections into
a table of the same shape (`INSERT ... SELECT FROM unnest(...) ON CONFLICT ... DO UPDATE
... WHERE IS DISTINCT FROM`), round by round, so both see the same machine at the same
moment. `--concurrency 1 --workers 1` gives the sequential figures.

Then: the same pushes again (nothing may be created); one 50,000-mark request, with the
server's peak resident memory read from /proc; the LA-wide open-flag list and a pupil's
figures, each beside the raw SELECT that reads the same rows.

Absolute times drift on shared machines; the ratios are the result.

    .venv/bin/python bench/ingest.py [--schools 20] [--pupils 1000] [--days 20]
        [--concurrency 4] [--workers 2] [--database postgresql|sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import re
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

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

DATABASE = "liaison_bench_ingest"
FIRST_DAY = date(2026, 9, 7)  # a Monday this academic year, in the past
LA = "202"


def school_days(start: date, count: int) -> list[date]:
    days: list[date] = []
    day = start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


class Pupils:
    """Each pupil's habits: most attend; some are persistently or severely absent; a few go
    missing (runs of N). The same seed gives the same LA every run."""

    def __init__(self, schools: int, pupils: int) -> None:
        rng = random.Random(7)
        self.kind: dict[tuple[int, int], str] = {}
        for s in range(schools):
            for p in range(pupils):
                roll = rng.random()
                self.kind[(s, p)] = (
                    "severe"
                    if roll < 0.01
                    else "missing"
                    if roll < 0.015
                    else "persistent"
                    if roll < 0.12
                    else "good"
                )

    def code(self, s: int, p: int, day: date, session: str, rng: random.Random) -> str:
        kind = self.kind[(s, p)]
        present = "/" if session == "AM" else "\\"
        roll = rng.random()
        if kind == "severe":
            return rng.choice(["O", "G", "I", "N"]) if roll < 0.6 else present
        if kind == "missing" and day >= FIRST_DAY + timedelta(days=14):
            return "N"
        if kind == "persistent":
            return rng.choice(["I", "M", "O", "U", "G"]) if roll < 0.15 else present
        if roll < 0.03:
            return rng.choice(["I", "M", "L", "C", "V"])
        return present


def week_batches(
    codes: list[str], habits: Pupils, pupils: int, days: list[date]
) -> list[tuple[int, list[dict[str, Any]]]]:
    """One request per school per week of `days`: (school index, marks)."""
    batches = []
    weeks: dict[date, list[date]] = {}
    for day in days:
        weeks.setdefault(day - timedelta(days=day.weekday()), []).append(day)
    for week_days in weeks.values():
        for s, code in enumerate(codes):
            rng = random.Random(f"{s}-{week_days[0]}")
            marks = [
                {
                    "school_code": code,
                    "mis_id": f"{s}-{p}",
                    "date": day.isoformat(),
                    "session": session,
                    "code": habits.code(s, p, day, session, rng),
                }
                for p in range(pupils)
                for day in week_days
                for session in ("AM", "PM")
            ]
            batches.append((s, marks))
    return batches


RAW_UPSERT = """
INSERT INTO raw_mark AS m (pupil_id, date, session, school_id, code, statutory_code, category,
                           late, unexplained, minutes_late, comment, source_record_id,
                           updated_at)
SELECT pupil_id, date, session, school_id, code, statutory_code, category, late, unexplained,
       minutes_late, comment, source_record_id, now()
FROM unnest($1::uuid[], $2::date[], $3::smallint[], $4::uuid[], $5::text[], $6::text[],
            $7::smallint[], $8::bool[], $9::bool[], $10::smallint[], $11::text[], $12::text[])
     AS t(pupil_id, date, session, school_id, code, statutory_code, category, late,
          unexplained, minutes_late, comment, source_record_id)
ON CONFLICT (pupil_id, date, session) DO UPDATE SET
    school_id = EXCLUDED.school_id, code = EXCLUDED.code,
    statutory_code = EXCLUDED.statutory_code, category = EXCLUDED.category,
    late = EXCLUDED.late, unexplained = EXCLUDED.unexplained,
    minutes_late = EXCLUDED.minutes_late, comment = EXCLUDED.comment,
    source_record_id = EXCLUDED.source_record_id, updated_at = EXCLUDED.updated_at
WHERE (m.school_id, m.code, m.statutory_code, m.category, m.late, m.unexplained,
       m.minutes_late, m.comment, m.source_record_id)
  IS DISTINCT FROM (EXCLUDED.school_id, EXCLUDED.code, EXCLUDED.statutory_code,
       EXCLUDED.category, EXCLUDED.late, EXCLUDED.unexplained, EXCLUDED.minutes_late,
       EXCLUDED.comment, EXCLUDED.source_record_id)
"""

# The stored numbers (app.models.attendance.CATEGORY_NUMBER, SESSION_NUMBER).
CATEGORY_NUMBER = {
    "not_possible": 0,
    "present": 1,
    "approved_activity": 2,
    "authorised_absence": 3,
    "unauthorised_absence": 4,
}
SESSION_NUMBER = {"AM": 0, "PM": 1}

CATEGORY = {
    "/": ("present", False, False),
    "\\": ("present", False, False),
    "L": ("present", True, False),
    "V": ("approved_activity", False, False),
    "I": ("authorised_absence", False, False),
    "M": ("authorised_absence", False, False),
    "C": ("authorised_absence", False, False),
    "G": ("unauthorised_absence", False, False),
    "O": ("unauthorised_absence", False, True),
    "N": ("unauthorised_absence", False, True),
    "U": ("unauthorised_absence", True, False),
}


def raw_arrays(
    marks: list[dict[str, Any]], ids: dict[str, uuid.UUID], school_id: uuid.UUID
) -> list[list[Any]]:
    """The raw baseline gets its pupil ids and code meanings resolved in advance."""
    meaning = [CATEGORY[m["code"]] for m in marks]
    n = len(marks)
    return [
        [ids[m["mis_id"]] for m in marks],
        [date.fromisoformat(m["date"]) for m in marks],
        [SESSION_NUMBER[m["session"]] for m in marks],
        [school_id] * n,
        [m["code"] for m in marks],
        [m["code"] for m in marks],
        [CATEGORY_NUMBER[c] for c, _, _ in meaning],
        [late for _, late, _ in meaning],
        [unexplained for _, _, unexplained in meaning],
        [None] * n,
        [None] * n,
        [None] * n,
    ]


class RawPostgres:
    """The baseline: asyncpg straight to the same database, one connection per lane."""

    label = "raw asyncpg"

    async def open(self, lanes: int) -> None:
        self.connections = [await asyncpg.connect(f"{SERVER}/{DATABASE}") for _ in range(lanes)]
        # The same table: columns, primary key, indexes and the same partitions.
        first = self.connections[0]
        await first.execute(
            "CREATE TABLE raw_mark (LIKE attendance_mark INCLUDING ALL) PARTITION BY RANGE (date)"
        )
        for name, bound in await first.fetch(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'attendance_mark'::regclass"
        ):
            await first.execute(f"CREATE TABLE raw_{name} PARTITION OF raw_mark {bound}")

    async def upsert(self, lane: int, columns: list[list[Any]]) -> None:
        await self.connections[lane].execute(RAW_UPSERT, *columns)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return list(await self.connections[0].fetch(sql, *args))

    async def checkpoint(self) -> None:
        """Start a pass with the setup's WAL flushed, so no checkpoint it forces lands in
        the middle of the pass (both sides share whatever comes after)."""
        await self.connections[0].execute("CHECKPOINT")

    async def close(self) -> None:
        for connection in self.connections:
            await connection.close()


class RawSqlite:
    """The baseline on SQLite: the stdlib driver, `executemany` upsert, the same file."""

    label = "raw sqlite3"

    def __init__(self, path: Path) -> None:
        self.path = path

    async def open(self, lanes: int) -> None:
        self.connection = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.connection.execute("PRAGMA foreign_keys=ON")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.executescript(
            """
            CREATE TABLE raw_mark (
                pupil_id CHAR(32) NOT NULL,
                date DATE NOT NULL, session SMALLINT NOT NULL, school_id CHAR(32) NOT NULL,
                code VARCHAR(8) NOT NULL, statutory_code VARCHAR(4) NOT NULL,
                category SMALLINT NOT NULL, late BOOLEAN NOT NULL,
                unexplained BOOLEAN NOT NULL, minutes_late SMALLINT, comment VARCHAR(500),
                source_record_id VARCHAR(64), updated_at DATETIME NOT NULL,
                PRIMARY KEY (pupil_id, date, session));
            CREATE INDEX ix_raw_mark_school_id_date ON raw_mark (school_id, date);
            """
        )

    async def upsert(self, lane: int, columns: list[list[Any]]) -> None:
        now = time.strftime("%Y-%m-%d %H:%M:%S")
        rows = [
            (pupil.hex, day.isoformat(), session, school.hex, *rest, now)
            for pupil, day, session, school, *rest in zip(*columns, strict=True)
        ]
        self.connection.execute("BEGIN")
        self.connection.executemany(RAW_UPSERT_SQLITE, rows)
        self.connection.execute("COMMIT")

    async def checkpoint(self) -> None:
        self.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        sql = re.sub(r"\$\d+", "?", sql)
        args = tuple(a.hex if isinstance(a, uuid.UUID) else a for a in args)
        return self.connection.execute(sql, args).fetchall()

    async def close(self) -> None:
        self.connection.close()


RAW_UPSERT_SQLITE = """
INSERT INTO raw_mark AS m (pupil_id, date, session, school_id, code, statutory_code, category,
    late, unexplained, minutes_late, comment, source_record_id, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (pupil_id, date, session) DO UPDATE SET
    school_id = excluded.school_id, code = excluded.code,
    statutory_code = excluded.statutory_code, category = excluded.category,
    late = excluded.late, unexplained = excluded.unexplained,
    minutes_late = excluded.minutes_late, comment = excluded.comment,
    source_record_id = excluded.source_record_id, updated_at = excluded.updated_at
WHERE (m.school_id, m.code, m.statutory_code, m.category, m.late, m.unexplained,
       m.minutes_late, m.comment, m.source_record_id)
  IS NOT (excluded.school_id, excluded.code, excluded.statutory_code, excluded.category,
          excluded.late, excluded.unexplained, excluded.minutes_late, excluded.comment,
          excluded.source_record_id)
"""


def process_tree(pid: int) -> list[int]:
    """The server and its worker processes."""
    pids = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        pids.extend(process_tree(int(child)))
    return pids


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+).
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


async def timed_reads(
    http: httpx.AsyncClient,
    raw: RawPostgres | RawSqlite,
    url: str,
    params: dict[str, str],
    headers: dict[str, str],
    raw_sql: str,
    raw_args: list[Any],
    count: int,
) -> tuple[list[float], list[float]]:
    http_times, raw_times = [], []
    for _ in range(count):
        started = time.perf_counter()
        response = await http.get(url, params=params, headers=headers)
        http_times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
        started = time.perf_counter()
        await raw.fetch(raw_sql, *raw_args)
        raw_times.append(time.perf_counter() - started)
    return http_times, raw_times


def ms(samples: list[float], q: float) -> str:
    return f"{percentile(samples, q) * 1000:7.2f} ms"


async def main(
    schools: int,
    pupils: int,
    days: int,
    reads: int,
    concurrency: int,
    workers: int,
    database: str,
) -> None:
    raw: RawPostgres | RawSqlite
    if database == "sqlite":
        path = Path(tempfile.mkdtemp(prefix="liaison-bench-")) / "liaison.db"
        url = f"sqlite+aiosqlite:///{path}"
        raw = RawSqlite(path)
        concurrency = workers = 1  # one writer at a time is SQLite's model
    else:
        await recreate_database(DATABASE)
        url = f"{SERVER.replace('postgresql://', 'postgresql+asyncpg://')}/{DATABASE}"
        raw = RawPostgres()
    env = {
        **os.environ,
        "LIAISON_DATABASE_URL": url,
        "LIAISON_ENVIRONMENT": "development",
        "LIAISON_LOG_LEVEL": "WARNING",
    }
    liaison("migrate", env=env)
    codes = [str(700000 + s) for s in range(schools)]
    for code in codes:
        liaison("create-school", "--code", code, "--name", f"Bench {code}", "--la", LA, env=env)
    credentials = json.loads(
        liaison(
            "create-client", "--name", "bench-aggregator", "--la", LA,
            "--scope", "pupils:write pupils:read attendance:write attendance:read", env=env,
        )
    )  # fmt: skip
    server, base = serve(env, workers)
    await raw.open(concurrency)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=300) as http:
            headers = await client_headers(http, credentials)
            listed = (await http.get("/v1/schools", params={"limit": 200}, headers=headers)).json()
            school_ids = {s["code"]: uuid.UUID(s["id"]) for s in listed["items"]}
            for s, code in enumerate(codes):
                roster = [
                    {
                        "mis_id": f"{s}-{p}",
                        "given_name": f"Given{p}",
                        "family_name": f"Family{p % 97}",
                        "date_of_birth": (date(2012, 9, 1) + timedelta(days=p % 1500)).isoformat(),
                    }
                    for p in range(pupils)
                ]
                response = await http.put(
                    f"/v1/schools/{school_ids[code]}/pupils",
                    json={"pupils": roster},
                    headers=headers,
                )
                assert response.status_code == 200, response.text
            ids = {
                mis_id: uuid.UUID(str(pupil_id))
                for pupil_id, mis_id in await raw.fetch("SELECT id, mis_id FROM pupil")
            }

            habits = Pupils(schools, pupils)
            batches = week_batches(codes, habits, pupils, school_days(FIRST_DAY, days))
            bodies = [orjson.dumps({"marks": marks}) for _, marks in batches]
            arrays = [raw_arrays(marks, ids, school_ids[codes[s]]) for s, marks in batches]
            total = sum(len(marks) for _, marks in batches)
            # The harness holds millions of objects from here on; keep them out of its own
            # garbage collector's way, so the client is never what is being measured.
            gc.collect()
            gc.freeze()
            push_headers = {**headers, "Content-Type": "application/json"}

            async def post(body: bytes, counts: dict[str, int]) -> None:
                response = await http.post(
                    "/v1/attendance/marks", content=body, headers=push_headers
                )
                assert response.status_code == 200, response.text[:500]
                result = response.json()
                for key in ("created", "updated", "unchanged"):
                    counts[key] += result[key]
                counts["rejected"] += len(result["rejected"])

            async def run_pass(label: str) -> dict[str, int]:
                """Rounds of `concurrency` requests (different schools, same week), each
                round timed over HTTP and then as raw upserts on as many connections."""
                http_seconds = raw_seconds = 0.0
                counts = {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0}
                await raw.checkpoint()
                for start in range(0, len(bodies), concurrency):
                    round_bodies = bodies[start : start + concurrency]
                    round_arrays = arrays[start : start + concurrency]
                    started = time.perf_counter()
                    await asyncio.gather(*(post(body, counts) for body in round_bodies))
                    http_seconds += time.perf_counter() - started
                    started = time.perf_counter()
                    await asyncio.gather(
                        *(raw.upsert(lane, columns) for lane, columns in enumerate(round_arrays))
                    )
                    raw_seconds += time.perf_counter() - started
                print(
                    f"  {label:9s} liaison HTTP {total / http_seconds:9.0f} marks/s   "
                    f"{raw.label} {total / raw_seconds:9.0f} marks/s   "
                    f"ratio {raw_seconds / http_seconds:.2f}x of raw   {counts}"
                )
                return counts

            print(host_speed())
            print(
                f"attendance push: {schools} schools x {pupils} pupils x {days} days = "
                f"{total} marks in {len(batches)} requests of {total // len(batches)} marks, "
                f"{concurrency} at a time (raw: as many connections)"
            )
            await run_pass("first")
            again = await run_pass("re-push")
            assert again["created"] == 0 and again["updated"] == 0, again

            # One request at the 50,000-mark limit, of marks not seen before (last summer's).
            extra_day = school_days(date(2026, 5, 4), 25)
            big = [
                {
                    "school_code": codes[s % schools],
                    "mis_id": f"{s % schools}-{p}",
                    "date": day.isoformat(),
                    "session": session,
                    "code": "/" if session == "AM" else "\\",
                }
                for s in range(max(1, 50_000 // (pupils * 2 * 25)))
                for p in range(pupils)
                for day in extra_day[:25]
                for session in ("AM", "PM")
            ][:50_000]
            big_body = orjson.dumps({"marks": big})
            tree = process_tree(server.pid)
            before = max(rss_mb(p) for p in tree)
            for p in tree:
                reset_peak(p)
            started = time.perf_counter()
            response = await http.post(
                "/v1/attendance/marks", content=big_body, headers=push_headers
            )
            seconds = time.perf_counter() - started
            assert response.status_code == 200, response.text[:500]
            print(
                f"one {len(big)}-mark request ({len(big_body) / 1e6:.1f} MB of JSON): "
                f"{seconds * 1000:.0f} ms, server RSS before {before:.0f} MB, "
                f"peak during {max(peak_rss_mb(p) for p in tree):.0f} MB (largest process)"
            )

            open_flags = (await raw.fetch("SELECT count(*) FROM attendance_flag"))[0][0]
            marks_held = (await raw.fetch("SELECT count(*) FROM attendance_mark"))[0][0]
            print(f"flags raised: {open_flags}; marks held: {marks_held}")
            http_times, raw_times = await timed_reads(
                http,
                raw,
                "/v1/attendance/flags",
                {"status": "open", "limit": "200"},
                headers,
                "SELECT * FROM attendance_flag WHERE status = 'open' ORDER BY id LIMIT 201",
                [],
                reads,
            )
            print(
                f"LA-wide open-flag list, 200 a page ({reads} requests): "
                f"liaison HTTP p50 {ms(http_times, 0.5)} p95 {ms(http_times, 0.95)}   "
                f"{raw.label} p50 {ms(raw_times, 0.5)} p95 {ms(raw_times, 0.95)}"
            )
            pupil_ids = list(ids.values())
            rng = random.Random(3)
            http_times, raw_times = [], []
            for _ in range(reads):
                pupil_id = rng.choice(pupil_ids)
                started = time.perf_counter()
                response = await http.get(f"/v1/pupils/{pupil_id}/attendance", headers=headers)
                http_times.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
                started = time.perf_counter()
                await raw.fetch(
                    "SELECT date, category, late FROM attendance_mark "
                    "WHERE pupil_id = $1 AND date >= $2 AND date <= $3",
                    pupil_id,
                    date(2026, 8, 1),
                    date.today(),
                )
                raw_times.append(time.perf_counter() - started)
            print(
                f"a pupil's figures, year to date ({reads} requests): "
                f"liaison HTTP p50 {ms(http_times, 0.5)} p95 {ms(http_times, 0.95)}   "
                f"{raw.label} p50 {ms(raw_times, 0.5)} p95 {ms(raw_times, 0.95)}"
            )

            # Reads while an LA pushes a week of marks (issue 16): the pupil read's latency
            # with nothing else going on, then while 100,000 new marks (ten schools' week, two
            # requests in flight, as aggregators push) go in. Four readers in both runs.
            week = school_days(FIRST_DAY, days + 5)[days:]
            week_bodies = [
                orjson.dumps({"marks": marks})
                for _, marks in week_batches(codes[:10], habits, pupils, week)
            ]
            week_marks = sum(len(orjson.loads(body)["marks"]) for body in week_bodies)

            async def reader(samples: list[float], until: asyncio.Event, count: int) -> None:
                rng = random.Random(len(samples))
                while not until.is_set() and (count == 0 or len(samples) < count):
                    pupil_id = rng.choice(pupil_ids)
                    started = time.perf_counter()
                    response = await http.get(f"/v1/pupils/{pupil_id}/attendance", headers=headers)
                    samples.append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text

            idle: list[float] = []
            never = asyncio.Event()
            await asyncio.gather(*(reader(idle, never, reads) for _ in range(4)))
            during: list[float] = []
            pushed = asyncio.Event()

            async def push_week() -> float:
                started = time.perf_counter()
                lanes = [week_bodies[lane::2] for lane in range(2)]

                async def lane(bodies_of_lane: list[bytes]) -> None:
                    counts = {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0}
                    for body in bodies_of_lane:
                        await post(body, counts)

                await asyncio.gather(*(lane(bodies_of_lane) for bodies_of_lane in lanes))
                pushed.set()
                return time.perf_counter() - started

            push_seconds, *_ = await asyncio.gather(
                push_week(), *(reader(during, pushed, 0) for _ in range(4))
            )
            idle_p99, during_p99 = percentile(idle, 0.99), percentile(during, 0.99)
            print(
                f"a pupil's figures while {week_marks} marks are pushed ({push_seconds:.1f} s, "
                f"2 requests in flight; 4 readers): idle p50 {ms(idle, 0.5)} p99 "
                f"{ms(idle, 0.99)} ({len(idle)} reads)   during p50 {ms(during, 0.5)} p99 "
                f"{ms(during, 0.99)} ({len(during)} reads)   p99 during / idle "
                f"{during_p99 / idle_p99:.2f}x (target <= 2x)"
            )
    finally:
        await raw.close()
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--schools", type=int, default=20)
    parser.add_argument("--pupils", type=int, default=1000)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--reads", type=int, default=300)
    # An LA's schools push concurrently; four in flight over two workers keeps both cores of
    # this machine busy, and the raw baseline gets as many connections.
    parser.add_argument(
        "--concurrency", type=int, default=4, help="Pushes in flight at once (and raw connections)."
    )
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes.")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    arguments = parser.parse_args()
    asyncio.run(
        main(
            arguments.schools,
            arguments.pupils,
            arguments.days,
            arguments.reads,
            arguments.concurrency,
            arguments.workers,
            arguments.database,
        )
    )
