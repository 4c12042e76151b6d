"""What every report shares: its period and scope, its one table, small-number suppression,
the envelope it answers in and its CSV.

A report builds a `Table` of rows (dicts keyed by the columns of its row model) and says
which cells add up to which (`sums`) and which figures rest on which counts (`rests_on`).
`withhold` then applies small-number suppression the way official statistics do: every count
from 1 to N-1 is withheld (primary), then, until nothing changes, any sum with exactly one
hidden cell hides one more (the smallest non-zero part, else the total), so no total or
difference reveals a withheld count (secondary); figures resting on a withheld count go too.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, func
from sqlalchemy import select as core_select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.db import run
from app.errors import ProblemItem, ValidationFailed
from app.models.base import utcnow
from app.models.report import (
    ColumnKind,
    Report,
    ReportColumn,
    ReportPeriod,
    ReportScope,
    WithheldCell,
)
from app.security import Principal
from app.services import schools
from app.services.school_calendar import academic_year_start, school_today

Cell = tuple[int, str]
# A report covers at most this long: enough for any comparison across school years, short
# enough that no caller can ask for a scan of every mark ever recorded in one request.
LONGEST_PERIOD = timedelta(days=366 * 6)
WITHHELD = "c"  # the CSV's mark for a withheld cell, as in official statistics


def columns_of(row_model: type[BaseModel]) -> list[ReportColumn]:
    """The table's columns: the row model's fields, in order, with their definitions."""
    found = []
    for name, info in row_model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        kind: ColumnKind = extra.get("x-kind", "key")  # type: ignore[assignment]
        found.append(ReportColumn(name=name, kind=kind, description=info.description or ""))
    return found


@dataclass
class Table:
    row_model: type[BaseModel]
    rows: list[dict[str, Any]] = field(default_factory=list)
    sums: list[tuple[Cell, tuple[Cell, ...]]] = field(default_factory=list)
    rests_on: dict[Cell, tuple[Cell, ...]] = field(default_factory=dict)

    def add(self, **values: Any) -> int:
        """Add a row; returns its index."""
        self.rows.append(values)
        return len(self.rows) - 1

    def adds_up(self, total: int, parts: Iterable[int], columns: Iterable[str]) -> None:
        """In each of `columns`, row `total` is the sum of rows `parts`."""
        parts = tuple(parts)
        for column in columns:
            self.sums.append(((total, column), tuple((p, column) for p in parts)))

    def adds_across(self, row: int, total: str, parts: Iterable[str]) -> None:
        """In row `row`, column `total` is the sum of columns `parts`."""
        self.sums.append(((row, total), tuple((row, p) for p in parts)))

    def rests(self, row: int, column: str, *on: Cell | str) -> None:
        """The figure in (`row`, `column`) is derived from these cells (a column name alone
        means that column of the same row): it is withheld when any of them is."""
        cells = tuple((row, c) if isinstance(c, str) else c for c in on)
        self.rests_on[(row, column)] = self.rests_on.get((row, column), ()) + cells

    def value(self, cell: Cell) -> Any:
        return self.rows[cell[0]].get(cell[1])

    def withhold(self, below: int | None) -> set[Cell]:
        if not below or below <= 1:
            return set()
        counts = [c.name for c in columns_of(self.row_model) if c.kind == "count"]
        hidden: set[Cell] = {
            (i, name)
            for i, row in enumerate(self.rows)
            for name in counts
            if isinstance(row.get(name), int) and 0 < row[name] < below
        }
        changed = True
        while changed:
            changed = False
            for total, parts in self.sums:
                cells = (total, *parts)
                if sum(cell in hidden for cell in cells) != 1:
                    continue
                shown = [p for p in parts if p not in hidden and (self.value(p) or 0) > 0]
                if shown:
                    hidden.add(min(shown, key=lambda p: (self.value(p), p)))
                elif total not in hidden:
                    hidden.add(total)
                else:
                    continue
                changed = True
            for cell, sources in self.rests_on.items():
                if cell not in hidden and any(source in hidden for source in sources):
                    hidden.add(cell)
                    changed = True
        return hidden


@dataclass(frozen=True)
class Period:
    start: date | None
    end: date


def period(start: date | None, end: date | None, *, default_start: bool = True) -> Period:
    """The period asked for: `to` defaults to today, `from` to 1 August of the academic year
    `to` falls in. An empty or overlong period is refused."""
    end = end or school_today()
    if start is None and default_start:
        start = academic_year_start(end)
    if start is not None:
        if start > end:
            raise ValidationFailed(
                "The period is empty.",
                errors=[ProblemItem(loc=["query", "from"], detail="must be on or before `to`")],
            )
        if end - start > LONGEST_PERIOD:
            raise ValidationFailed(
                "The period is too long.",
                errors=[
                    ProblemItem(
                        loc=["query", "from"],
                        detail=f"a report covers at most {LONGEST_PERIOD.days} days",
                    )
                ],
            )
    return Period(start, end)


async def check_school(
    session: AsyncSession, principal: Principal, school_id: uuid.UUID | None
) -> None:
    """A `school_id` filter names a school within reach, or the report is a 404."""
    if school_id is not None:
        await schools.get(session, principal, school_id)


def envelope(
    name: str,
    table: Table,
    principal: Principal,
    span: Period,
    school_id: uuid.UUID | None,
    suppress_below: int | None,
) -> Report[Any]:
    hidden = table.withhold(suppress_below)
    rows = []
    for i, row in enumerate(table.rows):
        shown = {k: (None if (i, k) in hidden else v) for k, v in row.items()}
        rows.append(table.row_model.model_validate(shown))
    reach = principal.reach
    return Report[table.row_model](  # type: ignore[name-defined]
        report=name,
        period=ReportPeriod(from_=span.start, to=span.end),
        scope=ReportScope(
            la_code=reach.la_code, school_ids=sorted(reach.school_ids), school_id=school_id
        ),
        generated_at=utcnow(),
        suppress_below=suppress_below if suppress_below and suppress_below > 1 else None,
        columns=columns_of(table.row_model),
        rows=rows,
        withheld=[WithheldCell(row=i, column=c) for i, c in sorted(hidden)],
    )


async def audit(
    auditor: Auditor,
    report: Report[Any],
    school_id: uuid.UUID | None,
    *,
    pupil_ids: Iterable[uuid.UUID] = (),
    **details: Any,
) -> None:
    """Every report run leaves one audit event: which report, over what, for whom; and,
    where its rows are about single children, which children (`pupil_ids`)."""
    await auditor.record(
        f"report.{report.report}",
        "report",
        pupil_ids=pupil_ids,
        details={
            "from": report.period.from_.isoformat() if report.period.from_ else None,
            "to": report.period.to.isoformat(),
            "school_id": str(school_id) if school_id else None,
            "suppress_below": report.suppress_below,
            "rows": len(report.rows),
            **details,
        },
    )


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def as_csv(report: Report[Any]) -> str:
    """The report's table as CSV: a header of its column names, a line per row; a withheld
    cell is `c`, a figure that does not apply is empty."""
    names = [c.name for c in report.columns]
    hidden = {(w.row, w.column) for w in report.withheld}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(names)
    for i, row in enumerate(report.rows):
        values = row.model_dump()
        writer.writerow([WITHHELD if (i, n) in hidden else _cell(values[n]) for n in names])
    return out.getvalue()


def one_place(value: Fraction) -> float:
    """A figure to one decimal place, rounded half up on the exact value (as rates are)."""
    tenths = (value * 10 * 2 + 1) // 2
    return int(tenths) / 10


def median(values: Sequence[int], per: int = 1) -> float | None:
    """The middle value (the mean of the two middle ones for an even count), divided by
    `per` (3600: seconds as hours), to one place, half up on the exact value."""
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        exact = Fraction(ordered[middle])
    else:
        exact = Fraction(ordered[middle - 1] + ordered[middle], 2)
    return one_place(exact / per)


async def children_by(
    session: AsyncSession,
    entry: Any,
    owner_column: Any,
    owner: Any,
    conditions: Iterable[ColumnElement[bool]],
) -> dict[uuid.UUID, set[uuid.UUID]]:
    """The children of the cases or referrals (`owner`) that `conditions` pick, by owner, as
    every report counts them: the pupil where the child is on a roll (a child named twice is
    one child), else the entry (`entry`: case_child or referral_child) itself. Names are
    never read."""
    query = (
        core_select(owner_column, func.coalesce(col(entry.pupil_id), col(entry.id)))
        .join(owner, col(owner.id) == owner_column)
        .where(*conditions)
    )
    found: dict[uuid.UUID, set[uuid.UUID]] = {}
    rows: list[Any] = list(await run(session, query))
    for owner_id, child in rows:
        found.setdefault(owner_id, set()).add(child)
    return found


def mean(values: Sequence[int]) -> float | None:
    """The mean, to one place, half up."""
    return one_place(Fraction(sum(values), len(values))) if values else None


def share(part: int, whole: int) -> float | None:
    """`part` as a percentage of `whole`, to one place, half up (null of nothing)."""
    return one_place(Fraction(part * 100, whole)) if whole else None
