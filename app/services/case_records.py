"""Writing a record to a case, and reading a case's records: the one recipe that goals,
reviews, contacts, timetables, measures and signposts share.

A write: the case, within reach and open for work (and with consent, for contacts) → the
children the record names, checked against the case → the row → the chronology entry →
flush → the audit event naming the children it concerns. A read: the case within reach →
its records → the audit event. Each step is in `app.services.access` or `chronology`; this
module fixes their order, so no kind of record can skip one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.models.case import Case
from app.services import access, case_dates, chronology

T = TypeVar("T", bound=SQLModel)


@dataclass(frozen=True)
class CaseWork:
    """A case open for work, as a record is written to it."""

    auditor: Auditor
    case: Case
    pupils: list[uuid.UUID]  # the case's children on a roll

    @property
    def session(self) -> AsyncSession:
        return self.auditor.session

    @property
    def by(self) -> str:
        """Who writes: `staff:<id>` or `client:<id>`."""
        return self.auditor.principal.subject


async def begin(
    auditor: Auditor,
    case_id: uuid.UUID,
    *,
    child_ids: Sequence[uuid.UUID | None] = (),
    field: str = "child_id",
    needs_consent: bool = False,
    dated: tuple[str, date] | None = None,
) -> CaseWork:
    """The case within reach (404); the record's date, `dated` as (field, day), within the
    case's life (422 naming both dates, even when the case is closed); the case open for
    work (409 when closed); its consent when the record needs it (409 while withdrawn); and
    a 422 naming `field` for any child id that is not a child on the case."""
    session, principal = auditor.session, auditor.principal
    case = await access.get_case(session, principal, case_id)
    if dated is not None:
        case_dates.check_within(case, *dated)
    access.require_open(case)
    if needs_consent:
        access.require_consent(case)
    pupils = await access.check_children(session, case, child_ids, field)
    return CaseWork(auditor, case, pupils)


async def add(
    work: CaseWork,
    row: SQLModel,
    *,
    event: str,
    summary: str,
    action: str,
    details: dict[str, Any] | None = None,
    children: Iterable[uuid.UUID] | None = None,
    also: Iterable[SQLModel] = (),
    resource: tuple[str, uuid.UUID] | None = None,
) -> None:
    """Write `row` (and the rows `also` belonging to it) to the case: its chronology entry,
    then its audit event, naming `children` (default: all the case's children) and
    `resource` (default: the row itself)."""
    session = work.session
    session.add(row)
    session.add_all(also)
    await chronology.record(
        session, work.auditor.principal, event, summary, case_id=work.case.id, details=details
    )
    await session.flush()
    kind, record_id = resource or (row.__tablename__, row.id)  # type: ignore[attr-defined]
    await work.auditor.record(
        action, str(kind), record_id, pupil_ids=work.pupils if children is None else children
    )


async def records(
    auditor: Auditor,
    case_id: uuid.UUID,
    model: type[T],
    *order_by: Any,
    action: str,
    where: Iterable[Any] = (),
    children: Callable[[list[T]], list[uuid.UUID]] | None = None,
) -> list[T]:
    """A case's records of one kind, read within reach and audited as `action`, naming the
    case's children (or those `children` picks from the rows)."""
    session, principal = auditor.session, auditor.principal
    case = await access.get_case(session, principal, case_id)
    query = select(model).where(model.case_id == case.id, *where)  # type: ignore[attr-defined]
    rows = list((await session.exec(query.order_by(*order_by))).all())
    pupils = children(rows) if children else await access.pupils_of(session, case.id)
    await auditor.record(action, "case", case.id, pupil_ids=pupils)
    return rows
