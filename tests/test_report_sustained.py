"""The sustained-outcomes report: of the cases closed as needs met or stepped down to school
at least six months before `to`, how many had no re-referral, no new persistent-absence flag
and no step-up in the six months after their closure.

Everything is built through the API. Cases open and close on past days (a manager's
backdating); referrals and flags carry the moment they arrive, so the service's clock is set
back (`at`) while they are sent, as if they had been sent on that day."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest

from app.services import attendance_flags, referrals
from app.services.report_sustained import months_after, window_end
from tests.builders.api import assert_problem, created, expect, read_with_etag
from tests.builders.casework import hub, open_case, referral_body, request_closure
from tests.builders.clock import days_ago, today
from tests.builders.schools import make_school, push_marks
from tests.conftest import World

REPORT = "/v1/reports/sustained-outcomes"
COLUMNS = [
    "reason",
    "cases_closed",
    "sustained",
    "re_referred",
    "new_flag",
    "stepped_up",
    "sustained_rate",
]
SAM = {"given_name": "Sam", "family_name": "Nobody", "date_of_birth": "2016-01-01"}


def row(reason: str | None, *figures: Any) -> dict[str, Any]:
    return dict(zip(COLUMNS, (reason, *figures), strict=True))


@pytest.mark.parametrize(
    ("closed", "six_months_on"),
    [
        (date(2025, 3, 15), date(2025, 9, 15)),
        (date(2025, 8, 31), date(2026, 2, 28)),  # no 31 February: its last day
        (date(2023, 8, 31), date(2024, 2, 29)),
        (date(2025, 12, 1), date(2026, 6, 1)),
    ],
)
def test_six_months_after_a_closure(closed: date, six_months_on: date) -> None:
    """The six months run to the end of the same day six months on."""
    assert months_after(closed, 6) == six_months_on
    the_day_after = six_months_on + timedelta(days=1)
    assert window_end(closed) == datetime.combine(the_day_after, time(), tzinfo=UTC)


@contextmanager
def at(monkeypatch: pytest.MonkeyPatch, days: int) -> Iterator[None]:
    """The service's clock, for referrals and absence flags, `days` ago (at noon)."""
    moment = datetime.combine(days_ago(days), time(12), tzinfo=UTC)
    with monkeypatch.context() as patch:
        for module in (referrals, attendance_flags):
            patch.setattr(module, "utcnow", lambda: moment)
        yield


@dataclass
class Sustained:
    school: dict[str, Any]
    la_manager: dict[str, str]
    school_manager: dict[str, str]
    practitioner: dict[str, str]
    period: dict[str, str]


@pytest.fixture
async def data(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> Sustained:
    """The period runs from 400 days ago to today: cases closed from d400 to six months
    ago count; each one's six months after closure end before today. Cases of school S (LA
    202), opened at d400 and closed at d300 by the LA's manager unless said:

    | case | children | closed as    | in the six months after (d300 to about d120)  | counted     |
    |------|----------|--------------|-----------------------------------------------|-------------|
    | A    | P0       | needs met    | nothing                                       | sustained   |
    | B    | P1       | needs met    | a referral about P1 (d250)                    | re-referred |
    | C    | P2, P3   | needs met    | a referral about P3 at d60: too late          | sustained   |
    | D    | P4       | needs met    | a persistent absence flag (d250)              | new flag    |
    | E    | P5       | needs met    | case F (P5, d280→d200) closed as stepped up   | stepped up  |
    | G    | P6       | stepped down | a referral (d250), stepped up (d240)          | both        |
    | H    | P7       | stepped down | nothing                                       | sustained   |
    | I    | Sam      | needs met    | a referral naming "SAM" Nobody, same birthday | re-referred |
    | M    | P11      | needs met    | its flag was raised at d320, before closure   | sustained   |

    Sam is known only by name (no school); G's "both" is re-referred and stepped up.
    Not counted: J (P8) closed at d100 (less than six months ago); K (P9) closed at d450
    (before `from`); L (P10) closed at d300 as transferred; F (stepped up); a case of LA 303.

    Needs met: 7 closed (A B C D E I M), sustained 3 (A C M) = 42.9%, re-referred 2 (B I),
    new flag 1 (D), stepped up 1 (E). Stepped down: 2 (G H), sustained 1 (H) = 50%,
    re-referred 1, stepped up 1 (G). In all 9, sustained 4 = 44.4%.
    """
    s = await make_school(world, client, pupils=12)
    far = await make_school(world, client, pupils=1, la_code="303")
    manager = await world.headers(await world.staff("manager", la_code="202"))
    far_manager = await world.headers(await world.staff("manager", la_code="303"))
    the_hub = await hub(world)
    pupil = s.pupil_ids

    async def case(
        children: list[dict[str, Any]],
        opened: int,
        closed: int,
        reason: str = "needs_met",
        headers: dict[str, str] = manager,
        **fields: str,
    ) -> str:
        made = await open_case(
            client, headers, [], children=children, opened_on=days_ago(opened).isoformat()
        )
        closing = await request_closure(
            client,
            headers,
            made["id"],
            reason,
            "Closed after review.",
            closed_on=days_ago(closed).isoformat(),
            **fields,
        )
        assert closing.status_code == 200 and closing.json()["status"] == "closed", closing.text
        return str(made["id"])

    def on_roll(*mis_ids: str) -> list[dict[str, Any]]:
        return [{"pupil_id": pupil[m]} for m in mis_ids]

    async def refer(days: int, *children: dict[str, Any]) -> dict[str, Any]:
        with at(monkeypatch, days):
            return await created(client, "/v1/referrals", referral_body(*children), the_hub)

    async def flag(days: int, mis_id: str) -> None:
        """3 of 20 sessions missed (15%): a persistent absence flag, raised `days` ago."""
        with at(monkeypatch, days):
            await push_marks(client, s, s.marks(mis_id, ["I"] * 3 + ["/"] * 17))

    oak = {"destination": "Oak Primary as lead"}
    await case(on_roll("P0"), 400, 300)
    await case(on_roll("P1"), 400, 300)
    await refer(250, *on_roll("P1"))
    await case(on_roll("P2", "P3"), 400, 300)
    await refer(60, *on_roll("P3"))
    await case(on_roll("P4"), 400, 300)
    await flag(250, "P4")
    await case(on_roll("P5"), 400, 300)
    await case(on_roll("P5"), 280, 200, "stepped_up_to_social_care")
    await case(on_roll("P6"), 400, 300, "stepped_down_to_school", **oak)
    stepped = await refer(250, *on_roll("P6"))
    _, etag = await read_with_etag(client, f"/v1/referrals/{stepped['id']}", manager)
    with at(monkeypatch, 240):
        decided = await client.post(
            f"/v1/referrals/{stepped['id']}/decision",
            json={"decision": "step_up", "reason": "Disclosure: for children's social care."},
            headers={**manager, "If-Match": etag},
        )
    assert expect(decided)["status"] == "stepped_up"
    await case(on_roll("P7"), 400, 300, "stepped_down_to_school", **oak)
    await case([SAM], 400, 300)
    await refer(250, {**SAM, "given_name": "SAM"})
    await flag(320, "P11")
    await case(on_roll("P11"), 400, 300)
    await case(on_roll("P8"), 400, 100)
    await case(on_roll("P9"), 500, 450)
    await case(on_roll("P10"), 400, 300, "transferred", destination="Family Partnership Team")
    await case([{"pupil_id": far.pupil_ids["P0"]}], 400, 300, headers=far_manager)

    practitioner = await world.staff("practitioner", schools=[s.school])
    return Sustained(
        school=s.school,
        la_manager=manager,
        school_manager=await world.headers(await world.staff("manager", schools=[s.school])),
        practitioner=await world.headers(practitioner),
        period={"from": days_ago(400).isoformat(), "to": today().isoformat()},
    )


async def report(http: httpx.AsyncClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    body: dict[str, Any] = expect(await http.get(REPORT, params=params, headers=headers))
    assert body["report"] == "sustained-outcomes"
    assert [c["name"] for c in body["columns"]] == COLUMNS
    assert [c["kind"] for c in body["columns"]] == ["key"] + ["count"] * 5 + ["measure"]
    assert all(c["description"] for c in body["columns"])
    return body


LA_ROWS = [
    row(None, 9, 4, 3, 1, 2, 44.4),
    row("needs_met", 7, 3, 2, 1, 1, 42.9),
    row("stepped_down_to_school", 2, 1, 1, 0, 1, 50.0),
]


async def test_the_sustained_outcomes_by_hand(client: httpx.AsyncClient, data: Sustained) -> None:
    body = await report(client, data.la_manager, **data.period)
    assert body["period"] == data.period
    assert body["scope"] == {"la_code": "202", "school_ids": [], "school_id": None}
    assert (body["suppress_below"], body["withheld"]) == (None, [])
    assert body["rows"] == LA_ROWS

    response = await client.get(
        REPORT, params=data.period, headers={**data.la_manager, "Accept": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(response.text))) == [
        COLUMNS,
        ["", "9", "4", "3", "1", "2", "44.4"],
        ["needs_met", "7", "3", "2", "1", "1", "42.9"],
        ["stepped_down_to_school", "2", "1", "1", "0", "1", "50.0"],
    ]


async def test_a_later_to_brings_later_closures_in(
    client: httpx.AsyncClient, data: Sustained
) -> None:
    """Up to 250 days ago, the last closures that count are those of about 430 days ago:
    only K (closed at d450, sustained: nothing followed it) is left once `from` goes back."""
    early = {"from": days_ago(600).isoformat(), "to": days_ago(250).isoformat()}
    body = await report(client, data.la_manager, **early)
    assert body["rows"] == [
        row(None, 1, 1, 0, 0, 0, 100.0),
        row("needs_met", 1, 1, 0, 0, 0, 100.0),
        row("stepped_down_to_school", 0, 0, 0, 0, 0, None),
    ]
    # A period that ends less than six months after it starts has no closure to judge.
    recent = await report(client, data.la_manager, **{"from": days_ago(150).isoformat()})
    assert recent["rows"] == [
        row(None, 0, 0, 0, 0, 0, None),
        row("needs_met", 0, 0, 0, 0, 0, None),
        row("stepped_down_to_school", 0, 0, 0, 0, 0, None),
    ]


async def test_the_report_for_one_school(client: httpx.AsyncClient, data: Sustained) -> None:
    """School S leaves out I (a child known only by name: no school)."""
    school_rows = [
        row(None, 8, 4, 2, 1, 2, 50.0),
        row("needs_met", 6, 3, 1, 1, 1, 50.0),
        row("stepped_down_to_school", 2, 1, 1, 0, 1, 50.0),
    ]
    school_id = data.school["id"]
    body = await report(client, data.la_manager, **data.period, school_id=school_id)
    assert body["scope"]["school_id"] == school_id
    assert body["rows"] == school_rows
    mine = await report(client, data.school_manager, **data.period)
    assert mine["rows"] == school_rows


async def test_small_numbers_are_withheld(client: httpx.AsyncClient, data: Sustained) -> None:
    """With `suppress_below=3`: the 1s and 2s go; the reasons add up to the total, so in
    cases closed (9 = 7 + 2) and sustained (4 = 3 + 1) the lone withheld stepped-down figure
    takes needs met's with it; re-referred (3 = 2 + 1) and the rest already hide two or more.
    A rate goes with its counts."""
    body = await report(client, data.la_manager, **data.period, suppress_below="3")
    withheld = {(w["row"], w["column"]) for w in body["withheld"]}
    assert withheld == {
        (0, "new_flag"),
        (0, "stepped_up"),
        *((1, c) for c in COLUMNS[1:] if c != "reason"),
        *((2, c) for c in ("cases_closed", "sustained", "re_referred", "stepped_up")),
        (2, "sustained_rate"),
    }
    assert body["rows"] == [
        row(None, 9, 4, 3, None, None, 44.4),
        row("needs_met", None, None, None, None, None, None),
        row("stepped_down_to_school", None, None, None, 0, None, None),
    ]
    response = await client.get(
        REPORT,
        params={**data.period, "suppress_below": "3"},
        headers={**data.la_manager, "Accept": "text/csv"},
    )
    assert list(csv.reader(io.StringIO(response.text)))[1:] == [
        ["", "9", "4", "3", "c", "c", "44.4"],
        ["needs_met", "c", "c", "c", "c", "c", "c"],
        ["stepped_down_to_school", "c", "c", "c", "0", "c", "c"],
    ]


async def test_the_report_needs_reports_read_and_is_within_reach(
    client: httpx.AsyncClient, world: World, data: Sustained
) -> None:
    refused = await client.get(REPORT, params=data.period, headers=data.practitioner)
    assert_problem(refused, 403, "insufficient-scope")
    assert (await client.get(REPORT, params=data.period)).status_code == 401
    # LA 303 sees its own case (nothing followed it) and none of LA 202's.
    far = await world.headers(await world.staff("manager", la_code="303"))
    assert (await report(client, far, **data.period))["rows"] == [
        row(None, 1, 1, 0, 0, 0, 100.0),
        row("needs_met", 1, 1, 0, 0, 0, 100.0),
        row("stepped_down_to_school", 0, 0, 0, 0, 0, None),
    ]
    assert_problem(
        await client.get(
            REPORT, params={**data.period, "school_id": data.school["id"]}, headers=far
        ),
        404,
        "not-found",
    )
