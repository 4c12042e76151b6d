"""An LA at full scale on a fresh PostgreSQL database, built with set-based SQL
(`generate_series` inserts), for the report benchmark (bench/reports.py).

What the issue asks for ("20,000 pupils, a year of marks, 5,000 cases with their plans,
reviews and contacts"), times `scale`:

- `SCHOOLS` schools: all but the last two in LA 202 (the bench's manager), two in LA 203, so
  that reach has something to leave out;
- pupils spread over the schools; a year of AM/PM session marks up to today on weekdays
  outside August and the school holidays (~7.6M at scale 1), coded through England's code
  table as a push stores them (code, statutory code, category, late, unexplained), with the
  weekly figures a push keeps beside them; most pupils attend well, some are persistent
  absentees, and the children of a case miss more before it opened than after;
- cases opened over the year (8% before it), 1-3 children each (5% of the cases are a later
  case for the children of an earlier one), lead practitioners among 40 staff (3% none),
  55% closed with mixed reasons and destinations, some reopened, some closures awaiting
  approval; 2-4 goals in the outcome categories, 2-4 reviews scoring every goal (mostly
  rising), 3-8 contacts, each dated within the case's life;
- referrals: 70% of the cases came from an accepted one; 0.9 per case more, declined (with
  a service signposted), stepped up, redirected, withdrawn or still undecided, from the hub,
  schools and attendance flags; a later case's referral is a re-referral;
- attendance flags (persistent and severe absence) for the pupils whose year says so;
- the casework events the reports read (`case.opened`, `case.closed`, `case.reopened`,
  `case.closure_requested`, `referral.received`, `referral.under_review`, the decisions).

Columns that later migrations add (a closure's destination, a decline's category) are filled
when the schema has them (`fill_later_columns`), so a database built before they landed is
brought up to date by `liaison migrate` and one more call.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import date, timedelta

import asyncpg

SCHOOLS = 43  # prime to 3, so cases (three children apart) fall in every school
OTHER_LA_SCHOOLS = 2
STAFF = 40
LA, OTHER_LA = "202", "203"

CATEGORIES = [
    "parenting_improved",
    "emotional_warmth_increased",
    "parent_mental_health_stable",
    "child_mental_health_stable",
    "parent_school_relationship_improved",
    "debt_managed",
    "school_attendance_managed",
    "send_support_in_place",
    "returned_to_education",
    "physical_health_improved",
    "separated_family_issues_reduced",
    "relationship_conflict_reduced",
    "not_excluded_from_school",
    "self_esteem_improved",
    "antisocial_behaviour_reduced",
    "substance_misuse_stable",
    "ehcp_in_place",
    "neet_to_eet",
]
CONTACT_TYPES = [
    "planned_home_visit",
    "doorstep_visit",
    "telephone_meeting",
    "video_meeting",
    "one_to_one_session",
    "group_session",
    "school_pick_up",
    "therapeutic_session",
    "practical_support",
    "multi_agency_meeting",
    "signs_of_safety_meeting",
    "letter",
]
# (reason, share in %, destination): the closures' mix.
CLOSURES = [
    ("needs_met", 35, None),
    ("stepped_down_to_school", 20, "School as lead professional"),
    ("stepped_up_to_social_care", 10, "Children's social care"),
    ("transferred", 15, "Family Partnership Team"),
    ("moved_out_of_area", 5, None),
    ("disengaged", 8, None),
    ("consent_withdrawn", 4, None),
    ("other", 3, None),
]


def _array(values: Iterable[str]) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"


def _closure_reason(bucket: str) -> str:
    """SQL: the closure reason for a bucket 0-99, by the shares in CLOSURES."""
    whens, upto = [], 0
    for reason, share, _ in CLOSURES:
        upto += share
        whens.append(f"WHEN {bucket} < {upto} THEN '{reason}'")
    return "CASE " + " ".join(whens) + " END"


def steps(pupils: int, cases: int, first: date, today: date) -> list[tuple[str, str]]:
    """(label, SQL) in build order. Every id is md5 of a name and a number, so a step can
    find another's rows without lookup tables."""
    # A later case for the children of an earlier one: every 5th case of the second half
    # (that of the case half a year before it), and the last 5% (that of the case `base`
    # before). `origin` is the case whose children a case has; `earlier` the case before it.
    base, half = max(1, cases * 95 // 100), cases // 2
    origin = f"(CASE WHEN n >= {half} AND n % 5 = 0 THEN n - {half} ELSE n END % {base})"
    earlier = (
        f"CASE WHEN n >= {half} AND n % 5 = 0 THEN n - {half} WHEN n >= {base} THEN n - {base} END"
    )
    la_schools = SCHOOLS - OTHER_LA_SCHOOLS
    school_of = f"md5('school' || ((%s) %% {SCHOOLS} + 1))::uuid"
    la_of = f"CASE WHEN (%s) %% {SCHOOLS} + 1 > {la_schools} THEN '{OTHER_LA}' ELSE '{LA}' END"
    day0 = f"DATE '{first.isoformat()}'"
    today_sql = f"DATE '{today.isoformat()}'"
    extra_referrals = cases * 9 // 10
    return [
        (
            "schools",
            f"""
            INSERT INTO school (created_at, updated_at, id, code, name, la_code, jurisdiction,
                phase)
            SELECT now(), now(), md5('school' || g)::uuid, (810000 + g)::text,
                   'Bench school ' || g, {la_of % "g - 1"}, 'england',
                   CASE WHEN g % 6 = 0 THEN 'secondary' ELSE 'primary' END
            FROM generate_series(1, {SCHOOLS}) AS g
            """,
        ),
        (
            "staff",
            f"""
            INSERT INTO staff_member (created_at, updated_at, id, username, display_name, role,
                password_hash, external_subject, la_code, is_active)
            SELECT now(), now(), md5('staff' || s)::uuid, 'practitioner' || s || '@bench.example',
                   'Practitioner ' || s, 'practitioner', NULL, 'bench-practitioner-' || s,
                   '{LA}', true
            FROM generate_series(0, {STAFF - 1}) AS s
            """,
        ),
        (
            "services",
            f"""
            INSERT INTO directory_service (id, name, status, last_modified, service_areas,
                languages, funding, cost_options, contacts, owner_la_code)
            SELECT md5('service' || k)::uuid, 'Bench service ' || k, 'active', now(),
                   '[]', '[]', '[]', '[]', '[]', '{LA}'
            FROM generate_series(0, 11) AS k
            """,
        ),
        (
            "pupils",
            f"""
            INSERT INTO pupil (created_at, updated_at, id, school_id, mis_id, upn, given_name,
                family_name, date_of_birth, year_group, free_school_meals, looked_after,
                young_carer, forces_family, send, on_roll)
            SELECT now(), now(), md5('pupil' || g)::uuid, {school_of % "g"}, 'B-' || g, NULL,
                   'Given' || g, 'Family' || (g % 997), DATE '2011-09-01' + (g % 2900),
                   ((g % 11) + 1)::text, g % 5 = 0, g % 97 = 0, g % 53 = 0, g % 61 = 0,
                   g % 7 = 0, true
            FROM generate_series(0, {pupils - 1}) AS g
            """,
        ),
        (
            "cases",
            f"""
            INSERT INTO early_help_case (id, la_code, school_id, status, version, level_of_need,
                lead_practitioner_id, consent, consent_given, summary, opened_at, opened_by,
                closed_at, closure_reason, closure_note, pending_closure, reopened_count,
                updated_at)
            SELECT md5('case' || n)::uuid, {la_of % "p0"}, {school_of % "p0"},
                   CASE WHEN closes THEN 'closed' ELSE 'open' END, 1,
                   (ARRAY['universal_plus', 'targeted_early_help', 'targeted_early_help',
                          'specialist'])[n % 4 + 1],
                   CASE WHEN n % 33 = 0 THEN NULL ELSE md5('staff' || (n % {STAFF}))::uuid END,
                   jsonb_build_object('given', true, 'given_by', 'A parent',
                                      'date', opened::date, 'share_with', '[]'::jsonb),
                   true, 'Case summary ' || n, opened, 'bench',
                   CASE WHEN closes THEN closed END,
                   CASE WHEN closes THEN {_closure_reason("((h >> 8) & 127) % 100")} END,
                   CASE WHEN closes THEN 'Closure note' END,
                   CASE WHEN NOT closes AND n % 31 = 0 THEN jsonb_build_object(
                       'reason', 'needs_met', 'note', 'Goals met', 'requested_by', 'bench',
                       'requested_at', opened + INTERVAL '90 days') END,
                   CASE WHEN n % 29 = 0 THEN 1 ELSE 0 END, now()
            FROM (
                SELECT n, p0, h, opened, closed,
                       (h & 127) % 100 < 55 AND closed < now() AS closes
                FROM (
                    SELECT n, {origin} * 3 AS p0, abs(hashtext('case' || n)) AS h,
                           ({day0} + LEAST(363, n * 420 / {cases} - 56 + n % 14))
                               + make_interval(hours => 8 + n % 9) AS opened
                    FROM generate_series(0, {cases - 1}) AS n
                ) AS c
                CROSS JOIN LATERAL (
                    SELECT opened + make_interval(days => 40 + (h >> 16) % 220) AS closed
                ) AS k
            ) AS c
            """,
        ),
        (
            "case children",
            f"""
            INSERT INTO case_child (id, case_id, position, pupil_id, school_id, upn, given_name,
                family_name, date_of_birth)
            SELECT md5('cc' || n || '-' || j)::uuid, md5('case' || n)::uuid, j,
                   p.id, p.school_id, NULL, p.given_name, p.family_name, p.date_of_birth
            FROM generate_series(0, {cases - 1}) AS n
            CROSS JOIN LATERAL generate_series(0, n % 3) AS j
            JOIN pupil AS p ON p.id = md5('pupil' || ({origin} * 3 + j))::uuid
            UNION ALL
            SELECT md5('cc' || n || '-named')::uuid, md5('case' || n)::uuid, 3, NULL, NULL,
                   NULL, 'Named' || n, 'Only', DATE '2020-01-01'
            FROM generate_series(0, {cases - 1}) AS n WHERE n % 37 = 0
            """,
        ),
        (
            "goals",
            f"""
            INSERT INTO goal (id, case_id, title, outcome_category, child_id, owner, due,
                created_at, created_by)
            SELECT md5('goal' || n || '-' || g)::uuid, c.id, 'Goal ' || g,
                   ({_array(CATEGORIES)})[(n * 7 + g * 5) % {len(CATEGORIES)} + 1],
                   NULL, 'Parent', NULL, c.opened_at + INTERVAL '7 days', 'bench'
            FROM generate_series(0, {cases - 1}) AS n
            JOIN early_help_case AS c ON c.id = md5('case' || n)::uuid
            CROSS JOIN LATERAL generate_series(1, 2 + n % 3) AS g
            """,
        ),
        (
            "reviews",
            f"""
            INSERT INTO review (id, case_id, held_on, worries, working_well, next_steps,
                created_at, created_by)
            SELECT md5('review' || n || '-' || k)::uuid, c.id, held_on, 'Worries',
                   'Working well', 'Next steps', held_on + TIME '15:00', 'bench'
            FROM generate_series(0, {cases - 1}) AS n
            JOIN early_help_case AS c ON c.id = md5('case' || n)::uuid
            CROSS JOIN LATERAL generate_series(1, 2 + (n * 5) % 3) AS k
            CROSS JOIN LATERAL (
                SELECT c.opened_at::date + 42 * k + (n + k) % 10 AS held_on
            ) AS r
            WHERE held_on <= LEAST(c.closed_at::date, {today_sql})
            """,
        ),
        (
            "scores",
            """
            INSERT INTO review_score (id, review_id, goal_id, score, respondent_scores)
            SELECT gen_random_uuid(), r.id, g.id,
                   LEAST(10, GREATEST(0, 2 + abs(hashtext(g.id::text)) % 4
                       + (rank() OVER (PARTITION BY g.id ORDER BY r.held_on) - 1)
                         * ((abs(hashtext(g.id::text)) >> 4) % 4 - 1))),
                   '{"parent": 5}'
            FROM review AS r JOIN goal AS g ON g.case_id = r.case_id
            """,
        ),
        (
            "contacts",
            f"""
            INSERT INTO intervention (id, case_id, type, occurred_at, minutes, location,
                participants, child_ids, child_seen, agenda, record, actions,
                parent_consent_recorded, risk_assessment_done, created_at, created_by)
            SELECT gen_random_uuid(), c.id,
                   ({_array(CONTACT_TYPES)})[(n + i) % {len(CONTACT_TYPES)} + 1], at,
                   30 + (n * i) % 60, (ARRAY['home', 'school', 'community'])[i % 3 + 1],
                   '["Parent"]', '[]', i % 2 = 0, NULL, 'Record of the contact', '[]',
                   false, false, at, 'bench'
            FROM generate_series(0, {cases - 1}) AS n
            JOIN early_help_case AS c ON c.id = md5('case' || n)::uuid
            CROSS JOIN LATERAL generate_series(1, 3 + n % 6) AS i
            CROSS JOIN LATERAL (SELECT c.opened_at + make_interval(days => 9 * i) AS at) AS t
            WHERE at <= LEAST(c.closed_at, now())
            """,
        ),
        (
            "case referrals",
            # 70% of the cases came from an accepted referral; a later case's is a re-referral
            # where the earlier case had closed before it was received.
            f"""
            INSERT INTO referral (id, la_code, school_id, referrer, source, external_reference,
                status, version, level_of_need, urgency, summary, concerns, family, consent,
                re_referral, previous_case_id, attendance_flag_id, received_at, updated_at,
                decision, decision_reason, decided_by, decided_at, decision_seconds,
                signposted_service_ids, redirected_to, lead_practitioner_id, case_id)
            SELECT md5('ref' || n)::uuid, c.la_code, c.school_id,
                   CASE WHEN n % 20 < 10 THEN 'Front door' ELSE 'School' END,
                   CASE WHEN n % 20 < 10 THEN 'hub' WHEN n % 20 < 17 THEN 'school'
                        ELSE 'attendance_flag' END,
                   'R-' || n, 'accepted', 1, c.level_of_need, 'routine', 'Referral summary',
                   '["attendance", "parenting"]', '[]', c.consent,
                   prev.id IS NOT NULL, prev.id, NULL, received, now(), 'accept',
                   'Meets the threshold for early help', 'bench', decided,
                   extract(epoch FROM decided - received)::int, '[]', NULL,
                   c.lead_practitioner_id, c.id
            FROM generate_series(0, {cases - 1}) AS n
            JOIN early_help_case AS c ON c.id = md5('case' || n)::uuid
            CROSS JOIN LATERAL (
                SELECT c.opened_at - make_interval(days => 2 + n % 8, hours => n % 5) AS received,
                       c.opened_at - make_interval(hours => 1 + n % 20) AS decided
            ) AS t
            LEFT JOIN early_help_case AS prev
              ON prev.id = md5('case' || ({earlier}))::uuid
             AND prev.closed_at < received AND prev.closed_at > received - INTERVAL '12 months'
            WHERE n % 10 < 7
            """,
        ),
        (
            "other referrals",
            f"""
            INSERT INTO referral (id, la_code, school_id, referrer, source, external_reference,
                status, version, level_of_need, urgency, summary, concerns, family, consent,
                re_referral, previous_case_id, attendance_flag_id, received_at, updated_at,
                decision, decision_reason, decided_by, decided_at, decision_seconds,
                signposted_service_ids, redirected_to, lead_practitioner_id, case_id,
                pending_decision, withdrawn_at, withdrawal_reason)
            SELECT md5('refx' || m)::uuid, {la_of % "p0"}, {school_of % "p0"},
                   CASE WHEN m % 20 < 10 THEN 'Front door' ELSE 'School' END,
                   CASE WHEN m % 20 < 10 THEN 'hub' WHEN m % 20 < 17 THEN 'school'
                        ELSE 'attendance_flag' END,
                   'X-' || m, status, 1, 'universal_plus',
                   (ARRAY['routine', 'priority', 'urgent'])[m % 3 + 1], 'Referral summary',
                   '["housing", "finances"]', '[]',
                   jsonb_build_object('given', true, 'given_by', 'A parent',
                                      'date', received::date, 'share_with', '[]'::jsonb),
                   false, NULL, NULL, received, now(),
                   decision, CASE WHEN decision IS NOT NULL THEN 'Reason ' || decision END,
                   CASE WHEN decision IS NOT NULL THEN 'bench' END,
                   CASE WHEN decision IS NOT NULL THEN decided END,
                   CASE WHEN decision IS NOT NULL
                        THEN extract(epoch FROM decided - received)::int END,
                   CASE WHEN decision = 'decline'
                        THEN jsonb_build_array(md5('service' || m % 12)::uuid::text)
                        ELSE '[]'::jsonb END,
                   CASE WHEN decision = 'redirect' THEN 'Youth service' END, NULL, NULL,
                   CASE WHEN status = 'awaiting_approval' THEN jsonb_build_object(
                       'decision', 'step_up', 'reason', 'Significant harm',
                       'requested_by', 'bench', 'requested_at', decided) END,
                   CASE WHEN status = 'withdrawn' THEN decided END,
                   CASE WHEN status = 'withdrawn' THEN 'The family moved' END
            FROM (
                SELECT m, {base * 3} + m * 2 AS p0, received,
                       received + make_interval(hours => 2 + (m * 37) % 330) AS decided,
                       CASE WHEN received > now() - INTERVAL '10 days' AND m % 3 = 0
                                 THEN (ARRAY['received', 'under_review'])[m % 2 + 1]
                            WHEN m % 20 < 9 THEN 'declined'
                            WHEN m % 20 < 12 THEN 'stepped_up'
                            WHEN m % 20 < 15 THEN 'redirected'
                            WHEN m % 20 < 17 THEN 'withdrawn'
                            WHEN m % 20 < 18 THEN 'awaiting_approval'
                            ELSE 'declined' END AS status
                FROM generate_series(0, {extra_referrals - 1}) AS m
                CROSS JOIN LATERAL (
                    SELECT ({day0} + m * 364 / {extra_referrals})
                           + make_interval(hours => 8 + m % 9) AS received
                ) AS t
            ) AS r
            CROSS JOIN LATERAL (
                SELECT CASE status WHEN 'declined' THEN 'decline' WHEN 'stepped_up' THEN 'step_up'
                                   WHEN 'redirected' THEN 'redirect' END AS decision
            ) AS d
            """,
        ),
        (
            "referral children",
            f"""
            INSERT INTO referral_child (id, referral_id, position, pupil_id, school_id, upn,
                given_name, family_name, date_of_birth, supplied)
            SELECT md5('rc' || r.id || '-' || cc.position)::uuid, r.id, cc.position, cc.pupil_id,
                   cc.school_id, NULL, cc.given_name, cc.family_name, cc.date_of_birth, NULL::jsonb
            FROM referral AS r JOIN case_child AS cc ON cc.case_id = r.case_id
            UNION ALL
            SELECT md5('rcx' || m || '-' || j)::uuid, md5('refx' || m)::uuid, j, p.id,
                   p.school_id, NULL, p.given_name, p.family_name, p.date_of_birth, NULL::jsonb
            FROM generate_series(0, {extra_referrals - 1}) AS m
            CROSS JOIN LATERAL generate_series(0, m % 2) AS j
            JOIN pupil AS p ON p.id = md5('pupil' || (({base * 3} + m * 2 + j) % {pupils}))::uuid
            WHERE m % 25 <> 0
            UNION ALL
            SELECT md5('rcx' || m || '-named')::uuid, md5('refx' || m)::uuid, 0, NULL, NULL,
                   NULL, 'Referred' || m, 'Only', NULL, NULL
            FROM generate_series(0, {extra_referrals - 1}) AS m WHERE m % 25 = 0
            """,
        ),
        (
            "casework events",
            f"""
            INSERT INTO casework_event (id, occurred_at, actor, case_id, referral_id, event,
                summary, details)
            SELECT gen_random_uuid(), r.received_at, 'bench', NULL::uuid, r.id, 'referral.received',
                   'Referral received', '{{}}'::jsonb
            FROM referral AS r
            UNION ALL
            SELECT gen_random_uuid(), r.received_at + INTERVAL '1 hour', 'bench', NULL, r.id,
                   'referral.under_review', 'Under review', '{{}}'
            FROM referral AS r WHERE r.status <> 'received'
            UNION ALL
            SELECT gen_random_uuid(), COALESCE(r.decided_at, r.withdrawn_at), 'bench', NULL, r.id,
                   'referral.' || r.status, 'Decided: ' || r.status,
                   jsonb_build_object('decision', r.decision)
            FROM referral AS r
            WHERE r.status IN ('accepted', 'declined', 'stepped_up', 'redirected', 'withdrawn')
            UNION ALL
            SELECT gen_random_uuid(), (r.pending_decision ->> 'requested_at')::timestamptz,
                   'staff:' || md5('staff' || abs(hashtext(r.id::text)) % {STAFF})::uuid, NULL,
                   r.id, 'referral.step_up_requested', 'Step-up requested', '{{}}'
            FROM referral AS r WHERE r.status = 'awaiting_approval'
            UNION ALL
            SELECT gen_random_uuid(), r.decided_at - make_interval(hours => k * 20),
                   CASE WHEN k = 1 THEN 'staff:' || md5('staff' || abs(hashtext(r.id::text))
                                                        % {STAFF})::uuid
                        ELSE 'bench' END,
                   NULL, r.id,
                   CASE WHEN k = 1 THEN 'referral.step_up_requested'
                        ELSE 'referral.step_up_approved' END, 'Step-up', '{{}}'
            FROM referral AS r CROSS JOIN (VALUES (1), (0)) AS s(k)
            WHERE r.status = 'stepped_up'
            UNION ALL
            SELECT gen_random_uuid(), c.opened_at, 'bench', c.id, NULL::uuid, 'case.opened',
                   'Case opened', CASE WHEN r.id IS NULL THEN '{{}}'::jsonb
                                       ELSE jsonb_build_object('referral_id', r.id) END
            FROM early_help_case AS c LEFT JOIN referral AS r ON r.case_id = c.id
            UNION ALL
            SELECT gen_random_uuid(), c.opened_at + INTERVAL '30 days', 'bench', c.id, NULL,
                   'case.closed', 'Closed (needs met)', '{{"reason": "needs_met"}}'
            FROM early_help_case AS c WHERE c.reopened_count > 0
            UNION ALL
            SELECT gen_random_uuid(), c.opened_at + INTERVAL '45 days', 'bench', c.id, NULL,
                   'case.reopened', 'Reopened', '{{}}'
            FROM early_help_case AS c WHERE c.reopened_count > 0
            UNION ALL
            SELECT gen_random_uuid(), c.closed_at, 'bench', c.id, NULL, 'case.closed',
                   'Closed', jsonb_build_object('reason', c.closure_reason)
            FROM early_help_case AS c WHERE c.status = 'closed'
            UNION ALL
            SELECT gen_random_uuid(), (c.pending_closure ->> 'requested_at')::timestamptz,
                   'bench', c.id, NULL, 'case.closure_requested', 'Closure requested',
                   '{{"reason": "needs_met"}}'
            FROM early_help_case AS c WHERE c.pending_closure IS NOT NULL
            UNION ALL
            -- a third of the closures waited two days for a manager's approval
            SELECT gen_random_uuid(), c.closed_at - make_interval(days => 2 * k), 'bench', c.id,
                   NULL, CASE WHEN k = 1 THEN 'case.closure_requested'
                              ELSE 'case.closure_approved' END, 'Closure', '{{}}'
            FROM early_help_case AS c CROSS JOIN (VALUES (1), (0)) AS s(k)
            WHERE c.status = 'closed' AND abs(hashtext(c.id::text)) % 3 = 0
            UNION ALL
            -- one case in ten changed lead practitioner 60 days in
            SELECT gen_random_uuid(), c.opened_at + INTERVAL '60 days', 'bench', c.id, NULL,
                   'case.updated', 'Updated: lead_practitioner',
                   jsonb_build_object('lead_practitioner', jsonb_build_object(
                       'from', md5('staff' || (abs(hashtext(c.id::text)) + 7) % {STAFF})::uuid,
                       'to', c.lead_practitioner_id))
            FROM early_help_case AS c
            WHERE abs(hashtext(c.id::text)) % 10 = 1
              AND c.opened_at + INTERVAL '60 days' < LEAST(c.closed_at, now())
            """,
        ),
        (
            "school days",
            # Weekdays of the year outside August and the usual holidays.
            f"""
            CREATE TABLE bench_day AS
            SELECT d::date AS day FROM generate_series({day0}, {today_sql}, INTERVAL '1 day') AS d
            WHERE extract(isodow FROM d) < 6 AND extract(month FROM d) <> 8
              AND NOT (extract(month FROM d) = 12 AND extract(day FROM d) >= 20)
              AND NOT (extract(month FROM d) = 1 AND extract(day FROM d) <= 3)
              AND NOT (extract(month FROM d) = 4 AND extract(day FROM d) <= 14)
              AND NOT (extract(month FROM d) = 10 AND extract(day FROM d) >= 24)
              AND NOT (extract(month FROM d) = 2 AND extract(day FROM d) BETWEEN 16 AND 20)
              AND NOT (extract(month FROM d) = 5 AND extract(day FROM d) >= 25)
              AND NOT (extract(month FROM d) = 7 AND extract(day FROM d) >= 22)
            """,
        ),
        (
            "mark codes",
            # 64 slots: 0-31 a present session, 32-63 an absence, each coded as a push of
            # England's current codes stores it.
            """
            CREATE TABLE bench_code AS
            -- category as the number a mark stores (app.models.attendance.CATEGORY_NUMBER)
            SELECT k, c.code, CAST(CASE c.category WHEN 'not_possible' THEN 0
                       WHEN 'present' THEN 1 WHEN 'approved_activity' THEN 2
                       WHEN 'authorised_absence' THEN 3 ELSE 4 END AS smallint) AS category,
                   c.late, c.unexplained
            FROM (SELECT k, CASE
                      WHEN k < 28 THEN '/' WHEN k < 30 THEN 'L' WHEN k = 30 THEN 'B'
                      WHEN k = 31 THEN 'K' WHEN k < 44 THEN 'I' WHEN k < 48 THEN 'M'
                      WHEN k < 54 THEN 'O' WHEN k < 57 THEN 'N' WHEN k < 59 THEN 'G'
                      WHEN k < 61 THEN 'C' WHEN k < 62 THEN 'U' ELSE 'E' END AS code
                  FROM generate_series(0, 63) AS k) AS s
            JOIN attendance_code AS c
              ON c.jurisdiction = 'england' AND c.code_set = 'england-2024' AND c.code = s.code
            """,
        ),
        (
            "absence rates",
            # Per pupil, in 1024ths of sessions: most attend well (3%), some miss 12% or 25%;
            # a case's child misses 15-28% before it opened and about half that after.
            """
            CREATE TABLE bench_rate AS
            SELECT p.id AS pupil_id, p.school_id, o.opened,
                   CASE WHEN o.opened IS NOT NULL THEN 150 + (h & 127)
                        WHEN h % 16 < 2 THEN 260 WHEN h % 16 < 5 THEN 120 ELSE 32 END AS before,
                   CASE WHEN o.opened IS NOT NULL THEN 60 + ((h >> 7) & 63)
                        WHEN h % 16 < 2 THEN 260 WHEN h % 16 < 5 THEN 120 ELSE 32 END AS after
            FROM (SELECT id, school_id, abs(hashtext(id::text)) AS h FROM pupil) AS p
            LEFT JOIN (
                SELECT cc.pupil_id, min(c.opened_at)::date AS opened
                FROM case_child AS cc JOIN early_help_case AS c ON c.id = cc.case_id
                WHERE cc.pupil_id IS NOT NULL GROUP BY 1
            ) AS o ON o.pupil_id = p.id
            """,
        ),
        (
            "marks",
            """
            INSERT INTO attendance_mark (pupil_id, date, session, school_id, code,
                statutory_code, category, late, unexplained, updated_at)
            SELECT m.pupil_id, m.day, m.session, m.school_id, c.code, c.code, c.category,
                   c.late, c.unexplained, now()
            FROM (
                SELECT r.pupil_id, r.school_id, d.day, s.session,
                       CASE WHEN (h & 1023) < CASE WHEN d.day < r.opened THEN r.before
                                                   WHEN r.opened IS NULL THEN r.before
                                                   ELSE r.after END
                            THEN 32 ELSE 0 END + ((h >> 10) & 31) AS k
                FROM bench_rate AS r
                CROSS JOIN bench_day AS d
                CROSS JOIN (VALUES (0, 'AM'), (1, 'PM')) AS s(session, name)
                CROSS JOIN LATERAL (
                    SELECT hashtext(r.pupil_id::text || d.day::text || s.name) AS h
                ) AS x
            ) AS m
            JOIN bench_code AS c ON c.k = m.k
            """,
        ),
        (
            "weekly figures",
            """
            INSERT INTO attendance_week (pupil_id, week_start, academic_year, possible, attended,
                unauthorised)
            SELECT pupil_id, week_start,
                   CASE WHEN extract(month FROM week_start) >= 8 THEN extract(year FROM week_start)
                        ELSE extract(year FROM week_start) - 1 END,
                   count(*) FILTER (WHERE category <> 0),
                   count(*) FILTER (WHERE category IN (1, 2)),
                   count(*) FILTER (WHERE category = 4)
            FROM (SELECT pupil_id, date_trunc('week', date)::date AS week_start, category
                  FROM attendance_mark) AS m
            GROUP BY 1, 2
            """,
        ),
        (
            "attendance flags",
            # Persistent (10%+) and severe (50%+) absence over each pupil's marks, raised on a
            # day of the year; open, acknowledged or resolved; a case's child's linked to it.
            f"""
            INSERT INTO attendance_flag (id, pupil_id, school_id, kind, status, academic_year,
                raised_at, evidence, acknowledged_at, acknowledged_by, resolved_at, updated_at,
                case_id)
            SELECT gen_random_uuid(), a.pupil_id, p.school_id, kind,
                   (ARRAY['open', 'acknowledged', 'resolved'])[h % 3 + 1],
                   CASE WHEN extract(month FROM raised) >= 8 THEN extract(year FROM raised)
                        ELSE extract(year FROM raised) - 1 END,
                   raised, jsonb_build_object('possible', a.possible, 'attended', a.attended),
                   CASE WHEN h % 3 > 0 THEN raised + INTERVAL '2 days' END,
                   CASE WHEN h % 3 > 0 THEN 'bench' END,
                   CASE WHEN h % 3 = 2 THEN raised + INTERVAL '60 days' END, now(),
                   (SELECT cc.case_id FROM case_child AS cc WHERE cc.pupil_id = a.pupil_id
                    LIMIT 1)
            FROM (SELECT pupil_id, sum(possible) AS possible, sum(attended) AS attended
                  FROM attendance_week GROUP BY 1) AS a
            JOIN pupil AS p ON p.id = a.pupil_id
            CROSS JOIN LATERAL (
                VALUES ('persistent_absence', a.possible - a.attended >= a.possible * 0.1),
                       ('severe_absence', a.possible - a.attended >= a.possible * 0.5)
            ) AS k(kind, applies)
            CROSS JOIN LATERAL (SELECT abs(hashtext(a.pupil_id::text || kind)) AS h) AS x
            CROSS JOIN LATERAL (
                SELECT {day0} + 30 + h % 300 + TIME '06:00' AS raised
            ) AS r
            WHERE applies
            """,
        ),
        ("drop helpers", "DROP TABLE bench_day, bench_code, bench_rate"),
    ]


async def columns(connection: asyncpg.Connection, table: str) -> set[str]:
    rows = await connection.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = $1", table
    )
    return {r["column_name"] for r in rows}


async def fill_later_columns(connection: asyncpg.Connection) -> None:
    """The columns later migrations add, filled where the schema has them (every build, and
    again on reuse after `liaison migrate`)."""
    case_columns = await columns(connection, "early_help_case")
    if "closure_destination" in case_columns:
        whens = " ".join(
            f"WHEN '{reason}' THEN '{destination.replace(chr(39), chr(39) * 2)}'"
            for reason, _, destination in CLOSURES
            if destination
        )
        await connection.execute(
            f"UPDATE early_help_case SET closure_destination = CASE closure_reason {whens} END "
            "WHERE status = 'closed' AND closure_destination IS NULL"
        )
    if "decision_category" in await columns(connection, "referral"):
        await connection.execute(
            """
            UPDATE referral SET decision_category = CASE
                WHEN decision = 'decline' THEN (ARRAY['threshold_not_met', 'needs_met_elsewhere',
                    'already_supported', 'out_of_area', 'other'])[abs(hashtext(id::text)) % 5 + 1]
                END
            WHERE decision = 'decline' AND decision_category IS NULL
            """
        )


async def build(connection: asyncpg.Connection, pupils: int, cases: int, today: date) -> None:
    first = today - timedelta(days=364)
    for label, sql in steps(pupils, cases, first, today):
        started = time.perf_counter()
        status = await connection.execute(sql)
        print(
            f"  built {label:18s} {status.split()[-1]:>10s} rows "
            f"in {time.perf_counter() - started:6.1f} s",
            flush=True,
        )
    await fill_later_columns(connection)
    await connection.execute("VACUUM ANALYZE")
