"""The referrals report: what was referred in a period, by whom, what was decided and why,
where families were signposted, and how many came back within a year of a closed case."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.db import run
from app.models.directory import DirectoryService
from app.models.referral import (
    DECISION_CATEGORIES,
    DECISION_STATUS,
    NOT_GIVEN,
    DecisionKind,
    Referral,
    ReferralChild,
    ReferralStatus,
)
from app.models.report import Report
from app.models.report_referrals import ReferralRow
from app.security import Principal
from app.services import access
from app.services.report_tables import (
    Period,
    Table,
    audit,
    check_school,
    children_by,
    envelope,
    median,
    period,
    share,
)

# Every source has a row, in this order. `other` is for a referral that is none of the
# three; today every referral is one of them, so its row is all zeros (docs/reports.md).
SOURCES = ("hub", "school", "attendance_flag", "other")
DECIDED = ("accepted", "declined", "stepped_up", "redirected")
OUTCOMES = (*DECIDED, "withdrawn", "undecided")
# The column a referral's status counts in.
_OUTCOME_OF = {
    ReferralStatus.accepted: "accepted",
    ReferralStatus.declined: "declined",
    ReferralStatus.stepped_up: "stepped_up",
    ReferralStatus.redirected: "redirected",
    ReferralStatus.withdrawn: "withdrawn",
    ReferralStatus.received: "undecided",
    ReferralStatus.under_review: "undecided",
    ReferralStatus.awaiting_approval: "undecided",
}
# The decisions with reason categories, each with a row per category and one for none.
_REASONED = [
    (DECISION_STATUS[kind].value, (*DECISION_CATEGORIES[kind], NOT_GIVEN))
    for kind in (DecisionKind.decline, DecisionKind.step_up, DecisionKind.redirect)
]
_ADDING_UP = ["referrals", *OUTCOMES, "re_referrals"]


@dataclass(frozen=True)
class _Received:
    """What the report reads of one referral: no names, no narrative."""

    id: uuid.UUID
    source: str
    outcome: str
    category: str | None
    decision_seconds: int | None
    re_referral: bool
    services: tuple[str, ...]


def received_in(span: Period) -> ColumnElement[bool]:
    """Received on a day of the period (days in UTC, as every report takes them)."""
    before = datetime.combine(span.end + timedelta(days=1), time(), tzinfo=UTC)
    condition = col(Referral.received_at) < before
    if span.start is not None:
        start = datetime.combine(span.start, time(), tzinfo=UTC)
        condition = condition & (col(Referral.received_at) >= start)
    return condition


def _in_scope(
    principal: Principal, span: Period, school_id: uuid.UUID | None
) -> list[ColumnElement[bool]]:
    conditions = [access.referral_visible_to(principal), received_in(span)]
    if school_id is not None:
        conditions.append(col(Referral.school_id) == school_id)
    return conditions


async def _received(session: AsyncSession, scope: list[ColumnElement[bool]]) -> list[_Received]:
    query = core_select(
        col(Referral.id),
        col(Referral.source),
        col(Referral.status),
        col(Referral.decision_category),
        col(Referral.decision_seconds),
        col(Referral.re_referral),
        col(Referral.signposted_service_ids),
    ).where(*scope)
    return [
        _Received(
            id=row[0],
            source=str(row[1]) if str(row[1]) in SOURCES else "other",
            outcome=_OUTCOME_OF[ReferralStatus(row[2])],
            category=row[3],
            decision_seconds=row[4],
            re_referral=bool(row[5]),
            services=tuple(dict.fromkeys(str(s) for s in row[6] or [])),
        )
        for row in map(tuple, await run(session, query))
    ]


async def _service_names(session: AsyncSession, ids: Iterable[str]) -> dict[str, str]:
    wanted = []
    for service_id in ids:
        try:
            wanted.append(uuid.UUID(service_id))
        except ValueError:
            continue
    if not wanted:
        return {}
    query = select(col(DirectoryService.id), col(DirectoryService.name)).where(
        col(DirectoryService.id).in_(wanted)
    )
    return {str(service_id): name for service_id, name in await session.exec(query)}


def _figures(
    referrals: Sequence[_Received], children: dict[uuid.UUID, set[uuid.UUID]]
) -> dict[str, Any]:
    kids: set[uuid.UUID] = set()
    outcomes = dict.fromkeys(OUTCOMES, 0)
    for r in referrals:
        kids |= children.get(r.id, set())
        outcomes[r.outcome] += 1
    re_referrals = sum(r.re_referral for r in referrals)
    return {
        "referrals": len(referrals),
        "children": len(kids),
        **outcomes,
        "median_hours_to_decision": median(
            [
                r.decision_seconds
                for r in referrals
                if r.outcome in DECIDED and r.decision_seconds is not None
            ],
            per=3600,
        ),
        "re_referrals": re_referrals,
        "re_referral_rate": share(re_referrals, len(referrals)),
    }


_KEYS = ("group", "source", "decision", "reason_category", "service_id", "service_name")


def _keyed(figures: dict[str, Any], **keys: Any) -> dict[str, Any]:
    """A row: its keys (the others null) and its figures."""
    return {**dict.fromkeys(_KEYS), **keys, **figures}


async def referrals_report(
    auditor: Auditor,
    start: date | None,
    end: date | None,
    school_id: uuid.UUID | None,
    suppress_below: int | None = None,
) -> Report[Any]:
    """The referrals received in the period within reach: in total, by source, by decision
    and reason category, and by the service signposted to."""
    session, principal = auditor.session, auditor.principal
    span = period(start, end)
    await check_school(session, principal, school_id)
    scope = _in_scope(principal, span, school_id)
    received = await _received(session, scope)
    children = await children_by(
        session, ReferralChild, col(ReferralChild.referral_id), Referral, scope
    )

    table = Table(ReferralRow)
    table.add(**_keyed(_figures(received, children), group="total"))
    source_rows = [
        table.add(
            **_keyed(
                _figures([r for r in received if r.source == source], children),
                group="source",
                source=source,
            )
        )
        for source in SOURCES
    ]
    # Children nearly add up across sources (a child can be referred by the hub and a school):
    # treated as adding up, so a withheld count is never given back by the total.
    table.adds_up(0, source_rows, [*_ADDING_UP, "children"])
    for decision, categories in _REASONED:
        rows = [
            table.add(
                **_keyed(
                    _figures(
                        [
                            r
                            for r in received
                            if r.outcome == decision and (r.category or NOT_GIVEN) == category
                        ],
                        children,
                    ),
                    group="reason",
                    decision=decision,
                    reason_category=category,
                )
            )
            for category in categories
        ]
        # The total row's count of this decision is the sum of its reason rows.
        table.sums.append(((0, decision), tuple((row, "referrals") for row in rows)))
    by_service: dict[str, list[_Received]] = defaultdict(list)
    for r in received:
        for service_id in r.services:
            by_service[service_id].append(r)
    names = await _service_names(session, by_service)
    for service_id in sorted(by_service, key=lambda s: (names.get(s, "").casefold(), s)):
        table.add(
            **_keyed(
                _figures(by_service[service_id], children),
                group="signposted",
                service_id=service_id,
                service_name=names.get(service_id),
            )
        )
    for i in range(len(table.rows)):
        table.adds_across(i, "referrals", OUTCOMES)
        table.rests(i, "median_hours_to_decision", *DECIDED)
        table.rests(i, "re_referral_rate", "re_referrals", "referrals")
    report = envelope("referrals", table, principal, span, school_id, suppress_below)
    await audit(auditor, report, school_id, referrals=len(received))
    return report
