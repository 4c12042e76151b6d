"""The retention run: exactly what is past its period goes (deleted, or de-identified so the
reports' figures stay the same), nothing newer and nothing held; a dry run changes nothing;
every batch is audited; two runs at once share the work; a crash is finished by a rerun;
the audit trail stays append-only to everything but the run's permit."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from app.cli import cli
from app.db import create_engine, create_session_factory
from app.models.attendance import AttendanceMark, AttendanceWeek
from app.models.audit import AuditEvent
from app.models.case import Case, CaseChild
from app.models.intervention import Intervention
from app.models.pupil import Pupil
from app.models.referral import Referral
from app.services.retention import Hooks, TypeSummary
from app.services.retention_schedule import Period, ScheduleError, ScheduleFile, build, load
from tests.builders.api import assert_problem, expect, items, read_with_etag
from tests.builders.casework import (
    Casework,
    add_goal,
    add_review,
    add_to_case,
    casework,
    hub,
    open_case,
    open_case_since,
    referral_body,
    request_closure,
)
from tests.builders.clock import days_ago, today
from tests.builders.holds import count, disposed, due, held, lift_hold, place_hold, retain
from tests.builders.schools import AUTUMN_2025, push_marks, sessions
from tests.conftest import DatabaseUnderTest, World, settings_for

OLD = ["/", "\\", "N", "/"]  # four sessions from 1 September 2025
RECENT_START = days_ago(21)
RECENT = ["/", "/"]


def as_of_marks_kept_from(kept_from: date) -> date:
    """A day on which the six-year cutoff of marks is `kept_from`."""
    return kept_from.replace(year=kept_from.year + 6)


# Marks before this day are past their period on MARKS_DAY; recent marks are not.
KEPT_FROM = days_ago(60)
MARKS_DAY = as_of_marks_kept_from(KEPT_FROM)
# A day on which anything made today is past even a 25-year period.
FAR = today().replace(year=today().year + 26)


@pytest.fixture
async def work(world: World, client: httpx.AsyncClient) -> Casework:
    return await casework(world, client, pupils=4)


@pytest.fixture
async def dpo(world: World, work: Casework) -> dict[str, str]:
    return await world.headers(await world.staff("dpo", schools=[work.school]))


async def old_and_recent_marks(client: httpx.AsyncClient, work: Casework, *mis_ids: str) -> None:
    marks = []
    for mis_id in mis_ids:
        marks += work.setup.marks(mis_id, OLD, start=AUTUMN_2025)
        marks += [
            work.setup.mark(mis_id, day, session, code)
            for day, session, code in sessions(RECENT_START, RECENT)
        ]
    await push_marks(client, work.setup, marks)


def marks_of(work: Casework, mis_id: str) -> Any:
    return AttendanceMark.pupil_id == uuid.UUID(work.pupil(mis_id))


# --- the schedule ---------------------------------------------------------------------------


def test_schedule_covers_every_record_type_in_every_jurisdiction() -> None:
    schedule = load(None)
    marks = {r.jurisdiction: r.period for r in schedule.for_type("attendance_mark")}
    assert marks == {j: Period(years=6) for j in ("england", "wales", "scotland")}
    assert {r.period for r in schedule.for_type("early_help_case")} == {Period(years=25)}
    assert [r.jurisdiction for r in schedule.for_type("audit_event")] == ["all"]
    assert Period(years=6).cutoff(date(2032, 2, 29)) == date(2026, 2, 28)


def test_schedule_file_overrides_and_is_checked(tmp_path: Path) -> None:
    good = tmp_path / "schedule.json"
    good.write_text(
        json.dumps({"periods": {"attendance_mark": {"all": {"years": 7}, "wales": {"years": 8}}}})
    )
    periods = {r.jurisdiction: r.period for r in load(str(good)).for_type("attendance_mark")}
    assert periods == {
        "england": Period(years=7),
        "wales": Period(years=8),
        "scotland": Period(years=7),
    }
    refusals = {
        "short": {"periods": {"attendance_mark": {"england": {"years": 5}}}},
        "unknown": {"periods": {"homework": {"all": {"years": 1}}}},
        "la-wide": {"periods": {"audit_event": {"wales": {"years": 1}}}},
        "shape": {"periods": {"attendance_mark": {"england": {"months": 3}}}},
    }
    for name, content in refusals.items():
        bad = tmp_path / f"{name}.json"
        bad.write_text(json.dumps(content))
        with pytest.raises(ScheduleError):
            load(str(bad))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ScheduleError, match="not JSON"):
        load(str(broken))
    with pytest.raises(ScheduleError, match="cannot read"):
        load(str(tmp_path / "missing.json"))
    assert build(ScheduleFile()).rules == load(None).rules


# --- attendance -----------------------------------------------------------------------------


async def test_marks_past_their_period_go_and_newer_and_held_stay(
    client: httpx.AsyncClient, fresh_app: FastAPI, work: Casework, dpo: dict[str, str]
) -> None:
    await old_and_recent_marks(client, work, "P0", "P1")
    hold = await place_hold(client, dpo, "child", pupil_id=work.pupil("P1"))

    summary = await retain(fresh_app, MARKS_DAY, only=["attendance_mark", "attendance_week"])

    assert disposed(summary, "attendance_mark") == len(OLD)
    assert held(summary, "attendance_mark") == len(OLD)
    assert await count(fresh_app, AttendanceMark, marks_of(work, "P0")) == len(RECENT)
    assert await count(fresh_app, AttendanceMark, marks_of(work, "P1")) == len(OLD + RECENT)
    p0 = AttendanceWeek.pupil_id == uuid.UUID(work.pupil("P0"))
    assert await count(fresh_app, AttendanceWeek, p0, AttendanceWeek.week_start < KEPT_FROM) == 0
    assert await count(fresh_app, AttendanceWeek, p0) >= 1

    # The figures say which period's detail is gone.
    figures = expect(
        await client.get(
            f"/v1/pupils/{work.pupil('P0')}/attendance",
            params={"from": "2025-09-01", "to": today().isoformat()},
            headers=work.headers,
        )
    )
    assert figures["detail_disposed_before"] == KEPT_FROM.isoformat()
    assert figures["possible_sessions"] == len(RECENT)
    recent = expect(
        await client.get(
            f"/v1/pupils/{work.pupil('P0')}/attendance",
            params={"from": KEPT_FROM.isoformat(), "to": today().isoformat()},
            headers=work.headers,
        )
    )
    assert recent["detail_disposed_before"] is None
    school = expect(
        await client.get(
            f"/v1/schools/{work.school['id']}/attendance",
            params={"from": "2025-09-01", "to": today().isoformat()},
            headers=work.headers,
        )
    )
    assert school["detail_disposed_before"] == KEPT_FROM.isoformat()

    # Lifted, the next run disposes of what the hold kept.
    await lift_hold(client, dpo, hold["id"])
    again = await retain(fresh_app, MARKS_DAY, only=["attendance_mark"])
    assert disposed(again, "attendance_mark") == len(OLD)
    assert await count(fresh_app, AttendanceMark, marks_of(work, "P1")) == len(RECENT)


async def test_dry_run_counts_and_changes_nothing(
    client: httpx.AsyncClient, fresh_app: FastAPI, work: Casework
) -> None:
    await old_and_recent_marks(client, work, "P0", "P1")
    before = await count(fresh_app, AttendanceMark)
    events = await count(fresh_app, AuditEvent)

    summary = await retain(fresh_app, MARKS_DAY, dry_run=True)

    assert due(summary, "attendance_mark") == 2 * len(OLD)
    assert summary.disposed == 0
    assert await count(fresh_app, AttendanceMark) == before
    assert await count(fresh_app, AuditEvent) == events


async def test_each_batch_is_audited_without_content(
    client: httpx.AsyncClient, fresh_app: FastAPI, work: Casework, dpo: dict[str, str]
) -> None:
    await old_and_recent_marks(client, work, "P0", "P1")
    await retain(fresh_app, MARKS_DAY, batch_size=1, only=["attendance_mark"])

    found = await items(client, "/v1/audit-events", dpo, action="retention.dispose")
    assert len(found) == 2
    for event in found:
        assert event["actor"] == f"system:{uuid.UUID(int=0)}"
        assert event["resource_type"] == "attendance_mark"
        assert event["details"]["count"] == len(OLD)
        assert event["details"]["cutoff"] == KEPT_FROM.isoformat()
        assert event["details"]["jurisdiction"] == "england"
        assert "Child0" not in json.dumps(event)
    named = sorted(p for e in found for p in e["pupil_ids"])
    assert named == sorted([work.pupil("P0"), work.pupil("P1")])


# --- casework -------------------------------------------------------------------------------


async def closed_case_with_records(
    client: httpx.AsyncClient, work: Casework, mis_id: str
) -> dict[str, Any]:
    # Opened 25 days ago (a manager brings it in), so its history fits inside it.
    case = await open_case_since(
        client, work, [work.pupil(mis_id)], days_ago(25), summary="Mum: Alex."
    )
    goal = await add_goal(client, work.headers, case["id"])
    await add_review(client, work.headers, case["id"], days_ago(20), {goal["id"]: 3})
    await add_review(client, work.headers, case["id"], days_ago(10), {goal["id"]: 7})
    contact = {
        "type": "one_to_one_session",
        "occurred_at": f"{days_ago(5).isoformat()}T10:00:00+00:00",
        "minutes": 50,
        "location": "school",
        "participants": ["Child Example"],
        "child_ids": [work.pupil(mis_id)],
        "child_seen": True,
        "actions": [],
    }
    await add_to_case(client, work.headers, case["id"], "interventions", contact)
    action = {
        "text": "Alex to call the GP about Child Example",
        "source_kind": "other",
        "owner": {"kind": "family_member", "name": "Alex Example", "relationship": "mother"},
        "due_on": days_ago(4).isoformat(),
    }
    made = await add_to_case(client, work.headers, case["id"], "actions", action)
    expect(
        await client.post(
            f"/v1/actions/{made['id']}/status",
            json={"status": "not_done", "note": "Alex was in hospital."},
            headers=work.headers,
        )
    )
    closure = {"destination": "Oak Primary as lead"}
    expect(await request_closure(client, work.manager_headers, case["id"], **closure))
    return case


async def outcomes(client: httpx.AsyncClient, work: Casework) -> Any:
    """The outcome report's figures (all but when it was generated)."""
    period = {"from": days_ago(30).isoformat(), "to": today().isoformat()}
    body = expect(
        await client.get("/v1/reports/outcomes", params=period, headers=work.manager_headers)
    )
    del body["generated_at"]
    return body


async def test_closed_cases_are_deidentified_and_report_figures_stay(
    client: httpx.AsyncClient, fresh_app: FastAPI, work: Casework, dpo: dict[str, str]
) -> None:
    gone = await closed_case_with_records(client, work, "P0")
    kept = await closed_case_with_records(client, work, "P1")
    await place_hold(client, dpo, "case", case_id=kept["id"])
    still_open = await open_case(client, work.headers, [work.pupil("P2")])
    report = await outcomes(client, work)
    assert report["rows"][0]["positive_impacts"] == 2

    summary = await retain(fresh_app, FAR, only=["early_help_case"])

    assert (disposed(summary, "early_help_case"), held(summary, "early_help_case")) == (1, 1)
    assert await outcomes(client, work) == report
    case = expect(await client.get(f"/v1/cases/{gone['id']}", headers=work.manager_headers))
    assert case["summary"] is None and case["status"] == "closed"
    assert case["closure_reason"] == "needs_met" and case["level_of_need"]
    # Where the family went names an organisation, never a person: it stays for the reports.
    assert case["closure_destination"] == "Oak Primary as lead"
    assert case["deidentified_at"] is not None
    # What is gone cannot come back: a de-identified case is not reopened.
    _, etag = await read_with_etag(client, f"/v1/cases/{gone['id']}", work.manager_headers)
    reopened = await client.post(
        f"/v1/cases/{gone['id']}/reopen",
        json={"reason": "The family asked for help again."},
        headers={**work.manager_headers, "If-Match": etag},
    )
    assert_problem(reopened, 409, "conflict")
    case_id = uuid.UUID(gone["id"])
    assert await count(fresh_app, Intervention, Intervention.case_id == case_id) == 0
    names = CaseChild.case_id == case_id
    assert await count(fresh_app, CaseChild, names, CaseChild.given_name == "") == 1
    assert await count(fresh_app, CaseChild, names, CaseChild.pupil_id.is_(None)) == 1  # type: ignore[union-attr]
    for untouched in (kept, still_open):
        row = Case.id == uuid.UUID(untouched["id"])
        assert await count(fresh_app, Case, row, Case.deidentified_at.is_(None)) == 1  # type: ignore[union-attr]
    # Actions keep their dates and statuses; their text, owners' names and notes go.
    [action] = expect(
        await client.get(f"/v1/cases/{gone['id']}/actions", headers=work.manager_headers)
    )["items"]
    assert (action["text"], action["owner"]["name"], action["owner"]["relationship"]) == (
        "",
        None,
        None,
    )
    assert (action["status"], action["due_on"]) == ("not_done", days_ago(4).isoformat())
    assert [(h["status"], h["note"]) for h in action["history"]] == [
        ("open", None),
        ("not_done", None),
    ]
    held_id = uuid.UUID(kept["id"])
    assert await count(fresh_app, Intervention, Intervention.case_id == held_id) == 1
    [kept_action] = expect(
        await client.get(f"/v1/cases/{kept['id']}/actions", headers=work.manager_headers)
    )["items"]
    assert kept_action["text"].startswith("Alex to call")
    # Done once: a second run finds nothing more.
    assert disposed(await retain(fresh_app, FAR, only=["early_help_case"]), "early_help_case") == 0


async def test_declined_referrals_are_deidentified_unless_the_family_is_held(
    client: httpx.AsyncClient,
    fresh_app: FastAPI,
    world: World,
    work: Casework,
    dpo: dict[str, str],
) -> None:
    sender = await hub(world)
    made = []
    for mis_id in ("P0", "P1"):
        body = referral_body({"pupil_id": work.pupil(mis_id)})
        referral = expect(await client.post("/v1/referrals", json=body, headers=sender), 201)
        decision = {
            "decision": "decline",
            "reason": "Below threshold for early help.",
            "reason_category": "threshold_not_met",
        }
        _, etag = await read_with_etag(client, f"/v1/referrals/{referral['id']}", work.headers)
        expect(
            await client.post(
                f"/v1/referrals/{referral['id']}/decision",
                json=decision,
                headers={**work.headers, "If-Match": etag},
            )
        )
        made.append(referral)
    await place_hold(client, dpo, "family", referral_id=made[1]["id"])
    on_day = today().replace(year=today().year + 7)

    summary = await retain(fresh_app, on_day, only=["referral_not_taken_up"])

    assert disposed(summary, "referral_not_taken_up") == 1
    assert held(summary, "referral_not_taken_up") == 1
    first, second = (uuid.UUID(r["id"]) for r in made)
    assert await count(fresh_app, Referral, Referral.id == first, Referral.summary == "") == 1
    row = await count(fresh_app, Referral, Referral.id == second, Referral.summary != "")
    assert row == 1
    read = expect(await client.get(f"/v1/referrals/{made[0]['id']}", headers=work.headers))
    assert read["status"] == "declined" and read["decision"]["reason"]
    # The reason's category is a code the referrals report counts: it stays.
    assert read["decision"]["reason_category"] == "threshold_not_met"
    assert read["deidentified_at"] is not None
    assert "Alex" not in json.dumps(read)


async def test_pupils_off_roll_go_at_birth_plus_25_years_unless_named_on_a_live_case(
    client: httpx.AsyncClient, fresh_app: FastAPI, work: Casework
) -> None:
    await old_and_recent_marks(client, work, "P0")
    await open_case(client, work.headers, [work.pupil("P1")])
    async with fresh_app.state.session_factory() as session:
        await session.exec(text("UPDATE pupil SET on_roll = :no"), params={"no": False})  # type: ignore[call-overload]
        await session.commit()
    born = date(2015, 3, 14)  # every pupil of `casework`
    on_day = born.replace(year=born.year + 25) + timedelta(days=1)

    summary = await retain(fresh_app, on_day, only=["pupil"])

    assert disposed(summary, "pupil") == 3  # P1 is on an open case
    assert await count(fresh_app, Pupil) == 1
    assert await count(fresh_app, AttendanceMark) == 0  # with their pupil, by trigger


# --- the audit trail ------------------------------------------------------------------------


async def test_old_audit_events_go_under_permit_and_the_trail_stays_append_only(
    client: httpx.AsyncClient, fresh_app: FastAPI, work: Casework, dpo: dict[str, str]
) -> None:
    await old_and_recent_marks(client, work, "P0", "P1")
    expect(await client.get(f"/v1/pupils/{work.pupil('P0')}", headers=work.headers))
    expect(await client.get(f"/v1/pupils/{work.pupil('P1')}", headers=work.headers))
    await place_hold(client, dpo, "child", pupil_id=work.pupil("P1"))
    before = await count(fresh_app, AuditEvent)

    summary = await retain(fresh_app, FAR, only=["audit_event"])

    assert disposed(summary, "audit_event") + held(summary, "audit_event") == before
    assert held(summary, "audit_event") >= 2  # the push naming P1, the read of P1, the hold
    left = await count(fresh_app, AuditEvent)
    assert left == held(summary, "audit_event") + 1  # and the disposal's own event
    async with fresh_app.state.session_factory() as session:
        for statement in ("DELETE FROM audit_event", "UPDATE audit_event SET action = 'x'"):
            with pytest.raises(DBAPIError):
                await session.exec(text(statement))  # type: ignore[call-overload]
            await session.rollback()
        # A permit covers events older than its cutoff only.
        await session.exec(  # type: ignore[call-overload]
            text(
                "INSERT INTO audit_disposal_permit (id, disposes_before) "
                "VALUES (:id, '2000-01-01 00:00:00.000000')"
            ),
            params={"id": uuid.uuid4().hex},
        )
        with pytest.raises(DBAPIError):
            await session.exec(text("DELETE FROM audit_event"))  # type: ignore[call-overload]
        await session.rollback()
    assert await count(fresh_app, AuditEvent) == left


# --- running safely -------------------------------------------------------------------------


class CrashAfter(Hooks):
    def __init__(self, batches: int) -> None:
        self.left = batches

    async def after_batch(self, summary: TypeSummary) -> None:
        self.left -= 1
        if self.left == 0:
            raise RuntimeError("the machine went down")


async def test_a_crashed_run_is_finished_by_the_next(
    client: httpx.AsyncClient, fresh_app: FastAPI, work: Casework
) -> None:
    await old_and_recent_marks(client, work, "P0", "P1", "P2", "P3")
    with pytest.raises(RuntimeError):
        await retain(
            fresh_app, MARKS_DAY, batch_size=1, only=["attendance_mark"], hooks=CrashAfter(2)
        )
    assert await count(fresh_app, AttendanceMark) == 4 * len(RECENT) + 2 * len(OLD)

    rerun = await retain(fresh_app, MARKS_DAY, batch_size=1, only=["attendance_mark"])

    assert disposed(rerun, "attendance_mark") == 2 * len(OLD)
    assert await count(fresh_app, AttendanceMark) == 4 * len(RECENT)


async def test_two_runs_at_once_share_the_work(
    client: httpx.AsyncClient,
    fresh_app: FastAPI,
    database: DatabaseUnderTest,
    work: Casework,
    dpo: dict[str, str],
) -> None:
    await old_and_recent_marks(client, work, "P0", "P1", "P2", "P3")
    engines = [create_engine(settings_for(database.url)) for _ in range(2)]
    try:
        runs = await asyncio.gather(
            *(
                retain(
                    fresh_app,
                    MARKS_DAY,
                    batch_size=1,
                    only=["attendance_mark"],
                    sessions=create_session_factory(engine),
                )
                for engine in engines
            )
        )
    finally:
        for engine in engines:
            await engine.dispose()

    assert sum(disposed(r, "attendance_mark") for r in runs) == 4 * len(OLD)
    assert await count(fresh_app, AttendanceMark) == 4 * len(RECENT)
    found = await items(client, "/v1/audit-events", dpo, action="retention.dispose")
    named = [p for e in found for p in e["pupil_ids"]]
    assert sorted(named) == sorted(set(named)) and len(named) == 4  # no pupil twice


def test_the_command_prints_the_schedule_and_a_summary(cli_env: None) -> None:
    runner = CliRunner()
    schedule = runner.invoke(cli, ["retention", "schedule"])
    assert schedule.exit_code == 0, schedule.output
    assert "attendance_mark" in schedule.output and "IRMS" in schedule.output
    dry = runner.invoke(cli, ["retention", "run", "--dry-run", "--today", "2030-01-01"])
    assert dry.exit_code == 0, dry.output
    assert "Retention dry run as on 2030-01-01" in dry.output
    assert "early_help_case" in dry.output and "nothing changed" in dry.output
    real = runner.invoke(cli, ["retention", "run", "--batch-size", "10"])
    assert real.exit_code == 0, real.output
    assert "disposed 0 rows" in real.output


def test_a_bad_schedule_file_stops_the_command(
    cli_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "schedule.json"
    bad.write_text(json.dumps({"periods": {"attendance_mark": {"england": {"years": 1}}}}))
    monkeypatch.setenv("LIAISON_RETENTION_SCHEDULE", str(bad))
    from app.config import get_settings

    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["retention", "run"])
    assert result.exit_code == 2
    assert "less than 6 years" in result.output
