"""Attendance: code tables, the marks push, figures checked by hand, and absence flags."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, text

from app.db import table_of
from app.models.pupil import Pupil
from tests.builders.database import rows
from tests.builders.schools import AUTUMN_2025, Setup, flags, make_school, push_marks
from tests.conftest import World


async def figures(
    http: httpx.AsyncClient, setup: Setup, mis_id: str, start: date, end: date
) -> dict[str, Any]:
    response = await http.get(
        f"/v1/pupils/{setup.pupil_ids[mis_id]}/attendance",
        params={"from": start.isoformat(), "to": end.isoformat()},
        headers=setup.mis,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


# --- code tables --------------------------------------------------------------------------

ENGLAND_2024 = {
    "present": {"/", "\\", "L"},
    "approved_activity": {"K", "V", "P", "W", "B"},
    "authorised_absence": {"C1", "M", "J1", "S", "C2", "C", "T", "R", "I", "E"},
    "unauthorised_absence": {"G", "N", "O", "U"},
    "not_possible": {"D", "X", "Q", "Y1", "Y2", "Y3", "Y4", "Y5", "Y6", "Y7", "Z", "#"},
}


async def test_england_codes_from_august_2024_by_category(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = await world.client_headers("attendance:read")
    response = await client.get(
        "/v1/attendance/codes",
        params={"jurisdiction": "england", "on": "2025-01-06"},
        headers=headers,
    )
    assert response.status_code == 200
    by_category: dict[str, set[str]] = {}
    for code in response.json()["items"]:
        by_category.setdefault(code["category"], set()).add(code["code"])
        assert code["counts_as_possible"] == (code["category"] != "not_possible")
    assert by_category == ENGLAND_2024
    retired = {"H", "J", "Y", "F"}
    assert not retired & set().union(*by_category.values())


async def test_codes_before_the_change_are_the_2006_set(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = await world.client_headers("attendance:read")
    response = await client.get(
        "/v1/attendance/codes",
        params={"jurisdiction": "england", "on": "2024-08-18"},
        headers=headers,
    )
    codes = {c["code"]: c for c in response.json()["items"]}
    assert {"H", "J", "Y"} <= set(codes)
    assert "F" not in codes  # retired in 2013
    assert codes["J"]["category"] == "approved_activity"
    assert codes["H"]["effective_to"] == "2024-08-19"


async def test_wales_and_scotland_tables(client: httpx.AsyncClient, world: World) -> None:
    headers = await world.client_headers("attendance:read")
    wales = await client.get(
        "/v1/attendance/codes", params={"jurisdiction": "wales"}, headers=headers
    )
    by_code = {c["code"]: c["category"] for c in wales.json()["items"]}
    assert by_code["H"] == "authorised_absence"  # still a Welsh code
    assert by_code["N"] == "unauthorised_absence"
    assert by_code["B"] == "approved_activity"
    assert by_code["#"] == "not_possible"
    scotland = await client.get(
        "/v1/attendance/codes", params={"jurisdiction": "scotland"}, headers=headers
    )
    by_code = {c["code"]: c for c in scotland.json()["items"]}
    assert by_code["10"]["category"] == "present"
    assert by_code["11"]["late"] is True
    assert by_code["02"]["counts_as_possible"] is False


async def test_code_tables_are_not_written_through_the_api(
    client: httpx.AsyncClient, world: World
) -> None:
    """A jurisdiction's table applies to every LA in it: only the operator extends it, with
    `liaison reference attendance-code` (tests/test_cli.py), never an LA's admin."""
    admin = await world.headers(await world.staff("admin", la_code="202"))
    new = {
        "jurisdiction": "scotland",
        "code": "31",
        "description": "Unauthorised absence",
        "category": "unauthorised_absence",
        "effective_from": "2019-06-01",
        "code_set": "scotland-local",
    }
    refused = await client.post("/v1/attendance/codes", json=new, headers=admin)
    assert refused.status_code == 405
    assert refused.headers["content-type"] == "application/problem+json"
    codes = await client.get(
        "/v1/attendance/codes", params={"jurisdiction": "scotland"}, headers=admin
    )
    assert "31" not in {c["code"] for c in codes.json()["items"]}


# --- figures ------------------------------------------------------------------------------


async def test_mixed_history_at_59_percent_checked_by_hand(
    client: httpx.AsyncClient, world: World
) -> None:
    """100 possible sessions: 50 present, 4 late before the register closed, 5 approved
    activities (59 attended); 20 authorised; 21 unauthorised, 2 of them late after the
    register closed; and 6 sessions that are not possible (closure, not required).
    59 / 100 = 59.0%; missed 41% is persistent, not severe, absence."""
    setup = await make_school(world, client, pupils=1)
    codes = (
        ["/", "\\"] * 25  # 50 present
        + ["L"] * 4
        + ["V", "P", "B", "K", "W"]
        + ["I"] * 12
        + ["M"] * 4
        + ["C", "R", "T", "E"]  # 20 authorised
        + ["N"] * 2
        + ["O"] * 8
        + ["G"] * 9
        + ["U"] * 2  # 21 unauthorised
        + ["#"] * 4
        + ["X"] * 2
    )
    assert len(codes) == 106
    marks = setup.marks("P0", codes)
    result = await push_marks(client, setup, marks)
    assert result == {
        "received": 106,
        "created": 106,
        "updated": 0,
        "unchanged": 0,
        "rejected": [],
    }
    last = date.fromisoformat(marks[-1]["date"])
    got = await figures(client, setup, "P0", AUTUMN_2025, last)
    assert {k: got[k] for k in got if k.endswith("_sessions")} == {
        "possible_sessions": 100,
        "present_sessions": 54,
        "approved_activity_sessions": 5,
        "authorised_absence_sessions": 20,
        "unauthorised_absence_sessions": 21,
        "late_sessions": 6,
    }
    assert got["attendance_rate"] == 59.0
    assert got["band"] == "persistent_absence"
    assert sum(w["possible_sessions"] for w in got["weeks"]) == 100
    assert got["weeks"][0]["week_start"] == "2025-09-01"
    assert got["weeks"][0]["possible_sessions"] == 10
    assert [t["term"] for t in got["terms"]] == ["autumn"]
    assert got["terms"][0]["academic_year"] == "2025/26"
    assert got["terms"][0]["attendance_rate"] == 59.0


async def test_rates_round_to_one_decimal_and_bands(
    client: httpx.AsyncClient, world: World
) -> None:
    setup = await make_school(world, client, pupils=3)
    await push_marks(
        client,
        setup,
        setup.marks("P0", ["/", "\\", "I"])  # 2 of 3
        + setup.marks("P1", ["/"] * 18 + ["I"] * 2)  # exactly 90%
        + setup.marks("P2", ["/"] * 10 + ["O"] * 10),  # exactly 50%
    )
    end = AUTUMN_2025 + timedelta(days=30)
    p0 = await figures(client, setup, "P0", AUTUMN_2025, end)
    assert (p0["attendance_rate"], p0["band"]) == (66.7, "persistent_absence")
    p1 = await figures(client, setup, "P1", AUTUMN_2025, end)
    assert (p1["attendance_rate"], p1["band"]) == (90.0, "persistent_absence")
    p2 = await figures(client, setup, "P2", AUTUMN_2025, end)
    assert (p2["attendance_rate"], p2["band"]) == (50.0, "severe_absence")
    empty = await figures(client, setup, "P0", date(2024, 1, 1), date(2024, 2, 1))
    assert (empty["possible_sessions"], empty["attendance_rate"], empty["band"]) == (0, None, None)


async def test_terms_split_at_easter(client: httpx.AsyncClient, world: World) -> None:
    setup = await make_school(world, client, pupils=1)
    # Easter Sunday 2026 is 5 April: 2 April is spring, 13 April summer.
    marks = [
        setup.mark("P0", date(2025, 12, 15), "AM", "/"),
        setup.mark("P0", date(2026, 4, 2), "AM", "I"),
        setup.mark("P0", date(2026, 4, 13), "AM", "/"),
    ]
    await push_marks(client, setup, marks)
    got = await figures(client, setup, "P0", date(2025, 8, 1), date(2026, 7, 31))
    terms = {t["term"]: t for t in got["terms"]}
    assert set(terms) == {"autumn", "spring", "summer"}
    assert terms["spring"]["ends"] == "2026-04-05"
    assert terms["spring"]["authorised_absence_sessions"] == 1
    assert terms["summer"]["starts"] == "2026-04-06"


async def test_each_category_counts_in_wales_and_scotland(
    client: httpx.AsyncClient, world: World
) -> None:
    wales = await make_school(
        world, client, pupils=1, jurisdiction="wales", code="6601234", la_code="660"
    )
    await push_marks(client, wales, wales.marks("P0", ["/", "B", "H", "N", "#"]))
    got = await figures(client, wales, "P0", AUTUMN_2025, AUTUMN_2025 + timedelta(days=5))
    assert (
        got["possible_sessions"],
        got["present_sessions"],
        got["approved_activity_sessions"],
        got["authorised_absence_sessions"],
        got["unauthorised_absence_sessions"],
    ) == (4, 1, 1, 1, 1)

    for code, category in (("24", "authorised_absence"), ("31", "unauthorised_absence")):
        await world.attendance_code(
            jurisdiction="scotland",
            code=code,
            description=f"local {category}",
            category=category,
            effective_from="2019-06-01",
            code_set="scotland-local",
        )
    scotland = await make_school(world, client, pupils=1, jurisdiction="scotland", code="5501234")
    await push_marks(client, scotland, scotland.marks("P0", ["10", "11", "12", "24", "31", "02"]))
    got = await figures(client, scotland, "P0", AUTUMN_2025, AUTUMN_2025 + timedelta(days=5))
    assert (
        got["possible_sessions"],
        got["present_sessions"],
        got["approved_activity_sessions"],
        got["authorised_absence_sessions"],
        got["unauthorised_absence_sessions"],
        got["late_sessions"],
    ) == (5, 2, 1, 1, 1, 1)


async def test_late_marks_count_as_late_and_keep_minutes(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    setup = await make_school(world, client, pupils=1)
    await push_marks(
        client,
        setup,
        [
            setup.mark("P0", AUTUMN_2025, "AM", "L", minutes_late=12),
            setup.mark("P0", AUTUMN_2025, "PM", "U", minutes_late=45),
        ],
    )
    got = await figures(client, setup, "P0", AUTUMN_2025, AUTUMN_2025)
    assert (got["present_sessions"], got["unauthorised_absence_sessions"]) == (1, 1)
    assert got["late_sessions"] == 2
    minutes = await rows(fresh_app, "SELECT minutes_late FROM attendance_mark ORDER BY session")
    assert [m for (m,) in minutes] == [12, 45]


async def test_school_view_lists_lowest_attendance_first(
    client: httpx.AsyncClient, world: World
) -> None:
    setup = await make_school(world, client, pupils=3)
    await push_marks(
        client,
        setup,
        setup.marks("P0", ["/"] * 10)
        + setup.marks("P1", ["/"] * 5 + ["I"] * 5)
        + setup.marks("P2", ["/"] * 8 + ["O"] * 2),
    )
    params = {"from": "2025-09-01", "to": "2025-09-30", "limit": "2"}
    url = f"/v1/schools/{setup.school['id']}/attendance"
    first = await client.get(url, params=params, headers=setup.mis)
    assert first.status_code == 200, first.text
    body = first.json()
    ids = {v: k for k, v in setup.pupil_ids.items()}
    assert [ids[i["pupil_id"]] for i in body["items"]] == ["P1", "P2"]
    assert body["items"][0]["attendance_rate"] == 50.0
    second = await client.get(
        url, params={**params, "cursor": body["next_cursor"]}, headers=setup.mis
    )
    assert [ids[i["pupil_id"]] for i in second.json()["items"]] == ["P0"]
    assert second.json()["next_cursor"] is None
    bad = await client.get(url, params={**params, "cursor": "not-a-cursor"}, headers=setup.mis)
    assert bad.status_code == 400


# --- the push -----------------------------------------------------------------------------


async def test_bad_marks_are_rejected_with_reasons_and_good_ones_kept(
    client: httpx.AsyncClient, world: World
) -> None:
    setup = await make_school(world, client, pupils=2)
    today = date.today()
    good = setup.mark("P0", AUTUMN_2025, "AM", "/")
    marks = [
        good,
        setup.mark("NOBODY", AUTUMN_2025, "AM", "/"),
        setup.mark("P1", AUTUMN_2025, "AM", "ZZ"),
        setup.mark("P1", today + timedelta(days=2), "AM", "/"),
        setup.mark("P1", AUTUMN_2025, "EVENING", "/"),
        {k: v for k, v in setup.mark("P1", AUTUMN_2025, "PM", "/").items() if k != "mis_id"},
        setup.mark("P1", AUTUMN_2025, "PM", "H"),  # retired after 18 August 2024
        {**good, "code": "\\"},  # the same session twice
        {**setup.mark("P1", AUTUMN_2025, "PM", "/"), "colour": "blue"},
        "not an object",
        setup.mark("P1", AUTUMN_2025, "PM", "HOME", statutory_code="QQ"),
        setup.mark("P1", AUTUMN_2025, "PM", "\\", comment="Mum phoned"),
    ]
    result = await push_marks(client, setup, marks)
    assert (result["received"], result["created"]) == (12, 2)
    reasons = {r["index"]: r["reason"] for r in result["rejected"]}
    assert sorted(reasons) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert reasons[10].startswith("statutory_code: 'QQ'")
    assert "no such pupil" in reasons[1]
    assert "'ZZ' is not a england attendance code" in reasons[2]
    assert "future" in reasons[3]
    assert reasons[4].startswith("session:")
    assert "mis_id or upn" in reasons[5]
    assert "retired" in reasons[6] and "2024-08-19" in reasons[6]
    assert "index 0" in reasons[7]
    assert "colour" in reasons[8]
    assert "Mum" not in str(result)


async def test_retired_codes_are_accepted_for_dates_before_the_change(
    client: httpx.AsyncClient, world: World
) -> None:
    setup = await make_school(world, client, pupils=1)
    result = await push_marks(
        client,
        setup,
        [
            setup.mark("P0", date(2024, 7, 10), "AM", "H"),
            setup.mark("P0", date(2024, 7, 10), "PM", "J"),
            setup.mark("P0", date(2024, 9, 10), "AM", "J"),
            setup.mark("P0", date(2024, 9, 10), "PM", "Y"),
        ],
    )
    assert result["created"] == 2
    assert [r["index"] for r in result["rejected"]] == [2, 3]
    got = await figures(client, setup, "P0", date(2024, 7, 1), date(2024, 7, 31))
    assert (got["authorised_absence_sessions"], got["approved_activity_sessions"]) == (1, 1)


async def test_school_display_codes_map_to_statutory_codes(
    client: httpx.AsyncClient, world: World
) -> None:
    setup = await make_school(world, client, pupils=1)
    url = f"/v1/schools/{setup.school['id']}/attendance-codes"
    bad = await client.put(
        url, json={"codes": [{"display_code": "SICK", "statutory_code": "QQ"}]}, headers=setup.mis
    )
    assert bad.status_code == 422
    mapped = await client.put(
        url,
        json={"codes": [{"display_code": "SICK", "statutory_code": "I", "description": "Ill"}]},
        headers=setup.mis,
    )
    assert mapped.status_code == 200, mapped.text
    await push_marks(
        client,
        setup,
        [
            setup.mark("P0", AUTUMN_2025, "AM", "SICK"),
            setup.mark("P0", AUTUMN_2025, "PM", "HOME", statutory_code="O"),
        ],
    )
    got = await figures(client, setup, "P0", AUTUMN_2025, AUTUMN_2025)
    assert (got["authorised_absence_sessions"], got["unauthorised_absence_sessions"]) == (1, 1)
    listed = await client.get(url, headers=setup.mis)
    assert listed.json()["items"][0]["display_code"] == "SICK"


async def test_repush_changes_nothing_and_corrections_update(
    client: httpx.AsyncClient, world: World
) -> None:
    setup = await make_school(world, client, pupils=2)
    marks = setup.marks("P0", ["/", "\\", "N", "N"]) + setup.marks("P1", ["/", "\\"])
    first = await push_marks(client, setup, marks)
    assert (first["created"], first["updated"], first["unchanged"]) == (6, 0, 0)
    again = await push_marks(client, setup, marks)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 6)
    corrected = [dict(m) for m in marks]
    corrected[2]["code"] = "I"
    third = await push_marks(client, setup, corrected)
    assert (third["created"], third["updated"], third["unchanged"]) == (0, 1, 5)
    got = await figures(client, setup, "P0", AUTUMN_2025, AUTUMN_2025 + timedelta(days=3))
    assert (got["authorised_absence_sessions"], got["unauthorised_absence_sessions"]) == (1, 1)


async def test_idempotency_key_replays_and_refuses_a_different_body(
    client: httpx.AsyncClient, world: World
) -> None:
    setup = await make_school(world, client, pupils=1)
    marks = setup.marks("P0", ["/", "\\"])
    key = {"Idempotency-Key": "push-2025-09-01"}
    first = await client.post(
        "/v1/attendance/marks", json={"marks": marks}, headers={**setup.mis, **key}
    )
    assert first.status_code == 200
    replay = await client.post(
        "/v1/attendance/marks", json={"marks": marks}, headers={**setup.mis, **key}
    )
    assert replay.status_code == 200
    assert replay.json() == first.json()  # created 2 again: the first answer, replayed
    assert replay.headers["Idempotent-Replayed"] == "true"
    other = await client.post(
        "/v1/attendance/marks", json={"marks": marks[:1]}, headers={**setup.mis, **key}
    )
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"


async def test_marks_for_a_school_outside_reach_are_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    mine = await make_school(world, client, pupils=1)
    theirs = await make_school(world, client, pupils=1)
    intruding = [theirs.mark("P0", AUTUMN_2025, "AM", "O"), mine.mark("P0", AUTUMN_2025, "AM", "/")]
    result = await push_marks(client, mine, intruding)
    assert result["created"] == 1
    assert result["rejected"] == [
        {
            "index": 0,
            "reason": f"school_code: no school {theirs.school['code']!r} within your reach",
        }
    ]
    got = await figures(client, theirs, "P0", AUTUMN_2025, AUTUMN_2025)
    assert got["possible_sessions"] == 0
    # Nor may it read the other school's pupils' figures.
    response = await client.get(f"/v1/pupils/{theirs.pupil_ids['P0']}/attendance", headers=mine.mis)
    assert response.status_code == 404


async def test_ndjson_push_and_a_line_that_is_not_json(
    client: httpx.AsyncClient, world: World
) -> None:
    setup = await make_school(world, client, pupils=1)
    lines = [orjson.dumps(m) for m in setup.marks("P0", ["/", "\\", "/"])]
    lines.insert(1, b"{not json")
    response = await client.post(
        "/v1/attendance/marks",
        content=b"\n".join(lines) + b"\n",
        headers={**setup.mis, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["received"], body["created"]) == (4, 3)
    assert [r["index"] for r in body["rejected"]] == [1]


async def test_too_many_marks_is_413_naming_the_limit(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = await make_school(world, client, pupils=1)
    monkeypatch.setattr(fresh_app.state.settings, "attendance_max_marks", 3)
    marks = setup.marks("P0", ["/"] * 4)
    response = await client.post("/v1/attendance/marks", json={"marks": marks}, headers=setup.mis)
    assert response.status_code == 413
    assert "3 marks" in response.json()["detail"]
    ndjson = b"\n".join(orjson.dumps(m) for m in marks)
    response = await client.post(
        "/v1/attendance/marks",
        content=ndjson,
        headers={**setup.mis, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 413


async def test_malformed_bodies(client: httpx.AsyncClient, world: World) -> None:
    setup = await make_school(world, client, pupils=1)
    for content, content_type, status in (
        (b"{", "application/json", 400),
        (b'{"marks": 3}', "application/json", 422),
        (b'{"marks": [], "extra": 1}', "application/json", 422),
        (b"marks", "text/plain", 415),
    ):
        response = await client.post(
            "/v1/attendance/marks",
            content=content,
            headers={**setup.mis, "Content-Type": content_type},
        )
        assert response.status_code == status, (content, response.text)
        assert response.headers["content-type"] == "application/problem+json"


async def test_scopes(client: httpx.AsyncClient, world: World) -> None:
    setup = await make_school(world, client, pupils=1)
    reader = await world.client_headers("attendance:read", schools=[setup.school])
    response = await client.post(
        "/v1/attendance/marks", json={"marks": setup.marks("P0", ["/"])}, headers=reader
    )
    assert response.status_code == 403
    assert (await client.get("/v1/attendance/flags")).status_code == 401


# --- flags --------------------------------------------------------------------------------


async def test_persistent_and_severe_boundaries_exactly(
    client: httpx.AsyncClient, world: World
) -> None:
    setup = await make_school(world, client, pupils=5)
    await push_marks(
        client,
        setup,
        setup.marks("P0", ["/"] * 18 + ["I"] * 2)  # 10.0% missed: persistent
        + setup.marks("P1", ["/"] * 19 + ["I"] * 2)  # 9.5%: nothing
        + setup.marks("P2", ["/"] * 10 + ["I"] * 10)  # 50.0%: severe and persistent
        + setup.marks("P3", ["/"] * 11 + ["I"] * 10)  # 47.6%: persistent only
        + setup.marks("P4", ["/"] * 9 + ["I"] * 9),  # 50% but under 20 sessions: nothing yet
    )
    raised = {(f["pupil_id"], f["kind"]) for f in await flags(client, setup)}
    ids = setup.pupil_ids
    assert raised == {
        (ids["P0"], "persistent_absence"),
        (ids["P2"], "persistent_absence"),
        (ids["P2"], "severe_absence"),
        (ids["P3"], "persistent_absence"),
    }


async def test_unexplained_run_raises_and_a_correction_resolves(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    setup = await make_school(world, client, pupils=2)
    run = setup.marks("P0", ["/", "\\", "N", "O", "N"])
    await push_marks(client, setup, run + setup.marks("P1", ["/", "N", "N", "\\"]))
    open_flags = await flags(client, setup, status="open")
    assert [(f["pupil_id"], f["kind"]) for f in open_flags] == [
        (setup.pupil_ids["P0"], "unexplained_absence")
    ]
    flag = open_flags[0]
    assert flag["evidence"] == {"consecutive_unexplained_sessions": 3}

    # The school learns the child was ill: the middle mark is corrected.
    run[3]["code"] = "I"
    result = await push_marks(client, setup, run)
    assert result["updated"] == 1
    detail = await client.get(f"/v1/attendance/flags/{flag['id']}", headers=setup.mis)
    assert detail.json()["status"] == "resolved"
    assert [e["event"] for e in detail.json()["history"]] == ["raised", "resolved"]
    assert await flags(client, setup, status="open") == []

    # A fresh run raises a new episode; the old one keeps its history.
    await push_marks(client, setup, setup.marks("P0", ["N", "N", "N"], start=date(2025, 9, 8)))
    episodes = await flags(client, setup, kind="unexplained_absence")
    assert [f["status"] for f in episodes] == ["resolved", "open"]

    # Raising and resolving each queue an event for webhook delivery.
    events = await rows(fresh_app, "SELECT type, payload FROM outbox_event ORDER BY id")
    assert [e[0] for e in events] == [
        "attendance.flag.raised",
        "attendance.flag.resolved",
        "attendance.flag.raised",
    ]
    payload = events[0][1] if isinstance(events[0][1], dict) else orjson.loads(events[0][1])
    assert payload["kind"] == "unexplained_absence"
    assert set(payload) == {"flag_id", "pupil_id", "school_id", "kind", "academic_year"}


async def test_sharp_decline_against_the_pupils_own_rate(
    client: httpx.AsyncClient, world: World
) -> None:
    setup = await make_school(world, client, pupils=2)
    earlier = ["/", "\\"] * 15  # three weeks at 100%
    recent_bad = (["/", "\\"] * 3 + ["I"] * 4) * 4  # four weeks at 60%
    await push_marks(
        client,
        setup,
        setup.marks("P0", earlier + recent_bad) + setup.marks("P1", earlier + ["/"] * 40),
    )
    kinds = {(f["pupil_id"], f["kind"]) for f in await flags(client, setup)}
    assert (setup.pupil_ids["P0"], "sharp_decline") in kinds
    assert not any(p == setup.pupil_ids["P1"] for p, _ in kinds)
    (decline,) = await flags(client, setup, kind="sharp_decline")
    assert decline["evidence"]["earlier_rate"] == 100.0
    assert decline["evidence"]["recent_rate"] == 60.0


async def test_acknowledge_a_flag(client: httpx.AsyncClient, world: World) -> None:
    setup = await make_school(world, client, pupils=1)
    await push_marks(client, setup, setup.marks("P0", ["N", "N", "N"]))
    flag = (await flags(client, setup))[0]
    practitioner = await world.headers(await world.staff("practitioner", schools=[setup.school]))
    url = f"/v1/attendance/flags/{flag['id']}/acknowledge"
    assert (await client.post(url, json={"note": "x"}, headers=setup.mis)).status_code == 403
    done = await client.post(
        url, json={"note": "Home visit booked for Thursday."}, headers=practitioner
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "acknowledged"
    assert body["acknowledged_by"].startswith("staff:")
    assert [e["event"] for e in body["history"]] == ["raised", "acknowledged"]
    again = await client.post(url, json={"note": "again"}, headers=practitioner)
    assert again.status_code == 409
    assert await flags(client, setup, status="open") == []
    assert len(await flags(client, setup, status="acknowledged")) == 1
    outsider = await world.headers(
        await world.staff("practitioner", schools=[await world.school()])
    )
    assert (await client.post(url, json={"note": "n"}, headers=outsider)).status_code == 404
    assert (
        await client.get(f"/v1/attendance/flags/{flag['id']}", headers=outsider)
    ).status_code == 404


async def test_acknowledge_a_flag_into_a_case(client: httpx.AsyncClient, world: World) -> None:
    setup = await make_school(world, client, pupils=1)
    await push_marks(client, setup, setup.marks("P0", ["N", "N", "N"]))
    flag = (await flags(client, setup))[0]
    practitioner = await world.headers(await world.staff("practitioner", schools=[setup.school]))
    opened = await client.post(
        "/v1/cases",
        json={
            "children": [{"pupil_id": setup.pupil_ids["P0"]}],
            "level_of_need": "targeted_early_help",
            "consent": {"given": True, "given_by": "Parent", "date": "2025-09-10"},
        },
        headers=practitioner,
    )
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["id"]
    url = f"/v1/attendance/flags/{flag['id']}/acknowledge"
    unknown = await client.post(
        url, json={"note": "n", "case_id": str(uuid.uuid4())}, headers=practitioner
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["loc"] == ["body", "case_id"]
    done = await client.post(
        url,
        json={"note": "Handled in the family's case.", "case_id": case_id},
        headers=practitioner,
    )
    assert done.status_code == 200, done.text
    assert done.json()["case_id"] == case_id
    chronology = await client.get(f"/v1/cases/{case_id}/chronology", headers=practitioner)
    events = [i["event"] for i in chronology.json()["items"]]
    assert "attendance_flag.raised" in events and "attendance_flag.acknowledged" in events


async def test_flag_list_is_within_reach_and_filters(
    client: httpx.AsyncClient, world: World
) -> None:
    a = await make_school(world, client, pupils=1, la_code="301")
    b = await make_school(world, client, pupils=1, la_code="301")
    await push_marks(client, a, a.marks("P0", ["N", "N", "N"]))
    await push_marks(client, b, b.marks("P0", ["O", "O", "O"]))
    assert len(await flags(client, a)) == 1
    la = await world.client_headers("attendance:read", la_code="301")
    response = await client.get("/v1/attendance/flags", headers=la)
    assert len(response.json()["items"]) == 2
    only_b = await client.get(
        "/v1/attendance/flags", params={"school_id": b.school["id"]}, headers=la
    )
    assert [f["school_id"] for f in only_b.json()["items"]] == [b.school["id"]]
    page = await client.get("/v1/attendance/flags", params={"limit": 1}, headers=la)
    assert page.json()["next_cursor"]


async def test_push_and_reads_are_audited(client: httpx.AsyncClient, world: World) -> None:
    setup = await make_school(world, client, pupils=1)
    await push_marks(client, setup, setup.marks("P0", ["/", "\\"]))
    await figures(client, setup, "P0", AUTUMN_2025, AUTUMN_2025)
    auditor = await world.client_headers("audit:read", schools=[setup.school])
    events = await client.get(
        "/v1/audit-events", params={"pupil_id": setup.pupil_ids["P0"]}, headers=auditor
    )
    actions = [e["action"] for e in events.json()["items"]]
    assert "attendance.marks.push" in actions
    assert "pupil.attendance.read" in actions


# --- running counts and concurrency -------------------------------------------------------


async def _counts_agree(fresh_app: FastAPI) -> None:
    """The weekly running counts equal what the marks themselves add up to."""
    kept = await rows(
        fresh_app,
        "SELECT pupil_id, sum(possible), sum(attended), sum(unauthorised) "
        "FROM attendance_week GROUP BY pupil_id",
    )
    # Marks store their category as a number: 0 not possible, 1 present, 2 approved
    # activity, 3 authorised, 4 unauthorised (`CATEGORY_NUMBER`).
    recounted = await rows(
        fresh_app,
        "SELECT pupil_id, "
        "sum(CASE WHEN category <> 0 THEN 1 ELSE 0 END), "
        "sum(CASE WHEN category IN (1, 2) THEN 1 ELSE 0 END), "
        "sum(CASE WHEN category = 4 THEN 1 ELSE 0 END) "
        "FROM attendance_mark GROUP BY pupil_id",
    )
    assert sorted(kept) == sorted(recounted)


async def test_running_counts_follow_every_correction(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    setup = await make_school(world, client, pupils=4)
    rng = __import__("random").Random(11)
    codes = ["/", "\\", "L", "I", "M", "N", "O", "U", "G", "V", "#", "X", "D"]
    marks = [
        m for n in range(4) for m in setup.marks(f"P{n}", [rng.choice(codes) for _ in range(30)])
    ]
    await push_marks(client, setup, marks)
    for _ in range(3):
        corrected = [dict(m, code=rng.choice(codes)) if rng.random() < 0.3 else m for m in marks]
        await push_marks(client, setup, corrected)
        marks = corrected
    await _counts_agree(fresh_app)


@pytest.mark.postgresql_only
async def test_concurrent_pushes_for_one_school_keep_counts_exact(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    setup = await make_school(world, client, pupils=3)
    first = [m for n in range(3) for m in setup.marks(f"P{n}", ["/", "\\"] * 10)]
    second = [dict(m, code="I") if i % 3 == 0 else m for i, m in enumerate(first)]
    results = await asyncio.gather(
        *(push_marks(client, setup, batch) for batch in (first, second, first, second))
    )
    assert sum(r["created"] for r in results) == len(first)
    await _counts_agree(fresh_app)


@pytest.mark.postgresql_only
async def test_a_key_still_in_flight_is_409(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    setup = await make_school(world, client, pupils=1)
    async with fresh_app.state.engine.connect() as connection:
        owner = (
            await connection.execute(text("SELECT 'client:' || id FROM api_client LIMIT 1"))
        ).scalar_one()
        await connection.execute(
            text("SELECT pg_advisory_lock(hashtextextended(:k, 0))"),
            {"k": f"{owner} retry-1"},
        )
        try:
            response = await client.post(
                "/v1/attendance/marks",
                json={"marks": setup.marks("P0", ["/"])},
                headers={**setup.mis, "Idempotency-Key": "retry-1"},
            )
        finally:
            await connection.execute(text("SELECT pg_advisory_unlock_all()"))
    assert response.status_code == 409
    assert "in progress" in response.json()["detail"]


async def test_a_pupils_marks_go_with_the_pupil(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI
) -> None:
    """Erasure: deleting a pupil row deletes its marks (a trigger, not a foreign key)."""
    setup = await make_school(world, client, pupils=2)
    await push_marks(client, setup, setup.marks("P0", ["N", "N", "N"]) + setup.marks("P1", ["/"]))
    async with fresh_app.state.engine.begin() as connection:
        pupil = table_of(Pupil)
        await connection.execute(
            delete(pupil).where(pupil.c.id == uuid.UUID(setup.pupil_ids["P0"]))
        )
    [(held,)] = await rows(fresh_app, "SELECT count(*) FROM attendance_mark")
    [(flags_left,)] = await rows(fresh_app, "SELECT count(*) FROM attendance_flag")
    assert (held, flags_left) == (1, 0)
