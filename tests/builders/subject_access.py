"""A family with a full record for subject access: a child (P0), their sibling (P1) and a
child at the same school on no case (P2); marks, a flag with its history, a referral (with
two adults in its family list and a child known only by name) accepted into a case, and on that case
records for the child, for the sibling and for the whole family. Every record the sibling
alone is named on carries `SIBLING_MARK`, so a test can say it never shows up.

Also: reading an export as JSON or as its zip (the CSV files parsed with `csv`).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.builders.api import created, expect
from tests.builders.casework import FAMILY, FamilyPupils, casework, hub, referral_body
from tests.builders.schools import AUTUMN_2025, flags, push_marks, push_roster, roll_row
from tests.conftest import World

SIBLING_MARK = "Siblingonly"
FAMILY_MARK = "Wholefamily"
CHILD_MARK = "Childzero"
NAMED_CHILD = {"given_name": "Wren", "family_name": "Unrolled", "date_of_birth": "2016-05-01"}
# Another adult in the referral's family list: never in the family member's export.
OTHER_ADULT = {"name": "Sam Example", "relationship": "father"}


@dataclass
class RecordedFamily(FamilyPupils):
    dpo: dict[str, str]
    referral: dict[str, Any]
    case_id: str
    ids: dict[str, str] = field(default_factory=dict)  # what was made, by name


async def recorded_family(world: World, http: httpx.AsyncClient) -> RecordedFamily:
    work = await casework(world, http, pupils=3)
    setup = work.setup
    codes = f"/v1/schools/{setup.school['id']}/attendance-codes"
    mapped = {"codes": [{"display_code": "PZ", "statutory_code": "/", "description": "Present"}]}
    expect(await http.put(codes, json=mapped, headers=setup.mis))
    await push_marks(http, setup, setup.marks("P0", ["PZ", "N", "N", "N"]))
    await push_marks(http, setup, setup.marks("P1", ["/", "/"]))
    await push_marks(http, setup, setup.marks("P2", ["/", "I"], start=AUTUMN_2025))
    [flag] = [f for f in await flags(http, setup) if f["pupil_id"] == work.pupil("P0")]
    acknowledged = await http.post(
        f"/v1/attendance/flags/{flag['id']}/acknowledge",
        json={"note": "Home visit booked."},
        headers=work.headers,
    )
    expect(acknowledged)
    # A correction from the MIS: the rectification trail keeps the name before.
    renamed = await push_roster(
        http, setup.school, [roll_row(0, family_name="Renamed")], setup.mis, mode="partial"
    )
    expect(renamed)

    hub_headers = await hub(world)
    body = referral_body(
        {"pupil_id": work.pupil("P0")},
        {"pupil_id": work.pupil("P1")},
        NAMED_CHILD,
        family=[*FAMILY, OTHER_ADULT],
    )
    referral = await created(http, "/v1/referrals", body, hub_headers)
    decided = await http.post(
        f"/v1/referrals/{referral['id']}/decision",
        json={"decision": "accept", "reason": "Meets the threshold for targeted help."},
        headers={**work.headers, "If-Match": "*"},
    )
    case_id = expect(decided)["decision"]["case_id"]
    assert case_id, decided.text
    dpo = await world.headers(await world.staff("dpo", schools=[setup.school]))
    family = RecordedFamily(work, dpo, referral, case_id)
    await _plan(world, http, family)
    return family


async def _plan(world: World, http: httpx.AsyncClient, fam: RecordedFamily) -> None:
    headers, case = fam.work.headers, f"/v1/cases/{fam.case_id}"

    async def add(what: str, body: dict[str, Any]) -> str:
        made = await created(http, f"{case}/{what}", body, headers)
        return str(made["id"])

    goal = {"outcome_category": "school_attendance_managed"}
    ids = fam.ids
    ids["goal_family"] = await add("goals", {**goal, "title": f"{FAMILY_MARK} routine"})
    ids["goal_child"] = await add(
        "goals", {**goal, "title": f"{CHILD_MARK} on time", "child_id": fam.child}
    )
    ids["goal_sibling"] = await add(
        "goals", {**goal, "title": f"{SIBLING_MARK} goal", "child_id": fam.sibling}
    )
    # Dated today: the case opened today (from the referral), and no record is dated before
    # its case opened.
    held_on = datetime.now(UTC).date().isoformat()
    scores = [
        {"goal_id": ids["goal_family"], "score": 4, "respondent_scores": {"parent": 3}},
        {"goal_id": ids["goal_child"], "score": 6, "respondent_scores": {"child": 7, "school": 5}},
        {"goal_id": ids["goal_sibling"], "score": 2},
    ]
    ids["review"] = await add(
        "reviews",
        {"held_on": held_on, "worries": "Mornings.", "working_well": "Walking bus.",
         "next_steps": "Chart.", "scores": scores},
    )  # fmt: skip
    contact = {
        "type": "one_to_one_session",
        "occurred_at": datetime.now(UTC).isoformat(),
        "minutes": 30,
        "location": "school",
        "participants": ["Learning mentor"],
        "child_seen": True,
        "actions": [{"action": "Morning chart", "owner": "Mentor"}],
    }
    ids["contact_child"] = await add(
        "interventions", {**contact, "child_ids": [fam.child], "record": f"{CHILD_MARK} talk"}
    )
    ids["contact_sibling"] = await add(
        "interventions", {**contact, "child_ids": [fam.sibling], "record": f"{SIBLING_MARK} talk"}
    )
    ids["contact_family"] = await add(
        "interventions",
        {**contact, "type": "telephone_meeting", "location": "phone", "child_ids": [],
         "child_seen": False, "record": f"{FAMILY_MARK} call"},
    )  # fmt: skip
    measured_on = held_on
    measure = {"instrument": "reading_age", "measured_on": measured_on}
    ids["measure_child"] = await add("measures", {**measure, "child_id": fam.child, "score": 8.5})
    ids["measure_sibling"] = await add(
        "measures", {**measure, "child_id": fam.sibling, "score": 11.75}
    )
    steps = {"steps": [{"starts_on": held_on, "planned_hours": 10}]}
    for child in (fam.child, fam.sibling):
        expect(await http.put(f"{case}/timetables/{child}", json=steps, headers=headers))
    writer = await world.client_headers("directory:write", la_code="202")
    service = await created(
        http,
        "/v1/directory/services",
        {"name": "Parenting group", "description": "Weekly.", "status": "active"},
        writer,
    )
    signpost = {"service_id": service["id"]}
    ids["signpost_child"] = await add(
        "signposts", {**signpost, "child_id": fam.child, "reason": f"{CHILD_MARK} club"}
    )
    ids["signpost_sibling"] = await add(
        "signposts", {**signpost, "child_id": fam.sibling, "reason": f"{SIBLING_MARK} club"}
    )
    ids["signpost_family"] = await add("signposts", {**signpost, "reason": f"{FAMILY_MARK} help"})
    action = {"source_kind": "review", "source_id": ids["review"], "due_on": held_on}
    ids["action_child"] = await add(
        "actions",
        {**action, "text": f"{CHILD_MARK} chart", "owner": {"kind": "family_member",
         "child_id": fam.child}},
    )  # fmt: skip
    ids["action_sibling"] = await add(
        "actions",
        {**action, "text": f"{SIBLING_MARK} chart", "owner": {"kind": "family_member",
         "child_id": fam.sibling}},
    )  # fmt: skip
    ids["action_family"] = await add(
        "actions",
        {**action, "text": f"{FAMILY_MARK} forms", "owner": {"kind": "family_member",
         "name": FAMILY[0]["name"], "relationship": "mother"}},
    )  # fmt: skip
    for done in ("action_child", "action_sibling"):
        expect(
            await http.post(
                f"/v1/actions/{ids[done]}/status",
                json={
                    "status": "not_done",
                    "note": f"{SIBLING_MARK if done == 'action_sibling' else CHILD_MARK} ill",
                },
                headers=headers,
            )
        )


FAMILY_MEMBER = FAMILY[0]


# --- reading an export -------------------------------------------------------------------


@dataclass
class Unzipped:
    names: list[str]
    readme: str
    tables: dict[str, list[dict[str, str]]]  # CSV file stem -> rows by header
    headers: dict[str, list[str]]
    json: dict[str, Any]


def unzip(content: bytes) -> Unzipped:
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert archive.testzip() is None
    tables: dict[str, list[dict[str, str]]] = {}
    headers: dict[str, list[str]] = {}
    for name in archive.namelist():
        if name.endswith(".csv"):
            text = archive.read(name).decode()
            rows = list(csv.reader(io.StringIO(text, newline="")))
            headers[name[:-4]] = rows[0]
            tables[name[:-4]] = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    return Unzipped(
        archive.namelist(),
        archive.read("README.txt").decode(),
        tables,
        headers,
        json.loads(archive.read("subject_access.json")),
    )
