"""The closures report: the cases whose latest closure falls in the period, by reason, by
school, by lead practitioner and by where the family went: cases, children, families and
days open. Built by hand from cases opened and closed (with past dates, as a manager brings a
caseload in) through the API; checked as JSON and CSV, with suppression, reach, the
`school_id` filter and the audit trail."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.services.report_closures import families
from tests.builders.api import assert_problem, expect, items
from tests.builders.casework import open_case, request_closure
from tests.builders.clock import days_ago, today
from tests.builders.schools import make_school
from tests.conftest import World

REPORT = "/v1/reports/closures"
COLUMNS = [
    "group",
    "reason",
    "school_id",
    "school_name",
    "lead_practitioner_id",
    "lead_practitioner_name",
    "destination",
    "cases",
    "children",
    "families",
    "mean_days_open",
    "median_days_open",
]
REASONS = [
    "stepped_up_to_social_care",
    "stepped_down_to_school",
    "transferred",
    "needs_met",
    "moved_out_of_area",
    "disengaged",
    "consent_withdrawn",
    "other",
]
FPT = "Family Partnership Team"
LEAD = "Test practitioner"  # every test practitioner's display name


def row(
    group: str,
    cases: int,
    children: int,
    families: int,
    mean: float | None,
    median: float | None,
    **keys: Any,
) -> dict[str, Any]:
    """One row: its keys (the rest null) and its figures."""
    return {
        **dict.fromkeys(COLUMNS[:7]),
        "group": group,
        **keys,
        "cases": cases,
        "children": children,
        "families": families,
        "mean_days_open": mean,
        "median_days_open": median,
    }


def reasons(**figures: tuple[int, int, int, float, float]) -> list[dict[str, Any]]:
    """A row for every reason, in the order of the list of reasons; zeros where not given."""
    return [
        row("reason", *figures.get(reason, (0, 0, 0, None, None)), reason=reason)
        for reason in REASONS
    ]


def test_cases_linked_through_a_shared_child_are_one_family() -> None:
    """A shares a child with B, B another with C: one family, even where A and C are counted
    without B. D shares no child: a family of its own; E has no child on record."""
    a, b, c, d, e, x, y, z = (uuid.uuid4() for _ in range(8))
    family = families({a: {x}, b: {x, y}, c: {y}, d: {z}, e: set()})
    assert family[a] == family[b] == family[c]
    assert len({family[a], family[d], family[e]}) == 3


@dataclass
class Closures:
    school: dict[str, Any]  # "Ashdown Primary"
    other_school: dict[str, Any]  # "Beacon Primary"
    leads: list[str]  # L1, L2 by id, as the report orders two leads of the same name
    lead_1: str
    lead_2: str
    la_manager: dict[str, str]
    manager_id: str  # the LA manager, who leads the case they opened with no lead named
    school_manager: dict[str, str]  # reaches Beacon Primary only
    practitioner: dict[str, str]
    dpo: dict[str, str]
    period: dict[str, str]

    def lead_rows(self, figures: dict[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
        """The lead practitioner rows, by name (the manager first), then L1 and L2 (of one
        name) by id."""
        names = {self.manager_id: "Test manager", self.lead_1: LEAD, self.lead_2: LEAD}
        return [
            row(
                "lead_practitioner",
                *figures[lead],
                lead_practitioner_id=lead,
                lead_practitioner_name=names[lead],
            )
            for lead in sorted(figures, key=lambda lead: (names[lead], lead))
        ]


@pytest.fixture
async def data(client: httpx.AsyncClient, world: World) -> Closures:
    """The period runs from 180 days ago to today. "d100" is 100 days ago; a case "300→100"
    opened 300 days ago and closed 100 days ago (open 200 days). School A is Ashdown Primary
    (pupils P0..P44), B Beacon Primary (Q0..Q7), both of LA 202; L1 and L2 lead; the LA's
    manager M, who opens and closes every case, leads D1 (opened naming no lead).

    | case | school | lead | children        | opened→closed | days | reason (destination)     |
    |------|--------|------|-----------------|---------------|------|--------------------------|
    | U1   | A      | L1   | P0-P3 (4)       | 300→100       | 200  | stepped up (CSN)         |
    | U2   | A      | L1   | P4-P6 (3)       | 150→50        | 100  | stepped up               |
    | U3   | A      | L2   | P7-P10 (4)      | 120→60        | 60   | stepped up               |
    | U4   | A      | L2   | P11-P12 (2)     | 90→30         | 60   | stepped up               |
    | U5   | B      | L1   | Q0-Q1 (2)       | 200→20        | 180  | stepped up               |
    | T1   | A      | L1   | P13-P16 (4)     | 400→170       | 230  | transferred (FPT)        |
    | T2   | A      | L1   | P17-P19 (3)     | 100→40        | 60   | transferred (FPT)        |
    | T3   | A      | L2   | P20-P22 (3)     | 80→40         | 40   | transferred (FPT)        |
    | T4   | A      | L2   | P23-P24 (2)     | 70→20         | 50   | transferred (FPT, typed) |
    | T5   | B      | L2   | Q2-Q5 (4)       | 130→30        | 100  | transferred (FPT)        |
    | M1   | A      | L1   | P29-P31 (3)     | 60→15         | 45   | moved out of area        |
    | N1   | A      | L1   | P32, P33        | 250→150       | 100  | needs met                |
    | N2   | A      | L1   | P33, P34        | 200→100       | 100  | needs met                |
    | N3   | A      | L2   | P35-P37 (3)     | 45→25         | 20   | needs met                |
    | N4   | A      | L2   | P38             | 160→today     | 160  | needs met (see below)    |
    | N5   | B      | L2   | Q6-Q7 (2)       | 90→30         | 60   | needs met                |
    | S1   | A      | L1   | P41             | 100→50        | 50   | stepped down (Oak)       |
    | D1   | none   | M    | a child by name | 70→35         | 35   | disengaged               |

    - FPT is "Family Partnership Team"; T4 typed "family  partnership team", which counts as
      the same place, shown as most cases spell it. CSN is "Children's Services North", Oak
      "Oak Primary as lead".
    - N1 and N2 share P33: one family. Needs met: 5 cases, 9 children, 4 families.
    - N4 closed as disengaged at d120, was reopened and closed again today as needs met: it
      counts once, by its latest closure.
    - Out of the report: O1 (P42) closed at d250, before `from`; P44's case is still open; a
      case of LA 303 closed at d20.

    By children, as the source report reads: 15 stepped up to social care, 16 transferred to
    the Family Partnership Team, 3 moved out of area, 9 closed as needs met.
    """
    a = await make_school(world, client, pupils=45, name="Ashdown Primary")
    b = await make_school(world, client, pupils=8, name="Beacon Primary")
    far = await make_school(world, client, pupils=1, la_code="303", name="Far Primary")
    l1 = await world.staff("practitioner", schools=[a.school, b.school])
    l2 = await world.staff("practitioner", schools=[a.school, b.school])
    manager = await world.staff("manager", la_code="202")
    la_manager = await world.headers(manager)
    far_manager = await world.headers(await world.staff("manager", la_code="303"))

    def p(*numbers: int) -> list[str]:
        return [a.pupil_ids[f"P{n}"] for n in numbers]

    def q(*numbers: int) -> list[str]:
        return [b.pupil_ids[f"P{n}"] for n in numbers]

    async def case(
        pupils: list[str],
        lead: dict[str, str] | None,
        opened: int,
        closed: int | None,
        reason: str = "needs_met",
        destination: str | None = None,
        headers: dict[str, str] = la_manager,
        **fields: Any,
    ) -> str:
        if lead is not None:
            fields["lead_practitioner_id"] = lead["id"]
        made = await open_case(
            client, headers, pupils, opened_on=days_ago(opened).isoformat(), **fields
        )
        if closed is not None:
            extra: dict[str, Any] = {} if closed == 0 else {"closed_on": days_ago(closed)}
            if destination is not None:
                extra["destination"] = destination
            extra = {k: str(v) for k, v in extra.items()}
            closing = await request_closure(
                client, headers, made["id"], reason, "Closed after review.", **extra
            )
            assert closing.status_code == 200 and closing.json()["status"] == "closed", closing.text
        return str(made["id"])

    up = "stepped_up_to_social_care"
    await case(p(0, 1, 2, 3), l1, 300, 100, up, "Children's Services North")
    await case(p(4, 5, 6), l1, 150, 50, up)
    await case(p(7, 8, 9, 10), l2, 120, 60, up)
    await case(p(11, 12), l2, 90, 30, up)
    await case(q(0, 1), l1, 200, 20, up)
    await case(p(13, 14, 15, 16), l1, 400, 170, "transferred", FPT)
    await case(p(17, 18, 19), l1, 100, 40, "transferred", FPT)
    await case(p(20, 21, 22), l2, 80, 40, "transferred", FPT)
    await case(p(23, 24), l2, 70, 20, "transferred", "family  partnership team")
    await case(q(2, 3, 4, 5), l2, 130, 30, "transferred", FPT)
    await case(p(29, 30, 31), l1, 60, 15, "moved_out_of_area")
    await case(p(32, 33), l1, 250, 150)
    await case(p(33, 34), l1, 200, 100)
    await case(p(35, 36, 37), l2, 45, 25)
    n4 = await case(p(38), l2, 160, 120, "disengaged")
    reopened = await client.post(
        f"/v1/cases/{n4}/reopen", json={"reason": "Absences again."}, headers=la_manager
    )
    assert reopened.status_code == 200, reopened.text
    closing = await request_closure(client, la_manager, n4, "needs_met", "Settled now.")
    assert closing.status_code == 200, closing.text
    await case(q(6, 7), l2, 90, 30)
    await case(p(41), l1, 100, 50, "stepped_down_to_school", "Oak Primary as lead")
    by_name = {"given_name": "Sam", "family_name": "Nobody", "date_of_birth": "2016-01-01"}
    await case([], None, 70, 35, "disengaged", children=[by_name])
    await case(p(42), l1, 300, 250)
    await case(p(44), l1, 30, None)
    await case([far.pupil_ids["P0"]], None, 40, 20, "other", headers=far_manager)

    school_manager = await world.headers(await world.staff("manager", schools=[b.school]))
    return Closures(
        school=a.school,
        other_school=b.school,
        leads=sorted([l1["id"], l2["id"]]),
        lead_1=l1["id"],
        lead_2=l2["id"],
        la_manager=la_manager,
        manager_id=manager["id"],
        school_manager=school_manager,
        practitioner=await world.headers(l1),
        dpo=await world.headers(await world.staff("dpo", la_code="202")),
        period={"from": days_ago(180).isoformat(), "to": today().isoformat()},
    )


async def report(http: httpx.AsyncClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    body: dict[str, Any] = expect(await http.get(REPORT, params=params, headers=headers))
    assert body["report"] == "closures"
    assert [c["name"] for c in body["columns"]] == COLUMNS
    assert all(c["description"] for c in body["columns"])
    assert [c["kind"] for c in body["columns"]] == ["key"] * 7 + ["count"] * 3 + ["measure"] * 2
    return body


def la_rows(data: Closures) -> list[dict[str, Any]]:
    """The LA's table, worked out from the fixture's table.

    Days open, all 18 cases: 20 35 40 45 50 50 60 60 60 60 100 100 100 100 160 180 200 230,
    sum 1650: mean 91.7, median 60.0. Ashdown's 14: sum 1275, mean 91.1, median (60+60)/2.
    Beacon's 3 (180, 100, 60): mean 113.3, median 100. L1's 9 (200 100 180 230 60 45 100 100
    50): sum 1065, mean 118.3, median 100. L2's 8 (60 60 40 50 100 20 160 60): sum 550, mean
    68.75 → 68.8 (half up), median 60.
    """
    leads = {
        data.lead_1: (9, 23, 8, 118.3, 100.0),
        data.lead_2: (8, 21, 8, 68.8, 60.0),
        data.manager_id: (1, 1, 1, 35.0, 35.0),
    }
    return [
        row("total", 18, 45, 17, 91.7, 60.0),
        *reasons(
            stepped_up_to_social_care=(5, 15, 5, 120.0, 100.0),
            stepped_down_to_school=(1, 1, 1, 50.0, 50.0),
            transferred=(5, 16, 5, 96.0, 60.0),
            needs_met=(5, 9, 4, 88.0, 100.0),
            moved_out_of_area=(1, 3, 1, 45.0, 45.0),
            disengaged=(1, 1, 1, 35.0, 35.0),
        ),
        row(
            "school",
            14,
            36,
            13,
            91.1,
            60.0,
            school_id=data.school["id"],
            school_name="Ashdown Primary",
        ),
        row(
            "school",
            3,
            8,
            3,
            113.3,
            100.0,
            school_id=data.other_school["id"],
            school_name="Beacon Primary",
        ),
        row("school", 1, 1, 1, 35.0, 35.0),
        *data.lead_rows(leads),
        row(
            "destination",
            1,
            4,
            1,
            200.0,
            200.0,
            reason="stepped_up_to_social_care",
            destination="Children's Services North",
        ),
        # The other four step-ups name no destination: 100 60 60 180, median (60+100)/2.
        row("destination", 4, 11, 4, 100.0, 80.0, reason="stepped_up_to_social_care"),
        row(
            "destination",
            1,
            1,
            1,
            50.0,
            50.0,
            reason="stepped_down_to_school",
            destination="Oak Primary as lead",
        ),
        row("destination", 5, 16, 5, 96.0, 60.0, reason="transferred", destination=FPT),
    ]


async def test_the_closures_report_by_hand(client: httpx.AsyncClient, data: Closures) -> None:
    body = await report(client, data.la_manager, **data.period)
    assert body["period"] == data.period
    assert body["scope"] == {"la_code": "202", "school_ids": [], "school_id": None}
    assert (body["suppress_below"], body["withheld"]) == (None, [])
    assert body["rows"] == la_rows(data)
    # As the source report reads them, by children.
    by_reason = {r["reason"]: r["children"] for r in body["rows"] if r["group"] == "reason"}
    assert (by_reason["stepped_up_to_social_care"], by_reason["transferred"]) == (15, 16)
    assert (by_reason["moved_out_of_area"], by_reason["needs_met"]) == (3, 9)

    # The run is audited: which report, over what, how many cases; no child in it.
    events = await items(client, "/v1/audit-events", data.dpo, action="report.closures")
    assert len(events) == 1
    assert events[0]["details"] == {
        **data.period,
        "school_id": None,
        "suppress_below": None,
        "rows": 19,
        "cases": 18,
    }
    assert events[0]["pupil_ids"] == []


async def test_a_period_counts_each_case_by_its_latest_closure(
    client: httpx.AsyncClient, data: Closures
) -> None:
    """Up to yesterday, N4 (closed again today) is out of the report, and its earlier closure
    as disengaged (d120) does not count either: only D1 is left disengaged."""
    period = {"from": days_ago(180).isoformat(), "to": days_ago(1).isoformat()}
    body = await report(client, data.la_manager, **period)
    reason_rows = [r for r in body["rows"] if r["group"] == "reason"]
    assert reason_rows == reasons(
        stepped_up_to_social_care=(5, 15, 5, 120.0, 100.0),
        stepped_down_to_school=(1, 1, 1, 50.0, 50.0),
        transferred=(5, 16, 5, 96.0, 60.0),
        # 100 100 20 60: mean 70, median 80
        needs_met=(4, 8, 3, 70.0, 80.0),
        moved_out_of_area=(1, 3, 1, 45.0, 45.0),
        disengaged=(1, 1, 1, 35.0, 35.0),
    )
    assert body["rows"][0] == row("total", 17, 44, 16, 87.6, 60.0)


async def test_the_report_for_one_school(client: httpx.AsyncClient, data: Closures) -> None:
    """Beacon Primary: U5 (L1, 180 days), T5 and N5 (L2, 100 and 60 days). No step-up there
    names a destination, so step-ups have no destination rows."""
    beacon = [
        row("total", 3, 8, 3, 113.3, 100.0),
        *reasons(
            stepped_up_to_social_care=(1, 2, 1, 180.0, 180.0),
            transferred=(1, 4, 1, 100.0, 100.0),
            needs_met=(1, 2, 1, 60.0, 60.0),
        ),
        row(
            "school",
            3,
            8,
            3,
            113.3,
            100.0,
            school_id=data.other_school["id"],
            school_name="Beacon Primary",
        ),
        *data.lead_rows({data.lead_1: (1, 2, 1, 180.0, 180.0), data.lead_2: (2, 6, 2, 80.0, 80.0)}),
        row("destination", 1, 4, 1, 100.0, 100.0, reason="transferred", destination=FPT),
    ]
    school_id = data.other_school["id"]
    body = await report(client, data.la_manager, **data.period, school_id=school_id)
    assert body["scope"]["school_id"] == school_id
    assert body["rows"] == beacon
    # A manager whose reach is that school sees the same without asking for it.
    mine = await report(client, data.school_manager, **data.period)
    assert mine["rows"] == beacon
    assert mine["scope"] == {"la_code": None, "school_ids": [school_id], "school_id": None}
    # Another school is not within that manager's reach: not found, not empty.
    elsewhere = await client.get(
        REPORT, params={**data.period, "school_id": data.school["id"]}, headers=data.school_manager
    )
    assert_problem(elsewhere, 404, "not-found")


async def test_the_report_as_csv(client: httpx.AsyncClient, data: Closures) -> None:
    response = await client.get(
        REPORT, params=data.period, headers={**data.la_manager, "Accept": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        f'attachment; filename="closures_{data.period["from"]}_{data.period["to"]}.csv"'
    )
    lines = list(csv.reader(io.StringIO(response.text)))
    assert lines[0] == COLUMNS
    assert lines[1:] == [
        ["" if r[c] is None else str(r[c]) for c in COLUMNS] for r in la_rows(data)
    ]
    assert lines[1] == ["total", "", "", "", "", "", "", "18", "45", "17", "91.7", "60.0"]


async def test_small_numbers_are_withheld(client: httpx.AsyncClient, data: Closures) -> None:
    """With `suppress_below=3` every count of 1 or 2 goes, and the mean and median of every
    withheld number of cases. Rows: 0 total, 1-8 reasons, 9-11 schools, 12-14 lead
    practitioners, 15-18 destinations. Cases add up, and a lone withheld part takes the
    smallest other part with it:
    - reasons: stepped down, moved out and disengaged (1 each) go; three withheld parts of
      one sum give none back, so no other goes;
    - schools: the one with none (1) takes Beacon (3, the smaller other) with it;
    - lead practitioners: the manager (1) takes L2 (8 cases; L1 has 9) with it;
    - step-ups' destinations: Children's Services North (1) takes the four without with it;
      stepped down's one destination (1) goes with its reason row; transferred's stays.
    Children and families nearly add up the same way (a child can be on two cases), and are
    suppressed as if they did: their own small numbers go, and no group of rows is left
    with exactly one withheld cell."""
    body = await report(client, data.la_manager, **data.period, suppress_below="3")
    assert body["suppress_below"] == 3
    full = la_rows(data)
    lead_2 = 13 + data.leads.index(data.lead_2)
    few_cases = {2, 5, 6, 10, 11, 12, lead_2, 15, 16, 17}
    withheld = {(w["row"], w["column"]) for w in body["withheld"]}
    by_cases = {(i, c) for i, c in withheld if c not in ("children", "families")}
    assert by_cases == {(i, column) for i in few_cases for column in ("cases", *COLUMNS[10:])}
    groups = [
        [0, *range(1, 9)],  # the total and the reasons
        [0, *range(9, 12)],  # the total and the schools
        [0, *range(12, 15)],  # the total and the lead practitioners
        [1, 15, 16],  # stepped up and its destinations
        [2, 17],  # stepped down and its destination
        [3, 18],  # transferred and its destination
    ]
    assert [full[i]["group"] for i in (1, 9, 12, 15)] == [
        "reason",
        "school",
        "lead_practitioner",
        "destination",
    ]
    for column in ("children", "families"):
        for i, figures in enumerate(full):
            if 0 < figures[column] < 3:
                assert (i, column) in withheld, (i, column)
        for group in groups:
            hidden = [i for i in group if (i, column) in withheld]
            assert len(hidden) != 1, (column, group, hidden)
    assert body["rows"] == [
        {k: None if (i, k) in withheld else v for k, v in figures.items()}
        for i, figures in enumerate(full)
    ]
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


async def test_the_report_needs_reports_read(client: httpx.AsyncClient, data: Closures) -> None:
    refused = await client.get(REPORT, params=data.period, headers=data.practitioner)
    assert_problem(refused, 403, "insufficient-scope")
    assert (await client.get(REPORT, params=data.period)).status_code == 401
    backwards = {"from": days_ago(1).isoformat(), "to": days_ago(2).isoformat()}
    assert_problem(
        await client.get(REPORT, params=backwards, headers=data.la_manager),
        422,
        "validation-failed",
    )


async def test_the_report_is_within_reach(
    client: httpx.AsyncClient, world: World, data: Closures
) -> None:
    """LA 303's manager sees its one case (closed as other, 20 days after it opened, led by
    the manager who opened it) and none of LA 202's; an LA with no cases sees a table of
    zeros."""
    far_manager = await world.headers(await world.staff("manager", la_code="303"))
    far = await report(client, far_manager, **data.period)
    (far_lead,) = [r for r in far["rows"] if r["group"] == "lead_practitioner"]
    (far_school,) = [r for r in far["rows"] if r["group"] == "school"]
    assert far["rows"] == [
        row("total", 1, 1, 1, 20.0, 20.0),
        *reasons(other=(1, 1, 1, 20.0, 20.0)),
        row(
            "school",
            1,
            1,
            1,
            20.0,
            20.0,
            school_id=far_school["school_id"],
            school_name="Far Primary",
        ),
        row(
            "lead_practitioner",
            1,
            1,
            1,
            20.0,
            20.0,
            lead_practitioner_id=far_lead["lead_practitioner_id"],
            lead_practitioner_name="Test manager",
        ),
    ]
    nowhere = await world.headers(await world.staff("manager", la_code="404"))
    empty = await report(client, nowhere, **data.period)
    assert empty["rows"] == [row("total", 0, 0, 0, None, None), *reasons()]
    assert_problem(
        await client.get(
            REPORT, params={**data.period, "school_id": data.school["id"]}, headers=nowhere
        ),
        404,
        "not-found",
    )
