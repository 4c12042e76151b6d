"""Measures: a child's scores on the instruments kept as reference data."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.errors import ProblemItem, ValidationFailed
from app.models.measure import (
    Measure,
    MeasureCreate,
    MeasureInstrument,
    MeasureRead,
)
from app.services import case_records, reference


async def instruments(session: AsyncSession, las: Iterable[str]) -> list[MeasureInstrument]:
    """The national instruments and those of the given LAs."""
    return await reference.visible(session, MeasureInstrument, las)


def _problem(field: str, detail: str) -> ValidationFailed:
    return ValidationFailed(
        "The measure does not fit its instrument.",
        errors=[ProblemItem(loc=["body", field], detail=detail)],
    )


async def record(auditor: Auditor, case_id: uuid.UUID, new: MeasureCreate) -> MeasureRead:
    work = await case_records.begin(
        auditor, case_id, child_ids=[new.child_id], dated=("measured_on", new.measured_on)
    )
    instrument = await reference.find(
        work.session, MeasureInstrument, work.case.la_code, new.instrument
    )
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
        case_id=work.case.id,
        child_id=new.child_id,
        instrument=new.instrument,
        domain=new.domain,
        score=new.score,
        measured_on=new.measured_on,
        created_by=work.by,
    )
    where = f" ({new.domain.replace('_', ' ')})" if new.domain else ""
    await case_records.add(
        work,
        measure,
        event="measure.recorded",
        summary=f"{instrument.label}{where}: {new.score:g} on {new.measured_on.isoformat()}",
        details={"measure_id": str(measure.id), "child_id": str(new.child_id)},
        action="measure.create",
        children=[new.child_id],
    )
    return MeasureRead.model_validate(measure)


async def get_all(
    auditor: Auditor,
    case_id: uuid.UUID,
    child_id: uuid.UUID | None,
    instrument: str | None,
) -> list[MeasureRead]:
    """The case's measures, by date; the read is audited as concerning the children they
    are about."""
    where = []
    if child_id is not None:
        where.append(col(Measure.child_id) == child_id)
    if instrument is not None:
        where.append(col(Measure.instrument) == instrument)
    rows = await case_records.records(
        auditor,
        case_id,
        Measure,
        col(Measure.measured_on),
        col(Measure.id),
        action="measure.list",
        where=where,
        children=lambda found: list(dict.fromkeys(r.child_id for r in found)),
    )
    return [MeasureRead.model_validate(r) for r in rows]
