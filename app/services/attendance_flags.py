"""Absence flags: derived from the marks, kept up to date by every push, never set by hand.

`refresh` re-judges only the pupils whose marks just changed, from their weekly running
counts and their latest few sessions, never from a rescan of their year. A flag is raised
once, stays live (open, then perhaps acknowledged) while its condition holds, and is
resolved when it stops holding; each change is kept in the flag's history, and raising or
resolving a flag queues an event for webhook delivery.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, Uuid, bindparam, insert, text, update
from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.config import Settings
from app.db import chunks, is_postgresql, run, table_of
from app.errors import Conflict, NotFound, ProblemItem, ValidationFailed
from app.models.attendance import (
    CATEGORY_NUMBER,
    AttendanceFlag,
    AttendanceFlagEvent,
    AttendanceWeek,
    Category,
    FlagKind,
    FlagStatus,
)
from app.models.base import new_id, utcnow
from app.models.event import OutboxEvent
from app.models.school import School
from app.models.webhook_events import FlagRaised, FlagResolved
from app.pagination import Page, keyset
from app.reach import within_reach
from app.services import access, webhook_events
from app.services.school_calendar import persistent_absence, rate, severe_absence


@dataclass(frozen=True)
class _Week:
    start: date
    year: int
    possible: int
    attended: int


@dataclass(frozen=True)
class Standing:
    """What the flags are judged on, for one pupil in their latest academic year."""

    year: int
    possible: int
    attended: int
    recent_possible: int  # the last `sharp_decline_weeks` weeks with marks
    recent_attended: int
    unexplained_run: bool  # the latest `unexplained_run_sessions` possible sessions all N/O


def standing(settings: Settings, weeks: list[_Week], trailing: list[bool]) -> Standing | None:
    """A pupil's standing from their weekly counts and latest sessions (newest first)."""
    if not weeks:
        return None
    year = max(w.year for w in weeks)
    counted = sorted((w for w in weeks if w.year == year and w.possible > 0), key=lambda w: w.start)
    recent: list[_Week] = []
    if counted:
        cutoff = counted[-1].start - timedelta(weeks=settings.sharp_decline_weeks)
        recent = [w for w in counted if w.start > cutoff]
    run = settings.unexplained_run_sessions
    return Standing(
        year=year,
        possible=sum(w.possible for w in counted),
        attended=sum(w.attended for w in counted),
        recent_possible=sum(w.possible for w in recent),
        recent_attended=sum(w.attended for w in recent),
        unexplained_run=len(trailing) >= run and all(trailing[:run]),
    )


def judge(settings: Settings, now: Standing | None) -> dict[FlagKind, dict[str, Any]]:
    """Which flags hold for a pupil, with the figures behind each."""
    if now is None:
        return {}
    held: dict[FlagKind, dict[str, Any]] = {}
    possible, attended = now.possible, now.attended
    missed = possible - attended
    figures = {
        "possible_sessions": possible,
        "missed_sessions": missed,
        "attendance_rate": rate(possible, attended),
    }
    if possible >= settings.flag_min_sessions:
        if persistent_absence(possible, attended):
            held[FlagKind.persistent_absence] = figures
        if severe_absence(possible, attended):
            held[FlagKind.severe_absence] = figures
    if now.unexplained_run:
        held[FlagKind.unexplained_absence] = {
            "consecutive_unexplained_sessions": settings.unexplained_run_sessions
        }
    before = (possible - now.recent_possible, attended - now.recent_attended)
    lately = (now.recent_possible, now.recent_attended)
    if before[0] >= settings.sharp_decline_min_sessions and lately[0] > 0:
        # Compare exactly: earlier% - recent% >= points, scaled to integers.
        drop = (before[1] * lately[0] - lately[1] * before[0]) * 100
        if drop >= settings.sharp_decline_points * before[0] * lately[0]:
            held[FlagKind.sharp_decline] = {
                "earlier_rate": rate(before[0], before[1]),
                "recent_rate": rate(lately[0], lately[1]),
                "recent_weeks": settings.sharp_decline_weeks,
            }
    return held


# Marks store their category as a number (`CATEGORY_NUMBER`).
_NOT_POSSIBLE = CATEGORY_NUMBER[Category.not_possible]

# PostgreSQL works out every pupil's standing in one statement.
_STANDING_PG = text(
    f"""
WITH p AS (SELECT DISTINCT unnest(CAST(:ids AS uuid[])) AS pupil_id)
SELECT p.pupil_id, y.academic_year,
       coalesce(a.possible, 0), coalesce(a.attended, 0),
       coalesce(a.recent_possible, 0), coalesce(a.recent_attended, 0),
       coalesce(t.unexplained_run, false), live.ids, live.kinds
FROM p
-- Every lookup below is a short index scan for one pupil: no sorts, no table scans.
LEFT JOIN LATERAL (
    SELECT academic_year, make_date(academic_year, 8, 1) AS starts,
           make_date(academic_year + 1, 8, 1) AS ends
    FROM attendance_week w WHERE w.pupil_id = p.pupil_id
    ORDER BY w.week_start DESC LIMIT 1
) AS y ON true
LEFT JOIN LATERAL (
    SELECT array_agg(f.id) AS ids, array_agg(f.kind) AS kinds FROM attendance_flag f
    WHERE f.pupil_id = p.pupil_id AND f.status <> 'resolved'
) AS live ON true
LEFT JOIN LATERAL (
    SELECT w.week_start AS last_week FROM attendance_week w
    WHERE w.pupil_id = p.pupil_id AND w.week_start >= y.starts AND w.week_start < y.ends
      AND w.possible > 0
    ORDER BY w.week_start DESC LIMIT 1
) AS c ON true
LEFT JOIN LATERAL (
    SELECT sum(w.possible) AS possible, sum(w.attended) AS attended,
           sum(w.possible) FILTER (WHERE w.week_start > c.last_week - r.days)
               AS recent_possible,
           sum(w.attended) FILTER (WHERE w.week_start > c.last_week - r.days)
               AS recent_attended
    FROM attendance_week w, (SELECT CAST(:recent_days AS integer) AS days) AS r
    WHERE w.pupil_id = p.pupil_id AND w.week_start >= y.starts AND w.week_start < y.ends
) AS a ON true
LEFT JOIN LATERAL (
    SELECT count(*) = CAST(:run AS integer) AND bool_and(latest.unexplained) AS unexplained_run
    FROM (
        SELECT m.unexplained FROM attendance_mark m
        WHERE m.pupil_id = p.pupil_id AND m.category <> {_NOT_POSSIBLE}
        ORDER BY m.date DESC, m.session DESC
        LIMIT CAST(:run AS integer)
    ) AS latest
) AS t ON true
"""  # noqa: S608 (a number from CATEGORY_NUMBER, never input)
)


async def _standings(
    session: AsyncSession, settings: Settings, pupil_ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, Standing], dict[tuple[uuid.UUID, str], Any]]:
    """Each pupil's standing, and their live flags by (pupil, kind)."""
    out: dict[uuid.UUID, Standing] = {}
    live: dict[tuple[uuid.UUID, str], Any] = {}
    if is_postgresql(session):
        for ids in chunks(pupil_ids):
            rows = await run(
                session,
                _STANDING_PG,
                {
                    "ids": ids,
                    "recent_days": 7 * settings.sharp_decline_weeks,
                    "run": settings.unexplained_run_sessions,
                },
            )
            for pupil_id, year, *figures, flag_ids, kinds in map(tuple, rows):
                if year is not None:
                    out[pupil_id] = Standing(year, *figures)
                for flag_id, kind in zip(flag_ids or (), kinds or (), strict=True):
                    live[(pupil_id, kind)] = flag_id
        return out, live
    weeks = await _weeks(session, pupil_ids)
    trailing = await _trailing(session, pupil_ids, settings.unexplained_run_sessions)
    for pupil_id in pupil_ids:
        found = standing(settings, weeks.get(pupil_id, []), trailing.get(pupil_id, []))
        if found is not None:
            out[pupil_id] = found
    f = table_of(AttendanceFlag).c
    for ids in chunks(pupil_ids):
        flags = await run(
            session,
            core_select(f.id, f.pupil_id, f.kind).where(
                f.pupil_id.in_(ids),
                f.status != FlagStatus.resolved.value,
            ),
        )
        for flag_id, pupil_id, kind in map(tuple, flags):
            live[(pupil_id, kind)] = flag_id
    return out, live


async def _weeks(session: AsyncSession, pupil_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[_Week]]:
    out: dict[uuid.UUID, list[_Week]] = defaultdict(list)
    w = table_of(AttendanceWeek).c
    for ids in chunks(pupil_ids):
        rows = await run(
            session,
            core_select(w.pupil_id, w.week_start, w.academic_year, w.possible, w.attended).where(
                w.pupil_id.in_(ids)
            ),
        )
        for pupil_id, week_start, year, possible, attended in map(tuple, rows):
            out[pupil_id].append(_Week(week_start, year, possible, attended))
    return out


_TRAILING_PORTABLE_SQL = f"""
SELECT pupil_id, unexplained FROM (
    SELECT pupil_id, unexplained, date, session, row_number() OVER (
        PARTITION BY pupil_id ORDER BY date DESC, session DESC) AS n
    FROM attendance_mark
    WHERE pupil_id IN :ids AND category <> {_NOT_POSSIBLE}
) AS latest WHERE n <= :run
ORDER BY pupil_id, date DESC, session DESC
"""  # noqa: S608 (a number from CATEGORY_NUMBER, never input)
_TRAILING_PORTABLE = (
    text(_TRAILING_PORTABLE_SQL)
    .bindparams(bindparam("ids", expanding=True, type_=Uuid()))
    .columns(pupil_id=Uuid(), unexplained=Boolean())
)


async def _trailing(
    session: AsyncSession, pupil_ids: list[uuid.UUID], length: int
) -> dict[uuid.UUID, list[bool]]:
    """For each pupil, whether each of their latest `length` possible sessions was
    unexplained, newest first."""
    out: dict[uuid.UUID, list[bool]] = defaultdict(list)
    for ids in chunks(pupil_ids):
        rows = await run(session, _TRAILING_PORTABLE, {"ids": list(ids), "run": length})
        for pupil_id, unexplained in map(tuple, rows):
            out[pupil_id].append(bool(unexplained))
    return out


async def refresh(
    session: AsyncSession, settings: Settings, schools: dict[uuid.UUID, uuid.UUID]
) -> int:
    """Raise and resolve flags for these pupils (pupil id -> school id). Returns how many
    flags were raised."""
    if not schools:
        return 0
    pupil_ids = sorted(schools)
    standings, live = await _standings(session, settings, pupil_ids)
    now = utcnow()
    raised: list[dict[str, Any]] = []
    resolved: list[uuid.UUID] = []
    events: list[dict[str, Any]] = []
    raised_data: list[FlagRaised] = []
    for pupil_id in pupil_ids:
        now_standing = standings.get(pupil_id)
        year = now_standing.year if now_standing else None
        held = judge(settings, now_standing)
        for kind in FlagKind:
            flag_id = live.get((pupil_id, kind.value))
            evidence = held.get(kind)
            if evidence is not None and flag_id is None and year is not None:
                flag_id = new_id()
                raised.append(
                    {
                        "id": flag_id,
                        "pupil_id": pupil_id,
                        "school_id": schools[pupil_id],
                        "kind": kind.value,
                        "status": FlagStatus.open.value,
                        "academic_year": year,
                        "raised_at": now,
                        "evidence": evidence,
                        "updated_at": now,
                    }
                )
                events.append(_event(flag_id, "raised", now, None, evidence))
                raised_data.append(
                    FlagRaised(
                        flag_id=flag_id,
                        pupil_id=pupil_id,
                        school_id=schools[pupil_id],
                        kind=kind,
                        academic_year=year,
                    )
                )
            elif evidence is None and flag_id is not None:
                resolved.append(flag_id)
                events.append(_event(flag_id, "resolved", now, None, {}))
    resolved_data: list[FlagResolved] = []
    if raised:
        await session.exec(insert(AttendanceFlag), params=raised)
    if resolved:
        f = table_of(AttendanceFlag).c
        for ids in chunks(resolved):
            done = await session.exec(
                update(AttendanceFlag)
                .where(col(AttendanceFlag.id).in_(ids))
                .values(status=FlagStatus.resolved.value, resolved_at=now, updated_at=now)
                .returning(f.id, f.pupil_id, f.school_id, f.kind, f.academic_year)
            )
            resolved_data.extend(
                FlagResolved(
                    flag_id=flag_id,
                    pupil_id=pupil_id,
                    school_id=school_id,
                    kind=FlagKind(kind),
                    academic_year=year,
                )
                for flag_id, pupil_id, school_id, kind, year in map(tuple, done)
            )
    if events:
        await session.exec(insert(AttendanceFlagEvent), params=events)
    if raised_data or resolved_data:
        await _record_events(session, [*raised_data, *resolved_data], now)
    return len(raised)


async def _record_events(session: AsyncSession, changes: list[FlagRaised], now: datetime) -> None:
    """The outbox rows for flags raised and resolved, in one insert per chunk: a push of a
    whole school's marks can change thousands of flags."""
    school_ids = sorted({c.school_id for c in changes})
    s = table_of(School).c
    la_of: dict[uuid.UUID, str] = {}
    for ids in chunks(school_ids):
        found = await run(session, core_select(s.id, s.la_code).where(s.id.in_(ids)))
        la_of.update((school_id, la_code) for school_id, la_code in map(tuple, found))
    outbox = [
        webhook_events.outbox_row(
            c, la_code=la_of.get(c.school_id), school_id=c.school_id, occurred_at=now
        )
        for c in changes
    ]
    for rows in chunks(outbox):
        await session.exec(insert(OutboxEvent), params=rows)


def _event(
    flag_id: uuid.UUID, event: str, at: Any, actor: str | None, evidence: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "flag_id": flag_id,
        "event": event,
        "occurred_at": at,
        "actor": actor,
        "evidence": evidence,
    }


# --- reads and acknowledgement ------------------------------------------------------------


@dataclass(frozen=True)
class FlagFilters:
    school_id: uuid.UUID | None = None
    kind: FlagKind | None = None
    status: FlagStatus | None = None
    pupil_id: uuid.UUID | None = None


async def get_all(
    auditor: Auditor,
    page: Page,
    filters: FlagFilters,
) -> tuple[list[AttendanceFlag], str | None]:
    session, principal = auditor.session, auditor.principal
    query = select(AttendanceFlag).where(within_reach(AttendanceFlag.school_id, principal))
    if filters.school_id is not None:
        query = query.where(col(AttendanceFlag.school_id) == filters.school_id)
    if filters.kind is not None:
        query = query.where(col(AttendanceFlag.kind) == filters.kind)
    if filters.status is not None:
        query = query.where(col(AttendanceFlag.status) == filters.status)
    if filters.pupil_id is not None:
        query = query.where(col(AttendanceFlag.pupil_id) == filters.pupil_id)
    items, next_cursor = await keyset(session, query, col(AttendanceFlag.id), page)
    await auditor.record(
        "attendance.flag.list",
        "attendance_flag",
        pupil_ids=[f.pupil_id for f in items],
        details={
            "school_id": str(filters.school_id) if filters.school_id else None,
            "kind": filters.kind,
            "status": filters.status,
            "returned": len(items),
        },
    )
    return items, next_cursor


async def history(session: AsyncSession, flag_id: uuid.UUID) -> list[AttendanceFlagEvent]:
    return list(
        (
            await session.exec(
                select(AttendanceFlagEvent)
                .where(col(AttendanceFlagEvent.flag_id) == flag_id)
                .order_by(col(AttendanceFlagEvent.id))
            )
        ).all()
    )


async def read(
    auditor: Auditor, flag_id: uuid.UUID
) -> tuple[AttendanceFlag, list[AttendanceFlagEvent]]:
    session, principal = auditor.session, auditor.principal
    flag = await access.get_flag(session, principal, flag_id)
    await auditor.record(
        "attendance.flag.read", "attendance_flag", flag.id, pupil_ids=[flag.pupil_id]
    )
    return flag, await history(session, flag.id)


async def acknowledge(
    auditor: Auditor,
    flag_id: uuid.UUID,
    note: str,
    case_id: uuid.UUID | None = None,
) -> tuple[AttendanceFlag, list[AttendanceFlagEvent]]:
    """Take an open flag off the worklist, optionally naming the case it is handled in."""
    session, principal = auditor.session, auditor.principal
    flag = await access.get_flag(session, principal, flag_id)
    if flag.status == FlagStatus.resolved:
        raise Conflict("This flag is resolved; there is nothing to acknowledge.")
    if flag.status == FlagStatus.acknowledged:
        raise Conflict(
            f"This flag was already acknowledged by {flag.acknowledged_by} "
            f"at {flag.acknowledged_at:%Y-%m-%d %H:%M} UTC."
        )
    if case_id is not None:
        try:
            await access.get_case(session, principal, case_id)
        except NotFound:
            raise ValidationFailed(
                "The case was not found.",
                errors=[ProblemItem(loc=["body", "case_id"], detail="no such case in reach")],
            ) from None
    now = utcnow()
    result = await session.exec(
        update(AttendanceFlag)
        .where(
            col(AttendanceFlag.id) == flag.id,
            col(AttendanceFlag.status) == FlagStatus.open.value,
        )
        .values(
            status=FlagStatus.acknowledged.value,
            acknowledged_at=now,
            acknowledged_by=principal.subject,
            note=note,
            case_id=case_id if case_id is not None else flag.case_id,
            updated_at=now,
        )
    )
    if result.rowcount != 1:
        raise Conflict("This flag changed while you were acknowledging it; read it again.")
    await session.exec(
        insert(AttendanceFlagEvent).values(
            **_event(flag.id, "acknowledged", now, principal.subject, {})
        )
    )
    await auditor.record(
        "attendance.flag.acknowledge", "attendance_flag", flag.id, pupil_ids=[flag.pupil_id]
    )
    await session.refresh(flag)
    return flag, await history(session, flag.id)
