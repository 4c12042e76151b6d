"""A case's own review interval (issue 17, item 4): set on opening or by PATCH (2-12 weeks),
defaulting to the service setting; the case's review dates, the overdue list, the caseload
report and the `case.review_overdue` sweep follow it."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import pytest
from fastapi import FastAPI

from app.models.base import utcnow
from app.services.review_overdue import record_overdue_reviews
from tests.builders.api import assert_problem, expect
from tests.builders.casework import (
    add_goal,
    add_review,
    casework,
    chronology,
    list_cases,
    open_case,
    open_case_since,
    patch_case,
    read_case,
)
from tests.builders.clock import days_ago, today
from tests.builders.outbox import recorded
from tests.conftest import World


async def test_a_case_follows_the_service_setting_until_it_has_its_own(
    client: httpx.AsyncClient, world: World
) -> None:
    work = await casework(world, client)
    case = await open_case_since(client, work, [work.pupil("P0")], days_ago(30))
    assert (case["review_interval_weeks"], case["review_interval_is_default"]) == (6, True)
    assert case["next_review_due"] == (days_ago(30) + timedelta(weeks=6)).isoformat()
    assert case["review_overdue"] is False

    # Monthly reviews for this family: four weeks, so the first review was due 2 days ago.
    changed = expect(
        await patch_case(client, work.headers, case["id"], {"review_interval_weeks": 4})
    )
    assert (changed["review_interval_weeks"], changed["review_interval_is_default"]) == (4, False)
    assert changed["next_review_due"] == (days_ago(30) + timedelta(weeks=4)).isoformat()
    assert changed["review_overdue"] is True
    assert [c["id"] for c in await list_cases(client, work.headers, review_overdue="true")] == [
        case["id"]
    ]

    # The change is in the chronology (with before and after) and the audit trail.
    [updated] = [
        e
        for e in await chronology(client, work.headers, case["id"])
        if e["event"] == "case.updated"
    ]
    assert "review interval (every 4 weeks)" in updated["summary"]

    # null returns the case to the service setting.
    back = expect(
        await patch_case(client, work.headers, case["id"], {"review_interval_weeks": None})
    )
    assert (back["review_interval_weeks"], back["review_interval_is_default"]) == (6, True)
    assert back["review_overdue"] is False
    assert await list_cases(client, work.headers, review_overdue="true") == []


async def test_an_interval_given_on_opening(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client)
    case = await open_case(client, work.headers, [work.pupil("P0")], review_interval_weeks=12)
    assert (case["review_interval_weeks"], case["review_interval_is_default"]) == (12, False)
    assert (
        case["next_review_due"]
        == (date.fromisoformat(case["opened_on"]) + timedelta(weeks=12)).isoformat()
    )
    read, _ = await read_case(client, work.headers, case["id"])
    assert read["review_interval_weeks"] == 12


@pytest.mark.parametrize("weeks", [1, 13, 0, -2, 10**20, 4.5, "four"])
async def test_an_interval_out_of_range_is_refused(
    client: httpx.AsyncClient, world: World, weeks: object
) -> None:
    work = await casework(world, client)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    body = assert_problem(
        await patch_case(client, work.headers, case["id"], {"review_interval_weeks": weeks}), 422
    )
    assert any("review_interval_weeks" in e["loc"] for e in body["errors"]), body
    assert_problem(
        await client.post(
            "/v1/cases",
            json={
                "children": [{"pupil_id": work.pupil("P1")}],
                "level_of_need": "targeted_early_help",
                "consent": {"given": True, "given_by": "A parent", "date": "2025-09-01"},
                "review_interval_weeks": weeks,
            },
            headers=work.headers,
        ),
        422,
    )
    unchanged, _ = await read_case(client, work.headers, case["id"])
    assert unchanged["review_interval_weeks"] == 6 and unchanged["version"] == case["version"]


async def test_the_sweep_follows_each_cases_interval(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    work = await casework(world, client)
    settings = fresh_app.state.settings
    monthly = await open_case_since(
        client, work, [work.pupil("P0")], days_ago(30), review_interval_weeks=4
    )
    default = await open_case_since(client, work, [work.pupil("P1")], days_ago(30))
    quarterly = await open_case_since(
        client, work, [work.pupil("P2")], days_ago(70), review_interval_weeks=12
    )

    async def sweep() -> int:
        async with fresh_app.state.session_factory() as session:
            count = await record_overdue_reviews(session, settings, utcnow())
            await session.commit()
            return count

    assert await sweep() == 1
    [event] = await recorded(fresh_app, "case.review_overdue")
    assert event.payload["case_id"] == monthly["id"]
    assert event.payload["review_due_on"] == (days_ago(30) + timedelta(weeks=4)).isoformat()
    assert await sweep() == 0
    del default, quarterly

    # Reviewed 20 days ago: with four weeks, next due in 8 days; nothing late.
    goal = await add_goal(client, work.headers, monthly["id"])
    await add_review(client, work.headers, monthly["id"], days_ago(20), {goal["id"]: 5})
    assert await sweep() == 0
    # Two weeks instead: due 6 days ago, announced once.
    expect(await patch_case(client, work.headers, monthly["id"], {"review_interval_weeks": 2}))
    assert await sweep() == 1
    events = await recorded(fresh_app, "case.review_overdue")
    assert events[-1].payload["review_due_on"] == (days_ago(20) + timedelta(weeks=2)).isoformat()
    assert await sweep() == 0


async def test_the_caseload_report_reads_the_interval_of_the_day(
    client: httpx.AsyncClient, world: World
) -> None:
    """Overdue on a past day by the interval the case had on that day: a change made today
    does not rewrite yesterday's caseload."""
    work = await casework(world, client)
    case = await open_case_since(client, work, [work.pupil("P0")], days_ago(40))
    report = "/v1/reports/caseload"

    def overdue(body: dict[str, object]) -> int:
        [total] = [r for r in body["rows"] if r["lead_practitioner"] == "All lead practitioners"]  # type: ignore[attr-defined,index]
        return int(total["reviews_overdue"])

    yesterday = (today() - timedelta(days=1)).isoformat()
    assert overdue(expect(await client.get(report, headers=work.manager_headers))) == 0
    expect(await patch_case(client, work.headers, case["id"], {"review_interval_weeks": 4}))
    assert overdue(expect(await client.get(report, headers=work.manager_headers))) == 1
    assert (
        overdue(
            expect(
                await client.get(report, params={"as_of": yesterday}, headers=work.manager_headers)
            )
        )
        == 0
    )
