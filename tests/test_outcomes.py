"""The outcome report early-help teams give their funders: goals whose latest 0-10 scaling
is above their first, counted in the band of the latest score, per outcome category, over
the families open in the period. Checked by hand on a small data set, as JSON and CSV, with
its scope, its reach and the `school_id` filter."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest

from tests.builders.api import assert_problem
from tests.builders.casework import add_goal, add_review, open_case, request_closure
from tests.builders.clock import days_ago, today
from tests.builders.schools import make_school
from tests.conftest import World

BANDS = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
COLUMNS = [
    "category",
    "label",
    "goals",
    "goals_scaled",
    "positive_impacts",
    *(f"band_{band}" for band in BANDS),
    "families",
    "children",
    "cases_in_scope",
    "too_early_to_scale",
]
REPORT = "/v1/reports/outcomes"
# The categories in the report, in the order of the category list. Their order by code is
# the same as their order in the list of defaults, so either reading of "in the order of the
# category list (by code)" gives this order.
CATEGORIES = [
    "parenting_improved",
    "school_attendance_managed",
    "self_esteem_improved",
    "substance_misuse_stable",
]
ZEROS = [0] * 10


def counts(*bands: int) -> list[int]:
    """Ten counts, one per band, from the bands of the goals counted."""
    return [bands.count(band) for band in BANDS]


@dataclass
class Outcomes:
    school: dict[str, Any]
    other_school: dict[str, Any]
    practitioner: dict[str, str]
    la_manager: dict[str, str]
    school_manager: dict[str, str]
    period: dict[str, str]
    labels: dict[str, str]

    def row(
        self,
        category: str | None,
        goals: int,
        scaled: int,
        bands: list[int],
        families: int,
        children: int,
        cases: int,
        too_early: int,
    ) -> dict[str, Any]:
        """One row of the table: a category's figures (`None`: every category)."""
        return {
            "category": category,
            "label": self.labels[category] if category else "All outcome categories",
            "goals": goals,
            "goals_scaled": scaled,
            "positive_impacts": sum(bands),
            **{f"band_{band}": n for band, n in zip(BANDS, bands, strict=True)},
            "families": families,
            "children": children,
            "cases_in_scope": cases,
            "too_early_to_scale": too_early,
        }


def envelope(body: dict[str, Any], period: dict[str, str], school_id: str | None = None) -> None:
    """The parts of the answer every report shares, as this report fills them."""
    assert body["report"] == "outcomes"
    assert body["period"] == period
    assert body["scope"]["school_id"] == school_id
    assert body["suppress_below"] is None and body["withheld"] == []
    assert [c["name"] for c in body["columns"]] == COLUMNS
    assert all(c["description"] for c in body["columns"])


@pytest.fixture
async def data(client: httpx.AsyncClient, world: World) -> Outcomes:
    """The period runs from 90 days ago (`from`) to 10 days ago (`to`). "d80" is a review
    held 80 days ago. Every case is in school S, in LA 202, opened 100 days ago, unless said.

    | case | goal | category                  | scores (held)                 | counted        |
    |------|------|---------------------------|-------------------------------|----------------|
    | A    | a1   | school_attendance_managed | 3 (d80), 6 (d50), [2 (d5)]    | 3 → 6: 60%     |
    | A    | a2   | parenting_improved        | 5 (d80), 5 (d50), [9 (d5)]    | level: no      |
    | A    | a3   | self_esteem_improved      | 3 (d80), 10 (d50)             | 3 → 10: 100%   |
    | B    | b1   | school_attendance_managed | 4 (d70), 7 (d40)              | 4 → 7: 70%     |
    | B    | b2   | parenting_improved        | 6 (d70), 4 (d40)              | down: no       |
    | B    | b3   | self_esteem_improved      | 5 (d40)                       | once: no       |
    | B    | b4   | substance_misuse_stable   | 2 (d70)                       | once: no       |
    | C    | c1   | school_attendance_managed | 2 (d60), then 8 (d60)         | 2 → 8: 80%     |
    | D    | d1   | parenting_improved        | none                          | too early      |
    | E    | e1   | school_attendance_managed | 1 (d120), 9 (d25)             | 1 → 9: 90%     |
    | F    | f1   | neet_to_eet               | 2 (d150), 8 (d130)            | out of period  |
    | G    | g1   | neet_to_eet               | none                          | out of period  |

    - [d5]: held after `to`, so it does not count: a1 stays 3 → 6 (with it, 3 → 2 would not
      count) and a2 stays level (with it, 5 → 9 would count at 90%).
    - B's d40 review is recorded before its d70 one: first and latest go by `held_on`.
    - C's two d60 reviews are held the same day: the one recorded later is the latest.
      C was closed 30 days ago: after `from`, so it is in the period.
    - E is in another school (S2), opened 150 days ago; its first review (d120) was held
      before `from`, and only `to` bounds the reviews that count.
    - F was opened 200 days ago and closed 120 days ago: before `from`, out of the period.
    - G was opened today: after `to`, out of the period.

    LA-wide: families A, B, C, D, E = 5; too early to scale: D = 1; positive impacts
    a1 (60), a3 (100), b1 (70), c1 (80), e1 (90) = 5. Rows, by category:
    parenting_improved all zeros (a2, b2, d1); school_attendance_managed 60, 70, 80, 90;
    self_esteem_improved 100; substance_misuse_stable all zeros (b4). neet_to_eet has no
    goal in scope: no row.
    School S only: families 4 (E goes), too early 1, positive impacts 4 (e1 goes).
    """
    setup = await make_school(world, client, pupils=7)
    other = await make_school(world, client, pupils=1)
    practitioner = await world.headers(
        await world.staff("practitioner", schools=[setup.school, other.school])
    )
    la_manager = await world.headers(await world.staff("manager", la_code="202"))
    school_manager = await world.headers(await world.staff("manager", schools=[setup.school]))
    pupil = setup.pupil_ids

    async def case(pupil_ids: list[str], opened_days_ago: int | None = 100) -> str:
        if opened_days_ago is None:
            return str((await open_case(client, practitioner, pupil_ids))["id"])
        # Brought in with its past opening day: only a manager may backdate.
        opened_on = days_ago(opened_days_ago).isoformat()
        return str((await open_case(client, la_manager, pupil_ids, opened_on=opened_on))["id"])

    async def goal(case_id: str, category: str, **fields: Any) -> str:
        return str((await add_goal(client, practitioner, case_id, category, **fields))["id"])

    async def review(case_id: str, held_days_ago: int, scores: dict[str, int]) -> None:
        await add_review(client, practitioner, case_id, days_ago(held_days_ago), scores)

    async def close(case_id: str, closed_days_ago: int) -> None:
        closed_on = days_ago(closed_days_ago).isoformat()
        closed = await request_closure(client, la_manager, case_id, closed_on=closed_on)
        assert closed.status_code == 200 and closed.json()["status"] == "closed", closed.text

    a = await case([pupil["P0"], pupil["P1"]])
    a1 = await goal(a, "school_attendance_managed", child_id=pupil["P0"])
    a2 = await goal(a, "parenting_improved")
    a3 = await goal(a, "self_esteem_improved", child_id=pupil["P1"])
    await review(a, 80, {a1: 3, a2: 5, a3: 3})
    await review(a, 50, {a1: 6, a2: 5, a3: 10})
    await review(a, 5, {a1: 2, a2: 9})

    b = await case([pupil["P2"]])
    b1 = await goal(b, "school_attendance_managed")
    b2 = await goal(b, "parenting_improved")
    b3 = await goal(b, "self_esteem_improved")
    b4 = await goal(b, "substance_misuse_stable")
    await review(b, 40, {b1: 7, b2: 4, b3: 5})
    await review(b, 70, {b1: 4, b2: 6, b4: 2})

    c = await case([pupil["P3"]])
    c1 = await goal(c, "school_attendance_managed")
    await review(c, 60, {c1: 2})
    await review(c, 60, {c1: 8})
    await close(c, 30)

    d = await case([pupil["P4"]])
    await goal(d, "parenting_improved")

    e = await case([other.pupil_ids["P0"]], opened_days_ago=150)
    e1 = await goal(e, "school_attendance_managed")
    await review(e, 120, {e1: 1})
    await review(e, 25, {e1: 9})

    f = await case([pupil["P5"]], opened_days_ago=200)
    f1 = await goal(f, "neet_to_eet")
    await review(f, 150, {f1: 2})
    await review(f, 130, {f1: 8})
    await close(f, 120)

    g = await case([pupil["P6"]], opened_days_ago=None)
    await goal(g, "neet_to_eet")

    listed = await client.get("/v1/outcome-categories", headers=practitioner)
    assert listed.status_code == 200, listed.text
    return Outcomes(
        school=setup.school,
        other_school=other.school,
        practitioner=practitioner,
        la_manager=la_manager,
        school_manager=school_manager,
        period={"from": days_ago(90).isoformat(), "to": days_ago(10).isoformat()},
        labels={c["code"]: c["label"] for c in listed.json()["items"]},
    )


async def report(http: httpx.AsyncClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    response = await http.get(REPORT, params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


async def test_the_outcome_report_by_hand(client: httpx.AsyncClient, data: Outcomes) -> None:
    """Families are the cases with a goal scaled (A, B, C, E): 4 of the 5 in scope; D is
    too early. Children in those families: P0, P1 (A), P2 (B), P3 (C), E's pupil = 5."""
    body = await report(client, data.la_manager, **data.period)
    envelope(body, data.period)
    assert body["rows"] == [
        data.row(None, 10, 9, counts(60, 70, 80, 90, 100), 4, 5, 5, 1),
        data.row("parenting_improved", 3, 2, ZEROS, 2, 3, 3, 1),
        data.row("school_attendance_managed", 4, 4, counts(60, 70, 80, 90), 4, 5, 4, 0),
        data.row("self_esteem_improved", 2, 2, counts(100), 2, 3, 2, 0),
        data.row("substance_misuse_stable", 1, 1, ZEROS, 1, 1, 1, 0),
    ]
    assert data.labels["school_attendance_managed"] == "School attendance managed"


async def test_the_report_for_one_school(client: httpx.AsyncClient, data: Outcomes) -> None:
    school_only = [
        data.row(None, 9, 8, counts(60, 70, 80, 100), 3, 4, 4, 1),
        data.row("parenting_improved", 3, 2, ZEROS, 2, 3, 3, 1),
        data.row("school_attendance_managed", 3, 3, counts(60, 70, 80), 3, 4, 3, 0),
        data.row("self_esteem_improved", 2, 2, counts(100), 2, 3, 2, 0),
        data.row("substance_misuse_stable", 1, 1, ZEROS, 1, 1, 1, 0),
    ]
    school_id = data.school["id"]
    body = await report(client, data.la_manager, **data.period, school_id=school_id)
    envelope(body, data.period, school_id)
    assert body["rows"] == school_only
    # A manager whose reach is that school sees the same without asking for it.
    mine = await report(client, data.school_manager, **data.period)
    assert mine["rows"] == school_only
    assert mine["scope"] == {"la_code": None, "school_ids": [school_id], "school_id": None}

    other = await report(client, data.la_manager, **data.period, school_id=data.other_school["id"])
    assert other["rows"] == [
        data.row(None, 1, 1, counts(90), 1, 1, 1, 0),
        data.row("school_attendance_managed", 1, 1, counts(90), 1, 1, 1, 0),
    ]
    # Another school is not within the school manager's reach: not found, not empty.
    elsewhere = await client.get(
        REPORT,
        params={**data.period, "school_id": data.other_school["id"]},
        headers=data.school_manager,
    )
    assert_problem(elsewhere, 404, "not-found")


async def test_the_report_as_csv(client: httpx.AsyncClient, data: Outcomes) -> None:
    body = await report(client, data.la_manager, **data.period)
    response = await client.get(
        REPORT, params=data.period, headers={**data.la_manager, "Accept": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == COLUMNS
    assert len(rows) == len(body["rows"]) + 1 == len(CATEGORIES) + 2
    for line, row in zip(rows[1:], body["rows"], strict=True):
        assert line == ["" if row[c] is None else str(row[c]) for c in COLUMNS]
    assert [line[0] for line in rows[2:]] == CATEGORIES
    assert rows[1][:5] == ["", "All outcome categories", "10", "9", "5"]
    assert rows[3][4:15] == ["4", "0", "0", "0", "0", "0", "1", "1", "1", "1", "0"]


async def test_small_numbers_are_withheld(client: httpx.AsyncClient, data: Outcomes) -> None:
    """With `suppress_below=3`, every 1 and 2 goes, and so does any cell that would give one
    back: in a row whose bands add up to its positive impacts, a lone withheld band takes
    the smallest other with it (or the total)."""
    body = await report(client, data.la_manager, **data.period, suppress_below="3")
    assert body["suppress_below"] == 3
    withheld = {(w["row"], w["column"]) for w in body["withheld"]}
    for i, row in enumerate(body["rows"]):
        for column in COLUMNS[2:]:
            if (i, column) in withheld:
                assert row[column] is None
            else:
                assert row[column] == 0 or row[column] >= 3, (i, column, row[column])
    # Total row: goals 10, scaled 9 shown; each band (1) withheld; positive impacts (5) shown
    # (five withheld bands do not give one back); families 4, children 5, cases 5 shown,
    # too early (1) withheld, and so families or cases: families (4) is the smaller.
    total = body["rows"][0]
    assert (total["goals"], total["goals_scaled"], total["positive_impacts"]) == (10, 9, 5)
    assert (total["families"], total["too_early_to_scale"]) == (None, None)
    assert (total["children"], total["cases_in_scope"]) == (5, 5)
    # self_esteem_improved: goals 2, scaled 2, impacts 1 (band 100) all withheld; its one band
    # withheld alone would be given back by the impacts: both go.
    esteem = body["rows"][3]
    assert esteem["band_100"] is None and esteem["positive_impacts"] is None
    # The CSV marks the same cells `c`.
    response = await client.get(
        REPORT,
        params={**data.period, "suppress_below": "3"},
        headers={**data.la_manager, "Accept": "text/csv"},
    )
    lines = list(csv.reader(io.StringIO(response.text)))
    marked = {
        (i - 1, COLUMNS[j]) for i, line in enumerate(lines) for j, v in enumerate(line) if v == "c"
    }
    assert marked == withheld
    for value in ("1", "0", "101", "x"):
        refused = await client.get(
            REPORT, params={"suppress_below": value}, headers=data.la_manager
        )
        assert_problem(refused, 422, "validation-failed")


async def test_the_report_needs_reports_read(
    client: httpx.AsyncClient, world: World, data: Outcomes
) -> None:
    refused = await client.get(REPORT, params=data.period, headers=data.practitioner)
    assert_problem(refused, 403, "insufficient-scope")
    assert (await client.get(REPORT, params=data.period)).status_code == 401
    assert (await report(client, data.la_manager, **data.period))["rows"][0]["families"] == 4

    # Without a period: from 1 August of this academic year to today.
    now = today()
    august = date(now.year if now.month >= 8 else now.year - 1, 8, 1)
    body = await report(client, data.la_manager)
    assert body["period"] == {"from": august.isoformat(), "to": now.isoformat()}

    bad = await client.get(REPORT, params={"from": "last summer"}, headers=data.la_manager)
    assert_problem(bad, 422, "validation-failed")
    backwards = {"from": days_ago(1).isoformat(), "to": days_ago(2).isoformat()}
    assert_problem(
        await client.get(REPORT, params=backwards, headers=data.la_manager),
        422,
        "validation-failed",
    )
    decade = {"from": "2010-01-01", "to": "2026-01-01"}
    assert_problem(
        await client.get(REPORT, params=decade, headers=data.la_manager), 422, "validation-failed"
    )


async def test_the_report_is_within_reach(
    client: httpx.AsyncClient, world: World, data: Outcomes
) -> None:
    elsewhere = await world.headers(await world.staff("manager", la_code="303"))
    body = await report(client, elsewhere, **data.period)
    assert body["rows"] == [
        {
            **data.row(None, 0, 0, ZEROS, 0, 0, 0, 0),
        }
    ]
    assert body["scope"] == {"la_code": "303", "school_ids": [], "school_id": None}
    assert_problem(
        await client.get(
            REPORT, params={**data.period, "school_id": data.school["id"]}, headers=elsewhere
        ),
        404,
        "not-found",
    )


# --- the source report's table ------------------------------------------------------------

SOURCE_CATEGORIES = [
    "parenting_improved",
    "school_attendance_managed",
    "self_esteem_improved",
    "child_mental_health_stable",
]


async def test_the_source_reports_outcome_figures(client: httpx.AsyncClient, world: World) -> None:
    """The school family practitioners' report: 27 families (96 children) open with scaled
    outcomes, 9 more too early to scale, 88 positive impacts. Built through the API: a manager
    brings in 36 cases opened six months ago (a past `opened_on`), 15 families of four children
    and 12 of three with goals reviewed twice, and 9 one-child families not yet reviewed.

    Every scaled family has three goals that rose (81), the first seven a fourth (88), and the
    first ten a goal that stayed level (scaled, no impact)."""
    setup = await make_school(world, client, pupils=105)
    manager = await world.headers(await world.staff("manager", la_code="202"))
    pupils = [setup.pupil_ids[f"P{n}"] for n in range(105)]
    sizes = [4] * 15 + [3] * 12
    latest: list[int] = []

    async def case(children: list[str]) -> str:
        opened = await open_case(client, manager, children, opened_on=days_ago(180).isoformat())
        assert opened["opened_on"] == days_ago(180).isoformat()
        return str(opened["id"])

    start = 0
    for family, size in enumerate(sizes):
        case_id = await case(pupils[start : start + size])
        start += size
        rising = 4 if family < 7 else 3
        goals = [
            str((await add_goal(client, manager, case_id, SOURCE_CATEGORIES[g]))["id"])
            for g in range(rising)
        ]
        first = {goal: 2 + (family + g) % 3 for g, goal in enumerate(goals)}
        last = {goal: 5 + (family + g) % 6 for g, goal in enumerate(goals)}
        latest.extend(last.values())
        if family < 10:
            level = str((await add_goal(client, manager, case_id, "debt_managed"))["id"])
            first[level] = last[level] = 4
        await add_review(client, manager, case_id, days_ago(120), first)
        await add_review(client, manager, case_id, days_ago(30), last)
    for child in pupils[start : start + 9]:
        case_id = await case([child])
        await add_goal(client, manager, case_id, "parenting_improved")

    period = {"from": days_ago(200).isoformat(), "to": today().isoformat()}
    body = await report(client, manager, **period)
    total = body["rows"][0]
    assert total == {
        "category": None,
        "label": "All outcome categories",
        "goals": 88 + 10 + 9,
        "goals_scaled": 88 + 10,
        "positive_impacts": 88,
        **{f"band_{band}": latest.count(band // 10) for band in BANDS},
        "families": 27,
        "children": 96,
        "cases_in_scope": 36,
        "too_early_to_scale": 9,
    }
    assert sum(latest.count(band // 10) for band in BANDS) == 88
    # The same figures in the CSV's total line.
    response = await client.get(REPORT, params=period, headers={**manager, "Accept": "text/csv"})
    lines = list(csv.reader(io.StringIO(response.text)))
    assert dict(zip(lines[0], lines[1], strict=True)) == {
        k: "" if v is None else str(v) for k, v in total.items()
    }
