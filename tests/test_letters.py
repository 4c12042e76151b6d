"""Letters (issue 17, item 6): an LA admin words the invitation letter (a sandboxed Jinja2
template, checked when saved), and a scheduled meeting's letter is rendered as HTML and PDF
and kept on the case as documents of kind `letter`.

Until planned meetings are merged (branch casework-meetings), the letter is written
through the service with the meeting's facts; the route on the meeting follows the merge.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from app.audit import Auditor
from app.security import decode_access_token
from app.services import case_records, letter_templates, letters, principals
from tests.builders.api import assert_problem, expect, items
from tests.builders.casework import Casework, casework, open_case
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
