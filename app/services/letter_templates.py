"""Letter templates and their rendering: an LA words its own invitation letter (Jinja2),
Liaison renders it for a meeting as HTML and as PDF (WeasyPrint).

A template is LA-controlled text run on the server, so it runs in Jinja2's immutable
sandbox with autoescaping on and no loader: it sees only the plain values of its context
(text, numbers, lists and dicts built here, never a database row), cannot reach an
attribute outside them (`__class__` and the like raise `SecurityError`), cannot include,
extend or import another file, and its output is capped. The PDF renderer fetches nothing:
no file, no URL, not even a `data:` image, so a template cannot read the server's files
into a letter.

A template is checked when it is saved: it must parse, and render against a sample
context (so a misspelt field is a 422 then, not a failed letter later).
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import ProblemItem, ValidationFailed
from app.models.base import utcnow
from app.models.document import LetterKind, LetterTemplate, LetterTemplateRead
from app.reach import writable_la
from app.security import Principal

# Rendered HTML larger than this is refused: a template's loops cannot fill the disk.
MAX_OUTPUT_CHARS = 500_000

DEFAULT_INVITATION = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Invitation to a meeting</title>
<style>
  @page { size: A4; margin: 2cm; }
  body { font-family: sans-serif; font-size: 11pt; line-height: 1.4; }
  h1 { font-size: 15pt; }
  table { border-collapse: collapse; }
  th { text-align: left; padding-right: 1em; vertical-align: top; }
</style>
</head>
<body>
<p>{{ school.name }}<br>{{ today }}</p>
<p>Dear {% for member in family %}{{ member.name }}{% if not loop.last %} and {% endif %}\
{% else %}parent or carer{% endfor %},</p>
<h1>Invitation to a meeting about {% for child in children %}{{ child.name }}\
{% if not loop.last %} and {% endif %}{% endfor %}</h1>
<p>You are invited to a {{ meeting.type_label }} to talk about how things are going and what
will help.</p>
<table>
  <tr><th>Date</th><td>{{ meeting.date }}</td></tr>
  <tr><th>Time</th><td>{{ meeting.time }}</td></tr>
  <tr><th>Place</th><td>{{ meeting.place }}</td></tr>
</table>
<h2>Agenda</h2>
{% if meeting.agenda_items %}<ol>{% for item in meeting.agenda_items %}<li>{{ item }}</li>\
{% endfor %}</ol>{% else %}<p>{{ meeting.agenda }}</p>{% endif %}
{% if meeting.invitees %}<h2>Who has been invited</h2>
<ul>{% for person in meeting.invitees %}<li>{{ person.name }}{% if person.role %} \
({{ person.role }}){% endif %}</li>{% endfor %}</ul>{% endif %}
<p>If this time does not suit you, or you need an interpreter or any help to attend, please
let us know as soon as you can.</p>
<p>Yours sincerely,<br>{{ sender.name }}</p>
</body>
</html>
"""

DEFAULTS = {LetterKind.invitation: DEFAULT_INVITATION}

_environment = ImmutableSandboxedEnvironment(
    autoescape=True, undefined=StrictUndefined, loader=None, auto_reload=False
)
# No globals (`range`, `lipsum`, `cycler`...): a letter loops over its own values only.
_environment.globals.clear()
# The sandbox guards attributes, not time: a template may nest loops this deep, and do no
# multiplication or powers, so its work stays proportional to its values and its length.
MAX_LOOP_DEPTH = 2
_ARITHMETIC = (nodes.Mul, nodes.Pow, nodes.FloorDiv, nodes.Div, nodes.Mod)


def _loop_depth(node: nodes.Node, depth: int = 0) -> int:
    here = depth + isinstance(node, nodes.For)
    return max([here, *(_loop_depth(child, here) for child in node.iter_child_nodes())])


SAMPLE_CONTEXT: dict[str, Any] = {
    "today": "1 December 2026",
    "la_code": "000",
    "school": {"name": "Sample Primary School"},
    "children": [{"name": "Sam Sample", "given_name": "Sam", "family_name": "Sample"}],
    "family": [{"name": "Alex Sample", "relationship": "mother"}],
    "meeting": {
        "type": "multi_agency_meeting",
        "type_label": "multi-agency meeting",
        "date": "Tuesday 8 December 2026",
        "time": "10:00",
        "starts_at": "2026-12-08T10:00:00+00:00",
        "place": "Sample Primary School, meeting room",
        "agenda": "Attendance since September\nWhat is working well\nNext steps",
        "agenda_items": ["Attendance since September", "What is working well", "Next steps"],
        "invitees": [{"name": "Alex Sample", "role": "mother"}],
    },
    "sender": {"name": "A Practitioner"},
}


class LetterTemplateInvalid(ValidationFailed):
    pass


def _invalid(detail: str) -> LetterTemplateInvalid:
    return LetterTemplateInvalid(
        "The template cannot be used.", errors=[ProblemItem(loc=["body", "body"], detail=detail)]
    )


def _parsed(body: str) -> Template:
    tree = _environment.parse(body)
    if _loop_depth(tree) > MAX_LOOP_DEPTH:
        raise _invalid(f"loops may be nested at most {MAX_LOOP_DEPTH} deep")
    if any(True for _ in tree.find_all(_ARITHMETIC)):
        raise _invalid("a letter template does no multiplication, division or powers")
    return _environment.from_string(tree)


def render_html(body: str, context: dict[str, Any]) -> str:
    """The template rendered in the sandbox, or a 422 saying why it cannot be. Its output is
    read as it is made and refused once past `MAX_OUTPUT_CHARS`."""
    try:
        parts: list[str] = []
        size = 0
        for part in _parsed(body).generate(context):
            size += len(part)
            if size > MAX_OUTPUT_CHARS:
                raise _invalid(f"the letter would be longer than {MAX_OUTPUT_CHARS} characters")
            parts.append(part)
        html = "".join(parts)
    except SecurityError as exc:
        raise _invalid(f"the template reaches outside its context: {exc}") from None
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise _invalid(f"{type(exc).__name__}{where}: {exc.message or exc}") from None
    except (ArithmeticError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise _invalid(f"the template failed: {type(exc).__name__}: {str(exc)[:200]}") from None
    return html


def check(body: str) -> None:
    render_html(body, SAMPLE_CONTEXT)


def _pdf(html: str) -> bytes:
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    class FetchNothing(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            raise ValueError("letters load no external resources")

    pdf: bytes = HTML(string=html, base_url=None, url_fetcher=FetchNothing()).write_pdf()
    return pdf


async def render_pdf(html: str) -> bytes:
    """The letter as PDF, laid out in a worker thread (it is CPU work)."""
    return await asyncio.to_thread(_pdf, html)


# --- an LA's templates -------------------------------------------------------------------


async def _own(session: AsyncSession, la_code: str, kind: LetterKind) -> LetterTemplate | None:
    query = select(LetterTemplate).where(
        LetterTemplate.la_code == la_code, LetterTemplate.kind == kind.value
    )
    return (await session.exec(query)).first()


def _read(kind: LetterKind, row: LetterTemplate | None) -> LetterTemplateRead:
    if row is None:
        return LetterTemplateRead(
            kind=kind,
            la_code=None,
            body=DEFAULTS[kind],
            builtin=True,
            updated_at=None,
            updated_by=None,
        )
    return LetterTemplateRead(
        kind=kind,
        la_code=row.la_code,
        body=row.body,
        builtin=False,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


async def get(session: AsyncSession, principal: Principal, kind: LetterKind) -> LetterTemplateRead:
    """The admin's LA's template, or Liaison's default while it has none."""
    la_code = writable_la(principal)
    return _read(kind, await _own(session, la_code, kind))


async def put(
    session: AsyncSession, principal: Principal, kind: LetterKind, body: str
) -> LetterTemplateRead:
    """Set the admin's LA's template, once it parses and renders (422 otherwise)."""
    la_code = writable_la(principal)
    check(body)
    row = await _own(session, la_code, kind)
    if row is None:
        row = LetterTemplate(
            la_code=la_code, kind=kind.value, body=body, updated_by=principal.subject
        )
        session.add(row)
    else:
        row.body = body
        row.updated_at = utcnow()
        row.updated_by = principal.subject
    await session.flush()
    return _read(kind, row)


async def body_for(session: AsyncSession, la_code: str, kind: LetterKind) -> str:
    """The template a case of `la_code` is written with."""
    row = await _own(session, la_code, kind)
    return row.body if row is not None else DEFAULTS[kind]


def long_date(day: date | datetime) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"
