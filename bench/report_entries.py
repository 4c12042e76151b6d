"""The reports bench/reports.py times: one entry each (path, query, the hand-written SQL of
the same aggregate, and how the two answers line up).

Hand SQL takes $1 `from` and $2 `to` (dates, inclusive) and $3 the caller's LA; it reads
what the report reads, in one or a few statements, and computes the same figures, so the
ratio printed is the cost of the service (Python, the ORM, suppression checks, JSON, audit)
over the aggregate itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

Rows = list[dict[str, Any]]
Hand = list[list[asyncpg.Record]]


@dataclass(frozen=True)
class Span:
    start: date
    end: date
    la: str

    @property
    def arguments(self) -> tuple[date, date, str]:
        return (self.start, self.end, self.la)


@dataclass(frozen=True)
class Entry:
    name: str
    path: str
    params: Callable[[Span], dict[str, str]]
    hand_sql: Sequence[str]
    # Figures of the report's total row that must be above zero for the run to mean much.
    busy: Sequence[str]
    # The report's rows and the hand SQL's results -> what disagrees (empty: all agree).
    compare: Callable[[Rows, Hand], list[str]]


def period(span: Span) -> dict[str, str]:
    return {"from": span.start.isoformat(), "to": span.end.isoformat()}


def agree(
    report: Rows,
    hand: list[asyncpg.Record],
    key: Callable[[dict[str, Any]], Any],
    figures: Sequence[str],
) -> list[str]:
    """Rows matched by `key`; each of `figures` equal in both, and no row in one only."""
    found = {key(dict(r)): dict(r) for r in hand}
    shown = {key(r): r for r in report}
    notes = []
    for k in sorted(set(found) | set(shown), key=str):
        if k not in shown or k not in found:
            notes.append(f"row {k!r} only in the {'hand SQL' if k in found else 'report'}")
            continue
        for name in figures:
            if shown[k].get(name) != found[k].get(name):
                notes.append(
                    f"row {k!r} {name}: report {shown[k].get(name)!r}, "
                    f"hand SQL {found[k].get(name)!r}"
                )
    return notes[:10]


# --- outcomes ----------------------------------------------------------------------------

# Cases open at some time in the period (opened by the end of `to`, not closed before
# `from`), within the LA; each goal's first and latest score of reviews held by `to`, in
# review order (held_on, then id); positive where latest > first, banded by the latest.
# Children of the families: a child on a roll once (pupil id), else the case's own entry.
_BANDS = ",\n    ".join(
    f"count(*) FILTER (WHERE positive AND latest = {b}) AS band_{b * 10}" for b in range(1, 11)
)
OUTCOMES_SQL = f"""
WITH scope AS (
    SELECT id FROM early_help_case
    WHERE la_code = $3
      AND opened_at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC'
      AND (closed_at IS NULL OR closed_at >= $1::date::timestamp AT TIME ZONE 'UTC')
),
scored AS (
    SELECT g.id, g.case_id, g.outcome_category AS category, count(s.score) AS scores,
           (array_agg(s.score ORDER BY s.held_on, s.review_id))[1] AS first,
           (array_agg(s.score ORDER BY s.held_on DESC, s.review_id DESC))[1] AS latest
    FROM scope JOIN goal AS g ON g.case_id = scope.id
    LEFT JOIN (
        SELECT rs.goal_id, rs.score, r.held_on, r.id AS review_id
        FROM review_score AS rs JOIN review AS r ON r.id = rs.review_id
        WHERE r.held_on <= $2
    ) AS s ON s.goal_id = g.id
    GROUP BY g.id
),
goals AS (
    SELECT *, scores >= 2 AND latest > first AS positive FROM scored
),
families AS (
    SELECT DISTINCT case_id, category FROM goals WHERE scores > 0
),
kids AS (
    SELECT f.category, count(DISTINCT coalesce(cc.pupil_id, cc.id)) AS children
    FROM families AS f JOIN case_child AS cc ON cc.case_id = f.case_id
    GROUP BY GROUPING SETS ((f.category), ())
)
SELECT t.category, t.goals, t.goals_scaled, t.positive_impacts, t.families,
       coalesce(k.children, 0) AS children,
       CASE WHEN t.category IS NULL THEN (SELECT count(*) FROM scope) ELSE t.cases END
           AS cases_in_scope,
       {", ".join(f"t.band_{b}" for b in range(10, 101, 10))}
FROM (
    SELECT category, count(*) AS goals, count(*) FILTER (WHERE scores > 0) AS goals_scaled,
           count(*) FILTER (WHERE positive) AS positive_impacts,
           count(DISTINCT case_id) FILTER (WHERE scores > 0) AS families,
           count(DISTINCT case_id) AS cases,
           {_BANDS}
    FROM goals GROUP BY GROUPING SETS ((category), ())
) AS t
LEFT JOIN kids AS k ON k.category IS NOT DISTINCT FROM t.category
"""


def compare_outcomes(rows: Rows, hand: Hand) -> list[str]:
    figures = [
        "goals",
        "goals_scaled",
        "positive_impacts",
        "families",
        "children",
        "cases_in_scope",
        *(f"band_{b}" for b in range(10, 101, 10)),
    ]
    return agree(rows, hand[0], lambda r: r["category"], figures)


OUTCOMES = Entry(
    name="outcomes",
    path="/v1/reports/outcomes",
    params=period,
    hand_sql=[OUTCOMES_SQL],
    busy=[
        "goals",
        "goals_scaled",
        "positive_impacts",
        "families",
        "children",
        "too_early_to_scale",
    ],
    compare=compare_outcomes,
)


REPORTS: list[Entry] = [OUTCOMES]
