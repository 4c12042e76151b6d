"""The pupil roster: upsert by MIS id with per-row rejections, off-roll, and reads in reach."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.services.upn import check_letter
from tests.builders.api import walk
from tests.builders.schools import pupil, push_roster, upn
from tests.conftest import World


@pytest.fixture
async def school(world: World) -> dict[str, Any]:
    return await world.school()


@pytest.fixture
async def mis(world: World, school: dict[str, Any]) -> dict[str, str]:
    return await world.client_headers("pupils:write", schools=[school])


@pytest.fixture
async def practitioner(world: World, school: dict[str, Any]) -> dict[str, str]:
    return await world.headers(await world.staff("practitioner", schools=[school]))


async def test_first_push_creates_then_repush_is_unchanged(
    client: httpx.AsyncClient, school: dict[str, Any], mis: dict[str, str]
) -> None:
    rows = [pupil(n) for n in range(1, 4)]
    first = await push_roster(client, school, rows, mis)
    assert first.status_code == 200
    assert first.json() == {
        "received": 3, "created": 3, "updated": 0, "unchanged": 0, "off_roll": 0, "rejected": []
    }  # fmt: skip
    again = (await push_roster(client, school, rows, mis)).json()
    assert again["created"] == 0 and again["updated"] == 0 and again["unchanged"] == 3


async def test_changed_rows_are_updated(
    client: httpx.AsyncClient,
    school: dict[str, Any],
    mis: dict[str, str],
    practitioner: dict[str, str],
) -> None:
    await push_roster(client, school, [pupil(1), pupil(2)], mis)
    result = (
        await push_roster(
            client, school, [pupil(1, family_name="Renamed", looked_after=True), pupil(2)], mis
        )
    ).json()
    assert (result["updated"], result["unchanged"]) == (1, 1)
    found = (await client.get("/v1/pupils", params={"upn": upn(1)}, headers=practitioner)).json()
    assert found["items"][0]["family_name"] == "Renamed"
    assert found["items"][0]["looked_after"] is True


async def test_flags_left_out_keep_their_value(
    client: httpx.AsyncClient,
    school: dict[str, Any],
    mis: dict[str, str],
    practitioner: dict[str, str],
) -> None:
    await push_roster(client, school, [pupil(1, young_carer=True, free_school_meals=True)], mis)
    result = (await push_roster(client, school, [pupil(1)], mis)).json()
    assert result["unchanged"] == 1
    item = (await client.get("/v1/pupils", headers=practitioner)).json()["items"][0]
    assert item["young_carer"] is True and item["free_school_meals"] is True
    assert item["forces_family"] is False


async def test_bad_rows_are_rejected_and_good_rows_kept(
    client: httpx.AsyncClient,
    school: dict[str, Any],
    mis: dict[str, str],
    practitioner: dict[str, str],
) -> None:
    bad_letter = "A" if upn(2)[0] != "A" else "B"
    rows = [
        pupil(1),
        pupil(2, upn=bad_letter + upn(2)[1:]),  # wrong check letter
        pupil(3, upn="I80120000500"),  # wrong length
        {k: v for k, v in pupil(4).items() if k != "family_name"},
        pupil(5, date_of_birth=(date.today() + timedelta(days=1)).isoformat()),
        pupil(6, date_of_birth="1970-01-01"),
        pupil(7, year_group="Year 5"),
        pupil(1, given_name="Duplicate"),  # same mis_id as row 0
        pupil(9, unexpected="x"),
        pupil(10, date_of_birth="not-a-date"),
        pupil(11),
    ]
    response = await push_roster(client, school, rows, mis)
    assert response.status_code == 200
    result = response.json()
    assert result["received"] == 11
    assert result["created"] == 2
    rejected = {r["index"]: r["reason"] for r in result["rejected"]}
    assert sorted(rejected) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert "check letter" in rejected[1]
    assert "13 characters" in rejected[2]
    assert rejected[3].startswith("family_name")
    assert "past" in rejected[4]
    assert "younger" in rejected[5]
    assert rejected[6].startswith("year_group")
    assert "more than once" in rejected[7]
    assert rejected[8].startswith("unexpected")
    # Reasons never echo the rejected values (a child's data).
    assert all("Child" not in reason and "1970" not in reason for reason in rejected.values())
    names = [
        p["given_name"]
        for p in (await client.get("/v1/pupils", headers=practitioner)).json()["items"]
    ]
    assert names == ["Child1", "Child11"]


async def test_temporary_and_lowercase_upns(
    client: httpx.AsyncClient, school: dict[str, Any], mis: dict[str, str]
) -> None:
    body = "20220012400A"
    temporary = check_letter(body) + body
    result = (await push_roster(client, school, [pupil(1, upn=temporary.lower())], mis)).json()
    assert result["created"] == 1, result


async def test_scottish_schools_do_not_take_upns(client: httpx.AsyncClient, world: World) -> None:
    school = await world.school(jurisdiction="scotland", code="5244439")
    mis = await world.client_headers("pupils:write", schools=[school])
    result = (await push_roster(client, school, [pupil(1), pupil(2, upn=None)], mis)).json()
    assert result["created"] == 1
    assert "Scotland" in result["rejected"][0]["reason"]


async def test_full_push_takes_missing_pupils_off_roll_and_back(
    client: httpx.AsyncClient,
    school: dict[str, Any],
    mis: dict[str, str],
    practitioner: dict[str, str],
) -> None:
    await push_roster(client, school, [pupil(1), pupil(2), pupil(3)], mis)
    # Pupil 3's row is rejected but named: it stays on roll. Pupil 2 is gone.
    result = (await push_roster(client, school, [pupil(1), pupil(3, upn="bad")], mis)).json()
    assert result["off_roll"] == 1
    items = (await client.get("/v1/pupils", headers=practitioner)).json()["items"]
    assert {p["mis_id"]: p["on_roll"] for p in items} == {
        "MIS-1": True,
        "MIS-2": False,
        "MIS-3": True,
    }
    assert [p["off_roll_at"] is not None for p in items] == [False, True, False]
    on_roll = (
        await client.get("/v1/pupils", params={"on_roll": "true"}, headers=practitioner)
    ).json()
    assert [p["mis_id"] for p in on_roll["items"]] == ["MIS-1", "MIS-3"]
    # Back on roll when the school sends the pupil again.
    result = (await push_roster(client, school, [pupil(1), pupil(2), pupil(3)], mis)).json()
    assert (result["updated"], result["off_roll"]) == (1, 0)


async def test_partial_push_never_takes_pupils_off_roll(
    client: httpx.AsyncClient, school: dict[str, Any], mis: dict[str, str]
) -> None:
    await push_roster(client, school, [pupil(1), pupil(2)], mis)
    result = (await push_roster(client, school, [pupil(3)], mis, mode="partial")).json()
    assert (result["created"], result["off_roll"]) == (1, 0)


async def test_empty_or_malformed_push_is_422(
    client: httpx.AsyncClient, school: dict[str, Any], mis: dict[str, str]
) -> None:
    for body in [{"pupils": []}, {"pupils": "nope"}, {}, {"pupils": [1, 2]}]:
        response = await client.put(f"/v1/schools/{school['id']}/pupils", json=body, headers=mis)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
    response = await client.put(
        f"/v1/schools/{school['id']}/pupils",
        content=b"{not json",
        headers={**mis, "content-type": "application/json"},
    )
    # Not JSON at all: a 400 (issue 10), as the contract declares.
    assert response.status_code == 400
    assert response.json()["type"] == "urn:liaison:problem:bad-request"


async def test_push_needs_scope_and_reach(
    client: httpx.AsyncClient, world: World, school: dict[str, Any]
) -> None:
    other = await world.school(la_code="203")
    la_mis = await world.client_headers("pupils:write", la_code="202")
    assert (await push_roster(client, school, [pupil(1)], la_mis)).status_code == 200
    assert (await push_roster(client, other, [pupil(1)], la_mis)).status_code == 404
    reader = await world.client_headers("pupils:read", la_code="202")
    assert (await push_roster(client, school, [pupil(1)], reader)).status_code == 403


async def test_oversized_roster_is_413(
    client: httpx.AsyncClient, school: dict[str, Any], mis: dict[str, str], fresh_app: FastAPI
) -> None:
    settings = fresh_app.state.settings
    limit = settings.roster_max_pupils
    object.__setattr__(settings, "roster_max_pupils", 2)
    try:
        response = await push_roster(client, school, [pupil(n) for n in range(3)], mis)
    finally:
        object.__setattr__(settings, "roster_max_pupils", limit)
    assert response.status_code == 413
    assert "2 pupils" in response.json()["detail"]


async def test_names_need_cases_read(
    client: httpx.AsyncClient,
    world: World,
    school: dict[str, Any],
    mis: dict[str, str],
    practitioner: dict[str, str],
) -> None:
    await push_roster(client, school, [pupil(1)], mis)
    reader = await world.client_headers("pupils:read", schools=[school])
    item = (await client.get("/v1/pupils", headers=reader)).json()["items"][0]
    assert (
        item["given_name"] is None and item["family_name"] is None and item["date_of_birth"] is None
    )
    assert item["upn"] == upn(1) and item["year_group"] == "5"
    one = (await client.get(f"/v1/pupils/{item['id']}", headers=reader)).json()
    assert one["given_name"] is None
    named = (await client.get(f"/v1/pupils/{item['id']}", headers=practitioner)).json()
    assert (named["given_name"], named["date_of_birth"]) == ("Child1", "2015-03-14")
    response = await client.get("/v1/pupils", params={"name": "child"}, headers=reader)
    assert response.status_code == 403


async def test_filters(
    client: httpx.AsyncClient,
    world: World,
    school: dict[str, Any],
    mis: dict[str, str],
    practitioner: dict[str, str],
) -> None:
    await push_roster(
        client,
        school,
        [
            pupil(1, given_name="Amara", family_name="O'Neil", free_school_meals=True),
            pupil(2, given_name="Ben", family_name="Smith", year_group="6", send=True),
            pupil(
                3, given_name="Cara", family_name="Amarasinghe", free_school_meals=True, send=True
            ),
        ],
        mis,
    )

    async def mis_ids(**params: str) -> list[str]:
        response = await client.get("/v1/pupils", params=params, headers=practitioner)
        assert response.status_code == 200, response.text
        return [p["mis_id"] for p in response.json()["items"]]

    assert await mis_ids(name="amara") == ["MIS-1", "MIS-3"]
    assert await mis_ids(name="o'neil") == ["MIS-1"]
    assert await mis_ids(name="%") == []
    assert await mis_ids(upn=upn(2).lower()) == ["MIS-2"]
    assert await mis_ids(free_school_meals="true") == ["MIS-1", "MIS-3"]
    assert await mis_ids(free_school_meals="true", send="true") == ["MIS-3"]
    assert await mis_ids(send="false") == ["MIS-1"]
    assert await mis_ids(year_group="6") == ["MIS-2"]
    assert await mis_ids(school_id=school["id"]) == ["MIS-1", "MIS-2", "MIS-3"]
    other = await world.school()
    assert await mis_ids(school_id=other["id"]) == []


async def test_reads_are_limited_to_reach(
    client: httpx.AsyncClient, world: World, school: dict[str, Any], mis: dict[str, str]
) -> None:
    other = await world.school(la_code="203")
    other_mis = await world.client_headers("pupils:write", schools=[other])
    await push_roster(client, school, [pupil(1)], mis)
    await push_roster(client, other, [pupil(2)], other_mis)
    ours = await world.headers(await world.staff("practitioner", schools=[school]))
    theirs = await world.headers(await world.staff("practitioner", la_code="203"))
    our_items = (await client.get("/v1/pupils", headers=ours)).json()["items"]
    their_items = (await client.get("/v1/pupils", headers=theirs)).json()["items"]
    assert [p["mis_id"] for p in our_items] == ["MIS-1"]
    assert [p["mis_id"] for p in their_items] == ["MIS-2"]
    response = await client.get(f"/v1/pupils/{their_items[0]['id']}", headers=ours)
    assert response.status_code == 404
    assert response.json()["detail"] == "No such pupil."
    assert (await client.get(f"/v1/pupils/{our_items[0]['id']}", headers=ours)).status_code == 200


async def test_pupil_list_pages(
    client: httpx.AsyncClient,
    school: dict[str, Any],
    mis: dict[str, str],
    practitioner: dict[str, str],
) -> None:
    await push_roster(client, school, [pupil(n) for n in range(1, 8)], mis)
    seen = [p["mis_id"] for p in await walk(client, "/v1/pupils", practitioner, limit=3)]
    assert sorted(seen) == sorted(f"MIS-{n}" for n in range(1, 8))
    assert len(seen) == 7


async def test_identity_changes_are_kept_not_overwritten(
    world: World, client: httpx.AsyncClient, school: dict[str, Any], mis: dict[str, str]
) -> None:
    """The rectification trail: a push that changes a child's names, birth date or UPN keeps
    the values before and after, in order; other changes and repeats add nothing."""
    await push_roster(client, school, [pupil(1), pupil(2)], mis)
    await push_roster(client, school, [pupil(1, family_name="Renamed"), pupil(2)], mis)
    await push_roster(
        client,
        school,
        [
            pupil(1, family_name="Renamed", date_of_birth="2015-03-15", upn=upn(9)),
            pupil(2, year_group="6", looked_after=True),
        ],
        mis,
    )
    await push_roster(client, school, [pupil(1, family_name="Renamed", upn=upn(9))], mis)
    dpo = await world.headers(await world.staff("dpo", schools=[school]))
    found = (await client.get("/v1/pupils", params={"upn": upn(9)}, headers=dpo)).json()
    pupil_id = found["items"][0]["id"]
    trail = await client.get(f"/v1/pupils/{pupil_id}/identity-changes", headers=dpo)
    assert trail.status_code == 200
    changes = [(c["field"], c["previous"], c["current"]) for c in trail.json()["items"]]
    assert changes == [
        ("family_name", "Example", "Renamed"),
        ("date_of_birth", "2015-03-14", "2015-03-15"),
        ("upn", upn(1), upn(9)),
        ("date_of_birth", "2015-03-15", "2015-03-14"),
    ]
    assert {c["source"] for c in trail.json()["items"]} == {"roster"}
    assert all(c["changed_by"].startswith("client:") for c in trail.json()["items"])
    other = (await client.get("/v1/pupils", params={"upn": upn(2)}, headers=dpo)).json()
    untouched = await client.get(
        f"/v1/pupils/{other['items'][0]['id']}/identity-changes", headers=dpo
    )
    assert untouched.json()["items"] == []


async def test_identity_changes_need_the_audit_scope_and_reach(
    world: World, client: httpx.AsyncClient, school: dict[str, Any], mis: dict[str, str]
) -> None:
    await push_roster(client, school, [pupil(1)], mis)
    dpo = await world.headers(await world.staff("dpo", schools=[school]))
    pupil_id = (await client.get("/v1/pupils", headers=dpo)).json()["items"][0]["id"]
    route = f"/v1/pupils/{pupil_id}/identity-changes"
    practitioner = await world.headers(await world.staff("practitioner", schools=[school]))
    assert (await client.get(route, headers=practitioner)).status_code == 403
    elsewhere = await world.school(la_code="303")
    other_dpo = await world.headers(await world.staff("dpo", schools=[elsewhere]))
    assert (await client.get(route, headers=other_dpo)).status_code == 404
    assert (await client.get(route, headers=dpo)).status_code == 200
    trail = await client.get("/v1/audit-events", params={"pupil_id": pupil_id}, headers=dpo)
    assert "pupil.identity_changes.read" in {e["action"] for e in trail.json()["items"]}
