"""The attendance-impact report's table: children's attendance before their case opened and
since, pooled, per term and per child (docs/reports.md, "Attendance impact")."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

from app.models.report import Report, count, key, measure

ImpactRowType = Literal["total", "term", "child"]


class AttendanceImpactRow(BaseModel):
    """The total (every child together), a term, or one child (by pupil id only)."""

    model_config = ConfigDict(extra="forbid")

    row_type: ImpactRowType | None = key(
        "`total` (every child together), `term` (one school term) or `child` (one child)."
    )
    academic_year: str | None = key("Term rows: the academic year, e.g. `2022/23`.")
    term: str | None = key(
        "Term rows: the term in the school calendar of the child's school (`autumn`, "
        "`spring`, `summer`; in Scotland `term_1` to `term_4`)."
    )
    starts: date | None = key("Term rows: the term's first day within the period.")
    ends: date | None = key("Term rows: the term's last day within the period.")
    pupil_id: uuid.UUID | None = key("Child rows: the pupil's id (never a name).")
    opened_on: date | None = key(
        "Child rows: the day the child's first case in scope opened; the after window starts here."
    )
    before_from: date | None = key(
        "Child rows: the Monday of the first school week in the before window (null: no "
        "school week found)."
    )
    after_to: date | None = key(
        "Child rows: the after window's last day: the day the child's last case in scope "
        "closed, or `to`, whichever is first."
    )
    incomplete: bool | None = key(
        "Child rows: the before window reaches back past marks disposed of by the retention "
        "schedule; term rows: the term's marks were partly disposed of. Null on the total."
    )
    children: int | None = count(
        "Total: children of the cases in scope (on a roll or known only by name). Term: "
        "those with a possible session in the term. Child: 1."
    )
    children_without_marks: int | None = count(
        "Total: children with no possible session in either window (children known only "
        "by name among them)."
    )
    children_known_by_name: int | None = count(
        "Total: children known only by name (on no roll): they have no marks."
    )
    children_with_both: int | None = count(
        "Total: children with possible sessions both before and after."
    )
    improved: int | None = count(
        "Children with both whose rate after is above their rate before (as stated, to one "
        "place). Child: 1 or 0."
    )
    children_before_incomplete: int | None = count(
        "Total: children whose before window may be incomplete (`incomplete` on their row)."
    )
    before_weeks: int | None = measure(
        "Child rows: the school weeks found for the before window (at most `before_weeks`)."
    )
    possible_before: int | None = count("Possible sessions in the before window(s).")
    attended_before: int | None = count(
        "Of those, sessions attended (present or approved activity)."
    )
    rate_before: float | None = measure(
        "attended_before / possible_before as a percentage to one place, half up."
    )
    possible_after: int | None = count("Possible sessions in the after window(s).")
    attended_after: int | None = count(
        "Of those, sessions attended (present or approved activity)."
    )
    rate_after: float | None = measure(
        "attended_after / possible_after as a percentage to one place, half up."
    )
    possible: int | None = count(
        "Term rows: possible sessions in the term of the children of the cases in scope."
    )
    attended: int | None = count("Term rows: of those, sessions attended.")
    rate: float | None = measure("Term rows: attended / possible, to one place, half up.")


AttendanceImpactReport = Report[AttendanceImpactRow]
