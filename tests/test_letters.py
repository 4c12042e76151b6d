"""Letters (issue 17, item 6): an LA admin words the invitation letter (a sandboxed Jinja2
template, checked when saved), and a scheduled meeting's letter is rendered as HTML and PDF
and kept on the case as documents of kind `letter`: through the service with a meeting's
facts, and through `POST /v1/cases/{id}/meetings/{meeting_id}/invitation-letter` for a
planned meeting.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from app.audit import Auditor
from app.security import decode_access_token
from app.services import case_records, letter_templates, letters, principals
from tests.builders.api import assert_problem, expect, items
from tests.builders.casework import (
    AuditTrail,
    Casework,
    casework,
    chronology,
    family,
    hub,
    open_case,
    patch_case,
    request_closure,
    route,
)
from tests.builders.clock import today
from tests.builders.team import agency, join, plan, schedule, step
from tests.conftest import World

TEMPLATE = "/v1/letter-templates/invitation"


@pytest.fixture
async def work(world: World, client: httpx.AsyncClient) -> Casework:
    return await casework(world, client, pupils=2)


@pytest.fixture
async def admin(world: World) -> dict[str, str]:
    return await world.headers(await world.staff("admin", la_code="202"))


async def test_an_la_admin_reads_the_default_and_sets_its_own_template(
    world: World, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    default = expect(await client.get(TEMPLATE, headers=admin))
    assert default["builtin"] is True and default["la_code"] is None
    assert default["body"] == letter_templates.DEFAULT_INVITATION
    own = "<p>Dear {{ family[0].name }}, see you on {{ meeting.date }} at {{ meeting.time }}.</p>"
    saved = expect(await client.put(TEMPLATE, json={"body": own}, headers=admin))
    assert (saved["builtin"], saved["la_code"], saved["body"]) == (False, "202", own)
    assert expect(await client.get(TEMPLATE, headers=admin)) == saved
    # Another LA's admin still has the default.
    other = await world.headers(await world.staff("admin", la_code="303"))
    assert expect(await client.get(TEMPLATE, headers=other))["builtin"] is True
    # Not an admin: 403.
    practitioner = await world.headers(await world.staff("practitioner", la_code="202"))
    assert_problem(await client.get(TEMPLATE, headers=practitioner), 403, "insufficient-scope")


@pytest.mark.parametrize(
    "body",
    [
        "<p>{% if meeting.date %}unclosed</p>",  # a syntax error
        "<p>{{ meeting.date }</p>",  # a syntax error
        "<p>{{ meeting.dte }}</p>",  # an unknown field
        "<p>{{ meeting.__class__.__mro__ }}</p>",  # outside its values
        "<p>{{ ''.__class__.__subclasses__() }}</p>",
        '{% include "/etc/passwd" %}',  # no files
        '{% extends "base.html" %}',
        "{{ meeting.date|attr('__class__') }}",
        "{% for i in range(100000) %}x{% endfor %}",  # no globals
        "{% for a in family %}{% for b in family %}{% for c in family %}{% endfor %}"
        "{% endfor %}{% endfor %}",  # loops nested too deep
        "{{ meeting.agenda * 1000000 }}",  # no multiplication
        "{% for member in family %}{{ member.name * 9 }}{% endfor %}",
        "a\x00b",
    ],
)
async def test_a_template_that_cannot_be_used_is_422_and_not_saved(
    client: httpx.AsyncClient, admin: dict[str, str], body: str
) -> None:
    response = await client.put(TEMPLATE, json={"body": body}, headers=admin)
    assert_problem(response, 422, "validation-failed")
    assert expect(await client.get(TEMPLATE, headers=admin))["builtin"] is True


async def _write_letter(
    app: FastAPI, headers: dict[str, str], case_id: str, meeting: letters.MeetingFacts
) -> tuple[str, str]:
    """The letter written as the caller whose token `headers` carry; the two documents' ids."""
    token = headers["Authorization"].removeprefix("Bearer ")
    async with app.state.session_factory() as session:
        claims = decode_access_token(app.state.settings, token)
        principal = await principals.load_principal(session, claims)
        assert principal is not None
        work = await case_records.begin(Auditor(session, principal), uuid.UUID(case_id))
        pdf, html = await letters.write_invitation(work, app.state.document_store, meeting)
        await session.commit()
        return str(pdf.id), str(html.id)


async def test_a_meetings_invitation_letter_is_kept_as_pdf_and_escaped_html(
    client: httpx.AsyncClient, fresh_app: FastAPI, work: Casework, admin: dict[str, str]
) -> None:
    case = await open_case(client, work.headers, [work.pupil("P0")])
    meeting = letters.MeetingFacts(
        id=uuid.uuid4(),
        case_id=uuid.UUID(case["id"]),
        type="multi_agency_meeting",
        starts_at=datetime(2027, 1, 12, 15, 30, tzinfo=UTC),
        place="Oak Primary, room 2",
        agenda="Attendance since <half term> & what helps\n<script>alert(1)</script>",
        invitees=[letters.Invitee("Alex Example", "mother"), letters.Invitee("Sam Nurse", None)],
    )
    pdf_id, html_id = await _write_letter(fresh_app, work.headers, case["id"], meeting)

    listed = await items(client, f"/v1/cases/{case['id']}/documents", work.headers)
    assert [(d["id"], d["kind"], d["content_type"]) for d in listed] == [
        (pdf_id, "letter", "application/pdf"),
        (html_id, "letter", "text/html"),
    ]
    assert {d["meeting_id"] for d in listed} == {str(meeting.id)}
    pdf = await client.get(listed[0]["content_url"], headers=work.headers)
    assert pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-disposition"] == 'attachment; filename="invitation-2027-01-12.pdf"'
    html = await client.get(listed[1]["content_url"], headers=work.headers)
    assert html.headers["content-type"].startswith("text/html")
    assert html.headers["x-content-type-options"] == "nosniff"
    text = html.text
    assert "Tuesday 12 January 2027" in text and "15:30" in text  # GMT in January
    assert "Attendance since &lt;half term&gt; &amp; what helps" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>" not in text
    assert "Oak Primary, room 2" in text and "Sam Nurse" in text
    assert "Alex Example" in text  # the family, as the case holds them

    # The LA's own template is the one used.
    own = (
        "<p>{{ meeting.date }}: {% for item in meeting.agenda_items %}[{{ item }}]{% endfor %}</p>"
    )
    expect(await client.put(TEMPLATE, json={"body": own}, headers=admin))
    _, html_id = await _write_letter(fresh_app, work.headers, case["id"], meeting)
    again = await client.get(
        f"/v1/cases/{case['id']}/documents/{html_id}/content", headers=work.headers
    )
    assert again.text == (
        "<p>Tuesday 12 January 2027: [Attendance since &lt;half term&gt; &amp; what helps]"
        "[&lt;script&gt;alert(1)&lt;/script&gt;]</p>"
    )


async def test_the_pdf_renderer_fetches_no_file() -> None:
    html = '<p>Letter</p><img src="file:///etc/passwd"><link rel="stylesheet" href="/etc/hosts">'
    pdf = await letter_templates.render_pdf(html)
    assert pdf.startswith(b"%PDF") and b"root:" not in pdf


# --- the route on a planned meeting ----------------------------------------------------------


LONDON = ZoneInfo("Europe/London")


def letter_route(case_id: str, meeting_id: str) -> str:
    return route(case_id, f"meetings/{meeting_id}/invitation-letter")


def as_letter_says(moment: str) -> tuple[str, str]:
    """A planned time as a letter shows it: its day and its time in the UK."""
    local = datetime.fromisoformat(moment).astimezone(LONDON)
    return letter_templates.long_date(local), f"{local:%H:%M}"


async def content(
    http: httpx.AsyncClient, headers: dict[str, str], document: dict[str, Any]
) -> str:
    response = await http.get(document["content_url"], headers=headers)
    assert response.status_code == 200, response.text
    return response.text


async def test_a_planned_meetings_letter_through_the_api(
    client: httpx.AsyncClient, world: World, admin: dict[str, str]
) -> None:
    fam = await family(client, world)
    dpo = await world.headers(await world.staff("dpo", la_code="202"))
    trail = AuditTrail(client, dpo)
    await trail.new_events(fam.child)
    nurse = await join(client, fam.headers, fam.id, agency("Riverside school nursing", "nurse"))
    scheduled_at = (datetime.now(UTC) + timedelta(days=9)).replace(
        hour=14, minute=30, second=0, microsecond=0
    )
    meeting = await schedule(
        client,
        fam.headers,
        fam.id,
        plan(
            type="multi_agency_meeting",
            scheduled_at=scheduled_at.isoformat(),
            place="Oak Primary, meeting room 2",
            agenda="1. Attendance & <health>\n2. <script>alert(1)</script>",
            child_ids=[fam.child],
            invitees=[
                {"team_member_id": nurse["id"]},
                {"child_id": fam.child},
                {"name": "Alex Example", "role": "mother"},
            ],
        ),
    )
    answer = await client.post(letter_route(fam.id, meeting["id"]), headers=fam.headers)
    letter = expect(answer, 201)
    pdf, html = letter["pdf"], letter["html"]
    assert (pdf["kind"], pdf["content_type"]) == ("letter", "application/pdf")
    assert (html["kind"], html["content_type"]) == ("letter", "text/html")
    assert pdf["meeting_id"] == html["meeting_id"] == meeting["id"]
    day, time = as_letter_says(meeting["scheduled_at"])
    local_day = datetime.fromisoformat(meeting["scheduled_at"]).astimezone(LONDON).date()
    assert pdf["filename"] == f"invitation-{local_day.isoformat()}.pdf"

    # Listed on the case and downloadable.
    listed = await items(client, route(fam.id, "documents"), fam.headers)
    assert [d["id"] for d in listed] == [pdf["id"], html["id"]]
    downloaded = await client.get(pdf["content_url"], headers=fam.headers)
    assert downloaded.status_code == 200 and downloaded.content.startswith(b"%PDF")
    text = await content(client, fam.headers, html)
    assert day in text and time in text
    assert "Oak Primary, meeting room 2" in text
    assert "Attendance &amp; &lt;health&gt;" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>" not in text
    assert "Riverside school nursing (nurse)" in text and "Alex Example (mother)" in text
    case = expect(await client.get(f"/v1/cases/{fam.id}", headers=fam.headers))
    for child in case["children"]:  # the case's children, named as the case holds them
        assert f"{child['given_name']} {child['family_name']}" in text
    assert text.count(case["children"][0]["given_name"]) >= 2  # invited, too

    # In the chronology (without the place) and audited, naming the case's children.
    written = [
        e
        for e in await chronology(client, fam.headers, fam.id)
        if e["event"] == "meeting.invitation_letter"
    ]
    assert len(written) == 1
    planned = datetime.fromisoformat(meeting["scheduled_at"]).astimezone(LONDON)
    assert written[0]["summary"] == (
        f"Invitation letter written for the multi agency meeting planned for "
        f"{planned:%Y-%m-%d %H:%M}"
    )
    assert "Oak Primary" not in written[0]["summary"]
    actions = [e["action"] for e in await trail.new_events(fam.child)]
    assert "letter.create" in actions and actions.count("document.create") == 2
    letter_events = [
        e
        for e in await items(client, "/v1/audit-events", dpo, pupil_id=fam.sibling, limit=100)
        if e["action"] == "letter.create"
    ]
    assert len(letter_events) == 1

    # The LA's own template is the one used from then on.
    own = (
        "<p>{{ meeting.date }} {{ meeting.time }} at {{ meeting.place }}: {{ meeting.agenda }}</p>"
    )
    expect(await client.put(TEMPLATE, json={"body": own}, headers=admin))
    again = expect(await client.post(letter_route(fam.id, meeting["id"]), headers=fam.headers), 201)
    assert await content(client, fam.headers, again["html"]) == (
        f"<p>{day} {time} at Oak Primary, meeting room 2: 1. Attendance &amp; &lt;health&gt;\n"
        "2. &lt;script&gt;alert(1)&lt;/script&gt;</p>"
    )

    # Rescheduled: the new letter has the new time.
    moved_to = scheduled_at + timedelta(days=2, hours=1, minutes=15)
    moved = expect(
        await step(
            client,
            fam.headers,
            fam.id,
            meeting["id"],
            "reschedule",
            {"scheduled_at": moved_to.isoformat()},
        )
    )
    new_day, new_time = as_letter_says(moved["scheduled_at"])
    assert (new_day, new_time) != (day, time)
    third = expect(await client.post(letter_route(fam.id, meeting["id"]), headers=fam.headers), 201)
    assert await content(client, fam.headers, third["html"]) == (
        f"<p>{new_day} {new_time} at Oak Primary, meeting room 2: 1. Attendance &amp; "
        "&lt;health&gt;\n2. &lt;script&gt;alert(1)&lt;/script&gt;</p>"
    )
    assert len(await items(client, route(fam.id, "documents"), fam.headers)) == 6


async def test_a_letter_only_for_a_planned_meeting_of_a_case_within_reach(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    meeting = await schedule(client, fam.headers, fam.id, plan(days_ahead=2))
    other_case = await open_case(client, fam.headers, [fam.stranger])
    others = await schedule(client, fam.headers, other_case["id"], plan(days_ahead=2))
    outsiders = [
        await world.headers(await world.staff(role, la_code="303"))
        for role in ("practitioner", "manager")
    ]
    neighbour = await world.school(la_code="202")
    outsiders.append(await world.headers(await world.staff("practitioner", schools=[neighbour])))
    for headers in outsiders:
        response = await client.post(letter_route(fam.id, meeting["id"]), headers=headers)
        assert_problem(response, 404, "not-found")
    # Another case's meeting, or no meeting at all, is not this case's.
    for meeting_id in (others["id"], str(uuid.uuid4())):
        response = await client.post(letter_route(fam.id, meeting_id), headers=fam.headers)
        assert_problem(response, 404, "not-found")
    # Reading is not writing; a hub does neither.
    dpo = await world.headers(await world.staff("dpo", la_code="202"))
    for headers in (dpo, await hub(world)):
        response = await client.post(letter_route(fam.id, meeting["id"]), headers=headers)
        assert_problem(response, 403, "insufficient-scope")

    # Held, or not happened: nothing to invite anyone to.
    held = await schedule(client, fam.headers, fam.id, plan(days_ahead=-1))
    expect(await step(client, fam.headers, fam.id, held["id"], "held", {}))
    missed = await schedule(client, fam.headers, fam.id, plan(days_ahead=-1))
    gone = await step(
        client, fam.headers, fam.id, missed["id"], "did-not-happen", {"reason": "no_answer"}
    )
    expect(gone)
    for meeting_id in (held["id"], missed["id"]):
        response = await client.post(letter_route(fam.id, meeting_id), headers=fam.headers)
        assert "only for a planned meeting" in assert_problem(response, 409, "conflict")["detail"]
    # A closed case's meetings get no letter.
    closed = await request_closure(client, fam.work.manager_headers, fam.id)
    assert closed.json()["status"] == "closed", closed.text
    response = await client.post(letter_route(fam.id, meeting["id"]), headers=fam.headers)
    assert_problem(response, 409, "conflict")
    assert await items(client, route(fam.id, "documents"), fam.headers) == []
    assert not [
        e
        for e in await chronology(client, fam.headers, fam.id)
        if e["event"] == "meeting.invitation_letter"
    ]


async def test_no_letter_while_consent_is_withdrawn(
    client: httpx.AsyncClient, world: World
) -> None:
    fam = await family(client, world)
    meeting = await schedule(client, fam.headers, fam.id, plan(days_ahead=2))
    withdrawn = {"given": False, "given_by": "Alex Example (mother)", "date": today().isoformat()}
    changed = await patch_case(client, fam.work.manager_headers, fam.id, {"consent": withdrawn})
    assert changed.status_code == 200, changed.text
    response = await client.post(letter_route(fam.id, meeting["id"]), headers=fam.headers)
    assert_problem(response, 409, "conflict")
    assert await items(client, route(fam.id, "documents"), fam.headers) == []
