"""The reports bench/reports.py times: one entry each (path, query, the hand-written SQL of
the same aggregate, and how the two answers line up).

Hand SQL takes $1 `from` and $2 `to` (dates, inclusive) and $3 the caller's LA (unless an
entry says otherwise; each statement gets the first N it uses); it reads
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
    # The hand SQL's parameters: by default $1 from, $2 to, $3 the LA.
    arguments: Callable[[Span], tuple[Any, ...]] = lambda span: span.arguments


def period(span: Span) -> dict[str, str]:
    return {"from": span.start.isoformat(), "to": span.end.isoformat()}


def agree(
    report: Rows,
    hand: Sequence[asyncpg.Record | dict[str, Any]],
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
    SELECT rs.goal_id, count(*) AS scores,
           (array_agg(rs.score ORDER BY r.held_on, r.id))[1] AS first,
           (array_agg(rs.score ORDER BY r.held_on DESC, r.id DESC))[1] AS latest
    FROM review_score AS rs JOIN review AS r ON r.id = rs.review_id
    WHERE r.held_on <= $2
    GROUP BY rs.goal_id
),
goals AS (
    SELECT g.case_id, g.outcome_category COLLATE "C" AS category,
           coalesce(s.scores, 0) AS scores, s.latest,
           coalesce(s.scores >= 2 AND s.latest > s.first, false) AS positive
    FROM scope JOIN goal AS g ON g.case_id = scope.id
    LEFT JOIN scored AS s ON s.goal_id = g.id
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


# --- closures ----------------------------------------------------------------------------

# Cases within the LA whose (latest) closure falls in the period; the total, each reason,
# school, lead practitioner, and each reason's destinations (spacing and case ignored).
# Statement 1: cases and days open (UTC days). Statement 2: children (a pupil once, else the
# case's entry) and families (cases sharing a child, transitively, are one).
_CLOSED = """
    SELECT c.id, c.closure_reason AS reason, c.school_id, c.lead_practitioner_id AS lead,
           lower(regexp_replace(btrim(c.closure_destination), '\\s+', ' ', 'g')) AS place,
           (c.closed_at AT TIME ZONE 'UTC')::date - (c.opened_at AT TIME ZONE 'UTC')::date
               AS days
    FROM early_help_case AS c
    WHERE c.la_code = $3 AND c.closed_at >= $1::date::timestamp AT TIME ZONE 'UTC'
      AND c.closed_at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC'
"""
_CLOSURE_GROUPS = """
    GROUPING SETS ((), (reason), (school_id), (lead), (reason, place))
"""
_CLOSURE_KEY = """
    CASE WHEN GROUPING(reason, school_id, lead, place) = 15 THEN 'total'
         WHEN GROUPING(reason, school_id, lead, place) = 7 THEN 'reason'
         WHEN GROUPING(reason, school_id, lead, place) = 11 THEN 'school'
         WHEN GROUPING(reason, school_id, lead, place) = 13 THEN 'lead_practitioner'
         ELSE 'destination' END AS "group", reason, school_id, lead, place
"""
CLOSURES_SQL = [
    f"""
    WITH closed AS ({_CLOSED})
    SELECT {_CLOSURE_KEY}, count(*) AS cases,
           round(avg(days), 1) AS mean_days_open,
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY days)::numeric, 1)
               AS median_days_open
    FROM closed GROUP BY {_CLOSURE_GROUPS}
    """,
    f"""
    WITH RECURSIVE closed AS ({_CLOSED}),
    kids AS (
        SELECT cc.case_id, coalesce(cc.pupil_id, cc.id) AS child
        FROM case_child AS cc JOIN closed ON closed.id = cc.case_id
    ),
    edges AS (
        SELECT DISTINCT a.case_id AS a, b.case_id AS b
        FROM kids AS a JOIN kids AS b ON a.child = b.child
    ),
    linked(case_id, other) AS (
        SELECT a, b FROM edges
        UNION
        SELECT l.case_id, e.b FROM linked AS l JOIN edges AS e ON e.a = l.other
    ),
    family AS (SELECT case_id, min(other::text) AS family FROM linked GROUP BY case_id)
    SELECT {_CLOSURE_KEY}, count(DISTINCT k.child) AS children,
           count(DISTINCT coalesce(f.family, closed.id::text)) AS families
    FROM closed
    LEFT JOIN kids AS k ON k.case_id = closed.id
    LEFT JOIN family AS f ON f.case_id = closed.id
    GROUP BY {_CLOSURE_GROUPS}
    """,
]


def compare_closures(rows: Rows, hand: Hand) -> list[str]:
    def text(value: Any) -> str | None:
        return None if value is None else str(value)

    def key(row: dict[str, Any]) -> tuple[str | None, ...]:
        if "place" in row:  # the hand SQL's, already spelt one way
            place, lead = row["place"], row["lead"]
        else:
            place = " ".join(row["destination"].split()).casefold() if row["destination"] else None
            lead = row["lead_practitioner_id"]
        reason = row["reason"] if row["group"] in ("reason", "destination") else None
        return (row["group"], reason, text(row["school_id"]), text(lead), place)

    counted, linked = hand
    merged = {key(dict(r)): dict(r) for r in counted}
    for r in linked:
        merged[key(dict(r))].update(dict(r))
    named = {r["reason"] for r in merged.values() if r["group"] == "destination" and r["place"]}
    found = []
    for r in merged.values():
        if r["group"] == "destination" and r["reason"] not in named:
            continue  # destination rows only for a reason with a destination recorded
        for name in ("mean_days_open", "median_days_open"):
            r[name] = float(r[name]) if r[name] is not None else None
        found.append(r)
    # Every reason has a row in the report, counted or not.
    shown = [r for r in rows if r["group"] != "reason" or r["cases"]]
    return agree(
        shown, found, key, ["cases", "children", "families", "mean_days_open", "median_days_open"]
    )


CLOSURES = Entry(
    name="closures",
    path="/v1/reports/closures",
    params=period,
    hand_sql=CLOSURES_SQL,
    busy=["cases", "children", "families", "mean_days_open"],
    compare=compare_closures,
)


# --- referrals ---------------------------------------------------------------------------

# Referrals of the LA received on a day of the period, by their status now. Statement 1: the
# total and each source (children through referral_child: a pupil once, else the entry);
# 2: each decision with a reason category; 3: each service signposted to.
_RECEIVED = """
    SELECT r.id, CASE WHEN r.source IN ('hub', 'school', 'attendance_flag') THEN r.source
                      ELSE 'other' END AS source,
           CASE WHEN r.status IN ('received', 'under_review', 'awaiting_approval')
                THEN 'undecided' ELSE r.status END AS outcome,
           coalesce(r.decision_category, 'not_given') AS category, r.decision_seconds,
           r.re_referral, r.signposted_service_ids
    FROM referral AS r
    WHERE r.la_code = $3 AND r.received_at >= $1::date::timestamp AT TIME ZONE 'UTC'
      AND r.received_at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC'
"""
_OUTCOME_COUNTS = ", ".join(
    f"count(*) FILTER (WHERE outcome = '{o}') AS {o}"
    for o in ("accepted", "declined", "stepped_up", "redirected", "withdrawn", "undecided")
)
REFERRALS_SQL = [
    f"""
    WITH received AS ({_RECEIVED}),
    figures AS (
        SELECT source, count(*) AS referrals, {_OUTCOME_COUNTS},
               count(*) FILTER (WHERE re_referral) AS re_referrals,
               round((percentile_cont(0.5) WITHIN GROUP (ORDER BY decision_seconds)
                      FILTER (WHERE outcome IN ('accepted', 'declined', 'stepped_up',
                                                'redirected'))
                      / 3600)::numeric, 1) AS median_hours_to_decision
        FROM received GROUP BY GROUPING SETS ((), (source))
    ),
    kids AS (
        SELECT received.source, count(DISTINCT coalesce(rc.pupil_id, rc.id)) AS children
        FROM received JOIN referral_child AS rc ON rc.referral_id = received.id
        GROUP BY GROUPING SETS ((), (received.source))
    )
    SELECT CASE WHEN f.source IS NULL THEN 'total' ELSE 'source' END AS "group", f.*,
           coalesce(k.children, 0) AS children
    FROM figures AS f LEFT JOIN kids AS k ON k.source IS NOT DISTINCT FROM f.source
    """,
    f"""
    WITH received AS ({_RECEIVED})
    SELECT outcome AS decision, category AS reason_category, count(*) AS referrals
    FROM received WHERE outcome IN ('declined', 'stepped_up', 'redirected')
    GROUP BY 1, 2
    """,
    f"""
    WITH received AS ({_RECEIVED}),
    signposted AS (
        SELECT DISTINCT received.id, s.service_id
        FROM received
        CROSS JOIN LATERAL jsonb_array_elements_text(received.signposted_service_ids)
            AS s(service_id)
    )
    SELECT s.service_id, d.name AS service_name, count(DISTINCT s.id) AS referrals,
           count(DISTINCT coalesce(rc.pupil_id, rc.id)) AS children
    FROM signposted AS s
    LEFT JOIN directory_service AS d ON d.id::text = s.service_id
    LEFT JOIN referral_child AS rc ON rc.referral_id = s.id
    GROUP BY 1, 2
    """,
]


def compare_referrals(rows: Rows, hand: Hand) -> list[str]:
    by_source, by_reason, by_service = ([dict(r) for r in part] for part in hand)
    for r in by_source:
        if r["median_hours_to_decision"] is not None:
            r["median_hours_to_decision"] = float(r["median_hours_to_decision"])
    figures = [
        "referrals",
        "children",
        "accepted",
        "declined",
        "stepped_up",
        "redirected",
        "withdrawn",
        "undecided",
        "re_referrals",
        "median_hours_to_decision",
    ]
    notes = agree(
        [r for r in rows if r["group"] in ("total", "source") and r["referrals"]],
        by_source,
        lambda r: (r["group"], r["source"]),
        figures,
    )
    notes += agree(
        [r for r in rows if r["group"] == "reason" and r["referrals"]],
        by_reason,
        lambda r: (r["decision"], r["reason_category"]),
        ["referrals"],
    )
    notes += agree(
        [r for r in rows if r["group"] == "signposted"],
        by_service,
        lambda r: r["service_id"],
        ["service_name", "referrals", "children"],
    )
    return notes


REFERRALS = Entry(
    name="referrals",
    path="/v1/reports/referrals",
    params=period,
    hand_sql=REFERRALS_SQL,
    busy=["referrals", "children", "accepted", "declined", "undecided", "re_referrals"],
    compare=compare_referrals,
)


# --- caseload ----------------------------------------------------------------------------

REVIEW_WEEKS = 6  # LIAISON_REVIEW_INTERVAL_WEEKS as the bench serves it (the default)

# The caseload at the end of $1 (as_of) in LA $2, from the recorded history: open (a reopened
# case as its last case.closed / case.reopened event before the cutoff says), its lead then
# (the last case.updated lead change before, else the one before the first after, else the
# lead now), review overdue ($3 weeks after the last review held by as_of, else the opening),
# closure pending (the last of its closure request/approval/refusal is a request), age bands
# by calendar months. Statement 1: per lead and in total; 2: step-ups pending per asker.
_CUTOFF = "(($1::date + 1)::timestamp AT TIME ZONE 'UTC')"
CASELOAD_SQL = [
    f"""
    WITH candidate AS (
        SELECT c.id, c.closed_at, c.reopened_count > 0 AS reopened,
               c.lead_practitioner_id AS lead_now,
               (c.opened_at AT TIME ZONE 'UTC')::date AS opened_on
        FROM early_help_case AS c
        WHERE c.la_code = $2 AND c.opened_at < {_CUTOFF}
          AND (c.closed_at IS NULL OR c.closed_at >= {_CUTOFF} OR c.reopened_count > 0)
    ),
    steps AS (
        SELECT e.case_id, e.event, e.occurred_at, e.id, e.details
        FROM casework_event AS e JOIN candidate ON candidate.id = e.case_id
        WHERE e.event IN ('case.closed', 'case.reopened', 'case.closure_requested',
                          'case.closure_approved', 'case.closure_refused', 'case.updated')
    ),
    last_opening AS (
        SELECT DISTINCT ON (case_id) case_id, event FROM steps
        WHERE event IN ('case.closed', 'case.reopened') AND occurred_at < {_CUTOFF}
        ORDER BY case_id, occurred_at DESC, id DESC
    ),
    last_approval AS (
        SELECT DISTINCT ON (case_id) case_id, event FROM steps
        WHERE event LIKE 'case.closure_%' AND occurred_at < {_CUTOFF}
        ORDER BY case_id, occurred_at DESC, id DESC
    ),
    lead_change AS (
        SELECT case_id, occurred_at, id, details -> 'lead_practitioner' ->> 'from' AS was,
               details -> 'lead_practitioner' ->> 'to' AS became
        FROM steps
        WHERE event = 'case.updated' AND jsonb_typeof(details -> 'lead_practitioner') = 'object'
    ),
    open_case AS (
        SELECT c.id, c.opened_on, $1::date - c.opened_on AS days,
               CASE WHEN NOT EXISTS (SELECT 1 FROM lead_change AS l WHERE l.case_id = c.id)
                    THEN c.lead_now::text
                    WHEN EXISTS (SELECT 1 FROM lead_change AS l
                                 WHERE l.case_id = c.id AND l.occurred_at < {_CUTOFF})
                    THEN (SELECT l.became FROM lead_change AS l
                          WHERE l.case_id = c.id AND l.occurred_at < {_CUTOFF}
                          ORDER BY l.occurred_at DESC, l.id DESC LIMIT 1)
                    ELSE (SELECT l.was FROM lead_change AS l WHERE l.case_id = c.id
                          ORDER BY l.occurred_at, l.id LIMIT 1) END AS lead,
               coalesce((SELECT max(r.held_on) FROM review AS r
                         WHERE r.case_id = c.id AND r.held_on <= $1), c.opened_on)
                   + 7 * $3::int < $1::date AS overdue,
               coalesce(a.event = 'case.closure_requested', false) AS closure_pending
        FROM candidate AS c
        LEFT JOIN last_opening AS o ON o.case_id = c.id
        LEFT JOIN last_approval AS a ON a.case_id = c.id
        WHERE CASE WHEN c.reopened AND EXISTS (
                       SELECT 1 FROM steps AS s WHERE s.case_id = c.id
                       AND s.event IN ('case.closed', 'case.reopened'))
                   THEN o.event IS DISTINCT FROM 'case.closed'
                   ELSE c.closed_at IS NULL OR c.closed_at >= {_CUTOFF} END
    ),
    figures AS (
        SELECT lead, GROUPING(lead) AS total, count(*) AS open_cases,
               count(*) FILTER (WHERE overdue) AS reviews_overdue,
               count(*) FILTER (WHERE closure_pending) AS closures_pending_approval,
               round(avg(days), 1) AS mean_days_open,
               round(percentile_cont(0.5) WITHIN GROUP (ORDER BY days)::numeric, 1)
                   AS median_days_open,
               count(*) FILTER (WHERE opened_on > ($1::date - INTERVAL '3 months')::date)
                   AS open_under_3_months,
               count(*) FILTER (WHERE opened_on <= ($1::date - INTERVAL '3 months')::date
                                  AND opened_on > ($1::date - INTERVAL '6 months')::date)
                   AS open_3_to_6_months,
               count(*) FILTER (WHERE opened_on <= ($1::date - INTERVAL '6 months')::date
                                  AND opened_on > ($1::date - INTERVAL '12 months')::date)
                   AS open_6_to_12_months,
               count(*) FILTER (WHERE opened_on <= ($1::date - INTERVAL '12 months')::date)
                   AS open_12_months_or_more
        FROM open_case GROUP BY GROUPING SETS ((), (lead))
    ),
    kids AS (
        SELECT o.lead, GROUPING(o.lead) AS total,
               count(DISTINCT coalesce(cc.pupil_id, cc.id)) AS children
        FROM open_case AS o JOIN case_child AS cc ON cc.case_id = o.id
        GROUP BY GROUPING SETS ((), (o.lead))
    )
    SELECT f.*, coalesce(k.children, 0) AS children
    FROM figures AS f
    LEFT JOIN kids AS k ON k.total = f.total AND k.lead IS NOT DISTINCT FROM f.lead
    """,
    f"""
    WITH step AS (
        SELECT DISTINCT ON (e.referral_id) e.referral_id, e.event, e.actor
        FROM casework_event AS e JOIN referral AS r ON r.id = e.referral_id
        WHERE r.la_code = $2 AND e.occurred_at < {_CUTOFF}
          AND e.event IN ('referral.step_up_requested', 'referral.step_up_approved',
                          'referral.step_up_refused')
        ORDER BY e.referral_id, e.occurred_at DESC, e.id DESC
    )
    SELECT CASE WHEN actor LIKE 'staff:%' THEN substr(actor, 7) END AS lead,
           count(*) AS step_ups_pending_approval
    FROM step WHERE event = 'referral.step_up_requested'
    GROUP BY 1
    """,
]


def compare_caseload(rows: Rows, hand: Hand) -> list[str]:
    cases, step_ups = ([dict(r) for r in part] for part in hand)
    found: dict[tuple[bool, str | None], dict[str, Any]] = {}
    for r in cases:
        for name in ("mean_days_open", "median_days_open"):
            r[name] = float(r[name]) if r[name] is not None else None
        found[(bool(r["total"]), r["lead"])] = {**r, "step_ups_pending_approval": 0}
    for r in step_ups:
        for key in ((True, None), (False, r["lead"])):
            row = found.setdefault(key, {"open_cases": 0, "step_ups_pending_approval": 0})
            row["step_ups_pending_approval"] += r["step_ups_pending_approval"]
    figures = [
        "open_cases",
        "children",
        "reviews_overdue",
        "closures_pending_approval",
        "step_ups_pending_approval",
        "mean_days_open",
        "median_days_open",
        "open_under_3_months",
        "open_3_to_6_months",
        "open_6_to_12_months",
        "open_12_months_or_more",
    ]
    shown = [
        {**r, "key": (i == 0, r["lead_practitioner_id"] and str(r["lead_practitioner_id"]))}
        for i, r in enumerate(rows)
        if i == 0 or r["open_cases"] or r["step_ups_pending_approval"]
    ]
    return agree(shown, [{**r, "key": k} for k, r in found.items()], lambda r: r["key"], figures)


CASELOAD = Entry(
    name="caseload",
    path="/v1/reports/caseload",
    params=lambda span: {"as_of": span.end.isoformat()},
    hand_sql=CASELOAD_SQL,
    busy=["open_cases", "children", "reviews_overdue", "mean_days_open"],
    compare=compare_caseload,
    arguments=lambda span: (span.end, span.la, REVIEW_WEEKS),
)


# --- sustained outcomes ------------------------------------------------------------------

# Cases of the LA closed as needs met or stepped down to school from $1 to six months before
# $2 (or before today); for each, over the six months after its closure (to the end of the
# day six months on), within the same LA: a referral received naming one of its children
# (the same pupil, or known only by name with the same names and birth date), a persistent
# or severe absence flag raised for one of them at one of the LA's schools, a step-up (a
# referral about them decided step_up, or another case of theirs closed as stepped up).
SUSTAINED_SQL = [
    """
    WITH eligible AS (
        SELECT c.id, c.closure_reason AS reason, c.la_code, c.closed_at AS since,
               (((c.closed_at AT TIME ZONE 'UTC')::date + INTERVAL '6 months')::date + 1)
                   ::timestamp AT TIME ZONE 'UTC' AS until
        FROM early_help_case AS c
        WHERE c.la_code = $3 AND c.closure_reason IN ('needs_met', 'stepped_down_to_school')
          AND c.closed_at >= $1::date::timestamp AT TIME ZONE 'UTC'
          AND c.closed_at < ((LEAST($2::date, (now() AT TIME ZONE 'Europe/London')::date)
                              - INTERVAL '6 months')::date + 1)::timestamp AT TIME ZONE 'UTC'
    ),
    kid AS (
        SELECT e.id, cc.id AS entry, cc.pupil_id, lower(cc.given_name) AS given,
               lower(cc.family_name) AS family, cc.date_of_birth
        FROM eligible AS e JOIN case_child AS cc ON cc.case_id = e.id
    ),
    -- a child is named by pupil or, known only by name, by names and birth date: two joins
    -- (one on either would compare every pair)
    named_on_referral AS (
        SELECT k.id, rc.referral_id FROM kid AS k
        JOIN referral_child AS rc ON rc.pupil_id = k.pupil_id
        UNION ALL
        SELECT k.id, rc.referral_id FROM kid AS k
        JOIN referral_child AS rc
          ON rc.pupil_id IS NULL AND lower(rc.given_name) = k.given
         AND lower(rc.family_name) = k.family AND rc.date_of_birth = k.date_of_birth
    ),
    referred AS (
        SELECT n.id, r.received_at, r.status, r.decided_at
        FROM named_on_referral AS n
        JOIN referral AS r ON r.id = n.referral_id AND r.la_code = $3
    ),
    named_on_case AS (
        SELECT k.id, cc.case_id FROM kid AS k
        JOIN case_child AS cc ON cc.pupil_id = k.pupil_id
        UNION ALL
        SELECT k.id, cc.case_id FROM kid AS k
        JOIN case_child AS cc
          ON cc.pupil_id IS NULL AND lower(cc.given_name) = k.given
         AND lower(cc.family_name) = k.family AND cc.date_of_birth = k.date_of_birth
    ),
    later_case AS (
        SELECT n.id, c.closed_at
        FROM named_on_case AS n
        JOIN early_help_case AS c ON c.id = n.case_id AND c.id <> n.id AND c.la_code = $3
        WHERE c.closure_reason = 'stepped_up_to_social_care'
    ),
    flagged AS (
        SELECT k.id, f.raised_at
        FROM kid AS k JOIN attendance_flag AS f ON f.pupil_id = k.pupil_id
        JOIN school AS s ON s.id = f.school_id AND s.la_code = $3
        WHERE f.kind IN ('persistent_absence', 'severe_absence')
    ),
    referral_after AS (
        SELECT e.id,
               bool_or(r.received_at >= e.since AND r.received_at < e.until) AS re_referred,
               bool_or(r.status = 'stepped_up'
                       AND r.decided_at >= e.since AND r.decided_at < e.until) AS stepped_up
        FROM eligible AS e JOIN referred AS r ON r.id = e.id GROUP BY e.id
    ),
    case_after AS (
        SELECT e.id, bool_or(l.closed_at >= e.since AND l.closed_at < e.until) AS stepped_up
        FROM eligible AS e JOIN later_case AS l ON l.id = e.id GROUP BY e.id
    ),
    flag_after AS (
        SELECT e.id, bool_or(f.raised_at >= e.since AND f.raised_at < e.until) AS new_flag
        FROM eligible AS e JOIN flagged AS f ON f.id = e.id GROUP BY e.id
    ),
    followed AS (
        SELECT e.reason, coalesce(r.re_referred, false) AS re_referred,
               coalesce(f.new_flag, false) AS new_flag,
               coalesce(r.stepped_up, false) OR coalesce(c.stepped_up, false) AS stepped_up
        FROM eligible AS e
        LEFT JOIN referral_after AS r ON r.id = e.id
        LEFT JOIN case_after AS c ON c.id = e.id
        LEFT JOIN flag_after AS f ON f.id = e.id
    )
    SELECT reason, count(*) AS cases_closed,
           count(*) FILTER (WHERE NOT (re_referred OR new_flag OR stepped_up)) AS sustained,
           count(*) FILTER (WHERE re_referred) AS re_referred,
           count(*) FILTER (WHERE new_flag) AS new_flag,
           count(*) FILTER (WHERE stepped_up) AS stepped_up
    FROM followed GROUP BY GROUPING SETS ((), (reason))
    """
]


def compare_sustained(rows: Rows, hand: Hand) -> list[str]:
    figures = ["cases_closed", "sustained", "re_referred", "new_flag", "stepped_up"]
    return agree(rows, hand[0], lambda r: r["reason"], figures)


SUSTAINED = Entry(
    name="sustained-outcomes",
    path="/v1/reports/sustained-outcomes",
    params=period,
    hand_sql=SUSTAINED_SQL,
    busy=["cases_closed", "sustained", "re_referred", "new_flag"],
    compare=compare_sustained,
)


# --- attendance impact -------------------------------------------------------------------

BEFORE_WEEKS = 12  # the report's default
LOOK_BACK_WEEKS = 52


def terms(span: Span) -> tuple[list[date], list[date]]:
    """The England terms the period meets, cut to it (from the app's school calendar)."""
    from datetime import timedelta

    from app.services.school_calendar import term_of

    starts, ends = [], []
    day = span.start
    while day <= span.end:
        term = term_of(day, "england")
        starts.append(max(term.starts, day))
        ends.append(min(term.ends, span.end))
        day = term.ends + timedelta(days=1)
    return starts, ends


# The children on a roll of the cases in scope (as outcomes): their window from the day their
# first case in scope opened (`lo`) to their last one's closure or `to` (`hi`). Sessions over
# a span: whole weeks (Monday to Sunday) from the weekly figures, the days of part weeks from
# the marks. Before: the 12 latest weeks with a possible session wholly before the opening
# week (looking back at most 64 weeks). Statement 1: a row per child and the total (pupil
# null); 2: per term ($4 starts, $5 ends), the children with a possible session and their
# sessions; 3: the children of the cases in scope (a pupil once, else the case's entry).
_SCOPE = """
    SELECT id FROM early_help_case
    WHERE la_code = $3
      AND opened_at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC'
      AND (closed_at IS NULL OR closed_at >= $1::date::timestamp AT TIME ZONE 'UTC')
"""
_WINDOWS = f"""
    SELECT cc.pupil_id, min((c.opened_at AT TIME ZONE 'UTC')::date) AS lo,
           LEAST(max(coalesce((c.closed_at AT TIME ZONE 'UTC')::date, $2::date)), $2::date)
               AS hi
    FROM case_child AS cc JOIN early_help_case AS c ON c.id = cc.case_id
    WHERE c.id IN ({_SCOPE}) AND cc.pupil_id IS NOT NULL
    GROUP BY cc.pupil_id
"""


def _spans_sessions(spans: str) -> str:
    """SQL: (key, pupil_id, possible, attended) over the spans (key, pupil_id, lo, hi): per
    span, three short index range scans of the child's own rows (LATERAL)."""
    # Marks store category numbers: 0 not possible, 1 present, 2 approved activity.
    count = """count(*) FILTER (WHERE m.category <> 0) AS possible,
               count(*) FILTER (WHERE m.category IN (1, 2)) AS attended"""
    return f"""
    SELECT s.key, s.pupil_id,
           coalesce(w.possible, 0) + h.possible + t.possible AS possible,
           coalesce(w.attended, 0) + h.attended + t.attended AS attended
    FROM (
        SELECT *, date_trunc('week', lo + 6)::date AS first_full,
               date_trunc('week', hi + 1)::date AS after_full
        FROM ({spans}) AS given
    ) AS s
    CROSS JOIN LATERAL (
        SELECT sum(w.possible) AS possible, sum(w.attended) AS attended
        FROM attendance_week AS w
        WHERE w.pupil_id = s.pupil_id AND w.week_start >= s.first_full
          AND w.week_start <= s.after_full - 7
    ) AS w
    CROSS JOIN LATERAL (
        SELECT {count} FROM attendance_mark AS m
        WHERE m.pupil_id = s.pupil_id AND m.date >= s.lo
          AND m.date <= LEAST(s.hi, s.first_full - 1)
    ) AS h
    CROSS JOIN LATERAL (
        SELECT {count} FROM attendance_mark AS m
        WHERE m.pupil_id = s.pupil_id AND m.date >= GREATEST(s.after_full, s.first_full)
          AND m.date <= s.hi
    ) AS t
    """


IMPACT_SQL = [
    f"""
    WITH windows AS ({_WINDOWS}),
    ranked AS (
        SELECT w.pupil_id, aw.week_start, aw.possible, aw.attended,
               row_number() OVER (PARTITION BY w.pupil_id ORDER BY aw.week_start DESC) AS n
        FROM windows AS w JOIN attendance_week AS aw ON aw.pupil_id = w.pupil_id
         AND aw.possible > 0 AND aw.week_start < date_trunc('week', w.lo)::date
         AND aw.week_start >= date_trunc('week', w.lo)::date - 7 * {LOOK_BACK_WEEKS + BEFORE_WEEKS}
    ),
    before AS (
        SELECT pupil_id, count(*) AS weeks, min(week_start) AS first_week,
               sum(possible) AS possible, sum(attended) AS attended
        FROM ranked WHERE n <= {BEFORE_WEEKS} GROUP BY pupil_id
    ),
    after AS ({_spans_sessions("SELECT 0 AS key, pupil_id, lo, hi FROM windows")}),
    child AS (
        SELECT w.pupil_id, w.lo AS opened_on, w.hi AS after_to,
               coalesce(b.weeks, 0) AS before_weeks, b.first_week AS before_from,
               coalesce(b.possible, 0) AS possible_before,
               coalesce(b.attended, 0) AS attended_before,
               coalesce(a.possible, 0) AS possible_after,
               coalesce(a.attended, 0) AS attended_after
        FROM windows AS w
        LEFT JOIN before AS b ON b.pupil_id = w.pupil_id
        LEFT JOIN after AS a ON a.pupil_id = w.pupil_id
    ),
    rated AS (
        SELECT *, possible_before > 0 AND possible_after > 0 AS both_,
               round(100.0 * attended_after / nullif(possible_after, 0), 1)
               > round(100.0 * attended_before / nullif(possible_before, 0), 1) AS improved
        FROM child
    )
    SELECT pupil_id, opened_on, after_to, before_weeks, before_from, possible_before,
           attended_before, possible_after, attended_after, both_::int AS with_both,
           coalesce(improved, false)::int AS improved
    FROM rated
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, sum(possible_before), sum(attended_before),
           sum(possible_after), sum(attended_after), count(*) FILTER (WHERE both_),
           count(*) FILTER (WHERE improved)
    FROM rated
    """,
    f"""
    WITH windows AS ({_WINDOWS}),
    term AS (SELECT * FROM unnest($4::date[], $5::date[]) WITH ORDINALITY AS t(lo, hi, key)),
    spans AS (SELECT t.key, w.pupil_id, t.lo, t.hi FROM windows AS w CROSS JOIN term AS t),
    sessions AS ({_spans_sessions("SELECT * FROM spans")})
    SELECT t.lo AS starts, count(*) FILTER (WHERE s.possible > 0) AS children,
           coalesce(sum(s.possible), 0) AS possible, coalesce(sum(s.attended), 0) AS attended
    FROM term AS t LEFT JOIN sessions AS s ON s.key = t.key
    GROUP BY t.key, t.lo ORDER BY t.key
    """,
    f"""
    SELECT count(DISTINCT coalesce(pupil_id, id)) AS children FROM case_child
    WHERE case_id IN ({_SCOPE})
    """,
]


def compare_impact(rows: Rows, hand: Hand) -> list[str]:
    per_child, per_term, children = ([dict(r) for r in part] for part in hand)
    total = next(r for r in per_child if r["pupil_id"] is None)
    found: list[dict[str, Any]] = [
        {
            "key": ("total", None),
            "children": children[0]["children"],
            "children_with_both": total["with_both"],
            **{k: total[k] for k in ("improved", *_SESSIONS)},
        },
        *({**r, "key": ("term", str(r["starts"]))} for r in per_term),
        *(
            {
                **r,
                "key": ("child", str(r["pupil_id"])),
                "children": 1,
                "opened_on": str(r["opened_on"]),
                "after_to": str(r["after_to"]),
                "before_from": r["before_from"] and str(r["before_from"]),
            }
            for r in per_child
            if r["pupil_id"] is not None
        ),
    ]
    shown = [
        {**r, "key": (r["row_type"], r.get("starts") or r.get("pupil_id"))}
        for r in rows
        if r["row_type"] != "total"
    ] + [{**rows[0], "key": ("total", None)}]
    figures = [
        "children",
        "children_with_both",
        "improved",
        "possible",
        "attended",
        "opened_on",
        "after_to",
        "before_weeks",
        "before_from",
        *_SESSIONS,
    ]
    return agree(shown, found, lambda r: r["key"], figures)


_SESSIONS = ("possible_before", "attended_before", "possible_after", "attended_after")

IMPACT = Entry(
    name="attendance-impact",
    path="/v1/reports/attendance-impact",
    params=period,
    hand_sql=IMPACT_SQL,
    busy=["children", "children_with_both", "improved", "possible_before", "possible_after"],
    compare=compare_impact,
    arguments=lambda span: (*span.arguments, *terms(span)),
)


REPORTS: list[Entry] = [OUTCOMES, CLOSURES, SUSTAINED, REFERRALS, CASELOAD, IMPACT]
