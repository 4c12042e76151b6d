"""Family plans: outcome categories and measure instruments, goals and their reviews (0-10
scaling, the review timetable and the overdue list), contacts and interventions under their
consent and safety rules, re-integration timetables worked out by hand, measures on scored
instruments, signposts to the service directory with their status history, and how all of
it reaches the case chronology and the audit trail."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from tests.builders.api import assert_problem, created, items
from tests.builders.casework import (
    CONSENT,
    AuditTrail,
    Family,
    add_goal,
    add_review,
    add_to_case,
    casework,
    chronology,
    family,
    goal_body,
    list_cases,
    open_case,
    open_case_since,
    patch_case,
    positions,
    read_case,
    request_closure,
    review_body,
    route,
)
from tests.builders.clock import days_ago, today
from tests.builders.schools import make_school
from tests.conftest import World, settings_for

DEFAULT_CATEGORIES = {
    "parenting_improved",
    "emotional_warmth_increased",
    "parent_mental_health_stable",
    "child_mental_health_stable",
    "parent_school_relationship_improved",
    "debt_managed",
    "school_attendance_managed",
    "send_support_in_place",
    "returned_to_education",
    "physical_health_improved",
    "separated_family_issues_reduced",
    "relationship_conflict_reduced",
    "not_excluded_from_school",
    "self_esteem_improved",
    "antisocial_behaviour_reduced",
    "substance_misuse_stable",
    "ehcp_in_place",
    "neet_to_eet",
}
WELLBEING_DOMAINS = ["happiness", "confidence", "friendships", "family", "school", "health"]
FAMILY_STAR_DOMAINS = [
    "physical_health",
    "wellbeing",
    "meeting_emotional_needs",
    "keeping_children_safe",
    "social_networks",
    "education_and_learning",
    "boundaries_and_behaviour",
    "family_routine",
    "home_and_money",
    "progress_to_work",
]
INTERVENTION_TYPES = [
    "planned_home_visit",
    "doorstep_visit",
    "telephone_meeting",
    "video_meeting",
    "one_to_one_session",
    "group_session",
    "school_pick_up",
    "reintegration_step",
    "therapeutic_session",
    "enrichment_activity",
    "practical_support",
    "multi_agency_meeting",
    "signs_of_safety_meeting",
    "letter",
]
PLAN_ROUTES = ("goals", "reviews", "interventions", "measures", "signposts")


# --- dates --------------------------------------------------------------------------------


def moment(days: float = 0, hours: float = 0) -> str:
    """An ISO date-time that long before now (negative: after now)."""
    return (datetime.now(UTC) - timedelta(days=days, hours=hours)).isoformat()


# --- helpers ------------------------------------------------------------------------------


async def post(
    http: httpx.AsyncClient, headers: dict[str, str], case_id: str, what: str, body: Any
) -> httpx.Response:
    return await http.post(route(case_id, what), json=body, headers=headers)


async def listed(
    http: httpx.AsyncClient, headers: dict[str, str], case_id: str, what: str, **params: Any
) -> list[dict[str, Any]]:
    return await items(http, route(case_id, what), headers, **params)


def contact_body(child_ids: list[str], **fields: Any) -> dict[str, Any]:
    return {
        "type": "one_to_one_session",
        "occurred_at": moment(days=1),
        "minutes": 50,
        "location": "school",
        "participants": ["Child0 Example", "Learning mentor"],
        "child_ids": child_ids,
        "child_seen": bool(child_ids),
        "actions": [],
        **fields,
    }


def measure_body(
    child_id: str, instrument: str, score: float, measured_on: date | None = None, **fields: Any
) -> dict[str, Any]:
    return {
        "child_id": child_id,
        "instrument": instrument,
        "score": score,
        "measured_on": (measured_on or days_ago(3)).isoformat(),
        **fields,
    }


def steps(*plan: tuple[date, float]) -> list[dict[str, Any]]:
    return [{"starts_on": d.isoformat(), "planned_hours": h} for d, h in plan]


async def put_timetable(
    http: httpx.AsyncClient, headers: dict[str, str], case_id: str, child_id: str, body: Any
) -> httpx.Response:
    return await http.put(route(case_id, f"timetables/{child_id}"), json=body, headers=headers)


async def get_timetable(
    http: httpx.AsyncClient, headers: dict[str, str], case_id: str, child_id: str
) -> httpx.Response:
    return await http.get(route(case_id, f"timetables/{child_id}"), headers=headers)


async def make_service(
    world: World, name: str = "Riverside Family Hub parenting group"
) -> dict[str, Any]:
    """A service in the directory, written through its own API."""
    writer = await world.client_headers("directory:write", la_code="202")
    body = {
        "name": name,
        "description": "Eight weekly sessions for parents of primary-age children.",
        "status": "active",
    }
    return await created(world.http, "/v1/directory/services", body, writer)


async def patch_signpost(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    case_id: str,
    signpost_id: str,
    status: str,
    note: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"status": status, **({"note": note} if note is not None else {})}
    return await http.patch(route(case_id, f"signposts/{signpost_id}"), json=body, headers=headers)


async def valid_writes(
    http: httpx.AsyncClient, world: World, fam: Family
) -> dict[str, tuple[str, str, Any]]:
    """One good write per route of the case: (method, url, body)."""
    goal = await add_goal(http, fam.headers, fam.id)
    service = await make_service(world)
    return {
        "goals": ("POST", route(fam.id, "goals"), goal_body("parenting_improved")),
        "reviews": ("POST", route(fam.id, "reviews"), review_body(days_ago(1), {goal["id"]: 5})),
        "interventions": ("POST", route(fam.id, "interventions"), contact_body([fam.child])),
        "timetables": (
            "PUT",
            route(fam.id, f"timetables/{fam.child}"),
            {"steps": steps((days_ago(7), 10), (today() + timedelta(days=7), 32.5))},
        ),
        "measures": (
            "POST",
            route(fam.id, "measures"),
            measure_body(fam.child, "reading_age", 8.5),
        ),
        "signposts": (
            "POST",
            route(fam.id, "signposts"),
            {"service_id": service["id"], "child_id": fam.child, "reason": "Parenting support"},
        ),
    }


# --- reference data -----------------------------------------------------------------------


async def test_default_categories_and_instruments(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client, pupils=1)
    other_client = await world.client_headers("attendance:read")
    for headers in (work.headers, other_client):
        response = await client.get("/v1/outcome-categories", headers=headers)
        assert response.status_code == 200, response.text
        categories = response.json()["items"]
        assert {c["code"] for c in categories} == DEFAULT_CATEGORIES
        for category in categories:
            assert category["active"] is True
            assert category["label"]

        response = await client.get("/v1/measure-instruments", headers=headers)
        assert response.status_code == 200, response.text
        instruments = {i["code"]: i for i in response.json()["items"]}
    assert set(instruments) == {"reading_age", "wellbeing_profile", "family_star"}
    reading = instruments["reading_age"]
    assert (reading["min_score"], reading["max_score"], reading["unit"]) == (0, 18, "years")
    assert not reading["domains"]
    wellbeing = instruments["wellbeing_profile"]
    assert (wellbeing["min_score"], wellbeing["max_score"]) == (0, 10)
    assert sorted(wellbeing["domains"]) == sorted(WELLBEING_DOMAINS)
    star = instruments["family_star"]
    assert (star["min_score"], star["max_score"]) == (1, 10)
    assert sorted(star["domains"]) == sorted(FAMILY_STAR_DOMAINS)
    assert "attendance" not in instruments
    for reference in ("/v1/outcome-categories", "/v1/measure-instruments"):
        assert (await client.get(reference)).status_code == 401


async def test_an_admin_adds_a_category(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    admin = await world.client_headers("admin", la_code="202")
    new = {"code": "housing_secured", "label": "Housing secured"}
    response = await client.post("/v1/outcome-categories", json=new, headers=admin)
    assert response.status_code == 201, response.text
    assert response.json()["code"] == "housing_secured"
    assert response.json()["label"] == "Housing secured"
    assert response.json()["active"] is True
    codes = await client.get("/v1/outcome-categories", headers=fam.headers)
    assert {c["code"] for c in codes.json()["items"]} == DEFAULT_CATEGORIES | {"housing_secured"}

    again = await client.post(
        "/v1/outcome-categories", json={**new, "label": "Other label"}, headers=admin
    )
    assert_problem(again, 409, "conflict")
    default = await client.post(
        "/v1/outcome-categories", json={"code": "debt_managed", "label": "Debt"}, headers=admin
    )
    assert_problem(default, 409, "conflict")
    for headers in (fam.headers, fam.work.manager_headers):
        refused = await client.post(
            "/v1/outcome-categories", json={"code": "pets_rehomed", "label": "x"}, headers=headers
        )
        assert_problem(refused, 403, "insufficient-scope")
    codes = await client.get("/v1/outcome-categories", headers=fam.headers)
    assert "pets_rehomed" not in {c["code"] for c in codes.json()["items"]}

    # The new category is there to plan with.
    goal = await add_goal(client, fam.headers, fam.id, "housing_secured")
    assert goal["outcome_category"] == "housing_secured"


async def test_an_admin_adds_an_instrument(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    admin = await world.client_headers("admin", la_code="202")
    new = {
        "code": "sdq_total",
        "label": "SDQ total difficulties",
        "min_score": 0,
        "max_score": 40,
        "unit": "points",
        "domains": [],
    }
    response = await client.post("/v1/measure-instruments", json=new, headers=admin)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert {k: answer[k] for k in ("code", "label", "min_score", "max_score", "unit")} == {
        k: new[k] for k in ("code", "label", "min_score", "max_score", "unit")
    }
    assert not answer["domains"]
    instruments = await client.get("/v1/measure-instruments", headers=fam.headers)
    assert "sdq_total" in {i["code"] for i in instruments.json()["items"]}

    for duplicate in (new, {**new, "code": "reading_age"}):
        assert_problem(
            await client.post("/v1/measure-instruments", json=duplicate, headers=admin),
            409,
            "conflict",
        )
    for headers in (fam.headers, fam.work.manager_headers):
        refused = await client.post(
            "/v1/measure-instruments", json={**new, "code": "boxall_profile"}, headers=headers
        )
        assert_problem(refused, 403, "insufficient-scope")

    # Measures use the new instrument and its range.
    measure = await add_to_case(
        client, fam.headers, fam.id, "measures", measure_body(fam.child, "sdq_total", 12)
    )
    assert (measure["instrument"], measure["score"], measure["domain"]) == ("sdq_total", 12, None)
    too_high = await post(
        client, fam.headers, fam.id, "measures", measure_body(fam.child, "sdq_total", 41)
    )
    assert_problem(too_high, 422, "validation-failed")


# --- goals --------------------------------------------------------------------------------


async def test_goals_are_created_and_listed_in_order(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    due = (today() + timedelta(days=60)).isoformat()
    response = await post(
        client,
        fam.headers,
        fam.id,
        "goals",
        goal_body(
            "school_attendance_managed",
            title="Sam gets to school by 8:45 every day",
            child_id=fam.child,
            owner="Alex Example (mother)",
            due=due,
        ),
    )
    assert response.status_code == 201, response.text
    goal = response.json()
    assert goal["id"]
    assert goal["case_id"] == fam.id
    assert goal["title"] == "Sam gets to school by 8:45 every day"
    assert goal["outcome_category"] == "school_attendance_managed"
    assert goal["child_id"] == fam.child
    assert goal["owner"] == "Alex Example (mother)"
    assert goal["due"] == due
    assert goal["created_at"]
    assert goal["created_by"] == fam.actor
    assert (goal["first_score"], goal["latest_score"]) == (None, None)

    family_goal = await add_goal(client, fam.headers, fam.id, "debt_managed", title="Rent arrears")
    assert (family_goal["child_id"], family_goal["owner"], family_goal["due"]) == (
        None,
        None,
        None,
    )
    sibling_goal = await add_goal(
        client, fam.headers, fam.id, "self_esteem_improved", child_id=fam.sibling
    )
    items = await listed(client, fam.headers, fam.id, "goals")
    assert [g["id"] for g in items] == [goal["id"], family_goal["id"], sibling_goal["id"]]
    assert items[0] == goal

    # Another family's goals are their own.
    other = await open_case(client, fam.headers, [fam.stranger])
    assert await listed(client, fam.headers, other["id"], "goals") == []


async def test_invalid_goals_are_refused(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    bad_bodies = [
        goal_body("no_such_category"),
        goal_body("School_Attendance_Managed"),
        goal_body(child_id=fam.stranger),  # at the school, not on the case
        goal_body(child_id=str(uuid.uuid4())),
        goal_body(title=""),
        goal_body(title="x" * 301),
        goal_body(owner="x" * 201),
        goal_body(due="next week"),
        {"outcome_category": "debt_managed"},
    ]
    for body in bad_bodies:
        response = await post(client, fam.headers, fam.id, "goals", body)
        assert_problem(response, 422, "validation-failed")
    unknown = await post(client, fam.headers, fam.id, "goals", goal_body("no_such_category"))
    assert "no_such_category" in unknown.text
    assert await listed(client, fam.headers, fam.id, "goals") == []
    longest = await add_goal(client, fam.headers, fam.id, title="x" * 300, owner="y" * 200)
    assert len(longest["title"]) == 300


async def test_writes_to_a_closed_case_are_409(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    writes = await valid_writes(client, world, fam)
    closed = await request_closure(client, fam.work.manager_headers, fam.id)
    assert closed.json()["status"] == "closed", closed.text
    for what, (method, url, body) in writes.items():
        response = await client.request(method, url, json=body, headers=fam.headers)
        assert response.status_code == 409, (what, response.text)
        assert_problem(response, 409, "conflict")
    # The plan can still be read.
    assert len(await listed(client, fam.headers, fam.id, "goals")) == 1
    for what in PLAN_ROUTES:
        await listed(client, fam.headers, fam.id, what)


async def test_a_case_outside_reach_is_404(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    writes = await valid_writes(client, world, fam)
    neighbour = await make_school(world, client, pupils=1)  # same LA, another school
    outsider = await world.headers(await world.staff("practitioner", schools=[neighbour.school]))
    other_la = await world.headers(await world.staff("manager", la_code="303"))
    for headers in (outsider, other_la):
        for what, (method, url, body) in writes.items():
            response = await client.request(method, url, json=body, headers=headers)
            assert response.status_code == 404, (what, response.text)
            assert_problem(response, 404, "not-found")
        for what in PLAN_ROUTES:
            response = await client.get(route(fam.id, what), headers=headers)
            assert_problem(response, 404, "not-found")
    # A case that does not exist is the same 404.
    missing = str(uuid.uuid4())
    assert_problem(await post(client, fam.headers, missing, "goals", goal_body()), 404, "not-found")
    assert_problem(await client.get(route(missing, "goals"), headers=fam.headers), 404)
    # Nothing was written by the outsiders.
    assert len(await listed(client, fam.headers, fam.id, "goals")) == 1


async def test_writing_a_plan_needs_cases_write(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    writes = await valid_writes(client, world, fam)
    dpo = await world.headers(await world.staff("dpo", la_code="202"))
    # A DPO (cases:read) reads the plan...
    goals = await listed(client, dpo, fam.id, "goals")
    assert len(goals) == 1
    for what in PLAN_ROUTES:
        await listed(client, dpo, fam.id, what)
    # ...but may not write it.
    for what, (method, url, body) in writes.items():
        response = await client.request(method, url, json=body, headers=dpo)
        assert response.status_code == 403, (what, response.text)
        assert_problem(response, 403, "insufficient-scope")
    hub = await world.client_headers("referrals:write referrals:read", la_code="202")
    for what in PLAN_ROUTES:
        assert_problem(
            await client.get(route(fam.id, what), headers=hub), 403, "insufficient-scope"
        )
    assert (await client.get(route(fam.id, "goals"))).status_code == 401
    assert len(await listed(client, fam.headers, fam.id, "goals")) == 1


# --- reviews ------------------------------------------------------------------------------


async def test_a_review_keeps_the_scaling_and_each_respondents_view(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    attendance = await add_goal(client, fam.headers, fam.id, child_id=fam.child)
    routine = await add_goal(client, fam.headers, fam.id, "parenting_improved")
    held_on = days_ago(2).isoformat()
    body = {
        "held_on": held_on,
        "worries": "Monday mornings.",
        "working_well": "",
        "next_steps": "Breakfast club from next week.",
        "scores": [
            {
                "goal_id": attendance["id"],
                "score": 6,
                "respondent_scores": {"parent": 5, "child": 7, "practitioner": 6, "school": 4},
            },
            {"goal_id": routine["id"], "score": 0, "respondent_scores": {"parent": 2}},
        ],
    }
    response = await post(client, fam.headers, fam.id, "reviews", body)
    assert response.status_code == 201, response.text
    review = response.json()
    assert review["id"]
    assert review["case_id"] == fam.id
    assert review["held_on"] == held_on
    assert (review["worries"], review["working_well"], review["next_steps"]) == (
        "Monday mornings.",
        "",
        "Breakfast club from next week.",
    )
    assert review["created_at"]
    assert review["created_by"] == fam.actor
    scores = {s["goal_id"]: s for s in review["scores"]}
    assert set(scores) == {attendance["id"], routine["id"]}
    assert scores[attendance["id"]]["score"] == 6
    assert scores[attendance["id"]]["respondent_scores"] == {
        "parent": 5,
        "child": 7,
        "practitioner": 6,
        "school": 4,
    }
    assert scores[routine["id"]]["score"] == 0
    assert scores[routine["id"]]["respondent_scores"]["parent"] == 2
    for absent in ("child", "practitioner", "school"):
        assert scores[routine["id"]]["respondent_scores"].get(absent) is None

    assert await listed(client, fam.headers, fam.id, "reviews") == [review]
    goals = {g["id"]: g for g in await listed(client, fam.headers, fam.id, "goals")}
    # The agreed score is the goal's, not a respondent's.
    assert (goals[attendance["id"]]["first_score"], goals[attendance["id"]]["latest_score"]) == (
        6,
        6,
    )
    assert (goals[routine["id"]]["first_score"], goals[routine["id"]]["latest_score"]) == (0, 0)


async def test_invalid_reviews_are_refused(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    goal = await add_goal(client, fam.headers, fam.id)
    other_case = await open_case(client, fam.headers, [fam.stranger])
    foreign = await add_goal(client, fam.headers, other_case["id"])
    good = review_body(days_ago(1), {goal["id"]: 5})
    score = good["scores"][0]
    bad_bodies = [
        {**good, "scores": [{**score, "score": 11}]},
        {**good, "scores": [{**score, "score": -1}]},
        {**good, "scores": [{**score, "score": 5.5}]},
        {**good, "scores": [{**score, "respondent_scores": {"parent": 11}}]},
        {**good, "scores": [{**score, "respondent_scores": {"child": -1}}]},
        {**good, "scores": [{"goal_id": foreign["id"], "score": 5}]},
        {**good, "scores": [score, {"goal_id": foreign["id"], "score": 5}]},
        {**good, "scores": [{"goal_id": str(uuid.uuid4()), "score": 5}]},
        {**good, "scores": [score, {**score, "score": 6}]},  # the same goal twice
        {**good, "held_on": (today() + timedelta(days=1)).isoformat()},
        {**good, "held_on": "yesterday"},
        {**good, "worries": "x" * 10_001},
    ]
    for body in bad_bodies:
        response = await post(client, fam.headers, fam.id, "reviews", body)
        assert_problem(response, 422, "validation-failed")
    assert await listed(client, fam.headers, fam.id, "reviews") == []
    (unscored,) = await listed(client, fam.headers, fam.id, "goals")
    assert (unscored["first_score"], unscored["latest_score"]) == (None, None)
    assert (await read_case(client, fam.headers, fam.id))[0]["last_review_on"] is None

    # The edges are fine: 0 and 10, today, 10,000 characters.
    edges = review_body(
        today(), {goal["id"]: 10}, worries="x" * 10_000, working_well="", next_steps=""
    )
    assert (await post(client, fam.headers, fam.id, "reviews", edges)).status_code == 201
    zero = review_body(today(), {goal["id"]: 0})
    assert (await post(client, fam.headers, fam.id, "reviews", zero)).status_code == 201


async def test_goal_scores_follow_the_reviews(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    attendance = (await add_goal(client, fam.headers, fam.id))["id"]
    routine = (await add_goal(client, fam.headers, fam.id, "parenting_improved"))["id"]

    async def scores() -> dict[str, tuple[int | None, int | None]]:
        goals = await listed(client, fam.headers, fam.id, "goals")
        return {g["id"]: (g["first_score"], g["latest_score"]) for g in goals}

    second = await add_review(
        client, fam.headers, fam.id, days_ago(30), {attendance: 3, routine: 5}
    )
    assert await scores() == {attendance: (3, 3), routine: (5, 5)}
    third = await add_review(client, fam.headers, fam.id, days_ago(10), {attendance: 6})
    assert await scores() == {attendance: (3, 6), routine: (5, 5)}
    # Recorded late, held first: it becomes the first score, not the latest.
    earliest = await add_review(
        client, fam.headers, fam.id, days_ago(50), {attendance: 1, routine: 8}
    )
    assert await scores() == {attendance: (1, 6), routine: (8, 5)}
    # Held the same day as the latest and recorded after it: it is the latest.
    same_day = await add_review(client, fam.headers, fam.id, days_ago(10), {attendance: 7})
    assert await scores() == {attendance: (1, 7), routine: (8, 5)}

    reviews = await listed(client, fam.headers, fam.id, "reviews")
    held = [r["held_on"] for r in reviews]
    assert held == sorted(held)
    assert [r["id"] for r in reviews[:2]] == [earliest["id"], second["id"]]
    assert {r["id"] for r in reviews[2:]} == {third["id"], same_day["id"]}


async def test_the_case_shows_its_review_timetable(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    goal = (await add_goal(client, fam.headers, fam.id))["id"]
    case, _ = await read_case(client, fam.headers, fam.id)
    opened = datetime.fromisoformat(case["opened_at"]).astimezone(UTC).date()
    assert opened.isoformat() == case["opened_on"] == days_ago(60).isoformat()
    assert case["last_review_on"] is None
    # Before any review the first is due six weeks after the opening: 18 days ago.
    assert case["next_review_due"] == (opened + timedelta(weeks=6)).isoformat()
    assert case["review_overdue"] is True

    await add_review(client, fam.headers, fam.id, days_ago(10), {goal: 4})
    case, _ = await read_case(client, fam.headers, fam.id)
    assert case["last_review_on"] == days_ago(10).isoformat()
    assert case["next_review_due"] == (days_ago(10) + timedelta(weeks=6)).isoformat()
    assert case["review_overdue"] is False

    # An older review recorded later does not move the timetable back.
    await add_review(client, fam.headers, fam.id, days_ago(60), {goal: 2})
    case, _ = await read_case(client, fam.headers, fam.id)
    assert case["last_review_on"] == days_ago(10).isoformat()
    assert case["next_review_due"] == (days_ago(10) + timedelta(weeks=6)).isoformat()
    (in_list,) = await list_cases(client, fam.headers)
    assert (in_list["last_review_on"], in_list["next_review_due"], in_list["review_overdue"]) == (
        case["last_review_on"],
        case["next_review_due"],
        False,
    )


async def test_overdue_reviews_are_listed(client: httpx.AsyncClient, world: World) -> None:
    work = await casework(world, client, pupils=5)
    headers = work.headers

    async def case_reviewed(pupil: str, held_days_ago: int | None) -> str:
        if held_days_ago is None:
            case = await open_case(client, headers, [work.pupil(pupil)])
        else:
            opened = days_ago(held_days_ago)
            case = await open_case_since(client, work, [work.pupil(pupil)], opened)
            goal = await add_goal(client, headers, case["id"])
            await add_review(client, headers, case["id"], days_ago(held_days_ago), {goal["id"]: 4})
        return str(case["id"])

    overdue = await case_reviewed("P0", 60)
    fresh = await case_reviewed("P1", None)
    due_today = await case_reviewed("P2", 42)  # due today: not yet overdue
    a_day_late = await case_reviewed("P3", 43)
    closed = await case_reviewed("P4", 60)
    assert (await request_closure(client, work.manager_headers, closed)).status_code == 200

    case, _ = await read_case(client, headers, overdue)
    assert case["last_review_on"] == days_ago(60).isoformat()
    assert case["next_review_due"] == days_ago(18).isoformat()
    assert case["review_overdue"] is True
    expected = {overdue: True, fresh: False, due_today: False, a_day_late: True, closed: False}
    for case_id, is_overdue in expected.items():
        assert (await read_case(client, headers, case_id))[0]["review_overdue"] is is_overdue
    assert (await read_case(client, headers, due_today))[0]["next_review_due"] == (
        today().isoformat()
    )

    listed_ids = {c["id"] for c in await list_cases(client, headers, review_overdue="true")}
    assert listed_ids == {overdue, a_day_late}
    for item in await list_cases(client, headers, review_overdue="true"):
        assert item["review_overdue"] is True

    # A review today puts the family back on time.
    goal = (await listed(client, headers, overdue, "goals"))[0]["id"]
    await add_review(client, headers, overdue, today(), {goal: 6})
    after, _ = await read_case(client, headers, overdue)
    assert after["review_overdue"] is False
    assert after["next_review_due"] == (today() + timedelta(weeks=6)).isoformat()
    listed_ids = {c["id"] for c in await list_cases(client, headers, review_overdue="true")}
    assert listed_ids == {a_day_late}


async def test_the_review_interval_is_configured(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIAISON_REVIEW_INTERVAL_WEEKS", "8")
    assert settings_for("sqlite+aiosqlite:///unused.db").review_interval_weeks == 8
    for weeks in ("5", "13"):
        monkeypatch.setenv("LIAISON_REVIEW_INTERVAL_WEEKS", weeks)
        with pytest.raises(ValidationError):
            settings_for("sqlite+aiosqlite:///unused.db")
    monkeypatch.delenv("LIAISON_REVIEW_INTERVAL_WEEKS")
    assert settings_for("sqlite+aiosqlite:///unused.db").review_interval_weeks == 6

    fam = await family(client, world)
    goal = (await add_goal(client, fam.headers, fam.id))["id"]
    # 50 days ago: overdue at 6 weeks (due 8 days ago), not at 8 (due in 6 days).
    await add_review(client, fam.headers, fam.id, days_ago(50), {goal: 3})
    case, _ = await read_case(client, fam.headers, fam.id)
    assert (case["next_review_due"], case["review_overdue"]) == (days_ago(8).isoformat(), True)
    settings = fresh_app.state.settings
    weeks = settings.review_interval_weeks
    object.__setattr__(settings, "review_interval_weeks", 8)
    try:
        case, _ = await read_case(client, fam.headers, fam.id)
        assert case["next_review_due"] == (days_ago(50) + timedelta(weeks=8)).isoformat()
        assert case["review_overdue"] is False
        assert await list_cases(client, fam.headers, review_overdue="true") == []
    finally:
        object.__setattr__(settings, "review_interval_weeks", weeks)
    assert [c["id"] for c in await list_cases(client, fam.headers, review_overdue="true")] == [
        fam.id
    ]


# --- contacts and interventions -----------------------------------------------------------


async def test_every_kind_of_contact_is_recorded(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    for n, kind in enumerate(INTERVENTION_TYPES):
        body = contact_body(
            [fam.child],
            type=kind,
            occurred_at=moment(days=20 - n),
            parent_consent_recorded=True,
            risk_assessment_done=True,
            agenda="Attendance, mum's health, next steps",
            record="Agreed a morning routine and a GP appointment.",
        )
        response = await post(client, fam.headers, fam.id, "interventions", body)
        assert response.status_code == 201, (kind, response.text)
    items = await listed(client, fam.headers, fam.id, "interventions")
    assert [i["type"] for i in items] == INTERVENTION_TYPES


async def test_a_contact_and_its_action_plan_round_trip(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    due = (today() + timedelta(days=14)).isoformat()
    occurred = datetime.now(UTC) - timedelta(days=2, hours=3)
    actions = [
        {"action": "Book a GP appointment", "owner": "Alex Example (mother)", "due": due},
        {"action": "Daily check-in at the gate", "owner": "Learning mentor", "done": True},
        {"action": "Send the TAF notes", "owner": "Lead practitioner", "done": False},
    ]
    body = contact_body(
        [fam.child, fam.sibling],
        type="multi_agency_meeting",
        occurred_at=occurred.isoformat(),
        minutes=90,
        location="school",
        participants=["Alex Example (mother)", "SENCo", "School nurse", "Lead practitioner"],
        child_seen=False,
        agenda="1. Attendance 2. Health 3. Actions",
        record="Attendance up to 88%. Nurse to review sleep.",
        actions=actions,
    )
    response = await post(client, fam.headers, fam.id, "interventions", body)
    assert response.status_code == 201, response.text
    contact = response.json()
    assert contact["id"]
    assert contact["case_id"] == fam.id
    for field in (
        "type",
        "minutes",
        "location",
        "participants",
        "child_ids",
        "child_seen",
        "agenda",
        "record",
    ):
        assert contact[field] == body[field], field
    assert datetime.fromisoformat(contact["occurred_at"]) == occurred
    assert contact["actions"] == [
        {
            "action": "Book a GP appointment",
            "owner": "Alex Example (mother)",
            "due": due,
            "done": False,
        },
        {
            "action": "Daily check-in at the gate",
            "owner": "Learning mentor",
            "due": None,
            "done": True,
        },
        {"action": "Send the TAF notes", "owner": "Lead practitioner", "due": None, "done": False},
    ]
    assert contact["created_at"]
    assert contact["created_by"] == fam.actor
    assert await listed(client, fam.headers, fam.id, "interventions") == [contact]


async def test_contacts_are_listed_by_when_they_happened(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    made = {}
    for days in (1, 5, 3):
        body = contact_body([fam.child], occurred_at=moment(days=days))
        made[days] = (await add_to_case(client, fam.headers, fam.id, "interventions", body))["id"]
    items = await listed(client, fam.headers, fam.id, "interventions")
    assert [i["id"] for i in items] == [made[5], made[3], made[1]]


async def test_remote_contact_with_a_child_needs_parent_consent(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    remote = [
        {"type": "telephone_meeting", "location": "phone"},
        {"type": "video_meeting", "location": "online"},
        {"type": "telephone_meeting", "location": "school"},  # by its type
        {"type": "one_to_one_session", "location": "online"},  # by its location
        {"type": "therapeutic_session", "location": "phone"},
    ]
    recorded = 0
    for shape in remote:
        for consent in ({}, {"parent_consent_recorded": False}):
            body = contact_body([fam.child], **shape, **consent)
            response = await post(client, fam.headers, fam.id, "interventions", body)
            assert response.status_code == 422, (shape, consent, response.text)
            assert_problem(response, 422, "validation-failed")
        body = contact_body([fam.child], **shape, parent_consent_recorded=True)
        response = await post(client, fam.headers, fam.id, "interventions", body)
        assert response.status_code == 201, (shape, response.text)
        assert response.json()["parent_consent_recorded"] is True
        recorded += 1

    # A call with only the adults needs no consent for a child.
    adults_only = contact_body(
        [],
        type="telephone_meeting",
        location="phone",
        participants=["Alex Example (mother)", "Lead practitioner"],
    )
    response = await post(client, fam.headers, fam.id, "interventions", adults_only)
    assert response.status_code == 201, response.text
    assert response.json()["child_ids"] == []
    # Nor does seeing the child in person.
    in_person = contact_body([fam.child], type="one_to_one_session", location="school")
    assert (await post(client, fam.headers, fam.id, "interventions", in_person)).status_code == 201
    recorded += 2
    assert len(await listed(client, fam.headers, fam.id, "interventions")) == recorded


async def test_home_visits_need_a_risk_assessment(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    child = [fam.child]
    visits: list[dict[str, Any]] = [
        {"type": "planned_home_visit", "location": "home", "child_ids": child},
        {"type": "doorstep_visit", "location": "home", "child_ids": child},
        {"type": "planned_home_visit", "location": "community", "child_ids": child},  # type
        {"type": "one_to_one_session", "location": "home", "child_ids": child},  # location
        {"type": "practical_support", "location": "home", "child_ids": []},
    ]
    for shape in visits:
        unassessed: list[dict[str, Any]] = [{}, {"risk_assessment_done": False}]
        for assessed in unassessed:
            body = contact_body(**shape, **assessed)
            response = await post(client, fam.headers, fam.id, "interventions", body)
            assert response.status_code == 422, (shape, assessed, response.text)
            assert_problem(response, 422, "validation-failed")
        body = contact_body(**shape, risk_assessment_done=True)
        response = await post(client, fam.headers, fam.id, "interventions", body)
        assert response.status_code == 201, (shape, response.text)
        assert response.json()["risk_assessment_done"] is True
    assert len(await listed(client, fam.headers, fam.id, "interventions")) == len(visits)


async def test_meetings_need_an_agenda_and_a_record(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    for kind in ("multi_agency_meeting", "signs_of_safety_meeting"):
        for missing in ({}, {"agenda": "Attendance"}, {"record": "Agreed actions"}):
            body = contact_body([], type=kind, **missing)
            response = await post(client, fam.headers, fam.id, "interventions", body)
            assert response.status_code == 422, (kind, missing, response.text)
            assert_problem(response, 422, "validation-failed")
        body = contact_body([], type=kind, agenda="Attendance", record="Agreed actions")
        answer = await add_to_case(client, fam.headers, fam.id, "interventions", body)
        assert (answer["agenda"], answer["record"]) == ("Attendance", "Agreed actions")
    # Other contacts need neither.
    plain = await add_to_case(
        client, fam.headers, fam.id, "interventions", contact_body([fam.child])
    )
    assert (plain["agenda"], plain["record"]) == (None, None)


async def test_no_contact_while_consent_is_withdrawn(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    withdrawn = await patch_case(
        client,
        fam.headers,
        fam.id,
        {"consent": {**CONSENT, "given": False, "date": days_ago(1).isoformat()}},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["consent_given"] is False
    contacts = [
        contact_body([fam.child]),
        contact_body([], type="telephone_meeting", location="phone"),
        contact_body([fam.child], type="letter", location="home", risk_assessment_done=True),
        contact_body(
            [], type="multi_agency_meeting", agenda="Consent", record="Family said no for now"
        ),
    ]
    for body in contacts:
        response = await post(client, fam.headers, fam.id, "interventions", body)
        assert response.status_code == 409, (body["type"], response.text)
        assert_problem(response, 409, "conflict")
    assert await listed(client, fam.headers, fam.id, "interventions") == []

    given = await patch_case(
        client, fam.headers, fam.id, {"consent": {**CONSENT, "date": today().isoformat()}}
    )
    assert given.status_code == 200, given.text
    assert given.json()["consent_given"] is True
    for body in contacts:
        response = await post(client, fam.headers, fam.id, "interventions", body)
        assert response.status_code == 201, (body["type"], response.text)
    assert len(await listed(client, fam.headers, fam.id, "interventions")) == len(contacts)


async def test_invalid_contacts_are_refused(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    bad_bodies = [
        contact_body([fam.child], occurred_at=moment(days=-1)),
        contact_body([fam.child], occurred_at=moment(hours=-2)),
        contact_body([fam.child], type="coffee_morning"),
        contact_body([fam.child], type="Planned_Home_Visit", risk_assessment_done=True),
        contact_body([fam.child], location="car"),
        contact_body([fam.child], minutes=1441),
        contact_body([fam.child], minutes=-1),
        contact_body([fam.stranger]),
        contact_body([fam.child, str(uuid.uuid4())]),
        contact_body([fam.child], occurred_at="last Tuesday"),
    ]
    for body in bad_bodies:
        response = await post(client, fam.headers, fam.id, "interventions", body)
        assert_problem(response, 422, "validation-failed")
    assert await listed(client, fam.headers, fam.id, "interventions") == []
    edges = contact_body([fam.child], minutes=1440)
    assert (await post(client, fam.headers, fam.id, "interventions", edges)).status_code == 201
    edges = contact_body([fam.child], minutes=0, occurred_at=moment(hours=0.01))
    assert (await post(client, fam.headers, fam.id, "interventions", edges)).status_code == 201


# --- re-integration timetable -------------------------------------------------------------


async def test_a_timetable_worked_out_by_hand(client: httpx.AsyncClient, world: World) -> None:
    """32.5 hours is full time. 10 h from four weeks ago (10 / 32.5 = 30.8%), 20 h from two
    weeks ago (61.5%, the step running today), 32.5 h from two weeks ahead (100.0%, so full
    time from that date)."""
    fam = await family(client, world)
    started, stepped_up, full = (
        days_ago(28),
        days_ago(14),
        today() + timedelta(days=14),
    )
    body = {"full_time_hours": 32.5, "steps": steps((started, 10), (stepped_up, 20), (full, 32.5))}
    response = await put_timetable(client, fam.headers, fam.id, fam.child, body)
    assert response.status_code == 200, response.text
    expected = {
        "child_id": fam.child,
        "full_time_hours": 32.5,
        "steps": [
            {"starts_on": started.isoformat(), "planned_hours": 10, "percent_of_full_time": 30.8},
            {
                "starts_on": stepped_up.isoformat(),
                "planned_hours": 20,
                "percent_of_full_time": 61.5,
            },
            {"starts_on": full.isoformat(), "planned_hours": 32.5, "percent_of_full_time": 100.0},
        ],
        "current_step": 1,
        "current_hours": 20,
        "on_full_timetable": False,
        "full_time_from": full.isoformat(),
    }
    answer = response.json()
    assert {k: answer[k] for k in expected} == expected
    read = await get_timetable(client, fam.headers, fam.id, fam.child)
    assert read.status_code == 200, read.text
    assert read.json() == answer


async def test_a_timetable_already_at_full_time(client: httpx.AsyncClient, world: World) -> None:
    """Default full time 32.5: 15 h three weeks ago (46.2%), 32.5 h a week ago (100.0%):
    on the full timetable since a week ago."""
    fam = await family(client, world)
    body = {"steps": steps((days_ago(21), 15), (days_ago(7), 32.5))}
    response = await put_timetable(client, fam.headers, fam.id, fam.child, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["full_time_hours"] == 32.5
    assert [s["percent_of_full_time"] for s in answer["steps"]] == [46.2, 100.0]
    assert (answer["current_step"], answer["current_hours"]) == (1, 32.5)
    assert answer["on_full_timetable"] is True
    assert answer["full_time_from"] == days_ago(7).isoformat()

    # 25 h is this child's full time; nothing has started yet.
    later = {
        "full_time_hours": 25,
        "steps": steps((today() + timedelta(days=7), 12.5), (today() + timedelta(days=21), 25)),
    }
    response = await put_timetable(client, fam.headers, fam.id, fam.sibling, later)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["child_id"] == fam.sibling
    assert [s["percent_of_full_time"] for s in answer["steps"]] == [50.0, 100.0]
    assert (answer["current_step"], answer["current_hours"]) == (None, 0)
    assert answer["on_full_timetable"] is False
    assert answer["full_time_from"] == (today() + timedelta(days=21)).isoformat()

    # A step that starts today has started; never reaching full time leaves it null.
    starting = {"full_time_hours": 25, "steps": steps((days_ago(7), 5), (today(), 12))}
    answer = (await put_timetable(client, fam.headers, fam.id, fam.sibling, starting)).json()
    assert (answer["current_step"], answer["current_hours"]) == (1, 12)
    assert [s["percent_of_full_time"] for s in answer["steps"]] == [20.0, 48.0]
    assert (answer["on_full_timetable"], answer["full_time_from"]) == (False, None)


async def test_timetable_rules_and_replacement(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    missing = await get_timetable(client, fam.headers, fam.id, fam.child)
    assert_problem(missing, 404, "not-found")

    first_plan = {"steps": steps((days_ago(14), 10), (days_ago(7), 20))}
    response = await put_timetable(client, fam.headers, fam.id, fam.child, first_plan)
    assert response.status_code == 200, response.text

    bad_bodies = [
        {"steps": steps((days_ago(7), 10), (days_ago(7), 20))},  # the same date twice
        {"steps": steps((days_ago(7), 10), (days_ago(14), 20))},  # going back
        {"steps": steps((days_ago(7), 33))},  # above the default 32.5
        {"full_time_hours": 25, "steps": steps((days_ago(7), 10), (today(), 25.5))},
        {"steps": steps((days_ago(7), -1))},
        {"full_time_hours": 0.5, "steps": steps((days_ago(7), 0.5))},
        {"full_time_hours": 61, "steps": steps((days_ago(7), 10))},
        {"steps": []},
        {"steps": steps(*[(days_ago(60) + timedelta(days=n), 10) for n in range(53)])},
    ]
    for body in bad_bodies:
        response = await put_timetable(client, fam.headers, fam.id, fam.child, body)
        assert_problem(response, 422, "validation-failed")
    for child in (fam.stranger, str(uuid.uuid4())):
        response = await put_timetable(client, fam.headers, fam.id, child, first_plan)
        assert_problem(response, 422, "validation-failed")
    kept = (await get_timetable(client, fam.headers, fam.id, fam.child)).json()
    assert [s["planned_hours"] for s in kept["steps"]] == [10, 20]

    # A PUT replaces the whole timetable.
    replacement = {
        "full_time_hours": 30,
        "steps": steps((days_ago(3), 15), (today() + timedelta(days=11), 30)),
    }
    response = await put_timetable(client, fam.headers, fam.id, fam.child, replacement)
    assert response.status_code == 200, response.text
    read = (await get_timetable(client, fam.headers, fam.id, fam.child)).json()
    assert read["full_time_hours"] == 30
    assert [(s["starts_on"], s["planned_hours"]) for s in read["steps"]] == [
        (days_ago(3).isoformat(), 15),
        ((today() + timedelta(days=11)).isoformat(), 30),
    ]
    assert (read["current_step"], read["current_hours"]) == (0, 15)
    # The sibling still has none; 52 steps is the most.
    assert_problem(await get_timetable(client, fam.headers, fam.id, fam.sibling), 404)
    longest = {"steps": steps(*[(days_ago(60) + timedelta(days=n), 10) for n in range(52)])}
    response = await put_timetable(client, fam.headers, fam.id, fam.sibling, longest)
    assert response.status_code == 200, response.text
    assert len(response.json()["steps"]) == 52


# --- measures -----------------------------------------------------------------------------


async def test_a_measure_on_each_instrument(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    bodies = [
        measure_body(fam.child, "reading_age", 9.5, days_ago(20)),
        measure_body(fam.child, "wellbeing_profile", 7, days_ago(10), domain="happiness"),
        measure_body(fam.sibling, "family_star", 6, days_ago(5), domain="family_routine"),
    ]
    made = []
    for body in bodies:
        response = await post(client, fam.headers, fam.id, "measures", body)
        assert response.status_code == 201, response.text
        measure = response.json()
        assert measure["id"]
        assert measure["case_id"] == fam.id
        assert measure["child_id"] == body["child_id"]
        assert measure["instrument"] == body["instrument"]
        assert measure["domain"] == body.get("domain")
        assert measure["score"] == body["score"]
        assert measure["measured_on"] == body["measured_on"]
        assert measure["created_at"]
        assert measure["created_by"] == fam.actor
        made.append(measure)
    assert await listed(client, fam.headers, fam.id, "measures") == made


async def test_invalid_measures_are_refused(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    child = fam.child
    bad_bodies = [
        measure_body(child, "family_star", 6),  # needs a domain
        measure_body(child, "family_star", 6, domain="happiness"),  # not one of its own
        measure_body(child, "wellbeing_profile", 6),
        measure_body(child, "wellbeing_profile", 6, domain="family_routine"),
        measure_body(child, "reading_age", 9, domain="happiness"),  # has no domains
        measure_body(child, "reading_age", 18.5),
        measure_body(child, "reading_age", -0.5),
        measure_body(child, "family_star", 0, domain="wellbeing"),
        measure_body(child, "family_star", 11, domain="wellbeing"),
        measure_body(child, "wellbeing_profile", 11, domain="school"),
        measure_body(child, "wellbeing_profile", -1, domain="school"),
        measure_body(child, "sdq_total", 12),
        measure_body(child, "attendance", 92.5),  # comes from the attendance data
        measure_body(child, "reading_age", 9, today() + timedelta(days=1)),
        measure_body(fam.stranger, "reading_age", 9),
        measure_body(str(uuid.uuid4()), "reading_age", 9),
        {k: v for k, v in measure_body(child, "reading_age", 9).items() if k != "child_id"},
    ]
    for body in bad_bodies:
        response = await post(client, fam.headers, fam.id, "measures", body)
        assert_problem(response, 422, "validation-failed")
    assert await listed(client, fam.headers, fam.id, "measures") == []

    # The ends of each range are in it.
    edges = [
        measure_body(child, "reading_age", 0),
        measure_body(child, "reading_age", 18),
        measure_body(child, "family_star", 1, domain="wellbeing"),
        measure_body(child, "family_star", 10, domain="progress_to_work"),
        measure_body(child, "wellbeing_profile", 0, domain="health", measured_on=today()),
        measure_body(child, "wellbeing_profile", 10, domain="health"),
    ]
    for body in edges:
        response = await post(client, fam.headers, fam.id, "measures", body)
        assert response.status_code == 201, (body, response.text)


async def test_measures_filter_by_child_and_instrument(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    made = {}
    for key, body in {
        "c_read_10": measure_body(fam.child, "reading_age", 8.0, days_ago(10)),
        "c_read_40": measure_body(fam.child, "reading_age", 7.5, days_ago(40)),
        "c_well_5": measure_body(fam.child, "wellbeing_profile", 6, days_ago(5), domain="school"),
        "s_read_20": measure_body(fam.sibling, "reading_age", 6.5, days_ago(20)),
    }.items():
        made[key] = (await add_to_case(client, fam.headers, fam.id, "measures", body))["id"]

    async def ids(**params: str) -> list[str]:
        return [m["id"] for m in await listed(client, fam.headers, fam.id, "measures", **params)]

    assert await ids() == [made[k] for k in ("c_read_40", "s_read_20", "c_read_10", "c_well_5")]
    assert await ids(child_id=fam.child) == [
        made[k] for k in ("c_read_40", "c_read_10", "c_well_5")
    ]
    assert await ids(child_id=fam.sibling) == [made["s_read_20"]]
    assert await ids(instrument="reading_age") == [
        made[k] for k in ("c_read_40", "s_read_20", "c_read_10")
    ]
    assert await ids(child_id=fam.child, instrument="reading_age") == [
        made["c_read_40"],
        made["c_read_10"],
    ]
    assert await ids(instrument="family_star") == []


# --- signposts ----------------------------------------------------------------------------


async def test_a_signpost_starts_as_a_suggestion(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    service = await make_service(world, "Riverside Family Hub parenting group")
    body = {
        "service_id": service["id"],
        "child_id": fam.child,
        "reason": "Mum asked for help with bedtime routines.",
    }
    response = await post(client, fam.headers, fam.id, "signposts", body)
    assert response.status_code == 201, response.text
    signpost = response.json()
    assert signpost["id"]
    assert signpost["case_id"] == fam.id
    assert signpost["service_id"] == service["id"]
    assert signpost["service_name"] == "Riverside Family Hub parenting group"
    assert signpost["child_id"] == fam.child
    assert signpost["reason"] == body["reason"]
    assert signpost["status"] == "suggested"
    assert signpost["created_at"]
    (entry,) = signpost["history"]
    assert entry["status"] == "suggested"
    assert entry["by"] == fam.actor
    assert entry["at"]

    whole_family = await add_to_case(
        client,
        fam.headers,
        fam.id,
        "signposts",
        {"service_id": service["id"], "reason": "Debt advice for the household."},
    )
    assert whole_family["child_id"] is None
    assert [s["id"] for s in await listed(client, fam.headers, fam.id, "signposts")] == [
        signpost["id"],
        whole_family["id"],
    ]

    for bad in (
        {**body, "service_id": str(uuid.uuid4())},
        {**body, "service_id": "not-a-service"},
        {**body, "child_id": fam.stranger},
    ):
        response = await post(client, fam.headers, fam.id, "signposts", bad)
        assert_problem(response, 422, "validation-failed")
    assert len(await listed(client, fam.headers, fam.id, "signposts")) == 2


ALLOWED_PATHS = [
    ["referred", "engaged"],
    ["referred", "declined"],
    ["referred", "no_response"],
    ["referred", "waitlisted", "engaged"],
    ["referred", "waitlisted", "declined"],
    ["referred", "waitlisted", "no_response"],
    ["declined"],
    ["no_response"],
]


async def test_every_allowed_signpost_transition(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    service = await make_service(world)
    for path in ALLOWED_PATHS:
        signpost = await add_to_case(
            client,
            fam.headers,
            fam.id,
            "signposts",
            {"service_id": service["id"], "child_id": fam.child, "reason": "Support"},
        )
        for status in path:
            note = f"Now {status}"
            response = await patch_signpost(
                client, fam.headers, fam.id, signpost["id"], status, note
            )
            assert response.status_code == 200, (path, status, response.text)
            answer = response.json()
            assert answer["status"] == status
            assert answer["history"][-1]["status"] == status
            assert answer["history"][-1]["note"] == note
            assert answer["history"][-1]["by"] == fam.actor
        history = answer["history"]
        assert [h["status"] for h in history] == ["suggested", *path], path
        times = [datetime.fromisoformat(h["at"]) for h in history]
        assert times == sorted(times)
        assert all(t.date() in (today(), today() - timedelta(days=1)) for t in times), times
    statuses = [s["status"] for s in await listed(client, fam.headers, fam.id, "signposts")]
    assert statuses == [path[-1] for path in ALLOWED_PATHS]

    # The note is optional.
    signpost = await add_to_case(
        client, fam.headers, fam.id, "signposts", {"service_id": service["id"], "reason": "x"}
    )
    response = await patch_signpost(client, fam.headers, fam.id, signpost["id"], "referred")
    assert response.status_code == 200, response.text
    assert response.json()["history"][-1]["note"] is None


FORBIDDEN = [
    ([], ["engaged", "waitlisted", "suggested"]),
    (["referred"], ["suggested", "referred"]),
    (["referred", "waitlisted"], ["referred", "waitlisted", "suggested"]),
    (["referred", "engaged"], ["referred", "declined", "no_response", "waitlisted", "engaged"]),
    (["declined"], ["referred", "engaged", "suggested"]),
    (["no_response"], ["referred", "waitlisted", "engaged"]),
]


async def test_forbidden_signpost_transitions_are_409(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    service = await make_service(world)
    for path, refused in FORBIDDEN:
        signpost = await add_to_case(
            client,
            fam.headers,
            fam.id,
            "signposts",
            {"service_id": service["id"], "reason": "Support"},
        )
        for status in path:
            response = await patch_signpost(client, fam.headers, fam.id, signpost["id"], status)
            assert response.status_code == 200, response.text
        for status in refused:
            response = await patch_signpost(client, fam.headers, fam.id, signpost["id"], status)
            assert response.status_code == 409, (path, status, response.text)
            assert_problem(response, 409, "conflict")
            assert response.json().get("detail"), response.text
        (now,) = [
            s
            for s in await listed(client, fam.headers, fam.id, "signposts")
            if s["id"] == signpost["id"]
        ]
        assert now["status"] == (path[-1] if path else "suggested")
        assert [h["status"] for h in now["history"]] == ["suggested", *path]

    missing = await patch_signpost(client, fam.headers, fam.id, str(uuid.uuid4()), "referred")
    assert_problem(missing, 404, "not-found")


# --- chronology and audit -----------------------------------------------------------------


async def test_plan_work_appears_in_the_chronology(client: httpx.AsyncClient, world: World) -> None:
    fam = await family(client, world)
    goal = await add_goal(client, fam.headers, fam.id, child_id=fam.child)
    await add_review(client, fam.headers, fam.id, days_ago(1), {goal["id"]: 4})
    await add_to_case(client, fam.headers, fam.id, "interventions", contact_body([fam.child]))
    timetable = {"steps": steps((days_ago(7), 10), (today() + timedelta(days=7), 32.5))}
    assert (
        await put_timetable(client, fam.headers, fam.id, fam.child, timetable)
    ).status_code == 200
    await add_to_case(
        client, fam.headers, fam.id, "measures", measure_body(fam.child, "reading_age", 8.5)
    )
    service = await make_service(world)
    signpost = await add_to_case(
        client, fam.headers, fam.id, "signposts", {"service_id": service["id"], "reason": "x"}
    )
    moved = await patch_signpost(client, fam.headers, fam.id, signpost["id"], "referred")
    assert moved.status_code == 200, moved.text

    items = await chronology(client, fam.headers, fam.id)
    found = {
        "goal": positions(items, "goal"),
        "review": positions(items, "review"),
        "contact": positions(items, "intervention") + positions(items, "contact"),
        "timetable": positions(items, "timetable"),
        "measure": positions(items, "measure"),
        "signpost": positions(items, "signpost"),
    }
    events = [i["event"] for i in items]
    assert positions(items, "opened"), events
    for what, where in found.items():
        assert where, (what, events)
        for n in where:
            assert items[n]["actor"] == fam.actor, items[n]
            assert items[n]["summary"]
    assert len(found["signpost"]) >= 2, events  # suggested, then referred


def about_reviews(event: dict[str, Any]) -> bool:
    return "review" in event["action"] or "review" in (event["resource_type"] or "")


async def test_reviews_are_audited_with_the_children(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    auditor = await world.client_headers("audit:read", la_code="202")
    goal = await add_goal(client, fam.headers, fam.id, child_id=fam.child)
    new_events = AuditTrail(client, auditor).new_events

    await new_events(fam.child)
    review = await add_review(client, fam.headers, fam.id, days_ago(1), {goal["id"]: 4})
    written = await new_events(fam.child)
    about_review = [e for e in written if about_reviews(e)]
    assert about_review, written
    for event in about_review:
        assert event["actor"] == fam.actor
        assert event["resource_id"] in (fam.id, review["id"])
        assert set(event["pupil_ids"]) >= {fam.child, fam.sibling}
        assert "Child0" not in str(event)
    write_actions = {e["action"] for e in about_review}

    await listed(client, fam.headers, fam.id, "reviews")
    read = [e for e in await new_events(fam.child) if about_reviews(e)]
    assert read, "reading the reviews leaves no event naming the child"
    assert {e["action"] for e in read}.isdisjoint(write_actions)
    for event in read:
        assert set(event["pupil_ids"]) >= {fam.child, fam.sibling}
