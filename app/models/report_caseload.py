"""The caseload report's table: open cases and their children per lead practitioner as they
stood on one day, with the reviews overdue, the approvals pending and the age of the open
cases (issue 13, item 4)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict

from app.models.report import Report, count, key, measure


class CaseloadRow(BaseModel):
    """One lead practitioner's caseload on `as_of` (or every one together, or the cases with
    no lead practitioner)."""

    model_config = ConfigDict(extra="forbid")

    lead_practitioner_id: uuid.UUID | None = key(
        "The lead practitioner's staff id; null on the total row and the no-lead row."
    )
    lead_practitioner: str | None = key(
        "The lead practitioner's display name (`All lead practitioners` on the total row, "
        "`No lead practitioner` on the row of cases without one)."
    )
    open_cases: int | None = count("Cases open on `as_of` that the practitioner led that day.")
    children: int | None = count(
        "Children on those cases (a child on a roll counts once however many cases)."
    )
    reviews_overdue: int | None = count(
        "Of those cases, the ones whose next review was due before `as_of`: the last review "
        "held on or before `as_of` (else the opening) plus the case's review interval on `as_of` "
        "(its own, else the service setting)."
    )
    actions_overdue: int | None = count(
        "Actions on those cases overdue on `as_of`, read from their status history: recorded "
        "by the end of `as_of`, due before it, and still open at its end."
    )
    closures_pending_approval: int | None = count(
        "Of those cases, the ones whose closure had been requested and awaited a manager's "
        "approval on `as_of`."
    )
    step_ups_pending_approval: int | None = count(
        "Referral step-ups requested by the practitioner that awaited a manager's approval on "
        "`as_of` (on the no-lead row: those requested by a system, not a person)."
    )
    mean_days_open: float | None = measure(
        "The open cases' mean age on `as_of` in days since they opened, to one place."
    )
    median_days_open: float | None = measure(
        "The open cases' median age on `as_of` in days since they opened, to one place."
    )
    open_under_3_months: int | None = count("Open cases opened less than 3 months before.")
    open_3_to_6_months: int | None = count("Open cases opened 3 to less than 6 months before.")
    open_6_to_12_months: int | None = count("Open cases opened 6 to less than 12 months before.")
    open_12_months_or_more: int | None = count("Open cases opened 12 months or more before.")


CaseloadReport = Report[CaseloadRow]
