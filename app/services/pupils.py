"""The pupil roster: upserts from a school's MIS, and reads within reach."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Row, bindparam, insert, or_, update
from sqlmodel import col, select

from app.audit import Auditor
from app.db import run, table_of
from app.errors import NotFound
from app.models.base import new_id, utcnow
from app.models.pupil import (
    IDENTITY_FIELDS,
    PUPIL_FLAGS,
    IdentityChangeRead,
    Pupil,
    PupilIdentityChange,
    PupilRead,
    PupilRecord,
    RosterRejection,
    RosterResult,
)
from app.models.school import Jurisdiction, School
from app.pagination import Page, keyset
from app.reach import reach_condition, reach_params, within_reach
from app.security import Principal
from app.services.children import Identity, identity_for
from app.services.upn import upn_problem

# Pupils (SEND provision runs to 25) are younger than this; an older date is a data error.
MAX_PUPIL_AGE_YEARS = 26
_COMPARED = ("upn", "given_name", "family_name", "date_of_birth", "year_group", *PUPIL_FLAGS)


@dataclass
class _Push:
    accepted: dict[str, PupilRecord] = field(default_factory=dict)
    named: set[str] = field(default_factory=set)  # every mis_id in the push, even rejected
    rejected: list[RosterRejection] = field(default_factory=list)


def _reason(exc: ValidationError) -> str:
    # Field paths and messages only: the input may be a child's name or birth date.
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "row"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _check(record: PupilRecord, school: School, today: date) -> str | None:
    if record.upn is not None:
        if school.jurisdiction == Jurisdiction.scotland:
            return "upn: UPNs are issued in England and Wales, not Scotland"
        problem = upn_problem(record.upn)
        if problem:
            return f"upn: {problem}"
    if record.date_of_birth >= today:
        return "date_of_birth: must be in the past"
    if record.date_of_birth < today - timedelta(days=365 * MAX_PUPIL_AGE_YEARS):
        return f"date_of_birth: a pupil is younger than {MAX_PUPIL_AGE_YEARS}"
    return None


def _validate(rows: list[dict[str, Any]], school: School) -> _Push:
    push = _Push()
    today = date.today()
    for index, row in enumerate(rows):
        raw_mis_id = row.get("mis_id")
        if isinstance(raw_mis_id, str) and raw_mis_id.strip():
            push.named.add(raw_mis_id.strip())
        if isinstance(row.get("upn"), str):
            row = {**row, "upn": row["upn"].strip().upper()}
        try:
            record = PupilRecord.model_validate(row)
        except ValidationError as exc:
            push.rejected.append(RosterRejection(index=index, reason=_reason(exc)))
            continue
        problem = _check(record, school, today)
        if problem is None and record.mis_id in push.accepted:
            problem = f"mis_id: {record.mis_id!r} appears more than once; the first row was kept"
        if problem is not None:
            push.rejected.append(RosterRejection(index=index, reason=problem))
            continue
        push.accepted[record.mis_id] = record
    return push


def _as_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _identity_changes(
    pupil: Pupil, changes: dict[str, Any], actor: str, at: Any
) -> list[dict[str, Any]]:
    """The rectification trail's rows for one pupil's update: one per identifying field."""
    return [
        {
            "id": new_id(),
            "pupil_id": pupil.id,
            "changed_at": at,
            "changed_by": actor,
            "source": "roster",
            "field": name,
            "previous": _as_text(getattr(pupil, name)),
            "current": _as_text(changes[name]),
        }
        for name in IDENTITY_FIELDS
        if name in changes
    ]


def _changes(pupil: Pupil, record: PupilRecord) -> dict[str, Any]:
    supplied = record.model_dump(exclude_unset=True)
    changes = {
        name: supplied[name]
        for name in _COMPARED
        if name in supplied and getattr(pupil, name) != supplied[name]
    }
    # Flags sent as null mean "not known to the MIS": keep what we have.
    return {k: v for k, v in changes.items() if not (k in PUPIL_FLAGS and v is None)}


async def push_roster(
    auditor: Auditor,
    school: School,
    rows: list[dict[str, Any]],
    *,
    full: bool,
) -> RosterResult:
    """Upsert a school's roster by MIS id. Bad rows are rejected with their reason and the
    good ones kept; on a full push, pupils left out go off roll (never deleted)."""
    session = auditor.session
    push = _validate(rows, school)
    existing = {
        p.mis_id: p
        for p in (await session.exec(select(Pupil).where(Pupil.school_id == school.id))).all()
    }
    now = utcnow()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    trail: list[dict[str, Any]] = []
    unchanged = 0
    for mis_id, record in push.accepted.items():
        pupil = existing.get(mis_id)
        if pupil is None:
            values = record.model_dump()
            values.update({f: bool(values[f]) for f in PUPIL_FLAGS})
            inserts.append({**values, "id": new_id(), "school_id": school.id, "created_at": now})
            continue
        changes = _changes(pupil, record)
        if not pupil.on_roll:
            changes.update(on_roll=True, off_roll_at=None)
        if changes:
            updates.append({"id": pupil.id, **changes})
            trail.extend(_identity_changes(pupil, changes, auditor.principal.subject, now))
        else:
            unchanged += 1
    gone = []
    if full:
        gone = [
            {"id": p.id, "on_roll": False, "off_roll_at": now}
            for mis_id, p in existing.items()
            if p.on_roll and mis_id not in push.named
        ]
    if inserts:
        await session.exec(insert(Pupil), params=[{**row, "updated_at": now} for row in inserts])
    for batch in (updates, gone):
        # Rows are grouped by the columns they change, one executemany per group.
        for row in batch:
            row["updated_at"] = now
        if batch:
            await session.exec(update(Pupil), params=batch)
    if trail:
        await session.exec(insert(PupilIdentityChange), params=trail)
    written = [row["id"] for row in (*inserts, *updates, *gone)]
    await auditor.record(
        "pupil.roster.push",
        "school",
        school.id,
        pupil_ids=written,
        details={
            "full": full,
            "received": len(rows),
            "created": len(inserts),
            "updated": len(updates),
            "off_roll": len(gone),
            "rejected": len(push.rejected),
            "identity_changes": len(trail),
        },
    )
    return RosterResult(
        received=len(rows),
        created=len(inserts),
        updated=len(updates),
        unchanged=unchanged,
        off_roll=len(gone),
        rejected=push.rejected,
    )


def present(pupil: Pupil | Row[Any], principal: Principal) -> PupilRead:
    """A pupil as this principal may see it (`children.identity_for`): names and birth date
    only for those who may identify children."""
    read = PupilRead.model_validate(pupil)
    if identity_for(principal) is not Identity.FULL:
        read = read.model_copy(
            update={"given_name": None, "family_name": None, "date_of_birth": None}
        )
    return read


_PUPILS = table_of(Pupil)
_ONE_PUPIL = _PUPILS.select().where(
    _PUPILS.c.id == bindparam("id"), reach_condition(_PUPILS.c.school_id)
)


async def get(auditor: Auditor, pupil_id: uuid.UUID) -> PupilRead:
    """One pupil within reach, as the caller may see it, with its audit event."""
    session, principal = auditor.session, auditor.principal
    # Core, not the ORM: the hot read of an MIS reading back its pupils, and the identity
    # map and unit of work would only be overhead for a row that is presented and dropped.
    found = (await run(session, _ONE_PUPIL, {"id": pupil_id, **reach_params(principal)})).first()
    if found is None:
        raise NotFound("No such pupil.")
    await auditor.record("pupil.read", "pupil", pupil_id, pupil_ids=[pupil_id])
    return present(found, principal)


@dataclass(frozen=True)
class PupilFilters:
    school_id: uuid.UUID | None = None
    name: str | None = None
    upn: str | None = None
    year_group: str | None = None
    on_roll: bool | None = None
    flags: dict[str, bool] = field(default_factory=dict)


async def get_all(
    auditor: Auditor,
    page: Page,
    filters: PupilFilters,
) -> tuple[list[Pupil], str | None]:
    session, principal = auditor.session, auditor.principal
    query = select(Pupil).where(within_reach(Pupil.school_id, principal))
    if filters.school_id is not None:
        query = query.where(Pupil.school_id == filters.school_id)
    if filters.name:
        query = query.where(
            or_(
                col(Pupil.given_name).icontains(filters.name, autoescape=True),
                col(Pupil.family_name).icontains(filters.name, autoescape=True),
            )
        )
    if filters.upn:
        query = query.where(Pupil.upn == filters.upn.strip().upper())
    if filters.year_group:
        query = query.where(Pupil.year_group == filters.year_group)
    if filters.on_roll is not None:
        query = query.where(Pupil.on_roll == filters.on_roll)
    for flag, value in filters.flags.items():
        query = query.where(getattr(Pupil, flag) == value)
    items, next_cursor = await keyset(session, query, col(Pupil.id), page)
    await auditor.record(
        "pupil.list",
        "pupil",
        pupil_ids=[p.id for p in items],
        details={
            "school_id": str(filters.school_id) if filters.school_id else None,
            # Whether a name or UPN was searched for, never the value searched.
            "name_filter": bool(filters.name),
            "upn_filter": bool(filters.upn),
            "returned": len(items),
        },
    )
    return items, next_cursor


async def identity_changes(auditor: Auditor, pupil_id: uuid.UUID) -> list[IdentityChangeRead]:
    """The rectification trail of a pupil within reach, oldest first: every name, date of
    birth or UPN it has had. Reading it is audited like reading the pupil."""
    session, principal = auditor.session, auditor.principal
    pupil = (
        await session.exec(
            select(Pupil.id).where(Pupil.id == pupil_id, within_reach(Pupil.school_id, principal))
        )
    ).first()
    if pupil is None:
        raise NotFound("No such pupil.")
    rows = (
        await session.exec(
            select(PupilIdentityChange)
            .where(PupilIdentityChange.pupil_id == pupil_id)
            .order_by(col(PupilIdentityChange.id))
        )
    ).all()
    await auditor.record("pupil.identity_changes.read", "pupil", pupil_id, pupil_ids=[pupil_id])
    return [IdentityChangeRead.model_validate(row) for row in rows]
