"""Reports for the people who fund early help: one envelope for every report.

Every report answers with the same envelope: the period it covers, the scope it was drawn
from, when it was generated, the columns of its one table (each with its definition), the
rows, and the cells withheld by small-number suppression. The CSV form is the same table:
the same columns, in the same order, one line per row.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from app.models.base import Moment

ColumnKind = Literal["key", "count", "measure"]


def key(description: str) -> Any:
    """A column that names what a row is about (a reason, a school, a term)."""
    return Field(default=None, description=description, json_schema_extra={"x-kind": "key"})


def count(description: str) -> Any:
    """A count of cases, children, families or records: withheld when small (see
    `suppress_below`)."""
    return Field(default=None, description=description, json_schema_extra={"x-kind": "count"})


def measure(description: str) -> Any:
    """A figure derived from counts (a rate, a mean, a median): withheld with them."""
    return Field(default=None, description=description, json_schema_extra={"x-kind": "measure"})


class ReportPeriod(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date | None = Field(
        alias="from", serialization_alias="from", description="First day (null: a point in time)."
    )
    to: date = Field(description="Last day, or the day the report stands on (`as_of`).")


class ReportScope(BaseModel):
    la_code: str | None = Field(description="The caller's LA, when it reaches a whole LA.")
    school_ids: list[uuid.UUID] = Field(description="The schools the caller reaches by name.")
    school_id: uuid.UUID | None = Field(description="The one school asked for, if any.")


class ReportColumn(BaseModel):
    name: str
    kind: ColumnKind = Field(
        description="`key`: what the row is about; `count`: a count, withheld when small; "
        "`measure`: a figure derived from counts, withheld with them."
    )
    description: str


class WithheldCell(BaseModel):
    row: int = Field(description="The row's index in `rows`, from 0.")
    column: str


RowT = TypeVar("RowT", bound=BaseModel)


class Report(BaseModel, Generic[RowT]):
    report: str = Field(description="Which report this is.")
    period: ReportPeriod
    scope: ReportScope
    generated_at: Moment
    suppress_below: int | None = Field(
        description="Counts from 1 to this less one are withheld, with every cell that "
        "would reveal one; null when nothing is withheld."
    )
    columns: list[ReportColumn]
    rows: list[RowT]
    withheld: list[WithheldCell] = Field(
        description="The cells withheld (null in `rows`, `c` in the CSV)."
    )


# --- outcomes ----------------------------------------------------------------------------

BANDS = list(range(10, 101, 10))


class OutcomeRow(BaseModel):
    """One outcome category (or, with `category` null, every category together)."""

    model_config = ConfigDict(extra="forbid")

    category: str | None = key("The outcome category's code; null on the total row.")
    label: str | None = key("The category's label.")
    goals: int | None = count("Goals in the category in the cases in scope.")
    goals_scaled: int | None = count("Of those, goals with at least one score by `to`.")
    positive_impacts: int | None = count(
        "Goals whose latest score is above their first: the sum of the bands."
    )
    band_10: int | None = count("Positive impacts whose latest score is 1 (10%).")
    band_20: int | None = count("Positive impacts whose latest score is 2 (20%).")
    band_30: int | None = count("Positive impacts whose latest score is 3 (30%).")
    band_40: int | None = count("Positive impacts whose latest score is 4 (40%).")
    band_50: int | None = count("Positive impacts whose latest score is 5 (50%).")
    band_60: int | None = count("Positive impacts whose latest score is 6 (60%).")
    band_70: int | None = count("Positive impacts whose latest score is 7 (70%).")
    band_80: int | None = count("Positive impacts whose latest score is 8 (80%).")
    band_90: int | None = count("Positive impacts whose latest score is 9 (90%).")
    band_100: int | None = count("Positive impacts whose latest score is 10 (100%).")
    families: int | None = count(
        "Families (cases) with at least one scaled goal (in this category)."
    )
    children: int | None = count("Children in those families.")
    cases_in_scope: int | None = count(
        "Cases in scope (with a goal in this category): open at some time in the period."
    )
    too_early_to_scale: int | None = count(
        "Cases in scope (with a goal in this category) with no goal scaled yet."
    )


OutcomeReport = Report[OutcomeRow]
