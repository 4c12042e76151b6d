"""Measures: a child's scores on the instruments kept as reference data."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.errors import ProblemItem, ValidationFailed
from app.models.measure import (
    InstrumentCreate,
    Measure,
    MeasureCreate,
    MeasureInstrument,
    MeasureRead,
)
from app.reach import writable_la
from app.security import Principal
from app.services import access, chronology, reference


async def instruments(session: AsyncSession, las: Iterable[str]) -> list[MeasureInstrument]:
    """The national instruments and those of the given LAs."""
    return await reference.visible(session, MeasureInstrument, las)


async def add_instrument(
    session: AsyncSession, principal: Principal, new: InstrumentCreate
) -> MeasureInstrument:
    """An LA admin's own instrument, for its LA only."""
    la_code = writable_la(principal, new.la_code)
    row = MeasureInstrument(**new.model_dump(exclude={"la_code"}), la_code=la_code)
    return await reference.add(session, row, "instrument")


def _problem(field: str, detail: str) -> ValidationFailed:
    return ValidationFailed(
        "The measure does not fit its instrument.",
        errors=[ProblemItem(loc=["body", field], detail=detail)],
    )


async def record(
    auditor: Auditor,
    case_id: uuid.UUID,
    new: MeasureCreate,
) -> MeasureRead:
    session, principal = auditor.session, auditor.principal
    case = await access.get_case_for_work(session, principal, case_id)
    await access.check_children(session, case, [new.child_id], "child_id")
    instrument = await reference.find(session, MeasureInstrument, case.la_code, new.instrument)
    if instrument is None:
        raise _problem(
            "instrument",
            f"unknown instrument {new.instrument!r} (attendance comes from the attendance "
            "data, not from measures)",
        )
    if instrument.domains and new.domain not in instrument.domains:
        raise _problem("domain", f"one of {', '.join(instrument.domains)} is required")
    if not instrument.domains and new.domain is not None:
        raise _problem("domain", "this instrument has no domains")
    if not instrument.min_score <= new.score <= instrument.max_score:
        raise _problem(
            "score", f"must be between {instrument.min_score:g} and {instrument.max_score:g}"
        )
    measure = Measure(
        case_id=case.id,
        child_id=new.child_id,
        instrument=new.instrument,
        domain=new.domain,
        score=new.score,
        measured_on=new.measured_on,
        created_by=principal.subject,
    )
    session.add(measure)
    where = f" ({new.domain.replace('_', ' ')})" if new.domain else ""
    await chronology.record(
        session,
        principal,
        "measure.recorded",
        f"{instrument.label}{where}: {new.score:g} on {new.measured_on.isoformat()}",
        case_id=case.id,
        details={"measure_id": str(measure.id), "child_id": str(new.child_id)},
    )
    await session.flush()
    await auditor.record("measure.create", "measure", measure.id, pupil_ids=[new.child_id])
    return MeasureRead.model_validate(measure)


async def get_all(
    auditor: Auditor,
    case_id: uuid.UUID,
    child_id: uuid.UUID | None,
    instrument: str | None,
) -> list[MeasureRead]:
    session, principal = auditor.session, auditor.principal
    case = await access.get_case(session, principal, case_id)
    query = select(Measure).where(Measure.case_id == case.id)
    if child_id is not None:
        query = query.where(Measure.child_id == child_id)
    if instrument is not None:
        query = query.where(Measure.instrument == instrument)
    rows = (await session.exec(query.order_by(col(Measure.measured_on), col(Measure.id)))).all()
    await auditor.record(
        "measure.list", "case", case.id, pupil_ids=list(dict.fromkeys(r.child_id for r in rows))
    )
    return [MeasureRead.model_validate(r) for r in rows]
