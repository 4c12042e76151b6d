"""Reports for the people who fund early help: what changed for families, in figures."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import or_
from sqlmodel import col, select

from app.audit import Auditor
from app.errors import ProblemItem, ValidationFailed
from app.models.case import Case
from app.models.plan import Goal
from app.models.report import OutcomeReport, OutcomeRow
from app.services import access, plans
from app.services.school_calendar import academic_year_start, school_today

BANDS = list(range(10, 101, 10))


async def outcomes(
    auditor: Auditor,
    start: date | None,
    end: date | None,
    school_id: uuid.UUID | None,
) -> OutcomeReport:
    """Each goal of the cases open in the period, counted once in the band of its latest
    score (score x 10%), where that score is above the goal's first: a positive impact."""
    session, principal = auditor.session, auditor.principal
    end = end or school_today()
    start = start or academic_year_start(end)
    if start > end:
        raise ValidationFailed(
            "The period is empty.",
            errors=[ProblemItem(loc=["query", "from"], detail="must be on or before `to`")],
        )
    opened_by = datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC)
    closed_from = datetime.combine(start, time(), tzinfo=UTC)
    query = select(Case.id).where(
        access.case_in_reach(principal),
        col(Case.opened_at) < opened_by,
        or_(col(Case.closed_at).is_(None), col(Case.closed_at) >= closed_from),
    )
    if school_id is not None:
        query = query.where(Case.school_id == school_id)
    case_ids = list((await session.exec(query)).all())
    goals = (
        list((await session.exec(select(Goal).where(col(Goal.case_id).in_(case_ids)))).all())
        if case_ids
        else []
    )
    history = await plans.score_history(session, [g.id for g in goals], until=end)
    counts: dict[str, list[int]] = {}
    scaled: set[uuid.UUID] = set()
    impacts = 0
    for goal in goals:
        row = counts.setdefault(goal.outcome_category, [0] * len(BANDS))
        scores = history[goal.id]
        if scores:
            scaled.add(goal.case_id)
        if len(scores) >= 2 and scores[-1].score > scores[0].score:
            row[scores[-1].score - 1] += 1
            impacts += 1
    labels = {c.code: c.label for c in await plans.categories(session, principal.reach.las)}
    await auditor.record(
        "report.outcomes",
        "report",
        details={
            "from": start.isoformat(),
            "to": end.isoformat(),
            "school_id": str(school_id) if school_id else None,
            "families": len(case_ids),
        },
    )
    return OutcomeReport(
        from_=start,
        to=end,
        bands=BANDS,
        rows=[
            OutcomeRow(category=code, label=labels.get(code, code), counts=counts[code])
            for code in sorted(counts)
        ],
        positive_impacts=impacts,
        families=len(case_ids),
        too_early_to_scale=len(set(case_ids) - scaled),
    )


def outcomes_csv(report: OutcomeReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["category", "label", *(f"{band}%" for band in report.bands)])
    for row in report.rows:
        writer.writerow([row.category, row.label, *row.counts])
    return out.getvalue()
