"""Every report at LA scale, beside the hand-written SQL of the same aggregate in the same run.

Builds an LA on a fresh PostgreSQL database (bench/la_scale.py: 20,000 pupils, a year of
session marks, 5,000 cases with their plans, reviews and contacts, referrals and flags, times
`--scale`), serves it with `liaison serve`, signs in an LA-wide manager (`reports:read`), and
for each report in REPORTS:

1. checks the answer is real work: the total row has the figures named in `busy` above zero,
   and the hand SQL's figures equal the report's (printed, not fatal: a mismatch is a finding);
2. warms up, then interleaves `--runs` GETs of the report (JSON, timed to the last byte) with
   `--runs` runs of the hand SQL over asyncpg (one or a few statements, every row fetched);
3. prints p50/p95 of both, the ratio, and PASS or MISS against p95 < 500 ms.

With `--profile`, a report that misses is profiled with py-spy while it is asked for again
(`--profile-runs` times): a flame graph (SVG) and the hottest frames in app/ printed.

A report is one entry of REPORTS: its path and query, the hand SQL (parameters $1 from,
$2 to, $3 the LA) and how its rows line up with the report's.

    .venv/bin/python bench/reports.py [--scale 1.0] [--runs 30] [--keep] [--reuse]
        [--only outcomes,...] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import la_scale
from bench.common import (
    ROOT,
    SERVER,
    drop_databases,
    host_speed,
    liaison,
    percentile,
    recreate_database,
    serve,
)
from bench.report_entries import REPORTS, Entry, Span

DATABASE = "liaison_bench_reports"  # at --scale 1; another scale has its own


def database_for(scale: float) -> str:
    return DATABASE if scale == 1 else f"{DATABASE}_{str(scale).replace('.', '_')}"


PASSWORD = "bench-manager-password"
TARGET_P95 = 0.5


async def database_exists(name: str) -> bool:
    connection = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        found = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
    finally:
        await connection.close()
    return bool(found)


async def prepare(scale: float, reuse: bool, env: dict[str, str], today: date) -> None:
    """Build the LA (or, with `--reuse`, migrate the one kept and fill new columns)."""
    pupils, cases = int(20_000 * scale), int(5_000 * scale)
    name = database_for(scale)
    if reuse and await database_exists(name):
        print(f"reusing {name} (built earlier with --keep); migrating it to head")
        liaison("migrate", env=env)
        connection = await asyncpg.connect(f"{SERVER}/{name}")
        try:
            await la_scale.fill_later_columns(connection)
        finally:
            await connection.close()
        return
    print(f"scale {scale}: {pupils} pupils, {cases} cases, a year of marks to {today}")
    started = time.perf_counter()
    await recreate_database(name)
    liaison("migrate", env=env)
    connection = await asyncpg.connect(f"{SERVER}/{name}", command_timeout=7200)
    try:
        await la_scale.build(connection, pupils, cases, today)
    finally:
        await connection.close()
    print(f"  built in {time.perf_counter() - started:.1f} s")


async def volumes(name: str) -> str:
    connection = await asyncpg.connect(f"{SERVER}/{name}")
    try:
        counts = []
        for table in (
            "pupil",
            "attendance_mark",
            "early_help_case",
            "goal",
            "review",
            "review_score",
            "intervention",
            "referral",
            "attendance_flag",
            "casework_event",
        ):
            n = await connection.fetchval(f"SELECT count(*) FROM {table}")
            counts.append(f"{table} {n}")
    finally:
        await connection.close()
    return ", ".join(counts)


def manager(env: dict[str, str]) -> None:
    liaison(
        "create-staff",
        "--username",
        "manager@bench.example",
        "--name",
        "Bench manager",
        "--role",
        "manager",
        "--la",
        la_scale.LA,
        env={**env, "LIAISON_STAFF_PASSWORD": PASSWORD},
    )


async def manager_headers(http: httpx.AsyncClient) -> dict[str, str]:
    for _ in range(300):
        try:
            if (await http.get("/livez")).status_code == 200:
                break
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    answer = await http.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": "manager@bench.example",
            "password": PASSWORD,
        },
    )
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def get_report(
    http: httpx.AsyncClient, headers: dict[str, str], entry: Entry, span: Span
) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    response = await http.get(entry.path, params=entry.params(span), headers=headers)
    body = response.content
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{entry.name}: {response.status_code} {body[:500]!r}")
    return elapsed, json.loads(body)


async def run_hand_sql(
    connection: asyncpg.Connection, entry: Entry, span: Span
) -> tuple[float, list[list[asyncpg.Record]]]:
    started = time.perf_counter()
    arguments = entry.arguments(span)
    results = [
        await connection.fetch(sql, *arguments[: max(map(int, re.findall(r"\$(\d+)", sql)))])
        for sql in entry.hand_sql
    ]
    return time.perf_counter() - started, results


def check(entry: Entry, report: dict[str, Any], hand: list[list[asyncpg.Record]]) -> list[str]:
    """What says this run is real work, and what the hand SQL disagrees with."""
    notes = []
    total = report["rows"][0] if report["rows"] else {}
    idle = [name for name in entry.busy if not total.get(name)]
    if idle:
        notes.append(f"trivial: total row has {', '.join(idle)} at zero or missing")
    notes += entry.compare(report["rows"], hand)
    return notes


@dataclass
class Result:
    name: str
    rows: int
    app: list[float]
    sql: list[float]
    notes: list[str]

    @property
    def passed(self) -> bool:
        return percentile(self.app, 0.95) < TARGET_P95

    def line(self) -> str:
        a50, a95 = statistics.median(self.app), percentile(self.app, 0.95)
        s50, s95 = statistics.median(self.sql), percentile(self.sql, 0.95)
        return (
            f"{self.name:20s} rows {self.rows:5d}  app p50 {a50 * 1000:7.1f} p95 "
            f"{a95 * 1000:7.1f} ms | SQL p50 {s50 * 1000:7.1f} p95 {s95 * 1000:7.1f} ms | "
            f"p95 ratio {a95 / s95:5.2f}x  {'PASS' if self.passed else 'MISS'}"
        )


async def bench_one(
    http: httpx.AsyncClient,
    connection: asyncpg.Connection,
    entry: Entry,
    span: Span,
    runs: int,
) -> Result:
    headers = await manager_headers(http)  # tokens last 15 minutes: one per report
    _, report = await get_report(http, headers, entry, span)
    _, hand = await run_hand_sql(connection, entry, span)
    notes = check(entry, report, hand)
    print(f"{entry.name}: {len(report['rows'])} rows; total row {short(report['rows'])}")
    for note in notes:
        print(f"  ! {note}")
    for _ in range(3):  # warm up
        await get_report(http, headers, entry, span)
        await run_hand_sql(connection, entry, span)
    app, sql = [], []
    for _ in range(runs):
        elapsed, _ = await get_report(http, headers, entry, span)
        app.append(elapsed)
        elapsed, _ = await run_hand_sql(connection, entry, span)
        sql.append(elapsed)
    result = Result(entry.name, len(report["rows"]), app, sql, notes)
    print("  " + result.line(), flush=True)
    return result


def short(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(none)"
    shown = {k: v for k, v in rows[0].items() if v not in (None, 0, "")}
    text = json.dumps(shown)
    return text if len(text) < 400 else text[:400] + "..."


async def profile(http: httpx.AsyncClient, pid: int, entry: Entry, span: Span, runs: int) -> str:
    """py-spy on the server while the report is asked for `runs` times: the flame graph's
    path and the frames in app/ that most samples were in."""
    spy = ROOT / ".venv/bin/py-spy"
    if not spy.exists():
        return "  (py-spy is not installed: .venv/bin/pip install py-spy)"
    headers = await manager_headers(http)
    folder = Path(tempfile.gettempdir())
    svg, raw = (
        folder / f"bench_reports_{entry.name}.svg",
        folder / f"bench_reports_{entry.name}.txt",
    )
    spies = [
        subprocess.Popen(
            [
                str(spy),
                "record",
                "--pid",
                str(pid),
                "--idle",
                "--rate",
                "200",
                "--format",
                fmt,
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fmt, out in (("flamegraph", svg), ("raw", raw))
    ]
    await asyncio.sleep(1.0)
    for _ in range(runs):
        await get_report(http, headers, entry, span)
    for spy in spies:
        spy.send_signal(2)  # SIGINT: py-spy writes its output and stops
        spy.wait(timeout=60)
    return f"{svg}\n" + hottest(raw)


def hottest(raw: Path, top: int = 10) -> str:
    """From py-spy's collapsed stacks of the server's main thread (greenlets included; the
    idle worker threads left out): the share of samples the event loop waited (on the
    database, or for the next request: the statement log says which), the app/ frames most
    busy samples passed through, and the frames most of them ended in."""
    if not raw.exists():
        return "  (py-spy wrote nothing: is ptrace allowed?)"
    total = idle = 0
    inclusive: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not count.isdigit() or frames[0].startswith("Thread._bootstrap"):
            continue
        n = int(count)
        total += n
        if frames[-1].startswith(("Runner.run", "select", "EpollSelector")):
            idle += n
            continue
        leaves[frames[-1]] += n
        for frame in set(frames):
            if "app/" in frame and "app/cli.py" not in frame and "middleware" not in frame:
                inclusive[frame] += n
    busy = max(total - idle, 1)
    lines = [
        f"  {total} samples of the main thread: {idle / max(total, 1):.0%} waiting in the "
        f"event loop (on the database or between requests), {busy / max(total, 1):.0%} "
        "in Python; of those:"
    ]
    lines += [f"  {n / busy:5.1%}  {frame}" for frame, n in inclusive.most_common(top)]
    lines.append("  where they ended:")
    lines += [f"  {n / busy:5.1%}  {frame}" for frame, n in leaves.most_common(top)]
    return "\n".join(lines)


POSTGRES_LOG = Path("/var/log/postgresql/postgresql-15-main.log")


async def statements(http: httpx.AsyncClient, entry: Entry, span: Span, top: int = 8) -> str:
    """One GET with every statement's duration logged by PostgreSQL (the database's
    `log_min_duration_statement` is 0 while --profile runs): the time the report spent in
    the database, and its slowest statements."""
    if not POSTGRES_LOG.exists():
        return "  (no PostgreSQL log to read)"
    headers = await manager_headers(http)
    offset = POSTGRES_LOG.stat().st_size
    elapsed, _ = await get_report(http, headers, entry, span)
    await asyncio.sleep(0.5)
    with POSTGRES_LOG.open(errors="replace") as log:
        log.seek(offset)
        lines = log.read().splitlines()
    found = []
    for line in lines:
        match = re.search(r"duration: ([0-9.]+) ms\s+(?:execute|statement)[^:]*: (.*)", line)
        if match:
            found.append((float(match[1]), " ".join(match[2].split())))
    spent = sum(ms for ms, _ in found)
    out = [
        f"  one GET: {elapsed * 1000:.0f} ms, of which {len(found)} statements took "
        f"{spent:.0f} ms in PostgreSQL; the slowest:"
    ]
    out += [f"  {ms:8.1f} ms  {sql[:160]}" for ms, sql in sorted(found, reverse=True)[:top]]
    return "\n".join(out)


async def log_statements(name: str, on: bool) -> None:
    connection = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        if on:
            await connection.execute(f"ALTER DATABASE {name} SET log_min_duration_statement = 0")
        else:
            await connection.execute(f"ALTER DATABASE {name} RESET log_min_duration_statement")
    finally:
        await connection.close()


async def main(arguments: argparse.Namespace) -> list[Result]:
    today = la_scale_today()
    span = Span(today - timedelta(days=364), today, la_scale.LA)
    name = database_for(arguments.scale)
    url = f"{SERVER.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    env = {
        **os.environ,
        "LIAISON_DATABASE_URL": url,
        "LIAISON_ENVIRONMENT": "development",
        "LIAISON_LOG_LEVEL": "WARNING",
    }
    print(f"{host_speed()}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    await prepare(arguments.scale, arguments.reuse, env, today)
    print(f"  {await volumes(name)}")
    with contextlib.suppress(subprocess.CalledProcessError):
        manager(env)  # fails when kept from an earlier run
    entries = [e for e in REPORTS if not arguments.only or e.name in arguments.only]
    print(f"period {span.start} to {span.end}, LA {span.la}; {arguments.runs} runs each")
    results: list[Result] = []
    server, base = serve(env, 1)
    # The settings the app's own connections run with (app/db.py): no JIT.
    connection = await asyncpg.connect(f"{SERVER}/{name}", server_settings={"jit": "off"})
    try:
        async with httpx.AsyncClient(base_url=base, timeout=300) as http:
            for entry in entries:
                results.append(await bench_one(http, connection, entry, span, arguments.runs))
    finally:
        await connection.close()
        server.terminate()
        server.wait(timeout=10)
    chosen = [
        entry
        for entry, result in zip(entries, results, strict=True)
        if arguments.profile and (not result.passed or entry.name in arguments.profile_also)
    ]
    if chosen:
        # A server of its own, whose connections log every statement's duration.
        await log_statements(name, True)
        server, base = serve(env, 1)
        try:
            async with httpx.AsyncClient(base_url=base, timeout=300) as http:
                for entry in chosen:
                    await get_report(http, await manager_headers(http), entry, span)  # warm up
                    print(f"profile of {entry.name} ({arguments.profile_runs} GETs):")
                    print(await profile(http, server.pid, entry, span, arguments.profile_runs))
                    print(await statements(http, entry, span))
        finally:
            server.terminate()
            server.wait(timeout=10)
            await log_statements(name, False)
    print(f"\nsummary ({arguments.runs} runs each, target p95 < {TARGET_P95 * 1000:.0f} ms):")
    for result in results:
        print("  " + result.line())
        for note in result.notes:
            print(f"    ! {note}")
    return results


def la_scale_today() -> date:
    from app.services.school_calendar import school_today

    return school_today()


def _names(text: str) -> set[str]:
    return set(text.split(","))


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--only", type=_names, default=set(), help="Report names, comma-separated.")
    parser.add_argument("--keep", action="store_true", help="Keep the database built.")
    parser.add_argument(
        "--reuse", action="store_true", help="Use the database kept by --keep (implies --keep)."
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the reports that miss.")
    parser.add_argument(
        "--profile-also", type=_names, default=set(), help="Profile these too, pass or miss."
    )
    parser.add_argument("--profile-runs", type=int, default=10)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    try:
        results = asyncio.run(main(arguments))
    finally:
        if not (arguments.keep or arguments.reuse):
            asyncio.run(drop_databases(database_for(arguments.scale)))
    sys.exit(0 if all(r.passed for r in results) else 1)
