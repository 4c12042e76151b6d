"""The attendance-impact report (issue 13 item 5): the children of the cases in scope,
their attendance in the school weeks before their case opened and since, pooled, per term
and per child. Worked out by hand on a Scottish school's year (four terms), every mark pushed
through the attendance API and every case opened and closed through the case API on its
past day; checked as JSON and CSV, with suppression, reach and the `school_id` filter."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.services.school_calendar import rate, school_today
from tests.builders.api import assert_problem, created
from tests.builders.casework import case_body, open_case, request_closure
from tests.builders.holds import disposed, retain
from tests.builders.schools import Setup, make_school, push_marks
from tests.conftest import World

REPORT = "/v1/reports/attendance-impact"
PERIOD = {"from": "2023-01-01", "to": "2023-12-31"}
COLUMNS = [
    "row_type",
    "academic_year",
    "term",
    "starts",
    "ends",
    "pupil_id",
    "opened_on",
    "before_from",
    "after_to",
    "incomplete",
    "children",
    "children_without_marks",
    "children_known_by_name",
    "children_with_both",
    "improved",
    "children_before_incomplete",
    "before_weeks",
    "possible_before",
    "attended_before",
    "rate_before",
    "possible_after",
    "attended_after",
    "rate_after",
    "possible",
    "attended",
    "rate",
]
# Absences are taken from the end of the week: 3 absent means Friday PM, Friday AM and
# Thursday PM; the rest of the week's ten sessions are present.
LAST_FIRST = [(day, s) for day in range(4, -1, -1) for s in ("PM", "AM")]
SESSIONS = [(day, s) for day in range(5) for s in ("AM", "PM")]


def mondays(first: str, count: int) -> list[date]:
    start = date.fromisoformat(first)
    return [start + timedelta(weeks=n) for n in range(count)]


# The Scottish school's weeks (Mondays) in the year, holidays left out.
TERM_3 = mondays("2023-01-09", 12)  # 9 Jan to 31 Mar
TERM_4 = mondays("2023-04-17", 10)  # 17 Apr to 23 Jun
AUGUST = mondays("2023-08-21", 2)  # 21 and 28 Aug
AUTUMN = mondays("2023-09-04", 5) + mondays("2023-10-16", 10)  # 4 Sep to 22 Dec, no 9 Oct


def week(
    setup: Setup,
    mis_id: str,
    monday: date,
    absent: int,
    not_possible: int = 0,
    present: str = "10",
    absence: str = "31",
    other: str = "02",
) -> list[dict[str, Any]]:
    """A week of ten sessions: the first `not_possible` coded `02` (extended leave), the
    last `absent` (see LAST_FIRST) unauthorised, the rest present."""
    missed = set(LAST_FIRST[:absent])
    marks = []
    for n, (day, session) in enumerate(SESSIONS):
        code = other if n < not_possible else absence if (day, session) in missed else present
        marks.append(setup.mark(mis_id, monday + timedelta(days=day), session, code))
    return marks


def row(**fields: Any) -> dict[str, Any]:
    unknown = set(fields) - set(COLUMNS)
    assert not unknown, unknown
    return {column: fields.get(column) for column in COLUMNS}


def total(
    children: int,
    without: int,
    by_name: int,
    both: int,
    improved: int,
    before: tuple[int, int],
    after: tuple[int, int],
    incomplete: int = 0,
) -> dict[str, Any]:
    return row(
        row_type="total",
        children=children,
        children_without_marks=without,
        children_known_by_name=by_name,
        children_with_both=both,
        improved=improved,
        children_before_incomplete=incomplete,
        possible_before=before[0],
        attended_before=before[1],
        rate_before=rate(*before),
        possible_after=after[0],
        attended_after=after[1],
        rate_after=rate(*after),
    )


def term(
    year: str,
    name: str,
    starts: str,
    ends: str,
    children: int,
    sessions: tuple[int, int],
    incomplete: bool = False,
) -> dict[str, Any]:
    return row(
        row_type="term",
        academic_year=year,
        term=name,
        starts=starts,
        ends=ends,
        incomplete=incomplete,
        children=children,
        possible=sessions[0],
        attended=sessions[1],
        rate=rate(*sessions),
    )


def child(
    pupil_id: str,
    opened_on: str,
    before_from: str | None,
    after_to: str,
    improved: int,
    weeks: int,
    before: tuple[int, int],
    after: tuple[int, int],
    incomplete: bool = False,
) -> dict[str, Any]:
    return row(
        row_type="child",
        pupil_id=pupil_id,
        opened_on=opened_on,
        before_from=before_from,
        after_to=after_to,
        incomplete=incomplete,
        children=1,
        improved=improved,
        before_weeks=weeks,
        possible_before=before[0],
        attended_before=before[1],
        rate_before=rate(*before),
        possible_after=after[0],
        attended_after=after[1],
        rate_after=rate(*after),
    )


@dataclass
class Impact:
    school: dict[str, Any]
    other_school: dict[str, Any]
    pupils: dict[str, str]
    other_pupil: str
    la_manager: dict[str, str]
    school_manager: dict[str, str]
    other_manager: dict[str, str]
    practitioner: dict[str, str]

    def children(self) -> list[dict[str, Any]]:
        """The child rows, by pupil id (as the report orders them)."""
        p = self.pupils
        rows = [
            child(p["P0"], "2023-09-04", "2023-04-17", "2023-12-31", 1, 12, (120, 92), (150, 132)),
            child(p["P1"], "2023-09-04", "2023-04-17", "2023-12-31", 1, 12, (116, 76), (150, 150)),
            child(p["P2"], "2023-09-06", "2023-04-17", "2023-11-30", 1, 12, (120, 42), (114, 103)),
            child(p["P3"], "2023-09-04", None, "2023-12-31", 0, 0, (0, 0), (0, 0)),
        ]
        return sorted(rows, key=lambda r: str(r["pupil_id"]))

    def rows(self) -> list[dict[str, Any]]:
        return [
            total(5, 2, 1, 3, 3, (356, 210), (414, 385)),
            term("2022/23", "term_3", "2023-01-01", "2023-04-09", 3, (340, 199)),
            term("2022/23", "term_4", "2023-04-10", "2023-07-31", 3, (296, 176)),
            term("2023/24", "term_1", "2023-08-01", "2023-10-20", 3, (240, 199)),
            term("2023/24", "term_2", "2023-10-21", "2023-12-31", 3, (265, 230)),
            *self.children(),
        ]


@pytest.fixture
async def data(client: httpx.AsyncClient, world: World) -> Impact:
    """A Scottish school S (LA 202) over 2023. Weeks of ten sessions; "n absent" means the
    last n sessions of each week (Friday PM first) are unauthorised absences (local code 31),
    the rest present (10). Weeks: term 3 = 12 (9 Jan to 27 Mar), term 4 = 10 (17 Apr to
    19 Jun), August = 21 and 28 Aug, autumn = 15 (4 Sep to 18 Dec, not 9 Oct).

    - P0 (case A, opened Mon 4 Sep 2023): term 3 3 absent (4 in the week of 9 Jan), term 4
      2, August 4, autumn 1 (4 in the week of 2 Oct: Monday and Tuesday AM too).
    - P1 (case A): term 3 7, term 4 3 (week of 8 May: Monday and Tuesday `02`, extended leave,
      not possible), August 5, autumn 0.
    - P2 (case B, opened Wed 6 Sep, closed Thu 30 Nov 2023): term 3 2 from 23 Jan (10 weeks),
      term 4 7, August 4, autumn 1 to 20 Nov, week of 27 Nov 2, of 4 and 11 Dec 7, of 18 Dec
      Monday AM to Wednesday AM `02` and the rest absent.
    - P3 (case A): no marks at all. Case B's second child is known only by name (on no roll).
    - P4 (case D, 5 Sep to 16 Dec 2022, out of the period): all present in term 3; not counted.

    Before windows: the 12 school weeks wholly before the week of the opening (4 Sep): for
    all three, the 10 weeks of term 4 and the 2 of August.
    - P0: 10 x 8 + 2 x 6 = 92 of 120 (76.7). P1: 10 x 7 - 4 (the `02`s replace present
      sessions and are not possible) + 2 x 5 = 76 of 116 (65.5). P2: 10 x 3 + 2 x 6 = 42 of
      120 (35.0). Pooled: 210 of 356 = 59.0.
    After windows: P0 and P1 from 4 Sep to `to` (31 Dec): 15 weeks; P0 15 x 9 - 3 = 132 of
    150 (88.0), P1 150 of 150 (100.0). P2 from Wed 6 Sep to Thu 30 Nov: Wed-Fri 6 Sep 5 of
    6, ten weeks 11 Sep to 20 Nov 90 of 100, Mon-Thu 27-30 Nov 8 of 8: 103 of 114 (90.4);
    Mon-Tue 4-5 Sep and Fri 1 Dec count in neither window. Pooled: 385 of 414 = 93.0.
    All three improved; P3 and the named child have no marks (children 5, without marks 2).

    Terms (Scotland), the same three children over whole terms:
    - 2022/23 term 3: P0 12 x 7 - 1 = 83 of 120, P1 12 x 3 = 36 of 120, P2 10 x 8 = 80 of
      100: 199 of 340 (58.5). Term 4: 80 of 100, 66 of 96, 30 of 100: 176 of 296 (59.5).
      Terms 3 and 4 pooled: 375 of 636 = 59.0.
    - 2023/24 term 1 (8 weeks: August's 2, 4 Sep to 2 Oct, 16 Oct): P0 12 + 54 - 3 = 63,
      P1 10 + 60 = 70, P2 12 + 54 = 66, each of 80: 199 of 240 (82.9). Term 2 (9 weeks):
      P0 81 of 90, P1 90 of 90, P2 45 + 8 + 6 + 0 = 59 of 85: 230 of 265 (86.8). Terms 1 and
      2 pooled: 429 of 505 = 85.0.

    Another LA (303) has an English school E with one child Q0, case opened Wed 4 Oct 2023:
    weeks of 18 and 25 Sep 5 absent, 2 and 9 Oct all present: before 10 of 20, after 16 of 16.
    """
    for code, category in (("24", "authorised_absence"), ("31", "unauthorised_absence")):
        await world.attendance_code(
            jurisdiction="scotland",
            code=code,
            description=f"local {category}",
            category=category,
            effective_from="2019-06-01",
            code_set="scotland-local",
        )
    setup = await make_school(world, client, pupils=5, jurisdiction="scotland", code="5501234")
    other = await make_school(world, client, pupils=1, la_code="303")
    la_manager = await world.headers(await world.staff("manager", la_code="202"))
    other_manager = await world.headers(await world.staff("manager", la_code="303"))
    school_manager = await world.headers(await world.staff("manager", schools=[setup.school]))
    practitioner = await world.headers(await world.staff("practitioner", schools=[setup.school]))

    marks: list[dict[str, Any]] = []
    for n, monday in enumerate(TERM_3):
        marks += week(setup, "P0", monday, 4 if n == 0 else 3)
        marks += week(setup, "P1", monday, 7)
        if n >= 2:
            marks += week(setup, "P2", monday, 2)
        marks += week(setup, "P4", monday, 0)
    for n, monday in enumerate(TERM_4):
        marks += week(setup, "P0", monday, 2)
        marks += week(setup, "P1", monday, 3, not_possible=4 if n == 3 else 0)
        marks += week(setup, "P2", monday, 7)
    for monday in AUGUST:
        marks += week(setup, "P0", monday, 4)
        marks += week(setup, "P1", monday, 5)
        marks += week(setup, "P2", monday, 4)
    for monday in AUTUMN:
        marks += week(setup, "P0", monday, 1)
        marks += week(setup, "P1", monday, 0)
        if monday <= date(2023, 11, 20):
            marks += week(setup, "P2", monday, 1)
        elif monday == date(2023, 11, 27):
            marks += week(setup, "P2", monday, 2)
        else:
            marks += week(setup, "P2", monday, 7, not_possible=5 if monday.day == 18 else 0)
    # P0's extra absences in the week of 2 October: Monday, and Tuesday morning.
    extra = {("2023-10-02", "AM"), ("2023-10-02", "PM"), ("2023-10-03", "AM")}
    for mark in marks:
        if mark["mis_id"] == "P0" and (mark["date"], mark["session"]) in extra:
            assert mark["code"] == "10"
            mark["code"] = "31"
    assert len(marks) == 390 + 390 + 370 + 120
    await push_marks(client, setup, marks)

    england: list[dict[str, Any]] = []
    for monday in mondays("2023-09-18", 4):
        absent = 5 if monday < date(2023, 10, 2) else 0
        england += week(other, "P0", monday, absent, present="/", absence="O")
    await push_marks(client, other, england)

    pupil = setup.pupil_ids
    a = await open_case(
        client, la_manager, [pupil["P0"], pupil["P1"], pupil["P3"]], opened_on="2023-09-04"
    )
    named = {"given_name": "Nameonly", "family_name": "Example", "date_of_birth": "2016-02-02"}
    b = await created(
        client,
        "/v1/cases",
        case_body(
            [pupil["P2"]], opened_on="2023-09-06", children=[{"pupil_id": pupil["P2"]}, named]
        ),
        la_manager,
    )
    closed = await request_closure(client, la_manager, b["id"], closed_on="2023-11-30")
    assert closed.status_code == 200 and closed.json()["status"] == "closed", closed.text
    d = await open_case(client, la_manager, [pupil["P4"]], opened_on="2022-09-05")
    closed = await request_closure(client, la_manager, d["id"], closed_on="2022-12-16")
    assert closed.status_code == 200, closed.text
    await open_case(client, other_manager, [other.pupil_ids["P0"]], opened_on="2023-10-04")
    assert a["opened_on"] == "2023-09-04"
    return Impact(
        school=setup.school,
        other_school=other.school,
        pupils=pupil,
        other_pupil=other.pupil_ids["P0"],
        la_manager=la_manager,
        school_manager=school_manager,
        other_manager=other_manager,
        practitioner=practitioner,
    )


async def report(http: httpx.AsyncClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    response = await http.get(REPORT, params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def envelope(body: dict[str, Any], school_id: str | None = None) -> None:
    assert body["report"] == "attendance-impact"
    assert body["period"] == PERIOD
    assert body["scope"]["school_id"] == school_id
    assert body["suppress_below"] is None and body["withheld"] == []
    assert [c["name"] for c in body["columns"]] == COLUMNS
    assert all(c["description"] for c in body["columns"])


def pooled(rows: list[dict[str, Any]], *terms: str) -> float | None:
    """The rate over several term rows, as a reader pools them: their sessions added."""
    chosen = [r for r in rows if r["row_type"] == "term" and r["term"] in terms]
    assert len(chosen) == len(terms)
    return rate(sum(r["possible"] for r in chosen), sum(r["attended"] for r in chosen))


async def test_the_report_by_hand(client: httpx.AsyncClient, data: Impact) -> None:
    body = await report(client, data.la_manager, **PERIOD)
    envelope(body)
    assert body["rows"] == data.rows()
    # "59% before, 93% since": the total row.
    assert (body["rows"][0]["rate_before"], body["rows"][0]["rate_after"]) == (59.0, 93.0)
    # "From 59% in terms 3 and 4 of 2022-23 to 85% in terms 1 and 2 of 2023-24".
    last_year = [r for r in body["rows"] if r["academic_year"] == "2022/23"]
    this_year = [r for r in body["rows"] if r["academic_year"] == "2023/24"]
    assert pooled(last_year, "term_3", "term_4") == 59.0
    assert pooled(this_year, "term_1", "term_2") == 85.0


async def test_the_report_as_csv(client: httpx.AsyncClient, data: Impact) -> None:
    response = await client.get(
        REPORT, params=PERIOD, headers={**data.la_manager, "Accept": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(response.text)))
    assert lines[0] == COLUMNS

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    assert lines[1:] == [[cell(r[c]) for c in COLUMNS] for r in data.rows()]
    assert lines[1][17:23] == ["356", "210", "59.0", "414", "385", "93.0"]


async def test_the_window_before_is_as_long_as_asked(
    client: httpx.AsyncClient, data: Impact
) -> None:
    """Two school weeks: August's only. P0 12 of 20, P1 10 of 20, P2 12 of 20: 34 of 60."""
    body = await report(client, data.la_manager, **PERIOD, before_weeks="2")
    rows = body["rows"]
    assert rows[0] == total(5, 2, 1, 3, 3, (60, 34), (414, 385))
    before = {
        data.pupils["P0"]: (12, 60.0),
        data.pupils["P1"]: (10, 50.0),
        data.pupils["P2"]: (12, 60.0),
    }
    for line in rows[5:]:
        if line["pupil_id"] in before:
            attended, stated = before[line["pupil_id"]]
            assert (line["before_from"], line["before_weeks"]) == ("2023-08-21", 2)
            assert (line["possible_before"], line["attended_before"]) == (20, attended)
            assert line["rate_before"] == stated
    assert rows[1:5] == data.rows()[1:5]
    for weeks in ("0", "53", "x"):
        refused = await client.get(
            REPORT, params={**PERIOD, "before_weeks": weeks}, headers=data.la_manager
        )
        assert_problem(refused, 422, "validation-failed")


async def test_marks_disposed_of_leave_the_windows_incomplete(
    client: httpx.AsyncClient, fresh_app: FastAPI, data: Impact
) -> None:
    """A retention run as on 1 August 2029 disposes of every mark (and weekly figure) before
    1 August 2023: terms 3 and 4 are empty and say so; each before window keeps only
    August's two weeks and is incomplete (P3's too: it looked back past the day); the
    after windows and this year's terms do not change."""
    summary = await retain(fresh_app, date(2029, 8, 1), only=["attendance_mark", "attendance_week"])
    # Terms 3 and 4: P0 and P1 22 weeks each, P2 20, P4 12 (of ten sessions).
    assert disposed(summary, "attendance_mark") == (22 + 22 + 20 + 12) * 10
    body = await report(client, data.la_manager, **PERIOD)
    p = data.pupils
    children = [
        child(p["P0"], "2023-09-04", "2023-08-21", "2023-12-31", 1, 2, (20, 12), (150, 132), True),
        child(p["P1"], "2023-09-04", "2023-08-21", "2023-12-31", 1, 2, (20, 10), (150, 150), True),
        child(p["P2"], "2023-09-06", "2023-08-21", "2023-11-30", 1, 2, (20, 12), (114, 103), True),
        child(p["P3"], "2023-09-04", None, "2023-12-31", 0, 0, (0, 0), (0, 0), True),
    ]
    assert body["rows"] == [
        total(5, 2, 1, 3, 3, (60, 34), (414, 385), incomplete=4),
        term("2022/23", "term_3", "2023-01-01", "2023-04-09", 0, (0, 0), incomplete=True),
        term("2022/23", "term_4", "2023-04-10", "2023-07-31", 0, (0, 0), incomplete=True),
        *data.rows()[3:5],
        *sorted(children, key=lambda r: str(r["pupil_id"])),
    ]


async def test_the_report_for_one_school(client: httpx.AsyncClient, data: Impact) -> None:
    school_id = data.school["id"]
    body = await report(client, data.la_manager, **PERIOD, school_id=school_id)
    envelope(body, school_id)
    assert body["rows"] == data.rows()
    mine = await report(client, data.school_manager, **PERIOD)
    assert mine["rows"] == data.rows()
    assert mine["scope"] == {"la_code": None, "school_ids": [school_id], "school_id": None}
    elsewhere = await client.get(
        REPORT,
        params={**PERIOD, "school_id": data.other_school["id"]},
        headers=data.school_manager,
    )
    assert_problem(elsewhere, 404, "not-found")
    assert_problem(
        await client.get(
            REPORT, params={**PERIOD, "school_id": data.other_school["id"]}, headers=data.la_manager
        ),
        404,
        "not-found",
    )


async def test_another_la_sees_only_its_own(client: httpx.AsyncClient, data: Impact) -> None:
    """LA 303's English school: England's three terms; Q0 before (18 and 25 Sep) 10 of 20,
    after (Wed 4 Oct to 13 Oct; Mon-Tue 2-3 Oct in neither) 16 of 16; autumn 30 of 40."""
    body = await report(client, data.other_manager, **PERIOD)
    assert body["scope"] == {"la_code": "303", "school_ids": [], "school_id": None}
    assert body["rows"] == [
        total(1, 0, 0, 1, 1, (20, 10), (16, 16)),
        term("2022/23", "spring", "2023-01-01", "2023-04-09", 0, (0, 0)),
        term("2022/23", "summer", "2023-04-10", "2023-07-31", 0, (0, 0)),
        term("2023/24", "autumn", "2023-08-01", "2023-12-31", 1, (40, 30)),
        child(data.other_pupil, "2023-10-04", "2023-09-18", "2023-12-31", 1, 2, (20, 10), (16, 16)),
    ]
    assert_problem(
        await client.get(
            REPORT, params={**PERIOD, "school_id": data.school["id"]}, headers=data.other_manager
        ),
        404,
        "not-found",
    )


async def test_small_numbers_are_withheld(client: httpx.AsyncClient, data: Impact) -> None:
    """With `suppress_below=3` (a table for publication) no child's row is carried at all;
    on the total, the child known only by name (1) and children without marks (2) go; the
    terms (3 children each) stay."""
    body = await report(client, data.la_manager, **PERIOD, suppress_below="3")
    assert body["suppress_below"] == 3
    withheld = {(w["row"], w["column"]) for w in body["withheld"]}
    expected = data.rows()[:5]
    expected[0] = {**expected[0], "children_without_marks": None, "children_known_by_name": None}
    assert [r["row_type"] for r in data.rows()[5:]] == ["child"] * 4
    assert body["rows"] == expected
    assert withheld == {(0, "children_without_marks"), (0, "children_known_by_name")}
    response = await client.get(
        REPORT,
        params={**PERIOD, "suppress_below": "3"},
        headers={**data.la_manager, "Accept": "text/csv"},
    )
    lines = list(csv.reader(io.StringIO(response.text)))
    assert len(lines) == 1 + 5
    marked = {
        (i - 1, COLUMNS[j]) for i, line in enumerate(lines) for j, v in enumerate(line) if v == "c"
    }
    assert marked == withheld


async def test_the_report_is_audited_with_its_children(
    client: httpx.AsyncClient, world: World, data: Impact
) -> None:
    """One event per run, naming the children whose rows the report carries (by pupil id)."""
    await report(client, data.la_manager, **PERIOD)
    auditor = await world.client_headers("audit:read", la_code="202")
    for pupil in ("P0", "P1", "P2", "P3"):
        found = await client.get(
            "/v1/audit-events",
            params={"pupil_id": data.pupils[pupil], "action": "report.attendance-impact"},
            headers=auditor,
        )
        assert found.status_code == 200, found.text
        [event] = found.json()["items"]
        assert event["details"] == {
            "from": "2023-01-01",
            "to": "2023-12-31",
            "school_id": None,
            "suppress_below": None,
            "rows": 9,
            "before_weeks": 12,
        }
    untouched = await client.get(
        "/v1/audit-events",
        params={"pupil_id": data.pupils["P4"], "action": "report.attendance-impact"},
        headers=auditor,
    )
    assert untouched.json()["items"] == []


async def test_the_report_needs_reports_read(client: httpx.AsyncClient, data: Impact) -> None:
    refused = await client.get(REPORT, params=PERIOD, headers=data.practitioner)
    assert_problem(refused, 403, "insufficient-scope")
    assert (await client.get(REPORT, params=PERIOD)).status_code == 401
    backwards = {"from": "2023-12-31", "to": "2023-01-01"}
    assert_problem(
        await client.get(REPORT, params=backwards, headers=data.la_manager),
        422,
        "validation-failed",
    )


async def test_a_window_to_today_counts_this_weeks_marks(
    client: httpx.AsyncClient, world: World
) -> None:
    """A window running to today takes this week (a part week, Monday to today) from the
    weekly counts, as no mark can be dated after today; the figures are the marks'. An
    English school, one child, case opened on the Monday two weeks back: weeks 4 and 3 back
    each 5 of 10 (the before window: 2 school weeks, 10 of 20), weeks 2 and 1 back all 10
    present, this week to today (weekdays only) present mornings and absent afternoons."""
    setup = await make_school(world, client, pupils=1)
    manager = await world.headers(await world.staff("manager", la_code="202"))
    today = school_today()
    this_week = today - timedelta(days=today.weekday())
    first = this_week - timedelta(weeks=4)
    marks: list[dict[str, Any]] = []
    for n in range(4):
        monday = first + timedelta(weeks=n)
        marks += week(setup, "P0", monday, 5 if n < 2 else 0, present="/", absence="O")
    days = [this_week + timedelta(days=d) for d in range(min(today.weekday() + 1, 5))]
    for day in days:
        marks += [setup.mark("P0", day, "AM", "/"), setup.mark("P0", day, "PM", "O")]
    await push_marks(client, setup, marks)
    opened = first + timedelta(weeks=2)
    await open_case(client, manager, [setup.pupil_ids["P0"]], opened_on=opened.isoformat())

    after = (20 + 2 * len(days), 20 + len(days))
    body = await report(client, manager, **{"from": first.isoformat(), "to": today.isoformat()})
    rows = body["rows"]
    assert rows[0] == total(1, 0, 0, 1, 1, (20, 10), after)
    assert rows[-1] == child(
        setup.pupil_ids["P0"],
        opened.isoformat(),
        first.isoformat(),
        today.isoformat(),
        1,
        2,
        (20, 10),
        after,
    )
    terms = [r for r in rows if r["row_type"] == "term"]
    assert sum(r["possible"] for r in terms) == 40 + 2 * len(days)
    assert sum(r["attended"] for r in terms) == 30 + len(days)
    assert [r["row_type"] for r in rows] == ["total", *["term"] * len(terms), "child"]
