"""Attendance: code tables, the marks push, figures, and the absence-flag worklist."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import TypeAdapter

from app.deps import (
    AnyPrincipal,
    AttendanceReader,
    AttendanceWriter,
    AuditorDep,
    FlagHandler,
    PageDep,
    SessionDep,
    SettingsDep,
)
from app.errors import (
    BadRequest,
    InsufficientScope,
    PayloadTooLarge,
    ProblemItem,
    UnsupportedMediaType,
    ValidationFailed,
    problem_responses,
)
from app.idempotency import Answer, IdempotencyKeyHeader, create_once
from app.models.attendance import (
    CodeList,
    FlagAcknowledge,
    FlagDetail,
    FlagEventRead,
    FlagKind,
    FlagPage,
    FlagRead,
    FlagStatus,
    IngestResult,
    MarkIn,
    PupilAttendance,
    SchoolAttendance,
    SchoolCodeList,
    SchoolCodeMap,
    SchoolCodeRead,
)
from app.models.base import IsoDate
from app.models.school import Jurisdiction
from app.openapi import SCOPES_ANY_OF
from app.security import Scope
from app.services import attendance, attendance_codes, attendance_flags, school_calendar, schools

router = APIRouter(tags=["attendance"], responses=problem_responses(401, 403, 500, 503))


NDJSON = "application/x-ndjson"
_MARK_SCHEMA = TypeAdapter(MarkIn).json_schema()


def _push_body_schema() -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["marks"],
                    "additionalProperties": False,
                    "properties": {"marks": {"type": "array", "items": _MARK_SCHEMA}},
                }
            },
            NDJSON: {
                "schema": {**_MARK_SCHEMA, "description": "One mark (a JSON object) per line."}
            },
        },
    }


# --- codes --------------------------------------------------------------------------------


@router.get("/v1/attendance/codes", response_model=CodeList, responses=problem_responses(400, 422))
async def list_codes(
    session: SessionDep,
    _principal: AnyPrincipal,
    jurisdiction: Jurisdiction | None = None,
    on: Annotated[
        IsoDate | None,
        Query(description="Only codes valid on this date (default: today)."),
    ] = None,
    all_dates: Annotated[
        bool, Query(description="Every version, retired codes included, ignoring `on`.")
    ] = False,
) -> CodeList:
    """The statutory codes (and any an admin added) that marks are interpreted through."""
    day = on or school_calendar.school_today()
    codes = await attendance_codes.get_all(session, jurisdiction, None if all_dates else day)
    return CodeList(on=day, items=[attendance_codes.present(c) for c in codes])


@router.get(
    "/v1/schools/{school_id}/attendance-codes",
    response_model=SchoolCodeList,
    responses=problem_responses(404, 422),
)
async def read_school_codes(
    school_id: uuid.UUID, session: SessionDep, principal: AnyPrincipal
) -> SchoolCodeList:
    school = await schools.get(session, principal, school_id)
    return _code_list(school.id, await attendance_codes.school_mappings(session, school))


@router.put(
    "/v1/schools/{school_id}/attendance-codes",
    response_model=SchoolCodeList,
    responses=problem_responses(404, 422),
    openapi_extra={SCOPES_ANY_OF: [[Scope.attendance_write.value], [Scope.admin.value]]},
)
async def replace_school_codes(
    school_id: uuid.UUID,
    body: SchoolCodeMap,
    session: SessionDep,
    principal: AnyPrincipal,
) -> SchoolCodeList:
    """Replace the school's map of its own display codes onto statutory codes. A mark whose
    code is in the map is read as the statutory code it maps to. The map is the school's:
    written by its own system (`attendance:write`) or an admin of its LA (`admin`)."""
    if not (principal.has(Scope.attendance_write) or principal.has(Scope.admin)):
        raise InsufficientScope([Scope.attendance_write.value], alternatives=[Scope.admin.value])
    school = await schools.get(session, principal, school_id)
    rows = await attendance_codes.replace_school_mappings(session, school, body.codes)
    return _code_list(school.id, rows)


def _code_list(school_id: uuid.UUID, rows: list[Any]) -> SchoolCodeList:
    return SchoolCodeList(
        school_id=school_id, items=[SchoolCodeRead.model_validate(r) for r in rows]
    )


# --- marks --------------------------------------------------------------------------------


def _loads(raw: bytes) -> Any:
    """orjson, which is fast; else the standard library, which also reads what orjson refuses
    but JSON allows (a lone surrogate escape, `\\ud800`), so that the mark holding it is
    rejected alone rather than the whole push. Invalid JSON raises a ValueError."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def _parse_marks(body: bytes, content_type: str, limit: int) -> list[Any]:
    media = content_type.split(";")[0].strip().lower()
    if media == NDJSON:
        lines = [line for line in body.split(b"\n") if line.strip()]
        if len(lines) > limit:
            raise PayloadTooLarge(f"A push holds at most {limit} marks; send more pushes.")
        items: list[Any] = []
        for line in lines:
            try:
                items.append(_loads(line))
            except ValueError:
                # Kept in place so the rejection's index is the line's position.
                items.append(_NOT_JSON)
        return items
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(f"Send application/json or {NDJSON}.")
    try:
        document = _loads(body)
    except ValueError as exc:
        raise BadRequest(
            "The body is not valid JSON.",
            errors=[ProblemItem(loc=["body"], detail=str(exc).split(":")[0])],
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("marks"), list):
        raise ValidationFailed(
            'The body must be an object with a "marks" array.',
            errors=[ProblemItem(loc=["body", "marks"], detail="a list is required")],
        )
    extra = set(document) - {"marks"}
    if extra:
        raise ValidationFailed(
            "Unexpected fields in the body.",
            errors=[
                ProblemItem(loc=["body", name], detail="extra fields are not permitted")
                for name in sorted(extra)
            ],
        )
    marks: list[Any] = document["marks"]
    if len(marks) > limit:
        raise PayloadTooLarge(f"A push holds at most {limit} marks; send more pushes.")
    return marks


class _NotJson:
    """Stands in for an NDJSON line that did not parse: it fails validation as one item."""


_NOT_JSON = _NotJson()


@router.post(
    "/v1/attendance/marks",
    response_model=IngestResult,
    responses=problem_responses(400, 409, 413, 415, 422),
    openapi_extra={"requestBody": _push_body_schema()},
)
async def push_marks(
    request: Request,
    settings: SettingsDep,
    _principal: AttendanceWriter,
    auditor: AuditorDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Upsert session marks by (pupil, date, session), as JSON `{"marks": [...]}` or as
    NDJSON (one mark per line) for large pushes. Each bad mark is rejected with its index
    and reason and the good ones are kept. Resending the same marks changes nothing; send
    an `Idempotency-Key` to have a retried push answered exactly as the first time."""
    body = await request.body()
    items = _parse_marks(
        body, request.headers.get("content-type", ""), settings.attendance_max_marks
    )

    async def push() -> Answer:
        result = await attendance.ingest(auditor, settings, items)
        return Answer(200, result.model_dump_json())

    return await create_once(
        request, auditor, idempotency_key, settings.idempotency_hours, push, body=body
    )


# --- figures ------------------------------------------------------------------------------

FromQuery = Annotated[
    IsoDate | None,
    Query(alias="from", description="First day (default: 1 August of this academic year)."),
]
ToQuery = Annotated[IsoDate | None, Query(alias="to", description="Last day (default: today).")]


@router.get(
    "/v1/pupils/{pupil_id}/attendance",
    response_model=PupilAttendance,
    responses=problem_responses(400, 404, 422),
)
async def pupil_attendance(
    pupil_id: uuid.UUID,
    _principal: AttendanceReader,
    auditor: AuditorDep,
    start: FromQuery = None,
    end: ToQuery = None,
) -> PupilAttendance:
    """A pupil's attendance figures over the range, by week and by term."""
    return await attendance.pupil_figures(auditor, pupil_id, start, end)


@router.get(
    "/v1/schools/{school_id}/attendance",
    response_model=SchoolAttendance,
    responses=problem_responses(400, 404, 422),
)
async def school_attendance(
    school_id: uuid.UUID,
    session: SessionDep,
    principal: AttendanceReader,
    auditor: AuditorDep,
    page: PageDep,
    start: FromQuery = None,
    end: ToQuery = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous page.")
    ] = None,
) -> SchoolAttendance:
    """The school's pupils with marks in the range, lowest attendance first."""
    school = await schools.get(session, principal, school_id)
    after = attendance.decode_rank_cursor(cursor) if cursor else None
    return await attendance.school_figures(auditor, school, start, end, after, page.limit)


# --- flags --------------------------------------------------------------------------------


@router.get("/v1/attendance/flags", response_model=FlagPage, responses=problem_responses(400, 422))
async def list_flags(
    _principal: AttendanceReader,
    auditor: AuditorDep,
    page: PageDep,
    school_id: uuid.UUID | None = None,
    kind: FlagKind | None = None,
    status: Annotated[
        FlagStatus | None, Query(description="`open`: raised and not yet acknowledged.")
    ] = None,
    pupil_id: uuid.UUID | None = None,
) -> FlagPage:
    """Absence flags within reach, oldest raised first: the worklist.

    Flags are judged on the pupil's latest academic year (from 1 August) every time their
    marks change, with the settings' thresholds (defaults in brackets):

    - `persistent_absence`: 10% or more of possible sessions missed, once the year has at
      least `LIAISON_FLAG_MIN_SESSIONS` (20) possible sessions;
    - `severe_absence`: 50% or more missed, on the same terms;
    - `unexplained_absence`: the latest `LIAISON_UNEXPLAINED_RUN_SESSIONS` (3) possible
      sessions are all `N` or `O` (whereabouts unknown);
    - `sharp_decline`: attendance over the last `LIAISON_SHARP_DECLINE_WEEKS` (4) weeks with
      marks is `LIAISON_SHARP_DECLINE_POINTS` (15) percentage points or more below the
      pupil's own rate earlier in the year.

    A flag is `open` when raised, `acknowledged` once a practitioner has noted what was
    done, and `resolved` when its condition stops holding (a corrected mark can do that).
    A condition that returns raises a new flag; old ones keep their history."""
    filters = attendance_flags.FlagFilters(
        school_id=school_id, kind=kind, status=status, pupil_id=pupil_id
    )
    items, next_cursor = await attendance_flags.get_all(auditor, page, filters)
    return FlagPage(items=[FlagRead.model_validate(f) for f in items], next_cursor=next_cursor)


def _detail(flag: Any, events: list[Any]) -> FlagDetail:
    return FlagDetail(
        **FlagRead.model_validate(flag).model_dump(),
        history=[FlagEventRead.model_validate(e) for e in events],
    )


@router.get(
    "/v1/attendance/flags/{flag_id}",
    response_model=FlagDetail,
    responses=problem_responses(404, 422),
)
async def read_flag(
    flag_id: uuid.UUID, _principal: AttendanceReader, auditor: AuditorDep
) -> FlagDetail:
    """A flag with its history: raised, acknowledged, resolved, with who and when."""
    flag, events = await attendance_flags.read(auditor, flag_id)
    return _detail(flag, events)


@router.post(
    "/v1/attendance/flags/{flag_id}/acknowledge",
    response_model=FlagDetail,
    responses=problem_responses(404, 409, 422),
)
async def acknowledge_flag(
    flag_id: uuid.UUID,
    body: FlagAcknowledge,
    _principal: FlagHandler,
    auditor: AuditorDep,
) -> FlagDetail:
    """Take an open flag off the worklist with a note of what was done. The flag still
    resolves by itself when its condition stops holding."""
    flag, events = await attendance_flags.acknowledge(auditor, flag_id, body.note, body.case_id)
    return _detail(flag, events)
