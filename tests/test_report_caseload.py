"""The caseload report: open cases and their children per lead practitioner as they stood on
a day, read back from the recorded history (backdated openings and closures, a reopening, a
change of lead), with the reviews overdue, the approvals pending and the age of the open
cases. Every figure is built through the API and checked by hand, as JSON and CSV, with
suppression, reach and the school filter."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import col, select

from app.models.action import CaseActionStatus
from app.services.report_caseload import ALL, age_band
from tests.builders.api import assert_problem, expect
from tests.builders.casework import (
    add_review,
    casework,
    hub,
    open_case,
    open_case_since,
    patch_case,
    read_case,
    referral_body,
    request_closure,
)
from tests.builders.clock import days_ago, today
from tests.builders.database import move_back
from tests.builders.referrals import act, decision, refer
from tests.builders.schools import make_school
from tests.conftest import World

REPORT = "/v1/reports/caseload"
BANDS = [
    "open_under_3_months",
    "open_3_to_6_months",
    "open_6_to_12_months",
    "open_12_months_or_more",
]
COLUMNS = [
    "lead_practitioner_id",
    "lead_practitioner",
    "open_cases",
    "children",
    "reviews_overdue",
    "actions_overdue",
    "closures_pending_approval",
    "step_ups_pending_approval",
    "mean_days_open",
    "median_days_open",
    *BANDS,
]
AS_OF = 30  # days ago
PRACTITIONER = "Test practitioner"  # every test practitioner's display name


def row(
    lead: str | None,
    name: str,
    open_cases: int = 0,
    children: int = 0,
    overdue: int = 0,
    closures: int = 0,
    step_ups: int = 0,
    mean: float | None = None,
    median: float | None = None,
    bands: tuple[int, int, int, int] = (0, 0, 0, 0),
    actions: int = 0,
) -> dict[str, Any]:
    return {
        "lead_practitioner_id": lead,
        "lead_practitioner": name,
        "open_cases": open_cases,
        "children": children,
        "reviews_overdue": overdue,
        "actions_overdue": actions,
        "closures_pending_approval": closures,
        "step_ups_pending_approval": step_ups,
        "mean_days_open": mean,
        "median_days_open": median,
        **dict(zip(BANDS, bands, strict=True)),
    }


def no_lead(*figures: Any, **named: Any) -> dict[str, Any]:
    return row(None, "No lead practitioner", *figures, **named)


def everyone(*figures: Any, **named: Any) -> dict[str, Any]:
    return row(None, "All lead practitioners", *figures, **named)


@dataclass
class Caseload:
    school: dict[str, Any]
    other_school: dict[str, Any]
    la_manager: dict[str, str]
    school_manager: dict[str, str]
    pa: str  # practitioners' staff ids, made in this order (so sorted by id too)
    pb: str
    pc: str
    pa_headers: dict[str, str]
    as_of: str


@pytest.fixture
async def caseload(client: httpx.AsyncClient, world: World) -> Caseload:
    """`D` is 30 days ago; "d400" is 400 days ago. Cases in school S (pupils P0-P6) unless
    said, opened and closed by the LA's manager with past dates. Review interval: 6 weeks.

    | case | children | opened | closed / reopened     | lead                    | reviews held |
    |------|----------|--------|-----------------------|-------------------------|--------------|
    | C1   | P0       | d400   | -                     | Pa                      | d200, d10    |
    | C2   | P1       | d100   | closed d10            | Pa                      | -            |
    | C3   | P2       | d200   | -                     | Pa; Pb from today       | d35          |
    | C4   | P3       | d280   | -                     | none (a system opened it) | -          |
    | C5   | P4, P0   | d20    | -                     | Pb                      | -            |
    | C6   | P5       | d300   | closed d60            | Pa                      | -            |
    | C7   | P6       | d150   | closed d50, reopened today | Pb                 | -            |
    | C8   | Q0 (T)   | d100   | -                     | Pc (school T's)         | -            |

    Today Pa asks to close C1 (pending) and to step up a hub referral about P0 (pending);
    Pb asks to close C5 and the manager refuses (not pending).

    On D: open C1 (age 370), C2 (70), C3 (170), C4 (250), C8 (70); C5 not yet opened, C6
    and C7 closed. C3's lead was Pa. Overdue on D: C1 (last review on or before D: d200, due
    d158), C2 (opened d100, due d58), C4, C8; C3 not (d35 review, due in 7 days). Nothing
    was pending on D.
    Today: open C1 (400), C3 (200), C4 (280), C5 (20), C7 (150), C8 (100). Overdue: C4, C7
    (due 6 weeks after it opened), C8; C1 not (d10 review), C3, C5 not.
    """
    s = await make_school(world, client, pupils=7)
    t = await make_school(world, client, pupils=1)
    pa = await world.staff("practitioner", schools=[s.school])
    pb = await world.staff("practitioner", schools=[s.school])
    pc = await world.staff("practitioner", schools=[t.school])
    la_manager = await world.headers(await world.staff("manager", la_code="202"))
    school_manager = await world.headers(await world.staff("manager", schools=[s.school]))
    pa_headers = await world.headers(pa)
    pb_headers = await world.headers(pb)
    system = await world.client_headers("cases:read cases:write cases:approve", schools=[s.school])
    p = s.pupil_ids

    async def case(
        pupils: list[str], opened: int, lead: str | None, by: dict[str, str] = la_manager
    ) -> str:
        fields: dict[str, Any] = {"opened_on": days_ago(opened).isoformat()}
        if lead is not None:
            fields["lead_practitioner_id"] = lead
        made = await open_case(client, by, pupils, **fields)
        assert made["lead_practitioner_id"] == lead
        return str(made["id"])

    async def close(case_id: str, closed: int) -> None:
        response = await client.post(
            f"/v1/cases/{case_id}/closure",
            json={
                "reason": "needs_met",
                "note": "Done.",
                "closed_on": days_ago(closed).isoformat(),
            },
            headers=la_manager,
        )
        assert expect(response)["status"] == "closed"

    c1 = await case([p["P0"]], 400, pa["id"])
    await add_review(client, la_manager, c1, days_ago(200), {})
    await add_review(client, la_manager, c1, days_ago(10), {})
    c2 = await case([p["P1"]], 100, pa["id"])
    await close(c2, 10)
    c3 = await case([p["P2"]], 200, pa["id"])
    await add_review(client, la_manager, c3, days_ago(35), {})
    await case([p["P3"]], 280, None, by=system)
    c5 = await case([p["P4"], p["P0"]], 20, pb["id"])
    c6 = await case([p["P5"]], 300, pa["id"])
    await close(c6, 60)
    c7 = await case([p["P6"]], 150, pb["id"])
    await close(c7, 50)
    await case([t.pupil_ids["P0"]], 100, pc["id"])

    moved = await patch_case(client, la_manager, c3, {"lead_practitioner_id": pb["id"]})
    assert expect(moved)["lead_practitioner_id"] == pb["id"]
    _, etag = await read_case(client, la_manager, c7)
    reopened = await client.post(
        f"/v1/cases/{c7}/reopen",
        json={"reason": "Attendance fell again."},
        headers={**la_manager, "If-Match": etag},
    )
    assert expect(reopened)["status"] == "open"
    asked = await request_closure(client, pa_headers, c1)
    assert expect(asked)["pending_closure"] is not None
    asked = await request_closure(client, pb_headers, c5)
    assert expect(asked)["pending_closure"] is not None
    refused = await client.post(
        f"/v1/cases/{c5}/closure/approval",
        json={"approve": False, "note": "Not yet."},
        headers=la_manager,
    )
    assert expect(refused)["pending_closure"] is None
    referral = await refer(client, await hub(world), referral_body({"pupil_id": p["P0"]}))
    stepped = await act(client, pa_headers, referral["id"], "decision", decision("step_up"))
    assert stepped["status"] == "awaiting_approval"
    return Caseload(
        school=s.school,
        other_school=t.school,
        la_manager=la_manager,
        school_manager=school_manager,
        pa=pa["id"],
        pb=pb["id"],
        pc=pc["id"],
        pa_headers=pa_headers,
        as_of=days_ago(AS_OF).isoformat(),
    )


def on_d(c: Caseload) -> list[dict[str, Any]]:
    """Ages on D: C1 370, C2 70, C3 170 (Pa); C8 70 (Pc); C4 250 (no lead)."""
    return [
        everyone(5, 5, 4, 0, 0, 186.0, 170.0, (2, 1, 1, 1)),
        row(c.pa, PRACTITIONER, 3, 3, 2, 0, 0, 203.3, 170.0, (1, 1, 0, 1)),
        row(c.pc, PRACTITIONER, 1, 1, 1, 0, 0, 70.0, 70.0, (1, 0, 0, 0)),
        no_lead(1, 1, 1, 0, 0, 250.0, 250.0, (0, 0, 1, 0)),
    ]


def now(c: Caseload) -> list[dict[str, Any]]:
    """Ages today: C1 400 (Pa); C3 200, C5 20, C7 150 (Pb); C8 100 (Pc); C4 280 (no lead).
    Children: P0 is on C1 and C5, and counts once in the total."""
    return [
        everyone(6, 6, 3, 1, 1, 191.7, 175.0, (1, 2, 2, 1)),
        row(c.pa, PRACTITIONER, 1, 1, 0, 1, 1, 400.0, 400.0, (0, 0, 0, 1)),
        row(c.pb, PRACTITIONER, 3, 4, 1, 0, 0, 123.3, 150.0, (1, 1, 1, 0)),
        row(c.pc, PRACTITIONER, 1, 1, 1, 0, 0, 100.0, 100.0, (0, 1, 0, 0)),
        no_lead(1, 1, 1, 0, 0, 280.0, 280.0, (0, 0, 1, 0)),
    ]


async def report(http: httpx.AsyncClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    response = await http.get(REPORT, params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def envelope(body: dict[str, Any], as_of: str, school_id: str | None = None) -> None:
    assert body["report"] == "caseload"
    assert body["period"] == {"from": None, "to": as_of}
    assert body["scope"]["school_id"] == school_id
    assert body["suppress_below"] is None and body["withheld"] == []
    assert [c["name"] for c in body["columns"]] == COLUMNS
    assert all(c["description"] for c in body["columns"])


async def test_the_caseload_as_it_stood_on_a_past_day(
    client: httpx.AsyncClient, caseload: Caseload
) -> None:
    """C2 closed after D still counts open on D; C3 counts for Pa, its lead on D; C7, closed
    on D and reopened since, does not count; nothing asked today was pending on D."""
    body = await report(client, caseload.la_manager, as_of=caseload.as_of)
    envelope(body, caseload.as_of)
    assert body["rows"] == on_d(caseload)


async def test_the_caseload_today(client: httpx.AsyncClient, caseload: Caseload) -> None:
    body = await report(client, caseload.la_manager)
    envelope(body, today().isoformat())
    assert body["rows"] == now(caseload)
    assert (await report(client, caseload.la_manager, as_of=today().isoformat()))["rows"] == now(
        caseload
    )


async def test_the_caseload_of_one_school(client: httpx.AsyncClient, caseload: Caseload) -> None:
    school_id = caseload.other_school["id"]
    body = await report(client, caseload.la_manager, school_id=school_id)
    envelope(body, today().isoformat(), school_id)
    assert body["rows"] == [
        everyone(1, 1, 1, 0, 0, 100.0, 100.0, (0, 1, 0, 0)),
        row(caseload.pc, PRACTITIONER, 1, 1, 1, 0, 0, 100.0, 100.0, (0, 1, 0, 0)),
        no_lead(),
    ]
    # School S's manager reaches every case but C8.
    mine = await report(client, caseload.school_manager)
    assert mine["rows"] == [
        everyone(5, 5, 2, 1, 1, 210.0, 200.0, (1, 1, 2, 1)),
        *now(caseload)[1:3],
        now(caseload)[4],
    ]
    refused = await client.get(
        REPORT, params={"school_id": school_id}, headers=caseload.school_manager
    )
    assert_problem(refused, 404, "not-found")


async def test_the_caseload_as_csv(client: httpx.AsyncClient, caseload: Caseload) -> None:
    response = await client.get(
        REPORT,
        params={"as_of": caseload.as_of},
        headers={**caseload.la_manager, "Accept": "text/csv"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert f'caseload_{caseload.as_of}.csv"' in response.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(response.text)))
    assert lines[0] == COLUMNS
    expected = on_d(caseload)
    assert len(lines) == len(expected) + 1
    for line, found in zip(lines[1:], expected, strict=True):
        assert line == ["" if found[c] is None else str(found[c]) for c in COLUMNS]


async def test_small_numbers_are_withheld(client: httpx.AsyncClient, caseload: Caseload) -> None:
    """With `suppress_below=2` every 1 goes, with what would give it back: Pc's one case on D
    (and its mean and median age), and in the total the smallest part of a sum that lost one."""
    body = await report(client, caseload.la_manager, as_of=caseload.as_of, suppress_below="2")
    withheld = {(w["row"], w["column"]) for w in body["withheld"]}
    counts = [c["name"] for c in body["columns"] if c["kind"] == "count"]
    for i, found in enumerate(body["rows"]):
        for column in counts:
            if (i, column) in withheld:
                assert found[column] is None
            else:
                assert found[column] != 1, (i, column)
    pc_row = body["rows"][2]
    assert (pc_row["open_cases"], pc_row["mean_days_open"], pc_row["median_days_open"]) == (
        None,
        None,
        None,
    )
    assert body["rows"][0]["open_cases"] == 5
    response = await client.get(
        REPORT,
        params={"as_of": caseload.as_of, "suppress_below": "2"},
        headers={**caseload.la_manager, "Accept": "text/csv"},
    )
    lines = list(csv.reader(io.StringIO(response.text)))
    marked = {
        (i - 1, COLUMNS[j]) for i, line in enumerate(lines) for j, v in enumerate(line) if v == "c"
    }
    assert marked == withheld


async def test_the_caseload_needs_reports_read_and_a_day_that_has_come(
    client: httpx.AsyncClient, caseload: Caseload
) -> None:
    refused = await client.get(REPORT, headers=caseload.pa_headers)
    assert_problem(refused, 403, "insufficient-scope")
    assert (await client.get(REPORT)).status_code == 401
    for as_of in (days_ago(-1).isoformat(), "yesterday"):
        bad = await client.get(REPORT, params={"as_of": as_of}, headers=caseload.la_manager)
        problem = assert_problem(bad, 422, "validation-failed")
        assert problem["errors"][0]["loc"] == ["query", "as_of"], problem


async def test_the_caseload_is_within_reach(
    client: httpx.AsyncClient, caseload: Caseload, world: World
) -> None:
    elsewhere = await world.headers(await world.staff("manager", la_code="303"))
    body = await report(client, elsewhere, as_of=caseload.as_of)
    assert body["rows"] == [everyone(), no_lead()]
    assert body["scope"] == {"la_code": "303", "school_ids": [], "school_id": None}
    refused = await client.get(
        REPORT, params={"school_id": caseload.school["id"]}, headers=elsewhere
    )
    assert_problem(refused, 404, "not-found")


@pytest.mark.parametrize(
    ("opened", "as_of", "band"),
    [
        (date(2026, 3, 1), date(2026, 3, 1), "open_under_3_months"),
        (date(2025, 11, 29), date(2026, 2, 28), "open_under_3_months"),
        (date(2025, 11, 28), date(2026, 2, 28), "open_3_to_6_months"),  # 3 months before 28 Feb
        (date(2025, 12, 1), date(2026, 3, 1), "open_3_to_6_months"),
        (date(2025, 9, 2), date(2026, 3, 1), "open_3_to_6_months"),
        (date(2025, 9, 1), date(2026, 3, 1), "open_6_to_12_months"),
        (date(2025, 3, 2), date(2026, 3, 1), "open_6_to_12_months"),
        (date(2025, 3, 1), date(2026, 3, 1), "open_12_months_or_more"),
        (date(2020, 1, 1), date(2026, 3, 1), "open_12_months_or_more"),
    ],
)
def test_age_bands_go_by_calendar_months(opened: date, as_of: date, band: str) -> None:
    assert age_band(opened, as_of) == band


async def test_actions_overdue_are_read_from_their_status_history(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    """An action counts as overdue on day D when it was recorded by D's end, was due before
    D and was still open at D's end: marking it done later does not rewrite D."""
    work = await casework(world, client)
    case = await open_case_since(client, work, [work.pupil("P0")], days_ago(20))

    async def action(due: int) -> str:
        body = {
            "text": "Send the attendance letter",
            "source_kind": "other",
            "owner": {"kind": "staff", "staff_id": work.practitioner["id"]},
            "due_on": days_ago(due).isoformat(),
        }
        made = expect(
            await client.post(f"/v1/cases/{case['id']}/actions", json=body, headers=work.headers),
            201,
        )
        await move_back(fresh_app, "case_action", "created_at", made["id"], timedelta(days=15))
        async with fresh_app.state.session_factory() as session:
            [opened] = (
                await session.exec(
                    select(CaseActionStatus.id).where(
                        col(CaseActionStatus.action_id) == uuid.UUID(made["id"])
                    )
                )
            ).all()
        await move_back(
            fresh_app, "case_action_status", "changed_at", str(opened), timedelta(days=15)
        )
        return str(made["id"])

    done_late = await action(10)
    still_open = await action(3)
    expect(
        await client.post(
            f"/v1/actions/{done_late}/status", json={"status": "done"}, headers=work.headers
        )
    )
    async with fresh_app.state.session_factory() as session:
        [done_row] = (
            await session.exec(
                select(CaseActionStatus.id).where(
                    col(CaseActionStatus.action_id) == uuid.UUID(done_late),
                    col(CaseActionStatus.status) == "done",
                )
            )
        ).all()
    await move_back(fresh_app, "case_action_status", "changed_at", str(done_row), timedelta(days=5))
    del still_open

    async def overdue(days: int) -> tuple[int, int]:
        body = expect(
            await client.get(
                REPORT, params={"as_of": days_ago(days).isoformat()}, headers=work.manager_headers
            )
        )
        [total] = [r for r in body["rows"] if r["lead_practitioner"] == ALL]
        [lead] = [r for r in body["rows"] if r["lead_practitioner_id"] == work.practitioner["id"]]
        return total["actions_overdue"], lead["actions_overdue"]

    assert await overdue(12) == (0, 0)  # nothing due yet
    assert await overdue(7) == (1, 1)  # the first was due and still open that day
    assert await overdue(0) == (1, 1)  # the first done since; the second now late
