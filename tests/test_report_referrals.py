"""The referrals report: referrals received in a period by source and decision, the children
referred, the time to decision, the reasons for declining, stepping up and redirecting, the
services families were signposted to, and re-referrals. Every figure is built through the
API and checked by hand, as JSON and CSV, with suppression, reach and the school filter."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.services.report_tables import median
from tests.builders.api import assert_problem, expect
from tests.builders.casework import HUB_SCOPES, hub, open_case, referral_body, request_closure
from tests.builders.clock import days_ago, today
from tests.builders.referrals import act, decision, refer, service
from tests.builders.schools import flags, make_school, push_marks
from tests.conftest import World

REPORT = "/v1/reports/referrals"
KEYS = ["group", "source", "decision", "reason_category", "service_id", "service_name"]
OUTCOMES = ["accepted", "declined", "stepped_up", "redirected", "withdrawn", "undecided"]
COLUMNS = [
    *KEYS,
    "referrals",
    "children",
    *OUTCOMES,
    "median_hours_to_decision",
    "re_referrals",
    "re_referral_rate",
]
SOURCES = ["hub", "school", "attendance_flag", "other"]
REASONS = {
    "declined": [
        "threshold_not_met",
        "needs_met_elsewhere",
        "already_supported",
        "consent_withdrawn",
        "out_of_area",
        "other",
        "not_given",
    ],
    "stepped_up": ["risk_of_significant_harm", "needs_beyond_early_help", "other", "not_given"],
    "redirected": ["out_of_area", "another_service_better_placed", "other", "not_given"],
}
NAMED_PER_REFERRAL = 20


def named(n: int) -> dict[str, str]:
    """A child known to the hub only by name (never on a roll here)."""
    return {"given_name": f"Hubchild{n}", "family_name": "Example", "date_of_birth": "2016-01-01"}


def row(
    group: str,
    referrals: int = 0,
    children: int = 0,
    outcomes: tuple[int, int, int, int, int, int] = (0, 0, 0, 0, 0, 0),
    re_referrals: int = 0,
    rate: float | None = None,
    **keys: Any,
) -> dict[str, Any]:
    """One row as the report must give it. Every decision here is made within seconds of
    the referral arriving, so a median time to decision is 0.0 hours where any was decided."""
    decided = sum(outcomes[:4])
    return {
        **dict.fromkeys(KEYS),
        "group": group,
        **keys,
        "referrals": referrals,
        "children": children,
        **dict(zip(OUTCOMES, outcomes, strict=True)),
        "median_hours_to_decision": 0.0 if decided else None,
        "re_referrals": re_referrals,
        "re_referral_rate": rate if referrals else None,
    }


def reason_rows(found: dict[tuple[str, str], tuple[int, int, int]]) -> list[dict[str, Any]]:
    """The reason rows, in order, from (decision, category) -> (referrals, children,
    re-referrals); every other category 0."""
    out = []
    for kind, categories in REASONS.items():
        for category in categories:
            n, kids, again = found.get((kind, category), (0, 0, 0))
            outcomes = tuple(n if column == kind else 0 for column in OUTCOMES)
            out.append(
                row(
                    "reason",
                    n,
                    kids,
                    outcomes,  # type: ignore[arg-type]
                    again,
                    share(again, n),
                    decision=kind,
                    reason_category=category,
                )
            )
    return out


def share(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


@dataclass
class Desk:
    school: dict[str, Any]
    other_school: dict[str, Any]
    la_manager: dict[str, str]
    school_manager: dict[str, str]
    practitioner: dict[str, str]
    services: dict[str, str]  # name -> id
    period: dict[str, str]


@pytest.fixture
async def desk(client: httpx.AsyncClient, world: World) -> Desk:
    """Sixteen referrals received today in LA 202 (plus one in LA 303, out of reach). S is
    school S (pupils P0-P4), T school T (pupil Q0), both in LA 202. "n named" are children
    known to the hub only by name, 192 in all, each named once. Decisions by the LA's
    manager unless said.

    | ref | source           | children      | school | decision (category), signposted      |
    |-----|------------------|---------------|--------|--------------------------------------|
    | H1  | hub              | 20 named      | -      | accepted (opens a case)              |
    | H2  | hub              | 20 named      | -      | declined (threshold_not_met), A      |
    | H3  | hub              | 20 named      | -      | declined (threshold_not_met), A + B  |
    | H4  | hub              | 20 named      | -      | declined (needs_met_elsewhere)       |
    | H5  | hub              | 20 named      | -      | declined (none given)                |
    | H6  | hub              | 20 named      | -      | stepped up (risk_of_significant_harm)|
    | H7  | hub              | 20 named      | -      | redirected (out_of_area)             |
    | H8  | hub              | 20 named      | -      | withdrawn by the hub                 |
    | H9  | hub              | 20 named      | -      | received (undecided)                 |
    | H10 | hub              | 12 named + P0 | S      | under review (undecided)             |
    | H11 | hub              | P0, P1        | S      | step-up asked: awaiting approval     |
    | S1  | school (S's MIS) | P2            | S      | accepted by the practitioner         |
    | S2  | school (S's MIS) | P3            | S      | declined (consent_withdrawn), B      |
    | S3  | school (S's MIS) | P4            | S      | received; a re-referral              |
    | A1  | attendance_flag  | P4 (by hub)   | S      | redirected (none given); re-referral |
    | T1  | school (T's MIS) | Q0            | T      | received                             |

    H11's step-up was asked by S's practitioner (no `cases:approve`): it awaits a manager.
    P4's case was opened and closed by the manager before S3 and A1 arrived: both are
    re-referrals (a case of the child closed within 12 months).

    Children: hub 192 named + P0 + P1 = **194** (P0 on H10 and H11 counts once); school P2,
    P3, P4, Q0 = 4; attendance flag P4 = 1; in total 194 + P2, P3, P4, Q0 = 198.
    Signposted: A (Alpha counselling) on H2, H3: 2 referrals, 40 children; B (Beta benefits
    advice) on H3, S2: 2 referrals, 21 children.
    """
    s = await make_school(world, client, pupils=5)
    t = await make_school(world, client, pupils=1)
    far = await make_school(world, client, pupils=1, la_code="303")
    la_manager = await world.headers(await world.staff("manager", la_code="202"))
    school_manager = await world.headers(await world.staff("manager", schools=[s.school]))
    practitioner = await world.headers(await world.staff("practitioner", schools=[s.school]))
    front_door = await hub(world)
    writer = await world.client_headers("directory:write", la_code="202")
    services = {
        name: await service(client, writer, name)
        for name in ("Beta benefits advice", "Alpha counselling")
    }
    alpha, beta = services["Alpha counselling"], services["Beta benefits advice"]
    pupil = {mis: {"pupil_id": pid} for mis, pid in s.pupil_ids.items()}

    hub_refs = []
    for k in range(9):
        children = [named(n) for n in range(k * NAMED_PER_REFERRAL, (k + 1) * 20)]
        hub_refs.append(await refer(client, front_door, referral_body(*children)))
    h10_children = [named(n) for n in range(180, 192)] + [pupil["P0"]]
    hub_refs.append(await refer(client, front_door, referral_body(*h10_children)))
    hub_refs.append(await refer(client, front_door, referral_body(pupil["P0"], pupil["P1"])))
    h = {f"H{n + 1}": r["id"] for n, r in enumerate(hub_refs)}

    await act(client, la_manager, h["H1"], "decision", decision("accept"))
    await act(
        client,
        la_manager,
        h["H2"],
        "decision",
        decision("decline", "threshold_not_met", signposted_service_ids=[alpha]),
    )
    await act(
        client,
        la_manager,
        h["H3"],
        "decision",
        decision("decline", "threshold_not_met", signposted_service_ids=[alpha, beta]),
    )
    await act(client, la_manager, h["H4"], "decision", decision("decline", "needs_met_elsewhere"))
    await act(client, la_manager, h["H5"], "decision", decision("decline"))
    await act(
        client, la_manager, h["H6"], "decision", decision("step_up", "risk_of_significant_harm")
    )
    await act(
        client,
        la_manager,
        h["H7"],
        "decision",
        decision("redirect", "out_of_area", redirected_to="LA 303 hub"),
    )
    await act(client, front_door, h["H8"], "withdrawal", {"reason": "Family moved away."})
    await act(client, la_manager, h["H10"], "review")
    asked = await act(
        client, practitioner, h["H11"], "decision", decision("step_up", "needs_beyond_early_help")
    )
    assert asked["status"] == "awaiting_approval"
    assert asked["pending_decision"]["reason_category"] == "needs_beyond_early_help"

    s_mis = await world.client_headers(HUB_SCOPES, schools=[s.school])
    s1 = await refer(client, s_mis, referral_body(pupil["P2"]))
    s2 = await refer(client, s_mis, referral_body(pupil["P3"]))
    await act(client, practitioner, s1["id"], "decision", decision("accept"))
    await act(
        client,
        practitioner,
        s2["id"],
        "decision",
        decision("decline", "consent_withdrawn", signposted_service_ids=[beta]),
    )

    await push_marks(client, s, s.marks("P4", ["N", "N", "N"]))
    (flag,) = await flags(client, s)
    earlier = await open_case(client, practitioner, [s.pupil_ids["P4"]])
    closed = await request_closure(client, la_manager, earlier["id"])
    assert closed.json()["status"] == "closed", closed.text
    s3 = await refer(client, s_mis, referral_body(pupil["P4"]))
    a1 = await refer(client, front_door, referral_body(pupil["P4"], attendance_flag_id=flag["id"]))
    assert (s3["source"], a1["source"]) == ("school", "attendance_flag")
    await act(client, la_manager, a1["id"], "decision", decision("redirect", redirected_to="CAMHS"))

    t_mis = await world.client_headers(HUB_SCOPES, schools=[t.school])
    await refer(client, t_mis, referral_body({"pupil_id": t.pupil_ids["P0"]}))
    far_hub = await hub(world, la_code="303")
    await refer(client, far_hub, referral_body({"pupil_id": far.pupil_ids["P0"]}))
    return Desk(
        school=s.school,
        other_school=t.school,
        la_manager=la_manager,
        school_manager=school_manager,
        practitioner=practitioner,
        services=services,
        period={"from": today().isoformat(), "to": today().isoformat()},
    )


def la_wide(d: Desk) -> list[dict[str, Any]]:
    alpha, beta = d.services["Alpha counselling"], d.services["Beta benefits advice"]
    return [
        row("total", 16, 198, (2, 5, 1, 2, 1, 5), 2, 12.5),
        row("source", 11, 194, (1, 4, 1, 1, 1, 3), 0, 0.0, source="hub"),
        row("source", 4, 4, (1, 1, 0, 0, 0, 2), 1, 25.0, source="school"),
        row("source", 1, 1, (0, 0, 0, 1, 0, 0), 1, 100.0, source="attendance_flag"),
        row("source", source="other"),
        *reason_rows(
            {
                ("declined", "threshold_not_met"): (2, 40, 0),
                ("declined", "needs_met_elsewhere"): (1, 20, 0),
                ("declined", "consent_withdrawn"): (1, 1, 0),
                ("declined", "not_given"): (1, 20, 0),
                ("stepped_up", "risk_of_significant_harm"): (1, 20, 0),
                ("redirected", "out_of_area"): (1, 20, 0),
                ("redirected", "not_given"): (1, 1, 1),
            }
        ),
        row(
            "signposted",
            2,
            40,
            (0, 2, 0, 0, 0, 0),
            0,
            0.0,
            service_id=alpha,
            service_name="Alpha counselling",
        ),
        row(
            "signposted",
            2,
            21,
            (0, 2, 0, 0, 0, 0),
            0,
            0.0,
            service_id=beta,
            service_name="Beta benefits advice",
        ),
    ]


async def report(http: httpx.AsyncClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    response = await http.get(REPORT, params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def envelope(body: dict[str, Any], period: dict[str, str], school_id: str | None = None) -> None:
    assert body["report"] == "referrals"
    assert body["period"] == period
    assert body["scope"]["school_id"] == school_id
    assert body["suppress_below"] is None and body["withheld"] == []
    assert [c["name"] for c in body["columns"]] == COLUMNS
    assert all(c["description"] for c in body["columns"])


async def test_the_referrals_report_by_hand(client: httpx.AsyncClient, desk: Desk) -> None:
    body = await report(client, desk.la_manager, **desk.period)
    envelope(body, desk.period)
    assert body["rows"] == la_wide(desk)
    hub_row = body["rows"][1]
    assert (hub_row["source"], hub_row["children"]) == ("hub", 194)
    # Without a period: from 1 August of this academic year to today, the same referrals.
    assert (await report(client, desk.la_manager))["rows"] == la_wide(desk)
    # Before today: none received.
    yesterday = days_ago(1).isoformat()
    before = await report(client, desk.la_manager, **{"from": yesterday, "to": yesterday})
    assert before["rows"] == [
        row("total"),
        *(row("source", source=s) for s in SOURCES),
        *reason_rows({}),
    ]


async def test_the_report_for_one_school(client: httpx.AsyncClient, desk: Desk) -> None:
    """School S: H10, H11 (hub, 12 named + P0 + P1 = 14 children), S1, S2, S3 (school), A1
    (flag); T1 is school T's. Re-referrals S3 and A1: 2 of 6."""
    beta = desk.services["Beta benefits advice"]
    school_only = [
        row("total", 6, 17, (1, 1, 0, 1, 0, 3), 2, 33.3),
        row("source", 2, 14, (0, 0, 0, 0, 0, 2), 0, 0.0, source="hub"),
        row("source", 3, 3, (1, 1, 0, 0, 0, 1), 1, 33.3, source="school"),
        row("source", 1, 1, (0, 0, 0, 1, 0, 0), 1, 100.0, source="attendance_flag"),
        row("source", source="other"),
        *reason_rows(
            {("declined", "consent_withdrawn"): (1, 1, 0), ("redirected", "not_given"): (1, 1, 1)}
        ),
        row(
            "signposted",
            1,
            1,
            (0, 1, 0, 0, 0, 0),
            0,
            0.0,
            service_id=beta,
            service_name="Beta benefits advice",
        ),
    ]
    school_id = desk.school["id"]
    body = await report(client, desk.la_manager, **desk.period, school_id=school_id)
    envelope(body, desk.period, school_id)
    assert body["rows"] == school_only
    # The school's own manager reaches the referrals about its children, and T1 is not one.
    mine = await report(client, desk.school_manager, **desk.period)
    assert mine["rows"] == school_only
    assert mine["scope"] == {"la_code": None, "school_ids": [school_id], "school_id": None}
    elsewhere = await client.get(
        REPORT,
        params={**desk.period, "school_id": desk.other_school["id"]},
        headers=desk.school_manager,
    )
    assert_problem(elsewhere, 404, "not-found")


async def test_the_report_as_csv(client: httpx.AsyncClient, desk: Desk) -> None:
    body = await report(client, desk.la_manager, **desk.period)
    response = await client.get(
        REPORT, params=desk.period, headers={**desk.la_manager, "Accept": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(response.text)))
    assert lines[0] == COLUMNS
    assert len(lines) == len(body["rows"]) + 1 == 1 + 4 + 15 + 2 + 1
    for line, found in zip(lines[1:], body["rows"], strict=True):
        assert line == ["" if found[c] is None else str(found[c]) for c in COLUMNS]
    assert lines[2][:8] == ["source", "hub", "", "", "", "", "11", "194"]


async def test_small_numbers_are_withheld(client: httpx.AsyncClient, desk: Desk) -> None:
    """With `suppress_below=3` every 1 and 2 goes, and so does any cell that would give one
    back: the total's declines (5) are the sum of the decline reason rows (2, 1, 0, 1, 0, 0,
    1), all withheld, so it stays; but they are also the sources' (hub 4, school 1), so the
    hub's 4 goes with the school's 1."""
    body = await report(client, desk.la_manager, **desk.period, suppress_below="3")
    assert body["suppress_below"] == 3
    withheld = {(w["row"], w["column"]) for w in body["withheld"]}
    counts = [c["name"] for c in body["columns"] if c["kind"] == "count"]
    for i, found in enumerate(body["rows"]):
        for column in counts:
            if (i, column) in withheld:
                assert found[column] is None
            else:
                assert found[column] == 0 or found[column] >= 3, (i, column, found[column])
    total, from_hub = body["rows"][0], body["rows"][1]
    assert (total["referrals"], total["children"], total["declined"]) == (16, 198, 5)
    assert (total["accepted"], total["stepped_up"], total["re_referrals"]) == (None, None, None)
    assert total["re_referral_rate"] is None  # rests on a withheld count
    # The total's 5 declines are the hub's 4 and the school's 1 (withheld): the hub's go too.
    assert (from_hub["referrals"], from_hub["children"], from_hub["declined"]) == (11, 194, None)
    assert from_hub["median_hours_to_decision"] is None  # rests on withheld decisions
    lines = list(
        csv.reader(
            io.StringIO(
                (
                    await client.get(
                        REPORT,
                        params={**desk.period, "suppress_below": "3"},
                        headers={**desk.la_manager, "Accept": "text/csv"},
                    )
                ).text
            )
        )
    )
    marked = {
        (i - 1, COLUMNS[j]) for i, line in enumerate(lines) for j, v in enumerate(line) if v == "c"
    }
    assert marked == withheld


async def test_the_report_needs_reports_read(
    client: httpx.AsyncClient, desk: Desk, world: World
) -> None:
    refused = await client.get(REPORT, params=desk.period, headers=desk.practitioner)
    assert_problem(refused, 403, "insufficient-scope")
    assert (await client.get(REPORT, params=desk.period)).status_code == 401
    backwards = {"from": today().isoformat(), "to": days_ago(1).isoformat()}
    assert_problem(
        await client.get(REPORT, params=backwards, headers=desk.la_manager),
        422,
        "validation-failed",
    )


async def test_the_report_is_within_reach(
    client: httpx.AsyncClient, desk: Desk, world: World
) -> None:
    """Another LA's manager sees zeros for LA 202's referrals (its own one, from LA 303's
    hub, counts), and LA 202's schools are not found."""
    elsewhere = await world.headers(await world.staff("manager", la_code="404"))
    body = await report(client, elsewhere, **desk.period)
    assert body["rows"] == [
        row("total"),
        *(row("source", source=s) for s in SOURCES),
        *reason_rows({}),
    ]
    assert body["scope"] == {"la_code": "404", "school_ids": [], "school_id": None}
    assert_problem(
        await client.get(
            REPORT, params={**desk.period, "school_id": desk.school["id"]}, headers=elsewhere
        ),
        404,
        "not-found",
    )
    la_303 = await world.headers(await world.staff("manager", la_code="303"))
    theirs = await report(client, la_303, **desk.period)
    assert theirs["rows"][:2] == [
        row("total", 1, 1, (0, 0, 0, 0, 0, 1), 0, 0.0),
        row("source", 1, 1, (0, 0, 0, 0, 0, 1), 0, 0.0, source="hub"),
    ]


async def test_a_decision_carries_a_reason_category_of_its_kind(
    client: httpx.AsyncClient, desk: Desk, world: World
) -> None:
    s_hub = await hub(world)
    made = await refer(client, s_hub, referral_body(named(900)))
    path = f"/v1/referrals/{made['id']}/decision"
    etag = (await client.get(f"/v1/referrals/{made['id']}", headers=desk.la_manager)).headers[
        "ETag"
    ]
    for body in (
        decision("decline", "risk_of_significant_harm"),
        decision("accept", "threshold_not_met"),
        decision("decline", "Not A Code"),
    ):
        refused = await client.post(path, json=body, headers={**desk.la_manager, "If-Match": etag})
        problem = assert_problem(refused, 422, "validation-failed")
        assert problem["errors"][0]["loc"] == ["body", "reason_category"], problem
    decided = expect(
        await client.post(
            path,
            json=decision("decline", "out_of_area"),
            headers={**desk.la_manager, "If-Match": etag},
        )
    )
    assert decided["decision"]["reason_category"] == "out_of_area"
    seen = expect(await client.get(f"/v1/referrals/{made['id']}", headers=s_hub))
    assert seen["decision"]["reason_category"] == "out_of_area"


@pytest.mark.parametrize(
    ("seconds", "hours"),
    [
        ([], None),
        ([3600], 1.0),
        ([0, 7200, 3600], 1.0),
        ([3600, 5400], 1.3),  # 1.25 exactly: half up
        ([100, 80], 0.0),  # 90 s = 0.025 h
        ([179, 181], 0.1),  # 180 s = 0.05 h: half up
        ([86400 * 3, 10, 20, 86400], 12.0),  # (20 + 86400) / 2 s = 12.0028 h
    ],
)
def test_the_median_time_to_decision_in_hours(seconds: list[int], hours: float | None) -> None:
    assert median(seconds, per=3600) == hours
