"""The closures report (why cases closed, how long they were open, where families went)
and the sustained-outcomes report (whether what was closed as done stayed done)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict

from app.models.case import ClosureReason
from app.models.report import Report, count, key, measure

ClosureGroup = Literal["total", "reason", "school", "lead_practitioner", "destination"]


class ClosureRow(BaseModel):
    """The cases closed in the period: all of them, or those of one reason, school, lead
    practitioner or destination (`group` says which)."""

    model_config = ConfigDict(extra="forbid")

    group: ClosureGroup | None = key(
        "What the row counts: `total` (every case closed in the period), `reason`, `school`, "
        "`lead_practitioner`, or `destination` (one reason's cases that went to one place)."
    )
    reason: ClosureReason | None = key(
        "The closure reason (on `reason` and `destination` rows; null elsewhere)."
    )
    school_id: uuid.UUID | None = key(
        "The case's school (on `school` rows; null there for cases with no school)."
    )
    school_name: str | None = key("That school's name.")
    lead_practitioner_id: uuid.UUID | None = key(
        "The case's lead practitioner when it closed (on `lead_practitioner` rows; null there "
        "for cases with none)."
    )
    lead_practitioner_name: str | None = key("That staff member's display name.")
    destination: str | None = key(
        "Where the family went (on `destination` rows; null there for the reason's cases with "
        "no destination recorded)."
    )
    cases: int | None = count("Cases whose latest closure falls in the period.")
    children: int | None = count(
        "Children on those cases (a child on a roll counts once, however many cases)."
    )
    families: int | None = count(
        "Families: cases that share a child (directly, or through other cases closed in the "
        "period) are one family; any other case is one family."
    )
    mean_days_open: float | None = measure(
        "Mean days from the day the case opened to the day it closed, to one place."
    )
    median_days_open: float | None = measure(
        "Median of the same days open (the mean of the middle two for an even number)."
    )


ClosureReport = Report[ClosureRow]


class SustainedRow(BaseModel):
    """Cases closed as needs met or stepped down to school, at least six months before `to`,
    and what followed in the six months after each closure."""

    model_config = ConfigDict(extra="forbid")

    reason: ClosureReason | None = key(
        "The closure reason (`needs_met` or `stepped_down_to_school`); null on the total row."
    )
    cases_closed: int | None = count(
        "Cases whose latest closure, for this reason, falls between `from` and six months "
        "before `to`."
    )
    sustained: int | None = count(
        "Of those, cases with no re-referral, no new persistent-absence flag and no step-up in "
        "the six months after closure."
    )
    re_referred: int | None = count(
        "Cases with a referral received about any of their children in the six months."
    )
    new_flag: int | None = count(
        "Cases with a persistent- or severe-absence flag raised for any of their children in "
        "the six months."
    )
    stepped_up: int | None = count(
        "Cases with any of their children stepped up to children's social care in the six "
        "months: a referral about them decided `step_up`, or another case of theirs closed as "
        "`stepped_up_to_social_care`."
    )
    sustained_rate: float | None = measure(
        "`sustained` as a percentage of `cases_closed`, to one place."
    )


SustainedReport = Report[SustainedRow]
