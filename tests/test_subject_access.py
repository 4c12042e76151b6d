"""Subject access (issue 12): everything Liaison holds about a child, a child known only by
name, or a family member, as JSON or a zip of CSV files; nothing about anyone else; within
the DPO's reach; audited."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import run
from app.services import export_files, subject_access
from tests.builders.api import assert_problem, created, expect
from tests.builders.casework import hub, referral_body
from tests.builders.schools import push_roster, roll_row
from tests.builders.subject_access import (
    CHILD_MARK,
    FAMILY_MARK,
    FAMILY_MEMBER,
    NAMED_CHILD,
    OTHER_ADULT,
    SIBLING_MARK,
    recorded_family,
    unzip,
)
from tests.builders.team import plan, schedule, step
from tests.conftest import DatabaseUnderTest, World

ZIP = {"Accept": "application/zip"}
CHILD_SECTIONS = [
    "pupils", "identity_changes", "attendance_marks", "attendance_codes",
    "school_attendance_codes", "attendance_weeks", "attendance_terms", "attendance_flags",
    "attendance_flag_events", "referrals", "referral_children", "cases", "case_children",
    "goals", "reviews", "review_scores", "interventions", "actions", "action_statuses",
    "meetings", "team_members", "measures", "timetables", "signposts", "documents",
    "chronology", "audit_events",
]  # fmt: skip


def route(pupil_id: str) -> str:
    return f"/v1/pupils/{pupil_id}/subject-access"


def child_route(referral_id: str, position: int) -> str:
    return f"/v1/referrals/{referral_id}/children/{position}/subject-access"


async def export(
    http: httpx.AsyncClient, path: str, headers: dict[str, str], **extra: str
) -> dict[str, Any]:
    response = await http.get(path, headers={**headers, **extra})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def ids(rows: list[dict[str, Any]], key: str = "id") -> set[str]:
    return {str(row[key]) for row in rows}


async def test_a_childs_export_holds_every_record_about_them_and_none_about_others(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await recorded_family(world, client)
    await export(client, route(fam.child), fam.dpo)  # audited: the next export shows it
    found = await export(client, route(fam.child), fam.dpo)

    assert list(found) == ["subject", "generated_at", *CHILD_SECTIONS]
    assert found["subject"]["kind"] == "pupil"
    assert found["subject"]["pupil_ids"] == [fam.child]
    [pupil] = found["pupils"]
    assert (pupil["id"], pupil["family_name"], pupil["upn"]) == (
        fam.child,
        "Renamed",
        roll_row(0)["upn"],
    )
    changes = [(c["field"], c["previous"], c["current"]) for c in found["identity_changes"]]
    assert changes == [("family_name", "Example", "Renamed")]

    marks = found["attendance_marks"]
    assert [(m["pupil_id"], m["code"], m["statutory_code"]) for m in marks] == [
        (fam.child, "PZ", "/"),
        (fam.child, "N", "N"),
        (fam.child, "N", "N"),
        (fam.child, "N", "N"),
    ]
    assert {c["code"] for c in found["attendance_codes"]} == {"/", "N"}
    assert {c["jurisdiction"] for c in found["attendance_codes"]} == {"england"}
    assert [(c["display_code"], c["statutory_code"]) for c in found["school_attendance_codes"]] == [
        ("PZ", "/")
    ]
    [week] = found["attendance_weeks"]
    assert (week["possible"], week["attended"], week["unauthorised"]) == (4, 1, 3)
    [term] = found["attendance_terms"]
    assert (term["pupil_id"], term["academic_year"], term["term"]) == (
        fam.child,
        "2025/26",
        "autumn",
    )
    assert (term["possible_sessions"], term["present_sessions"], term["attendance_rate"]) == (
        4,
        1,
        25.0,
    )
    [flag] = found["attendance_flags"]
    assert (flag["kind"], flag["status"]) == ("unexplained_absence", "acknowledged")
    assert [e["event"] for e in found["attendance_flag_events"]] == ["raised", "acknowledged"]

    [referral] = found["referrals"]
    assert referral["id"] == fam.referral["id"]
    assert referral["family"][0]["name"] == FAMILY_MEMBER["name"]
    assert referral["consent"]["given_by"] == "Alex Example (mother)"
    # Only this child's own entry on the referral and the case: the sibling's is theirs.
    assert [(c["pupil_id"], c["position"]) for c in found["referral_children"]] == [(fam.child, 0)]
    assert ids(found["cases"]) == {fam.case_id}
    assert [c["pupil_id"] for c in found["case_children"]] == [fam.child]

    made = fam.ids
    assert ids(found["goals"]) == {made["goal_family"], made["goal_child"]}
    assert ids(found["reviews"]) == {made["review"]}
    scores = {s["goal_id"]: s for s in found["review_scores"]}
    assert set(scores) == {made["goal_family"], made["goal_child"]}
    respondents = scores[made["goal_child"]]["respondent_scores"]
    assert {k: v for k, v in respondents.items() if v is not None} == {"child": 7, "school": 5}
    assert ids(found["interventions"]) == {made["contact_child"], made["contact_family"]}
    contact = next(i for i in found["interventions"] if i["id"] == made["contact_child"])
    assert contact["record"] == f"{CHILD_MARK} talk"
    assert contact["actions"][0]["action"] == "Morning chart"
    assert ids(found["measures"]) == {made["measure_child"]}
    assert [(t["case_id"], t["child_id"]) for t in found["timetables"]] == [
        (fam.case_id, fam.child)
    ]
    assert ids(found["signposts"]) == {made["signpost_child"], made["signpost_family"]}
    # Actions: the child's own and the family's, and those agreed on their contacts (each
    # contact's action plan is an action record too); never the sibling's.
    contacts = {made["contact_child"], made["contact_family"]}
    from_contacts = {a["id"] for a in found["actions"] if a["source_id"] in contacts}
    assert len(from_contacts) == 2
    assert ids(found["actions"]) == {made["action_child"], made["action_family"]} | from_contacts
    assert ids(found["action_statuses"], "action_id") == ids(found["actions"])
    assert [s["note"] for s in found["action_statuses"] if s["note"]] == [f"{CHILD_MARK} ill"]

    chronology = found["chronology"]
    assert {e["case_id"] for e in chronology if e["case_id"]} == {fam.case_id}
    assert {e["referral_id"] for e in chronology if e["referral_id"]} == {fam.referral["id"]}
    assert {"referral.received", "case.opened"} <= {e["event"] for e in chronology}

    audited = found["audit_events"]
    assert {e["pupil_id"] for e in audited} == {fam.child}
    actions = [e["action"] for e in audited]
    assert "pupil.subject_access" in actions
    assert "attendance.marks.push" in actions or any(a.startswith("attendance") for a in actions)

    text = json.dumps(found)
    assert SIBLING_MARK not in text
    assert fam.stranger not in text
    assert FAMILY_MARK in text
    assert "11.75" not in text  # the sibling's measure


async def test_the_export_is_audited(client: httpx.AsyncClient, world: World) -> None:
    fam = await recorded_family(world, client)
    await export(client, route(fam.child), fam.dpo)
    trail = expect(
        await client.get(
            "/v1/audit-events",
            params={"pupil_id": fam.child, "action": "pupil.subject_access"},
            headers=fam.dpo,
        )
    )
    [event] = trail["items"]
    assert event["pupil_ids"] == [fam.child]
    assert event["details"]["case_ids"] == [fam.case_id]
    assert event["details"]["referral_ids"] == [fam.referral["id"]]
    assert event["actor"].startswith("staff:")


async def test_the_zip_holds_a_csv_per_record_type_its_readme_and_the_json(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await recorded_family(world, client)
    response = await client.get(route(fam.child), headers={**fam.dpo, **ZIP})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"]
    zipped = unzip(response.content)
    assert zipped.names == [
        "README.txt",
        *[f"{name}.csv" for name in CHILD_SECTIONS],
        "subject_access.json",
    ]
    # The README names each file's columns, exactly as its header row.
    for name, header in zipped.headers.items():
        assert f"{name}.csv: " in zipped.readme
        assert f"  columns: {', '.join(header)}\r\n" in zipped.readme
    answer = await export(client, route(fam.child), fam.dpo)
    in_zip = zipped.json
    for name in CHILD_SECTIONS:
        assert len(zipped.tables[name]) == len(in_zip[name]), name
    # The same JSON as the API's answer, but for when it was made and the answer's own
    # audit event, written after the zip's.
    assert answer["audit_events"][:-1] == in_zip["audit_events"]
    assert answer["audit_events"][-1]["action"] == "pupil.subject_access"
    same = [k for k in answer if k not in ("generated_at", "audit_events")]
    assert {k: answer[k] for k in same} == {k: in_zip[k] for k in same}
    # Cells: nested values as JSON text, booleans as true/false, nothing as empty.
    contact = next(
        row for row in zipped.tables["interventions"] if row["id"] == fam.ids["contact_child"]
    )
    original = next(i for i in in_zip["interventions"] if i["id"] == fam.ids["contact_child"])
    assert json.loads(contact["actions"]) == original["actions"]
    assert json.loads(contact["child_ids"]) == [fam.child]
    assert contact["child_seen"] == "true"
    assert contact["agenda"] == ""
    mark = zipped.tables["attendance_marks"][0]
    assert (mark["pupil_id"], mark["code"], mark["late"]) == (fam.child, "PZ", "false")
    assert SIBLING_MARK not in response.content.decode("latin-1")


async def test_reach_scope_and_media_types(client: httpx.AsyncClient, world: World) -> None:
    fam = await recorded_family(world, client)
    elsewhere = await world.school(la_code="303")
    other_dpo = await world.headers(await world.staff("dpo", schools=[elsewhere]))
    for path in (route(fam.child), child_route(fam.referral["id"], 2)):
        assert_problem(await client.get(path, headers=other_dpo), 404, "not-found")
        assert_problem(await client.get(path, headers=fam.work.headers), 403, "insufficient-scope")
    assert_problem(await client.get(route(fam.case_id), headers=fam.dpo), 404, "not-found")
    assert_problem(
        await client.get(child_route(fam.referral["id"], 7), headers=fam.dpo), 404, "not-found"
    )
    for refused in ("text/csv", "application/zip;q=0, text/html"):
        answer = await client.get(route(fam.child), headers={**fam.dpo, "Accept": refused})
        assert_problem(answer, 406, "not-acceptable")
    for accept in ("application/json", "*/*", "application/json, text/plain;q=0.5"):
        assert (await export(client, route(fam.child), fam.dpo, Accept=accept))["pupils"]
    family = "/v1/subject-access/family-members"
    outside = expect(await client.post(family, json={"name": "Alex Example"}, headers=other_dpo))
    assert (outside["referrals"], outside["cases"], outside["consents"]) == ([], [], [])
    assert (outside["actions"], outside["action_statuses"], outside["meetings"]) == ([], [], [])
    denied = await client.post(family, json={"name": "Alex Example"}, headers=fam.work.headers)
    assert_problem(denied, 403, "insufficient-scope")
    stray = await client.post(family, json={"name": "A", "upn": "x"}, headers=fam.dpo)
    assert_problem(stray, 422)


async def test_a_child_known_only_by_name(client: httpx.AsyncClient, world: World) -> None:
    fam = await recorded_family(world, client)
    # Another referral naming a child of the same names but another birthday: not them.
    other = {**NAMED_CHILD, "date_of_birth": "2016-05-02"}
    await created(client, "/v1/referrals", referral_body(other), await hub(world))
    path = child_route(fam.referral["id"], 2)
    await export(client, path, fam.dpo)
    found = await export(client, path, fam.dpo)
    subject = found["subject"]
    assert (subject["kind"], subject["given_name"], subject["position"]) == (
        "named_child",
        "Wren",
        2,
    )
    assert subject["pupil_ids"] == []
    assert [(c["given_name"], c["pupil_id"]) for c in found["referral_children"]] == [
        ("Wren", None)
    ]
    assert ids(found["referrals"]) == {fam.referral["id"]}
    assert ids(found["cases"]) == {fam.case_id}
    assert [c["given_name"] for c in found["case_children"]] == ["Wren"]
    # Only what is about the whole family: no other child's own records.
    assert ids(found["goals"]) == {fam.ids["goal_family"]}
    assert ids(found["interventions"]) == {fam.ids["contact_family"]}
    assert ids(found["signposts"]) == {fam.ids["signpost_family"]}
    assert {s["goal_id"] for s in found["review_scores"]} == {fam.ids["goal_family"]}
    for none in ("pupils", "attendance_marks", "measures", "timetables", "attendance_flags"):
        assert found[none] == [], none
    assert "referral_child.subject_access" in {e["action"] for e in found["audit_events"]}
    assert fam.child not in json.dumps(found["goals"] + found["interventions"])
    # A child on the referral who is on a roll gets the pupil's export.
    sibling = await export(client, child_route(fam.referral["id"], 1), fam.dpo)
    assert sibling["subject"]["pupil_ids"] == [fam.sibling]
    assert ids(sibling["goals"]) == {fam.ids["goal_family"], fam.ids["goal_sibling"]}
    zipped = unzip((await client.get(path, headers={**fam.dpo, **ZIP})).content)
    assert [row["given_name"] for row in zipped.tables["referral_children"]] == ["Wren"]


async def test_every_pupil_record_of_the_child_within_reach(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await recorded_family(world, client)
    second = await world.school(la_code="202")
    mis = await world.client_headers("pupils:write pupils:read", schools=[second])
    expect(await push_roster(client, second, [roll_row(0)], mis))  # the same UPN
    la_dpo = await world.headers(await world.staff("dpo", la_code="202"))
    found = await export(client, route(fam.child), la_dpo)
    assert len(found["subject"]["pupil_ids"]) == 2
    assert {p["school_id"] for p in found["pupils"]} == {fam.work.school["id"], second["id"]}
    # A DPO of the first school alone reaches only its record.
    assert (await export(client, route(fam.child), fam.dpo))["subject"]["pupil_ids"] == [fam.child]


async def test_a_family_member(client: httpx.AsyncClient, world: World) -> None:
    fam = await recorded_family(world, client)
    family = "/v1/subject-access/family-members"
    found = expect(await client.post(family, json={"name": "  alex   EXAMPLE "}, headers=fam.dpo))
    assert list(found) == [
        "subject", "generated_at", "referrals", "family_entries", "consents", "cases",
        "actions", "action_statuses", "meetings",
    ]  # fmt: skip
    assert ids(found["referrals"]) == {fam.referral["id"]}
    assert "family" not in found["referrals"][0]
    [entry] = found["family_entries"]
    assert (entry["referral_id"], entry["position"], entry["relationship"]) == (
        fam.referral["id"],
        0,
        "mother",
    )
    assert entry["phone"] == FAMILY_MEMBER["phone"]
    assert {(c["record_type"], c["record_id"]) for c in found["consents"]} == {
        ("referral", fam.referral["id"]),
        ("case", fam.case_id),
    }
    assert ids(found["cases"]) == {fam.case_id}
    text = json.dumps(found)
    assert "PZ" not in text and CHILD_MARK not in text  # not the children's records

    by_phone = {"name": "Alex Example", "phone": "+44 7700 900123"}
    assert expect(await client.post(family, json=by_phone, headers=fam.dpo))["referrals"] == []
    by_phone["phone"] = "07700-900-123"
    assert ids(expect(await client.post(family, json=by_phone, headers=fam.dpo))["referrals"])
    by_email = {"name": "Alex Example", "email": "ALEX@example.org"}
    assert ids(expect(await client.post(family, json=by_email, headers=fam.dpo))["referrals"])
    nobody = {"name": "Alex Examples"}
    assert expect(await client.post(family, json=nobody, headers=fam.dpo))["referrals"] == []

    zipped = unzip(
        (
            await client.post(family, json={"name": "Alex Example"}, headers={**fam.dpo, **ZIP})
        ).content
    )
    assert zipped.headers["family_entries"][:3] == ["referral_id", "position", "name"]
    assert zipped.tables["family_entries"][0]["interpreter_needed"] == "false"

    trail = expect(
        await client.get(
            "/v1/audit-events", params={"action": "family_member.subject_access"}, headers=fam.dpo
        )
    )
    event = trail["items"][0]
    assert event["details"]["referrals"] == 1 and event["details"]["cases"] == 1
    assert event["details"]["referral_ids"] == [fam.referral["id"]]
    assert "Alex" not in json.dumps(trail) and "alex" not in json.dumps(trail)


async def test_a_family_members_actions_and_meetings(
    client: httpx.AsyncClient, world: World
) -> None:
    """Issue 17: the actions a family member owns by name (with their history) and the
    meetings they were invited to or attended are in their export; another adult of the
    same family, not named on them, finds none of them."""
    fam = await recorded_family(world, client)
    headers, case = fam.work.headers, f"/v1/cases/{fam.case_id}"
    family = "/v1/subject-access/family-members"
    due = datetime.now(UTC).date().isoformat()
    # Alex's own action (recorded_family's `action_family`) is done; Sam owns another.
    mine = fam.ids["action_family"]
    done = {"status": "done", "note": "Forms sent."}
    expect(await client.post(f"/v1/actions/{mine}/status", json=done, headers=headers))
    sams = await created(
        client,
        f"{case}/actions",
        {"source_kind": "other", "due_on": due, "text": "Call school",
         "owner": {"kind": "family_member", **OTHER_ADULT}},
        headers,
    )  # fmt: skip
    # A contact's action plan owned by Alex as written (free text, with a note), and by the
    # mentor: only the first is Alex's.
    contact = await created(
        client,
        f"{case}/interventions",
        {"type": "telephone_meeting", "occurred_at": datetime.now(UTC).isoformat(), "minutes": 30,
         "location": "phone", "child_ids": [], "child_seen": False, "record": "Call.",
         "actions": [{"action": "Book GP", "owner": "alex example (mum)"},
                     {"action": "Chart", "owner": "Mentor"}]},
        headers,
    )  # fmt: skip
    from_contact = {
        a["id"]: a["owner"]["name"]
        for a in expect(await client.get(f"{case}/actions", headers=headers))["items"]
        if a["source_id"] == contact["id"]
    }
    [alex_written] = [i for i, owner in from_contact.items() if owner.startswith("alex")]
    # Meetings: Alex invited from the family list and attending; Alex attending by name,
    # uninvited; Sam alone invited.
    alex = [{"family_member": "Alex Example"}]
    invited = await schedule(client, headers, fam.case_id, plan(days_ahead=0, invitees=alex))
    expect(
        await step(
            client, headers, fam.case_id, invited["id"], "held",
            {"attendees": [{"family_member": "ALEX EXAMPLE"}, {"child_id": fam.child}]},
        )
    )  # fmt: skip
    attended = await schedule(
        client, headers, fam.case_id, plan(days_ahead=0, invitees=[{"child_id": fam.child}])
    )
    expect(
        await step(
            client, headers, fam.case_id, attended["id"], "held",
            {"attendees": [{"name": "alex  example", "role": "mother"}]},
        )
    )  # fmt: skip
    sam_only = await schedule(
        client, headers, fam.case_id, plan(invitees=[{"family_member": OTHER_ADULT["name"]}])
    )

    found = expect(await client.post(family, json={"name": "Alex Example"}, headers=fam.dpo))
    assert ids(found["actions"]) == {mine, alex_written}
    assert {a["owner_kind"] for a in found["actions"]} == {"family_member", "named"}
    history = [(s["action_id"], s["status"]) for s in found["action_statuses"]]
    assert sorted(history) == sorted([(mine, "open"), (mine, "done"), (alex_written, "open")])
    assert ids(found["meetings"]) == {invited["id"], attended["id"]}
    text = json.dumps(found)
    for not_theirs in ("Call school", "Chart", SIBLING_MARK, CHILD_MARK):
        assert not_theirs not in text, not_theirs

    sam = expect(await client.post(family, json={"name": "sam example"}, headers=fam.dpo))
    assert ids(sam["referrals"]) == {fam.referral["id"]}
    assert ids(sam["actions"]) == {sams["id"]}
    assert ids(sam["action_statuses"], "action_id") == {sams["id"]}
    assert ids(sam["meetings"]) == {sam_only["id"]}

    # Another LA's DPO: nothing, though the name is the same.
    elsewhere = await world.school(la_code="303")
    other_dpo = await world.headers(await world.staff("dpo", schools=[elsewhere]))
    outside = expect(await client.post(family, json={"name": "Alex Example"}, headers=other_dpo))
    assert (outside["actions"], outside["action_statuses"], outside["meetings"]) == ([], [], [])

    zipped = unzip(
        (
            await client.post(family, json={"name": "Alex Example"}, headers={**fam.dpo, **ZIP})
        ).content
    )
    assert {r["id"] for r in zipped.tables["actions"]} == {mine, alex_written}
    assert len(zipped.tables["action_statuses"]) == 3
    assert {r["id"] for r in zipped.tables["meetings"]} == {invited["id"], attended["id"]}


async def test_a_failure_mid_stream_ends_the_stream_and_logs_no_child_data(
    client: httpx.AsyncClient,
    world: World,
    fresh_app: FastAPI,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fam = await recorded_family(world, client)
    caplog.set_level(logging.INFO)

    def broken(*_args: Any) -> None:
        raise RuntimeError(f"cannot tally {fam.child} Child0")

    monkeypatch.setattr(subject_access.TermTally, "add", broken)
    # Small chunks, so that the marks before the failure have been sent already.
    monkeypatch.setattr(export_files, "CHUNK_BYTES", 256)
    # What was sent before the failure arrives; the rest never does, so the answer cannot
    # pass for a whole export: the JSON does not parse, the zip has no central directory.
    response = await client.get(route(fam.child), headers=fam.dpo)
    assert response.status_code == 200 and response.content.startswith(b'{"subject":')
    with pytest.raises(ValueError):
        json.loads(response.content)
    response = await client.get(route(fam.child), headers={**fam.dpo, **ZIP})
    assert response.status_code == 200 and response.content.startswith(b"PK")
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(response.content))
    failures = [r for r in caplog.records if "subject_access.stream_failed" in r.getMessage()]
    assert len(failures) == 2
    assert all("Child0" not in r.getMessage() and fam.child not in r.getMessage() for r in failures)
    pool = fresh_app.state.engine.pool
    if hasattr(pool, "checkedout"):
        assert pool.checkedout() == 0


async def test_the_export_reads_one_read_only_snapshot(
    fresh_app: FastAPI, database: DatabaseUnderTest
) -> None:
    """On PostgreSQL the export's own session is REPEATABLE READ and read-only; either way
    its connection goes back to the pool as it came."""

    def build(session: AsyncSession) -> export_files.Export:
        async def rows() -> AsyncIterator[export_files.Batch]:
            if database.backend == "postgresql":
                isolation = (await run(session, text("SHOW transaction_isolation"))).scalar()
                read_only = (await run(session, text("SHOW transaction_read_only"))).scalar()
                yield [{"isolation": isolation, "read_only": read_only}]
            else:
                yield [{"isolation": "serializable", "read_only": "on"}]

        kept = export_files.Section("snapshot", "How it read.", ("isolation", "read_only"), rows)
        return export_files.Export({"subject": None}, [kept], "Probe")

    factory = fresh_app.state.session_factory
    body = b"".join([c async for c in export_files.stream(factory, build, as_zip=False)])
    [seen] = json.loads(body)["snapshot"]
    if database.backend == "postgresql":
        assert seen == {"isolation": "repeatable read", "read_only": "on"}
    pool = fresh_app.state.engine.pool
    if hasattr(pool, "checkedout"):
        assert pool.checkedout() == 0


async def test_a_child_whose_pupil_record_is_outside_reach(
    client: httpx.AsyncClient, world: World
) -> None:
    """A DPO of one school, asked about a child on one of its referrals whose pupil record is
    at another school: the casework within reach naming that record, no pupil records."""
    fam = await recorded_family(world, client)
    other_school = await world.school(la_code="202")
    mis = await world.client_headers("pupils:write pupils:read", schools=[other_school])
    expect(await push_roster(client, other_school, [roll_row(7, given_name="Cross")], mis))
    [elsewhere] = expect(await client.get("/v1/pupils", headers=mis))["items"]
    body = referral_body({"pupil_id": fam.child}, {"pupil_id": elsewhere["id"]})
    referral = await created(client, "/v1/referrals", body, await hub(world))
    found = await export(client, child_route(referral["id"], 1), fam.dpo)
    subject = found["subject"]
    assert (subject["kind"], subject["pupil_ids"], subject["linked_pupil_id"]) == (
        "linked_child",
        [],
        elsewhere["id"],
    )
    assert [(c["pupil_id"], c["position"]) for c in found["referral_children"]] == [
        (elsewhere["id"], 1)
    ]
    assert ids(found["referrals"]) == {referral["id"]}
    for none in ("pupils", "attendance_marks", "identity_changes", "cases"):
        assert found[none] == [], none
    assert "referral_child.subject_access" in {e["action"] for e in found["audit_events"]}
    # The same child asked about by a DPO who reaches their school: the pupil's export.
    la_dpo = await world.headers(await world.staff("dpo", la_code="202"))
    whole = await export(client, child_route(referral["id"], 1), la_dpo)
    assert (whole["subject"]["kind"], whole["subject"]["pupil_ids"]) == ("pupil", [elsewhere["id"]])
