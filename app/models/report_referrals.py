"""The referrals report's table: referrals received in the period by source and decision,
the reasons given for declining, stepping up and redirecting, and the services families
were signposted to (issue 13, item 3)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict

from app.models.report import Report, count, key, measure


class ReferralRow(BaseModel):
    """One set of referrals received in the period: all of them, those of one source, those
    decided with one reason category, or those signposting one service."""

    model_config = ConfigDict(extra="forbid")

    group: str | None = key(
        "What the row counts: `total` (every referral), `source` (one source), `reason` "
        "(one decision with one reason category) or `signposted` (signposting one service)."
    )
    source: str | None = key(
        "On `source` rows: `hub`, `school`, `attendance_flag` or `other` (always 0: every "
        "referral is classified as one of the first three)."
    )
    decision: str | None = key(
        "On `reason` rows: the decision (`declined`, `stepped_up` or `redirected`)."
    )
    reason_category: str | None = key(
        "On `reason` rows: the decision's reason category, or `not_given` when it was decided "
        "without one."
    )
    service_id: uuid.UUID | None = key("On `signposted` rows: the directory service's id.")
    service_name: str | None = key("On `signposted` rows: the directory service's name.")
    referrals: int | None = count("Referrals received in the period (in this row's set).")
    children: int | None = count(
        "Children named on them: a child on a roll once however many referrals name them, a "
        "child known only by name once per referral."
    )
    accepted: int | None = count("Of the referrals, those accepted.")
    declined: int | None = count("Those declined.")
    stepped_up: int | None = count("Those stepped up to children's social care.")
    redirected: int | None = count("Those redirected elsewhere.")
    withdrawn: int | None = count("Those withdrawn by the referrer.")
    undecided: int | None = count(
        "Those not yet decided: received, under review or awaiting a manager's approval."
    )
    median_hours_to_decision: float | None = measure(
        "The median time from receipt to decision of the decided referrals (accepted, "
        "declined, stepped up, redirected), in hours to one place; null when none is decided."
    )
    re_referrals: int | None = count(
        "Referrals about a child whose case (in the same LA) closed in the 12 months before."
    )
    re_referral_rate: float | None = measure(
        "Re-referrals as a percentage of the referrals, to one place; null of none."
    )


ReferralReport = Report[ReferralRow]
