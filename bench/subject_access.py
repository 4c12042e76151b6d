"""Subject access for a child with a full school career: Liaison over HTTP beside raw asyncpg
reading the same rows, and the server's memory growth while it streams.

Builds, on a fresh PostgreSQL database, one school with the child, a sibling and
`--others` more pupils, each with seven academic years of session marks (2019/20 to
2025/26: two sessions on EVERY calendar day, weekends marked `#`, so 5,114 marks per
pupil; the issue's "about 2,700 a year" cannot fit in one pupil's two sessions a day).
Marks, the roster, referrals, cases and their records go in through the API (not timed);
the child has three referrals accepted into three cases (the sibling on each too), each
with goals (the family's, the child's, the sibling's), reviews scoring each, contacts
with written records and action plans, measures, a timetable and signposts. Then
`--audit-events` audit events about the child are added with asyncpg (reading the child
through the API that many times would take minutes and write the same rows).

Measured: `--exports` exports as JSON and as a zip, each timed to the last byte, p50/p95;
beside them the same rows read by raw asyncpg (one SELECT per record type, in one
REPEATABLE READ read-only transaction, every row fetched); and the server's resident memory
before an export and at its peak during one (VmHWM, reset first), per format.

    .venv/bin/python bench/subject_access.py [--others 40] [--exports 30]
        [--audit-events 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
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

DATABASE = "liaison_bench_sar"
LA = "202"
SCHOOL = "700100"
FIRST_DAY, LAST_DAY = date(2019, 8, 1), date(2026, 7, 31)  # seven academic years
PASSWORD = "bench-password-long-enough"


def mark_code(day: date, session: str) -> str:
    if day.weekday() >= 5:
        return "#"
    n = day.toordinal()
    if n % 13 == 0:
        return "N"
    if n % 29 == 0:
        return "I"
    if n % 17 == 0 and session == "AM":
        return "L"
    return "/" if session == "AM" else "\\"


def career(mis_id: str) -> list[dict[str, Any]]:
    marks = []
    day = FIRST_DAY
    while day <= LAST_DAY:
        for session in ("AM", "PM"):
            marks.append(
                {
                    "school_code": SCHOOL,
                    "mis_id": mis_id,
                    "date": day.isoformat(),
                    "session": session,
                    "code": mark_code(day, session),
                }
            )
        day += timedelta(days=1)
    return marks


# --- the raw baseline: the same rows, one SELECT per record type --------------------------

RAW = {
    "pupils": "SELECT * FROM pupil WHERE id = ANY($1) ORDER BY id",
    "identity_changes": "SELECT * FROM pupil_identity_change WHERE pupil_id = ANY($1) "
    "ORDER BY pupil_id, id",
    "attendance_marks": "SELECT * FROM attendance_mark WHERE pupil_id = ANY($1) "
    "ORDER BY pupil_id, date, session",
    "attendance_codes": "SELECT * FROM attendance_code WHERE jurisdiction IN (SELECT "
    "jurisdiction FROM school WHERE id IN (SELECT school_id FROM attendance_mark WHERE "
    "pupil_id = ANY($1))) AND code IN (SELECT DISTINCT statutory_code FROM attendance_mark "
    "WHERE pupil_id = ANY($1)) ORDER BY jurisdiction, code, effective_from",
    "school_attendance_codes": "SELECT * FROM school_attendance_code WHERE school_id IN "
    "(SELECT school_id FROM attendance_mark WHERE pupil_id = ANY($1)) "
    "ORDER BY school_id, display_code",
    "attendance_weeks": "SELECT * FROM attendance_week WHERE pupil_id = ANY($1) "
    "ORDER BY pupil_id, week_start",
    "attendance_terms": "SELECT pupil_id, date, category, late FROM attendance_mark "
    "WHERE pupil_id = ANY($1) ORDER BY pupil_id",
    "attendance_flags": "SELECT * FROM attendance_flag WHERE pupil_id = ANY($1) ORDER BY id",
    "attendance_flag_events": "SELECT * FROM attendance_flag_event WHERE flag_id IN (SELECT "
    "id FROM attendance_flag WHERE pupil_id = ANY($1)) ORDER BY flag_id, id",
    "referrals": "SELECT * FROM referral WHERE id = ANY($2) ORDER BY id",
    "referral_children": "SELECT * FROM referral_child WHERE referral_id = ANY($2) "
    "AND pupil_id = ANY($1) ORDER BY referral_id, position",
    "cases": "SELECT * FROM early_help_case WHERE id = ANY($3) ORDER BY id",
    "case_children": "SELECT * FROM case_child WHERE case_id = ANY($3) AND pupil_id = ANY($1) "
    "ORDER BY case_id, position",
    "goals": "SELECT * FROM goal WHERE case_id = ANY($3) AND (child_id IS NULL OR child_id = "
    "ANY($1)) ORDER BY case_id, id",
    "reviews": "SELECT * FROM review WHERE case_id = ANY($3) ORDER BY case_id, held_on, id",
    "review_scores": "SELECT * FROM review_score WHERE review_id IN (SELECT id FROM review "
    "WHERE case_id = ANY($3)) AND goal_id IN (SELECT id FROM goal WHERE case_id = ANY($3) AND "
    "(child_id IS NULL OR child_id = ANY($1))) ORDER BY review_id, goal_id",
    "interventions": "SELECT * FROM intervention WHERE case_id = ANY($3) "
    "ORDER BY case_id, occurred_at",
    "measures": "SELECT * FROM measure WHERE case_id = ANY($3) AND child_id = ANY($1) "
    "ORDER BY case_id, measured_on, id",
    "timetables": "SELECT * FROM reintegration_timetable WHERE case_id = ANY($3) AND "
    "child_id = ANY($1) ORDER BY case_id, child_id",
    "signposts": "SELECT * FROM signpost WHERE case_id = ANY($3) AND (child_id IS NULL OR "
    "child_id = ANY($1)) ORDER BY case_id, id",
    "chronology": "SELECT * FROM casework_event WHERE case_id = ANY($3) OR referral_id = "
    "ANY($2) ORDER BY occurred_at, id",
    "audit_events": "SELECT l.pupil_id, e.* FROM audit_event e JOIN audit_event_pupil l ON "
    "l.event_id = e.id WHERE l.pupil_id = ANY($1) ORDER BY e.id, l.pupil_id",
}


# Every statement takes the same three arrays (pupils, referrals, cases), typed here.
ARGUMENTS = "WITH arguments AS (SELECT $1::uuid[], $2::uuid[], $3::uuid[]) "


async def raw_export(connection: asyncpg.Connection, args: list[Any]) -> int:
    rows = 0
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        for sql in RAW.values():
            rows += len(await connection.fetch(ARGUMENTS + sql, *args))
    return rows


# --- the server's memory -------------------------------------------------------------------


def status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+).
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


# --- building the child's record ---------------------------------------------------------


async def token(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    answer = await http.post(
        "/oauth/token",
        data={"grant_type": "password", "username": username, "password": PASSWORD},
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text[:500]
    return response.json()


async def build_record(
    http: httpx.AsyncClient,
    mis: dict[str, str],
    hub: dict[str, str],
    directory: dict[str, str],
    practitioner: dict[str, str],
    manager: dict[str, str],
    others: int,
) -> tuple[str, str]:
    roster = [
        {"mis_id": f"P{n}", "given_name": f"Given{n}", "family_name": "Bench" if n < 2 else
         f"Family{n}", "date_of_birth": "2014-03-14"}
        for n in range(others + 2)
    ]  # fmt: skip
    school_id = (await ok(await http.get("/v1/schools", headers=mis)))["items"][0]["id"]
    await ok(
        await http.put(f"/v1/schools/{school_id}/pupils", json={"pupils": roster}, headers=mis)
    )
    for n in range(others + 2):
        body = orjson.dumps({"marks": career(f"P{n}")})
        pushed = await ok(
            await http.post(
                "/v1/attendance/marks",
                content=body,
                headers={**mis, "Content-Type": "application/json"},
            )
        )
        assert not pushed["rejected"], pushed["rejected"][:3]
    listed = await ok(await http.get("/v1/pupils", params={"limit": 200}, headers=mis))
    pupil = {p["mis_id"]: p["id"] for p in listed["items"]}
    child, sibling = pupil["P0"], pupil["P1"]
    service = await ok(
        await http.post(
            "/v1/directory/services",
            json={"name": "Bench parenting group", "description": "Weekly.", "status": "active"},
            headers=directory,
        ),
        201,
    )
    consent = {"given": True, "given_by": "Sam Bench (parent)", "date": "2025-09-01"}
    for n in range(3):
        referral = await ok(
            await http.post(
                "/v1/referrals",
                json={
                    "external_reference": f"BENCH-{uuid.uuid4().hex[:8]}",
                    "children": [{"pupil_id": child}, {"pupil_id": sibling}],
                    "family": [{"name": "Sam Bench", "relationship": "parent"}],
                    "concerns": ["attendance"],
                    "level_of_need": "targeted_early_help",
                    "consent": consent,
                    "urgency": "routine",
                    "summary": f"Referral {n}: attendance has fallen.",
                },
                headers=hub,
            ),
            201,
        )
        decided = await ok(
            await http.post(
                f"/v1/referrals/{referral['id']}/decision",
                json={"decision": "accept", "reason": "Meets the threshold."},
                headers={**practitioner, "If-Match": "*"},
            )
        )
        case = decided["decision"]["case_id"]
        await case_records(http, practitioner, case, child, sibling, service["id"])
        if n < 2:
            await close(http, practitioner, manager, case)
    return child, sibling


async def case_records(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    case: str,
    child: str,
    sibling: str,
    service_id: str,
) -> None:
    url = f"/v1/cases/{case}"

    async def add(what: str, body: dict[str, Any]) -> dict[str, Any]:
        made: dict[str, Any] = await ok(
            await http.post(f"{url}/{what}", json=body, headers=headers), 201
        )
        return made

    goals = []
    for title, child_id in (("Routine", None), ("Mornings", None), ("On time", child),
                            ("Sibling club", sibling)):  # fmt: skip
        body: dict[str, Any] = {"title": title, "outcome_category": "school_attendance_managed"}
        if child_id:
            body["child_id"] = child_id
        goals.append((await add("goals", body))["id"])
    today = datetime.now(UTC).date()
    for n in range(6):
        await add(
            "reviews",
            {
                "held_on": (today - timedelta(days=60 - n * 10)).isoformat(),
                "worries": "Mornings are hard. " * 5,
                "working_well": "The walking bus. " * 5,
                "next_steps": "Keep the chart going. " * 5,
                "scores": [
                    {"goal_id": g, "score": min(10, 2 + n),
                     "respondent_scores": {"parent": 3, "child": 4, "school": 5}}
                    for g in goals
                ],
            },
        )  # fmt: skip
    for n in range(20):
        await add(
            "interventions",
            {
                "type": "one_to_one_session",
                "occurred_at": (datetime.now(UTC) - timedelta(days=50 - n)).isoformat(),
                "minutes": 45,
                "location": "school",
                "participants": ["Learning mentor"],
                "child_ids": [child] if n % 3 else ([sibling] if n % 2 else []),
                "child_seen": True,
                "record": "Talked through the week, agreed the morning plan. " * 10,
                "actions": [{"action": "Morning chart", "owner": "Mentor"}] * 3,
            },
        )
    for n in range(10):
        await add(
            "measures",
            {"child_id": child if n % 2 else sibling, "instrument": "reading_age",
             "score": 7 + n / 10, "measured_on": (today - timedelta(days=40 - n)).isoformat()},
        )  # fmt: skip
    steps = {"steps": [{"starts_on": today.isoformat(), "planned_hours": 15}]}
    await ok(await http.put(f"{url}/timetables/{child}", json=steps, headers=headers))
    for child_id in (child, sibling, None):
        body = {"service_id": service_id, "reason": "Parenting support"}
        if child_id:
            body["child_id"] = child_id
        await add("signposts", body)


async def close(
    http: httpx.AsyncClient, headers: dict[str, str], manager: dict[str, str], case: str
) -> None:
    """Closed, with the manager's approval, so that the next referral opens a new case."""
    closed = await http.post(
        f"/v1/cases/{case}/closure",
        json={"reason": "needs_met", "note": "Attendance back up."},
        headers={**headers, "If-Match": "*"},
    )
    assert closed.status_code == 200, closed.text
    if closed.json()["status"] != "closed":
        approved = await http.post(
            f"/v1/cases/{case}/closure/approval",
            json={"approve": True, "note": "Agreed."},
            headers={**manager, "If-Match": "*"},
        )
        assert approved.status_code == 200 and approved.json()["status"] == "closed", approved.text


async def add_audit_events(connection: asyncpg.Connection, child: str, count: int) -> None:
    """`count` reads of the child by staff, as the API records them."""
    school_id = await connection.fetchval("SELECT school_id FROM pupil WHERE id = $1", child)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        (uuid.uuid4(), now - timedelta(minutes=count - n), f"staff:{uuid.UUID(int=n % 7 + 1)}",
         None, "pupil.read", "pupil", child, uuid.uuid4().hex, "10.0.0.1", "{}", LA, school_id)
        for n in range(count)
    ]  # fmt: skip
    await connection.copy_records_to_table(
        "audit_event",
        records=rows,
        columns=[
            "id", "occurred_at", "actor", "client_id", "action", "resource_type",
            "resource_id", "request_id", "client_address", "details", "la_code", "school_id",
        ],
    )  # fmt: skip
    await connection.copy_records_to_table(
        "audit_event_pupil",
        records=[(r[0], uuid.UUID(child), school_id) for r in rows],
        columns=["event_id", "pupil_id", "school_id"],
    )


# --- the run -----------------------------------------------------------------------------


def ms(samples: list[float], q: float) -> float:
    return percentile(samples, q) * 1000


async def main(others: int, exports: int, audit_events: int) -> None:
    print(host_speed())
    await recreate_database(DATABASE)
    url = f"{SERVER.replace('postgresql://', 'postgresql+asyncpg://')}/{DATABASE}"
    env = {
        **os.environ,
        "LIAISON_DATABASE_URL": url,
        "LIAISON_ENVIRONMENT": "development",
        "LIAISON_LOG_LEVEL": "WARNING",
        "LIAISON_STAFF_PASSWORD": PASSWORD,
    }
    liaison("migrate", env=env)
    liaison("create-school", "--code", SCHOOL, "--name", "Bench school", "--la", LA, env=env)
    mis_credentials = json.loads(
        liaison("create-client", "--name", "bench MIS", "--school", SCHOOL,
                "--scope", "pupils:write pupils:read attendance:write attendance:read", env=env)
    )  # fmt: skip
    hub_credentials = json.loads(
        liaison("create-client", "--name", "bench hub", "--la", LA,
                "--scope", "referrals:read referrals:write", env=env)
    )  # fmt: skip
    directory_credentials = json.loads(
        liaison("create-client", "--name", "bench directory", "--la", LA,
                "--scope", "directory:write", env=env)
    )  # fmt: skip
    for role in ("practitioner", "manager", "dpo"):
        liaison("create-staff", "--username", f"{role}@bench.example", "--name", role,
                "--role", role, "--la", LA, env=env)  # fmt: skip
    server, base = serve(env, 1)
    raw = await asyncpg.connect(f"{SERVER}/{DATABASE}")
    try:
        async with httpx.AsyncClient(base_url=base, timeout=600) as http:
            mis = await client_headers(http, mis_credentials)
            hub = await client_headers(http, hub_credentials)
            directory = await client_headers(http, directory_credentials)
            practitioner = await token(http, "practitioner@bench.example")
            manager = await token(http, "manager@bench.example")
            dpo = await token(http, "dpo@bench.example")
            started = time.perf_counter()
            child, _sibling = await build_record(
                http, mis, hub, directory, practitioner, manager, others
            )
            await add_audit_events(raw, child, audit_events)
            await raw.execute("ANALYZE")
            print(f"built in {time.perf_counter() - started:.0f} s (not timed below)")

            route = f"/v1/pupils/{child}/subject-access"
            pid = server.pid
            cold = status_mb(pid, "VmRSS")
            reset_peak(pid)
            first = await ok(await http.get(route, headers=dpo))
            print(
                f"the first export (cold): server RSS {cold:.0f} MB before, peak "
                f"{status_mb(pid, 'VmHWM'):.0f} MB during (growth "
                f"{status_mb(pid, 'VmHWM') - cold:.1f} MB)"
            )
            counts = {k: len(v) for k, v in first.items() if isinstance(v, list)}
            total = sum(counts.values())
            print(
                f"the child's export: {total} rows "
                + ", ".join(f"{k} {v}" for k, v in counts.items() if v)
            )
            pupils = [uuid.UUID(p) for p in first["subject"]["pupil_ids"]]
            referrals = [uuid.UUID(r["id"]) for r in first["referrals"]]
            cases = [uuid.UUID(c["id"]) for c in first["cases"]]
            marks_held = await raw.fetchval("SELECT count(*) FROM attendance_mark")
            events_held = await raw.fetchval("SELECT count(*) FROM audit_event")
            print(f"database: {marks_held} marks, {events_held} audit events")

            results: dict[str, tuple[list[float], int, float, float]] = {}
            for label, accept in (("JSON", "application/json"), ("zip", "application/zip")):
                headers = {**dpo, "Accept": accept}
                await http.get(route, headers=headers)  # warm
                before = status_mb(pid, "VmRSS")
                reset_peak(pid)
                times, size = [], 0
                for _ in range(exports):
                    started = time.perf_counter()
                    size = 0
                    async with http.stream("GET", route, headers=headers) as response:
                        assert response.status_code == 200
                        async for chunk in response.aiter_bytes():
                            size += len(chunk)
                    times.append(time.perf_counter() - started)
                peak = status_mb(pid, "VmHWM")
                results[label] = (times, size, before, peak)
            raw_times = []
            for _ in range(exports):
                started = time.perf_counter()
                raw_rows = await raw_export(raw, [pupils, referrals, cases])
                raw_times.append(time.perf_counter() - started)
            raw_p50, raw_p95 = ms(raw_times, 0.5), ms(raw_times, 0.95)
            print(
                f"raw asyncpg, the same {len(RAW)} SELECTs in one REPEATABLE READ read-only "
                f"transaction ({raw_rows} rows incl. marks read twice for terms): "
                f"p50 {raw_p50:.1f} ms p95 {raw_p95:.1f} ms"
            )
            for label, (times, size, before, peak) in results.items():
                p50, p95 = ms(times, 0.5), ms(times, 0.95)
                print(
                    f"{label:4s} export over HTTP ({exports} exports, {size / 1e6:.2f} MB each): "
                    f"p50 {p50:.1f} ms p95 {p95:.1f} ms   ratio p50 {p50 / raw_p50:.1f}x raw   "
                    f"server RSS {before:.0f} MB before, peak {peak:.0f} MB during "
                    f"(growth {peak - before:.1f} MB)"
                )
    finally:
        await raw.close()
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--others", type=int, default=40, help="Other pupils, same careers.")
    parser.add_argument("--exports", type=int, default=30, help="Exports timed per format.")
    parser.add_argument("--audit-events", type=int, default=5000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.others, arguments.exports, arguments.audit_events))
