"""The authorisation matrix (issue 10): every operation of the app's own route table, called
by every role of a second LA against the first LA's objects, must answer exactly as it does
for an object that does not exist, and must never show the first LA's data.

How it works, so that a new route is covered without editing this file:

- Operations come from `app.openapi()`: their paths, methods, scopes, query parameters and
  request-body schemas. Every parameter or body field that names an object (`*_id`,
  `*_ids`, a record's `id`, `upn`, `school_code`, `la_code`, `actor`, `name` filters) is a
  *slot*; `ID_KINDS` says which kind of object each name refers to. A name it does not know
  fails the test, so a new kind of object cannot slip through unprobed.
- For each slot and each object of that kind the first LA holds, the probe sends the request
  twice: with the first LA's id and with a random one (everything else the caller's own
  valid values). The two answers must be equal once the id sent is replaced by a
  placeholder and `request_id` dropped. An id in a path must answer 404 (403
  `insufficient-scope` for a role without the scope); an `la_code` in a body must be 403.
  Where an operation has several slots, all of them are also filled at once from one of the
  first LA's families of objects (a case with its child, goal and signpost...).
- Bodies come from `bodies()` (by operationId) so the two requests differ only in the id; an
  operation missing there gets a minimal body derived from its JSON schema, and is named in
  the summary.
- Every GET list (no path id) is called by every role with and without filters and scanned
  for the first LA's names, UPNs, dates of birth, texts and ids, as is every probe's answer.
- The directory is public: its reads stay open, but writes to a service, an organization, a
  taxonomy, a term or a location the first LA owns must leave it unchanged (403 for a
  service or taxonomy named in the path).
- At the end the first LA's objects, read back as the first LA, must be unchanged.

Besides the second LA, hub HA2 is probed against hub HA1's referrals, and a client bound to
school SA2 against its sibling school SA1, in the first LA itself.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.builders.las import (
    FIRST_LA_MARK,
    FIRST_LA_STAFF_MARK,
    MARK_DAYS,
    NO_SUCH_LA,
    Account,
    Builder,
    LocalAuthority,
    build_first_la,
    build_second_la,
    consent,
    snapshot,
)
from tests.builders.schools import upn
from tests.conftest import World

# --- which names name objects -------------------------------------------------------------

# Parameter and body-field names that name an object, and the kind of object they name. A
# record's own `id` is named by its schema: `OrukOrganization.id`.
ID_KINDS: dict[str, str] = {
    "case_id": "case",
    "referral_id": "referral",
    "pupil_id": "pupil",
    "school_id": "school",
    "flag_id": "flag",
    "attendance_flag_id": "flag",
    "signpost_id": "signpost",
    "member_id": "team_member",
    "team_member_id": "team_member",
    "meeting_id": "meeting",
    "child_id": "child",
    "child_ids": "child",
    "goal_id": "goal",
    "action_id": "action",
    "staff_id": "staff",
    # The source an action was agreed at: probed as a contact (`source_kind: contact`).
    "source_id": "intervention",
    "document_id": "document",
    "hold_id": "legal_hold",
    "lead_practitioner_id": "staff",
    "actor": "actor",
    "upn": "upn",
    "school_code": "school_code",
    "mis_id": "mis_id",
    "la_code": "la",
    "name": "pupil_name",  # a query filter only: body fields called `name` are not ids
    # A child's place on a referral: probed through the referral it is on (the caller's own
    # referral's first child otherwise).
    "position": "child_position",
    # The directory: public information, but each record has an owner.
    "service_id": "directory_service",
    "signposted_service_ids": "directory_service",
    "link_id": "directory_service",
    "organization_id": "directory_organization",
    "parent_organization_id": "directory_organization",
    "taxonomy_id": "directory_taxonomy",
    "term_id": "directory_term",
    "taxonomy_term_id": "directory_term",
    "parent_id": "directory_term",
    "location_id": "directory_location",
    "service_at_location_id": "directory_service_at_location",
    "OrukServiceWrite.id": "directory_service",
    "OrukOrganization.id": "directory_organization",
    "OrukTaxonomy.id": "directory_taxonomy",
    "OrukTaxonomyTerm.id": "directory_term",
    "OrukLocation.id": "directory_location",
    "OrukServiceAtLocation.id": "directory_service_at_location",
    "OrukAttribute.id": "directory_attribute",
    "OrukSchedule.id": "directory_schedule",
    "webhook_id": "webhook",
    # The attempts listing's filter: an event delivered to the subscription in the path.
    "event_id": "outbox_event",
}
# Names that look like ids but cannot name another caller's object, and why.
NOT_REFERENCES: dict[str, str] = {
    "source_record_id": "the MIS's own id for a mark, stored as sent",
    "OrukContact.id": "a record inside the service's own JSON list, replaced with it",
    "OrukCostOption.id": "a record inside the service's own JSON list, replaced with it",
    "OrukFunding.id": "a record inside the service's own JSON list, replaced with it",
    "OrukLanguage.id": "a record inside the service's own JSON list, replaced with it",
    "OrukServiceArea.id": "a record inside the service's own JSON list, replaced with it",
    "OrukOrganizationIdentifier.id": "inside the organization's own JSON list",
    "OrukAddress.id": "inside the location's own JSON list",
    "OrukAccessibility.id": "inside the location's own JSON list",
}
# Slots where the caller declares its own data rather than naming an existing object.
DECLARATIONS: dict[tuple[str, str], str] = {
    ("pupils-push_roster", "pupils[].mis_id"): "the school's own pupils, pushed by its MIS",
    ("pupils-push_roster", "pupils[].upn"): "the school's own pupils, pushed by its MIS",
}
# Operations that take no object id by design.
NOT_PROBED: dict[str, str] = {
    "oauth-token": "takes credentials, not object ids",
}
IDENTIFYING = re.compile(r"(^|_)ids?$")
IDENTIFYING_NAMES = {"upn", "school_code", "la_code", "actor"}
IDENTIFYING_QUERY = IDENTIFYING_NAMES | {"name"}

DIRECTORY_KINDS = {kind for kind in ID_KINDS.values() if kind.startswith("directory_")}
# A record's own `id` in a directory body is a whole record the server creates or updates.
WHOLE_RECORDS = {key for key in ID_KINDS if key.startswith("Oruk")}

# --- bodies -------------------------------------------------------------------------------

SLOT: Any = None  # where a probe puts an id: the probe fills every slot it finds
# A valid upload (a document on a case): multipart bodies hold no ids of their own.
MULTIPART_PROBE = (
    {"file": ("probe.txt", b"Probe document.\n", "text/plain")},
    {"kind": "other", "title": "Probe document"},
)
UNIQUE = "<unique>"  # a fresh code for each probe (same for its two requests)
UNIQUE_SCHOOL_CODE = "<unique school code>"


def bodies() -> dict[str, list[dict[str, Any]]]:
    """Valid bodies by operationId (several where a body has alternative shapes), so the two
    requests of a probe differ only in the id. Values at id-bearing names are placeholders."""
    # Today, and the start of today: the cases probed opened today, and nothing is dated
    # before its case opened.
    day = datetime.now(UTC).date().isoformat()
    agreed = consent("Secondla Parent Orrin (mother)")
    referral = {
        "concerns": ["attendance"],
        "level_of_need": "targeted_early_help",
        "consent": agreed,
        "urgency": "routine",
        "summary": "Probe referral.",
    }
    service = {"name": "Probe service", "status": "active", "description": "Probe."}
    services = [
        {
            **service,
            "id": SLOT,
            "organization": {
                "id": SLOT,
                "name": "Probe organization",
                "parent_organization_id": SLOT,
            },
            "attributes": [
                {
                    "id": SLOT,
                    "taxonomy_term": {
                        "id": SLOT,
                        "name": "Probe term",
                        "taxonomy_id": SLOT,
                        "parent_id": SLOT,
                    },
                }
            ],
            "service_at_locations": [
                {
                    "id": SLOT,
                    "location": {"id": SLOT, "location_type": "physical", "name": "Probe"},
                }
            ],
            "schedules": [{"id": SLOT, "service_id": SLOT, "freq": "WEEKLY", "byday": "TU"}],
        },
        {
            **service,
            "organization_id": SLOT,
            "attributes": [{"taxonomy_term_id": SLOT, "link_id": SLOT}],
            "service_at_locations": [{"location_id": SLOT, "service_id": SLOT}],
        },
    ]
    hold = {"reason": "Probe hold."}
    return {
        "webhooks-create_webhook": [
            {"url": "https://probe.example.org/hook", "event_types": ["referral.decided"]}
        ],
        "webhooks-update_webhook": [{"description": "Probe."}],
        "webhooks-rotate_webhook_secret": [{"grace_hours": 1}],
        "legal-holds-place_legal_hold": [
            {**hold, "kind": "child", "pupil_id": SLOT},
            {**hold, "kind": "case", "case_id": SLOT},
            {**hold, "kind": "family", "case_id": SLOT},
            {**hold, "kind": "family", "referral_id": SLOT},
        ],
        "legal-holds-lift_legal_hold": [{"reason": "Probe lift."}],
        "referrals-create_referral": [
            {**referral, "children": [{"pupil_id": SLOT}], "attendance_flag_id": SLOT},
            {**referral, "children": [{"upn": SLOT, "school_code": SLOT}]},
        ],
        "cases-open_case": [
            {
                "children": [{"pupil_id": SLOT}],
                "level_of_need": "targeted_early_help",
                "consent": agreed,
                "lead_practitioner_id": SLOT,
                "attendance_flag_id": SLOT,
            },
            {
                "children": [{"upn": SLOT, "school_code": SLOT}],
                "level_of_need": "targeted_early_help",
                "consent": agreed,
            },
        ],
        "cases-update_case": [
            {"children": [{"pupil_id": SLOT}], "lead_practitioner_id": SLOT},
            {"children": [{"upn": SLOT, "school_code": SLOT}]},
        ],
        "cases-close_case": [{"reason": "needs_met", "note": "Probe closure."}],
        "referrals-decide_referral": [
            {
                "decision": "decline",
                "reason": "Probe decision.",
                "lead_practitioner_id": SLOT,
                "signposted_service_ids": SLOT,
            }
        ],
        "attendance-acknowledge_flag": [{"note": "Probe note.", "case_id": SLOT}],
        "attendance-push_marks": [
            {
                "marks": [
                    {
                        "school_code": SLOT,
                        "mis_id": SLOT,
                        "date": MARK_DAYS[0],
                        "session": "AM",
                        "code": "/",
                    }
                ]
            },
            {
                "marks": [
                    {
                        "school_code": SLOT,
                        "upn": SLOT,
                        "date": MARK_DAYS[0],
                        "session": "PM",
                        "code": "/",
                    }
                ]
            },
        ],
        "attendance-replace_school_codes": [
            {"codes": [{"display_code": "PZ", "statutory_code": "/"}]}
        ],
        "pupils-push_roster": [
            {
                "pupils": [
                    {
                        "mis_id": "PROBE-0001",
                        "given_name": "Probe",
                        "family_name": "Pupil",
                        "date_of_birth": "2014-01-01",
                    }
                ]
            }
        ],
        "family plans-add_goal": [
            {"title": "Probe goal", "outcome_category": "parenting_improved", "child_id": SLOT}
        ],
        "family plans-hold_review": [{"held_on": day, "scores": [{"goal_id": SLOT, "score": 5}]}],
        "family plans-record_intervention": [
            {
                "type": "one_to_one_session",
                "occurred_at": f"{day}T00:00:00+00:00",
                "minutes": 30,
                "location": "school",
                "participants": ["Probe mentor"],
                "child_ids": SLOT,
                "child_seen": True,
                "actions": [],
            }
        ],
        "family plans-record_measure": [
            {"child_id": SLOT, "instrument": "reading_age", "score": 7.5, "measured_on": day}
        ],
        "family plans-suggest_signpost": [
            {"service_id": SLOT, "child_id": SLOT, "reason": "Probe signpost."}
        ],
        "family plans-update_signpost": [{"status": "referred", "note": "Probe."}],
        "family plans-set_timetable": [{"steps": [{"starts_on": day, "planned_hours": 10}]}],
        "actions-record_action": [
            {
                "text": "Probe action.",
                "source_kind": "contact",
                "source_id": SLOT,
                "owner": {"kind": "staff", "staff_id": SLOT},
                "due_on": day,
            },
            {
                "text": "Probe action.",
                "source_kind": "other",
                "owner": {"kind": "family_member", "child_id": SLOT},
                "due_on": day,
            },
            {
                "text": "Probe action.",
                "source_kind": "other",
                "owner": {"kind": "agency", "organization_id": SLOT},
                "due_on": day,
            },
            {
                "text": "Probe action.",
                "source_kind": "other",
                "owner": {"kind": "team_member", "team_member_id": SLOT},
                "due_on": day,
            },
        ],
        "actions-change_action_status": [{"status": "not_done", "note": "Probe."}],
        "case team-add_team_member": [
            {"kind": "agency", "name": "Probe agency", "role": "probe"},
            {"kind": "agency", "organization_id": SLOT, "role": "probe"},
        ],
        "case team-leave_team": [{"note": "Probe."}],
        "meetings-schedule_meeting": [
            {
                "type": "one_to_one_session",
                "scheduled_at": f"{day}T23:30:00+00:00",
                "minutes": 30,
                "location": "school",
                "child_ids": SLOT,
                "invitees": [{"team_member_id": SLOT}],
            },
            {
                "type": "one_to_one_session",
                "scheduled_at": f"{day}T23:30:00+00:00",
                "location": "school",
                "invitees": [{"child_id": SLOT}],
            },
        ],
        "meetings-hold_meeting": [
            {"minutes": 30, "record": "Probe.", "attendees": [{"team_member_id": SLOT}]},
            {"minutes": 30, "record": "Probe.", "attendees": [{"child_id": SLOT}]},
        ],
        "meetings-reschedule_meeting": [{"scheduled_at": f"{day}T23:45:00+00:00"}],
        "meetings-meeting_did_not_happen": [{"reason": "cancelled_by_service"}],
        "referrals-create_level": [
            {"code": UNIQUE, "label": "Probe level", "rank": 9, "la_code": SLOT}
        ],
        # The API has no `la_code` on these lists yet (issue 10 adds it): sent all the same,
        # so a second LA's admin writing into the first LA's list is probed as soon as it can.
        "referrals-create_concern": [{"code": UNIQUE, "label": "Probe concern", "la_code": SLOT}],
        "family plans-create_outcome_category": [
            {"code": UNIQUE, "label": "Probe outcome", "la_code": SLOT}
        ],
        "family plans-create_instrument": [
            {
                "code": UNIQUE,
                "label": "Probe scale",
                "min_score": 0,
                "max_score": 10,
                "la_code": SLOT,
            }
        ],
        "schools-create_school": [
            {
                "code": UNIQUE_SCHOOL_CODE,
                "name": "Probe school",
                "la_code": SLOT,
                "jurisdiction": "england",
                "phase": "primary",
            }
        ],
        "schools-update_school": [{"name": "Probe rename", "la_code": SLOT}],
        "directory-create_service": services,
        "directory-put_service": services,
        "directory-change_status": [{"status": "defunct"}],
        "directory-put_taxonomy": [
            {
                "id": SLOT,
                "name": "Probe taxonomy",
                "taxonomy_terms": [
                    {"id": SLOT, "name": "Probe term", "parent_id": SLOT, "taxonomy_id": SLOT}
                ],
            }
        ],
    }


# --- the route table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    where: str  # "path", "query" or "body"
    name: str  # as shown: "children[].pupil_id"
    key: str  # its entry in ID_KINDS: "pupil_id", "OrukOrganization.id"
    kind: str
    path: tuple[str, ...] = ()  # inside the body; "[]" steps into a list
    many: bool = False  # a list of ids
    required: bool = False  # the body is not valid without it


@dataclass
class Operation:
    method: str
    path: str
    op_id: str
    scopes: tuple[str, ...]  # every scope named, for display
    public: bool
    slots: list[Slot]
    query: dict[str, dict[str, Any]]  # every query parameter's schema, by name
    body: dict[str, Any] | None  # the JSON request-body schema

    # OpenAPI security: any one of these sets of scopes admits the caller.
    alternatives: tuple[tuple[str, ...], ...] = ()
    # A multipart body (an upload): sent as MULTIPART_PROBE, so only the ids differ.
    multipart: bool = False

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def admits(self, account: Any) -> bool:
        return not self.alternatives or any(account.has(*need) for need in self.alternatives)

    @property
    def is_list(self) -> bool:
        return self.method == "GET" and "{" not in self.path

    @property
    def writes_directory(self) -> bool:
        return self.method != "GET" and self.path.startswith("/v1/directory/")

    def slots_at(self, where: str) -> list[Slot]:
        return [s for s in self.slots if s.where == where]


def _is_list(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    if "$ref" in schema:
        return _is_list(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    if schema.get("type") == "array":
        return True
    return any(_is_list(s, components) for s in schema.get("anyOf", []))


def body_slots(
    schema: dict[str, Any], components: dict[str, Any]
) -> list[tuple[tuple[str, ...], str, bool]]:
    """(path, key, required) of every id-bearing field of a body schema, nested ones too."""
    found: dict[tuple[str, ...], tuple[str, bool]] = {}

    def walk(node: dict[str, Any], path: tuple[str, ...], owner: str, seen: frozenset[str]) -> None:
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                walk(components[name], path, name, seen | {name})
            return
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(key, []):
                walk(sub, path, owner, seen)
        if "items" in node:
            walk(node["items"], (*path, "[]"), owner, seen)
        for prop, sub in node.get("properties", {}).items():
            where = (*path, prop)
            if IDENTIFYING.search(prop) or prop in IDENTIFYING_NAMES:
                required = prop in node.get("required", [])
                found[where] = (f"{owner}.{prop}" if prop == "id" else prop, required)
            walk(sub, where, owner, seen)

    walk(schema, (), "inline", frozenset())
    return [(path, key, required) for path, (key, required) in found.items()]


def shown(path: Iterable[str]) -> str:
    return ".".join(path).replace(".[]", "[]")


def operations(spec: dict[str, Any]) -> tuple[list[Operation], list[str]]:
    """Every operation of an OpenAPI document, and every id-bearing name `ID_KINDS` does not
    know."""
    components = spec.get("components", {}).get("schemas", {})
    found: list[Operation] = []
    unknown: list[str] = []

    def kind_of(key: str, where: str, op: str) -> str | None:
        if key in ID_KINDS:
            return ID_KINDS[key]
        if key not in NOT_REFERENCES:
            unknown.append(
                f"{op}: {where} slot {key!r} names an object the matrix does not know; add it "
                "to ID_KINDS (with the kind of object it names) or to NOT_REFERENCES (why not)"
            )
        return None

    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            op_id = op["operationId"]
            if op_id in NOT_PROBED:
                continue
            security = op.get("security")
            # Every scope set is offered to systems and staff alike; the Client ones say it.
            needs = [need["Client"] for need in security or [] if "Client" in need]
            scopes = tuple(s for need in needs for s in need)
            slots: list[Slot] = []
            query: dict[str, dict[str, Any]] = {}
            for parameter in op.get("parameters", []):
                name, where = parameter["name"], parameter["in"]
                if where == "query":
                    query[name] = parameter.get("schema", {})
                identifying = where == "path" or (
                    where == "query" and (IDENTIFYING.search(name) or name in IDENTIFYING_QUERY)
                )
                if identifying and (kind := kind_of(name, where, op_id)):
                    many = where == "query" and _is_list(parameter.get("schema", {}), components)
                    slots.append(Slot(where, name, name, kind, many=many))
            schema = (
                op.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema")
            )
            if schema is not None:
                for body_path, key, required in body_slots(schema, components):
                    name = shown(body_path)
                    if (op_id, name) in DECLARATIONS:
                        continue
                    if kind := kind_of(key, "body", op_id):
                        many = key.endswith("_ids")
                        slots.append(Slot("body", name, key, kind, body_path, many, required))
            alternatives = tuple(tuple(need) for need in needs)
            multipart = "multipart/form-data" in op.get("requestBody", {}).get("content", {})
            found.append(
                Operation(
                    method.upper(),
                    path,
                    op_id,
                    scopes,
                    security == [],
                    slots,
                    query,
                    schema,
                    alternatives,
                    multipart,
                )
            )
    return found, unknown


# --- deriving a body from its schema ------------------------------------------------------


def derive(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """A minimal valid value for a schema: required fields only, first enum values, formats
    honoured. For operations `bodies()` does not know yet."""
    if "$ref" in schema:
        return derive(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return derive(options[0], components)
    if "allOf" in schema:
        return derive(schema["allOf"][0], components)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {
            name: derive(schema["properties"][name], components)
            for name in schema.get("required", [])
        }
    if kind == "array":
        return [derive(schema.get("items", {}), components)] * max(schema.get("minItems", 1), 1)
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
    if kind == "string":
        if schema.get("examples"):
            return schema["examples"][0]
        formats = {
            "uuid": str(uuid.uuid4()),
            "date": datetime.now(UTC).date().isoformat(),
            "date-time": datetime.now(UTC).isoformat(),
            "email": "probe@example.org",
            "uri": "https://example.org/probe",
        }
        if schema.get("format") in formats:
            return formats[schema["format"]]
        if schema.get("pattern", "").startswith("^[a-z]"):
            return "probe"
        return "probe" + "x" * max(schema.get("minLength", 0) - 5, 0)
    return None


# --- the parties: who probes whose objects ------------------------------------------------


@dataclass
class Party:
    """Callers (`accounts`) probing objects that are not theirs (`foreign`), with their own
    objects (`own`) filling every other slot, and what they must never be shown (`secrets`:
    text -> what it is)."""

    label: str
    accounts: dict[str, Account]
    foreign: dict[str, list[str]]
    own: dict[str, str]
    families: list[dict[str, str]]
    secrets: dict[str, str]
    _finder: Secrets | None = None

    @property
    def finder(self) -> Secrets:
        if self._finder is None or self._finder.labelled.keys() != self.secrets.keys():
            self._finder = Secrets(self.secrets)
        return self._finder


def _pupil_kinds(child: Any) -> dict[str, str]:
    return {
        "pupil": child.id,
        "child": child.id,
        "upn": child.upn,
        "school_code": child.school["code"],
        "school": child.school["id"],
        "mis_id": child.mis_id,
        "pupil_name": child.given_name,
    }


def own_objects(la: LocalAuthority) -> dict[str, str]:
    """The second LA's own objects, by kind: valid values for the slots not being probed."""
    child = la.pupils["B1-0001"]
    own = {
        **_pupil_kinds(child),
        "case": la.id("case", "open"),
        "referral": la.id("referral", "received"),
        "flag": la.ids("flag")[0],
        "goal": la.ids("goal")[0],
        "action": la.ids("action")[0],
        "intervention": la.ids("intervention")[0],
        "signpost": la.ids("signpost")[0],
        "team_member": la.ids("team_member")[0],
        "document": la.ids("document")[0],
        "meeting": la.ids("meeting")[0],
        "staff": la.id("staff", "practitioner"),
        "actor": f"staff:{la.id('staff', 'practitioner')}",
        "la": la.code,
        "child_position": "0",
    }
    for kind in DIRECTORY_KINDS:
        if la.ids(kind):
            own[kind] = la.ids(kind)[0]
    return own


def secrets_of(
    la: LocalAuthority, kinds: Iterable[str], *, pupils: Iterable[Any]
) -> dict[str, str]:
    found: dict[str, str] = {}
    for kind in kinds:
        for name, object_id in la.objects.get(kind, {}).items():
            found[object_id] = f"{kind} id ({name})"
    for child in pupils:
        found[child.given_name] = f"pupil name ({child.mis_id})"
        found[child.family_name] = f"pupil name ({child.mis_id})"
        found[child.date_of_birth] = f"pupil date of birth ({child.mis_id})"
        found[child.upn] = f"pupil UPN ({child.mis_id})"
        found[child.id] = f"pupil id ({child.mis_id})"
        found[child.mis_id] = f"pupil MIS id ({child.mis_id})"
    return found


def parties(first: LocalAuthority, second: LocalAuthority) -> list[Party]:
    casework = ["case", "referral", "referral_of_HA2", "goal", "review", "intervention", "action"]
    casework += ["measure", "signpost", "team_member", "document", "meeting", "flag"]
    casework += ["legal_hold", "webhook"]
    pupils = list(first.pupils.values())
    everything = secrets_of(first, [*casework, "school", "staff", "client"], pupils=pupils)
    for child in first.not_on_roll:
        everything[child["given_name"]] = "name of a child known to the first LA"
        everything[child["family_name"]] = "name of a child known to the first LA"
        everything[child["date_of_birth"]] = "date of birth of a child known to the first LA"
    everything[FIRST_LA_MARK] = "first LA's casework text"
    texts = dict(everything)
    everything[FIRST_LA_STAFF_MARK] = "first LA's staff name"
    for school in first.schools.values():
        everything[school["code"]] = f"first LA school code ({school['name']})"
    for name in first.public_names:
        everything[name] = "first LA's school or reference-data name"
    for kind, code in first.reference_codes.items():
        everything[code] = f"first LA's own {kind} code"
    for account in first.accounts.values():
        for value in (account.client_id, account.username):
            if value:
                everything[value] = f"first LA account ({account.label})"

    def pupil(mis_id: str) -> dict[str, str]:
        return _pupil_kinds(first.pupils[mis_id])

    case_open, case_closed = first.id("case", "open"), first.id("case", "closed")
    families = [
        {
            **pupil("A1-0001"),
            "case": case_open,
            "referral": first.id("referral", "accepted"),
            "goal": first.id("goal", "open"),
            "signpost": first.id("signpost", "open"),
            "team_member": first.id("team_member", "open"),
            "document": first.id("document", "open"),
            "meeting": first.id("meeting", "open"),
            "flag": first.ids("flag")[0],
            "staff": first.id("staff", "practitioner"),
            "la": first.code,
        },
        {
            **pupil("A1-0002"),
            "case": case_closed,
            "referral": first.id("referral", "by_upn"),
            "staff": first.id("staff", "manager"),
            "la": first.code,
        },
    ]
    # A practitioner and a DPO: a lead practitioner's check must not tell them apart.
    staff = [first.id("staff", "practitioner"), first.id("staff", "dpo")]
    foreign: dict[str, list[str]] = {
        "case": [case_open, case_closed],
        "referral": [
            first.id("referral", name)
            for name in ("by_upn", "by_name_not_on_roll", "accepted", "awaiting_approval")
        ],
        "pupil": [first.pupils[m].id for m in ("A1-0001", "A1-0003", "A2-0001")],
        "child": [first.pupils[m].id for m in ("A1-0001", "A1-0002")],
        "school": first.ids("school"),
        "flag": first.ids("flag"),
        "goal": first.ids("goal"),
        "action": first.ids("action"),
        "intervention": first.ids("intervention"),
        "signpost": first.ids("signpost"),
        "team_member": first.ids("team_member"),
        "document": first.ids("document"),
        "meeting": first.ids("meeting"),
        "legal_hold": first.ids("legal_hold"),
        "webhook": first.ids("webhook"),
        "staff": staff,
        "actor": [f"staff:{s}" for s in staff]
        + [f"client:{first.id('client', c)}" for c in ("hub_HA1", "mis_SA1")],
        "upn": [first.pupils[m].upn or "" for m in ("A1-0001", "A2-0001")],
        "school_code": [s["code"] for s in first.schools.values()],
        "mis_id": ["A1-0001"],
        "pupil_name": ["Zephyrine", "Fairquince"],
        "la": [first.code],
    }
    for kind in DIRECTORY_KINDS:
        foreign[kind] = first.ids(kind)
    second_la = Party(
        f"LA {second.code}",
        dict(second.accounts),
        foreign,
        own_objects(second),
        families,
        everything,
    )

    # The first LA's directory is its own to the parties inside it.
    directory = {kind: first.ids(kind)[0] for kind in DIRECTORY_KINDS if first.ids(kind)}

    # Hub HA2 against hub HA1's referrals in the same LA: it never sees them, nor any case
    # id, nor a child's name it did not give.
    ha1_referrals = first.ids("referral")
    hub_secrets = {k: v for k, v in texts.items() if not v.startswith("school id")}
    hub_secrets[first.id("client", "hub_HA1")] = "hub HA1's id"
    hubs = Party(
        "hub HA2 (same LA)",
        {"hub_HA2": first.accounts["hub_HA2"]},
        {"referral": ha1_referrals, "webhook": first.ids("webhook")},
        {"referral": first.ids("referral_of_HA2")[0], "child_position": "0", **directory},
        [],
        hub_secrets,
    )

    # A client bound to SA2 against its sibling school SA1.
    sa1 = [c for c in pupils if c.school["code"] == first.schools["SA1"]["code"]]
    sa2_child = first.pupils["A2-0001"]
    school_secrets = secrets_of(first, casework, pupils=sa1)
    for child in first.not_on_roll:
        school_secrets[child["given_name"]] = "name of a child known to the first LA"
    school_secrets[FIRST_LA_MARK] = "first LA's casework text"
    school_secrets[first.schools["SA1"]["id"]] = "school id (SA1)"
    school_secrets[first.schools["SA1"]["code"]] = "school code (SA1)"
    school_secrets[first.schools["SA1"]["name"]] = "school name (SA1)"
    sibling_kinds = (
        "case",
        "referral",
        "goal",
        "action",
        "signpost",
        "team_member",
        "document",
        "meeting",
        "flag",
        "webhook",
    )
    sibling_foreign = {k: foreign[k] for k in sibling_kinds}
    sibling_foreign |= {
        "pupil": [first.pupils[m].id for m in ("A1-0001", "A1-0003")],
        "child": [first.pupils["A1-0001"].id],
        "school": [first.schools["SA1"]["id"]],
        "upn": [first.pupils["A1-0001"].upn or ""],
        "school_code": [first.schools["SA1"]["code"]],
        "mis_id": ["A1-0001"],
        "pupil_name": ["Zephyrine"],
    }
    siblings = Party(
        "client of SA2 (same LA)",
        {"client_SA2_every_scope": first.accounts["client_SA2_every_scope"]},
        sibling_foreign,
        {**_pupil_kinds(sa2_child), "child_position": "0", **directory},
        [{k: v for k, v in f.items() if k in sibling_foreign} for f in families[:1]],
        school_secrets,
    )
    for party in (second_la, hubs, siblings):
        own = set(party.own.values())
        for account in party.accounts.values():
            own |= {account.id, account.client_id or "", account.subject}
        party.secrets = {k: v for k, v in party.secrets.items() if k not in own}
    return [second_la, hubs, siblings]


# --- probing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    cause: str
    who: str
    operation: str
    slot: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.cause}] {self.who}: {self.operation} {self.slot}: {self.detail}"


def random_like(kind: str, like: str) -> str:
    """An id of the same kind and shape as `like` that names nothing."""
    if kind == "actor":
        return f"{like.split(':', 1)[0]}:{uuid.uuid4()}"
    if kind == "upn":
        return upn(
            la=NO_SUCH_LA,
            estab=random.randint(1000, 9999),
            serial=random.randint(1, 999),
            year=25,
        )
    if kind == "school_code":
        return f"999{random.randint(0, 999):03d}"
    if kind == "la":
        return NO_SUCH_LA
    if kind == "mis_id":
        return f"ZZ-{uuid.uuid4().hex[:6]}"
    if kind == "pupil_name":
        return "Nobody" + "".join(random.choice("qwxzvk") for _ in range(6))
    return str(uuid.uuid4())


def _placeholder(value: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])")


def _without_request_ids(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: _without_request_ids(v) for k, v in body.items() if k != "request_id"}
    if isinstance(body, list):
        return [_without_request_ids(v) for v in body]
    return body


@dataclass
class Answer:
    status: int
    media: str
    text: str  # with every id the caller sent replaced by its placeholder
    body: Any

    @property
    def problem_type(self) -> str:
        body = self.body if isinstance(self.body, dict) else {}
        return str(body.get("type", "")).removeprefix("urn:liaison:problem:")

    def brief(self) -> str:
        return f"{self.status} {self.text[:300]}"


def answer(response: httpx.Response, sent: dict[str, str]) -> Answer:
    text = response.text
    location = response.headers.get("location", "")
    for value, label in sent.items():
        text = _placeholder(value).sub(f"<{label}>", text)
        location = _placeholder(value).sub(f"<{label}>", location)
    try:
        body: Any = _without_request_ids(json.loads(text))
    except ValueError:
        body = text
    media = response.headers.get("content-type", "").split(";")[0]
    return Answer(response.status_code, media, text + "\n" + location, body)


class Secrets:
    def __init__(self, labelled: dict[str, str]) -> None:
        self.labelled = {k: v for k, v in labelled.items() if k}
        alternatives = "|".join(re.escape(s) for s in sorted(self.labelled, key=len, reverse=True))
        self.pattern = re.compile(rf"(?<![0-9A-Za-z])(?:{alternatives})(?![0-9A-Za-z])")

    def found(self, text: str) -> list[str]:
        hits = dict.fromkeys(m.group(0) for m in self.pattern.finditer(text))
        return [f"{self.labelled[h]}: {h!r}" for h in hits]


@dataclass
class Matrix:
    http: httpx.AsyncClient
    first: LocalAuthority
    components: dict[str, Any]
    until: str  # lists filtered by time look only at what happened before the probes
    bodies: dict[str, list[dict[str, Any]]]
    violations: list[Violation] = field(default_factory=list)
    derived: set[str] = field(default_factory=set)
    reached: set[str] = field(default_factory=set)  # probed by a caller holding its scopes
    probes: int = 0
    list_scans: int = 0
    requests: int = 0
    directory_original: dict[str, Any] = field(default_factory=dict)
    directory_before: dict[str, Any] = field(default_factory=dict)

    def flag(self, cause: str, who: str, op: Operation | str, slot: str, detail: str) -> None:
        where = op.label if isinstance(op, Operation) else op
        self.violations.append(Violation(cause, who, where, slot, detail))

    # --- one request -------------------------------------------------------------------

    def variants(self, op: Operation) -> list[dict[str, Any]]:
        if op.body is None:
            return [{}]
        known = self.bodies.get(op.op_id)
        if not known:
            if op.slots:
                self.derived.add(op.op_id)
            known = [derive(op.body, self.components)]
        return [json.loads(json.dumps(v)) for v in known]

    def body_slots_in(self, op: Operation, variant: dict[str, Any], first: bool) -> list[Slot]:
        """The body slots a variant holds; slots of the schema no variant holds are put
        into the first one, so every field is probed."""
        slots = []
        for slot in op.slots_at("body"):
            if _present(variant, slot.path):
                slots.append(slot)
        if first:
            others = self.variants(op)[1:]
            for slot in op.slots_at("body"):
                if slot not in slots and not any(_present(v, slot.path) for v in others):
                    _put(variant, slot.path, None)
                    slots.append(slot)
        # Fields a registry body sends that the schema does not have yet (`la_code` on the
        # reference lists): probed all the same, by name.
        for path, key in _template_slots(variant):
            if (op.op_id, shown(path)) in DECLARATIONS:
                continue
            if key in ID_KINDS and not any(s.path == path for s in slots):
                many = key.endswith("_ids")
                slots.append(Slot("body", shown(path), key, ID_KINDS[key], path, many))
        return slots

    async def send(
        self,
        account: Account,
        op: Operation,
        variant: dict[str, Any],
        slots: list[Slot],
        values: dict[Slot, str | None],
        unique: str,
    ) -> httpx.Response:
        path = op.path
        params: dict[str, Any] = {}
        if "limit" in op.query:
            params["limit"] = 200
        if "until" in op.query:  # the audit trail: as it stood before the probes began
            params["until"] = self.until
        body = json.loads(json.dumps(variant)) if op.body is not None else None
        for slot in slots:
            value = values.get(slot)
            if slot.where == "path":
                path = path.replace("{" + slot.name + "}", str(value))
            elif slot.where == "query":
                if value is not None:
                    params[slot.name] = value
            elif value is None:
                _drop(body, slot.path)
            else:
                _put(body, slot.path, [value] if slot.many else value)
        if body is not None:
            text = json.dumps(body)
            text = text.replace(UNIQUE_SCHOOL_CODE, unique[:6]).replace(UNIQUE, f"probe_{unique}")
            body = json.loads(text)
        headers = dict(account.headers)
        if op.method != "GET":
            headers["If-Match"] = "*"
        self.requests += 1
        if op.multipart:
            files, fields = MULTIPART_PROBE
            return await self.http.request(
                op.method, path, params=params or None, files=files, data=fields, headers=headers
            )
        return await self.http.request(
            op.method, path, params=params or None, json=body, headers=headers
        )

    # --- one probe: the first LA's id against a random one -------------------------------

    def own_value(self, party: Party, slot: Slot) -> str | None:
        if slot.kind in DIRECTORY_KINDS and slot.key in WHOLE_RECORDS:
            return str(uuid.uuid4())  # a record of the caller's own, made as it is written
        if slot.where == "query":
            return None  # filters not being probed are left out
        if slot.kind not in party.own and (slot.where == "path" or slot.required):
            return str(uuid.uuid4())  # the caller has none of its own: any id will do
        return party.own.get(slot.kind)

    async def probe(
        self,
        party: Party,
        account: Account,
        op: Operation,
        variant: dict[str, Any],
        slots: list[Slot],
        probed: dict[Slot, str],
    ) -> None:
        self.probes += 1
        values: dict[Slot, str | None] = {s: self.own_value(party, s) for s in slots}
        randoms = {s: random_like(s.kind, v) for s, v in probed.items()}
        path_slots = [s for s in slots if s.where == "path"]
        for slot in path_slots:  # a body's own id follows the id in its path
            for other in slots:
                if other.where == "body" and other.path == ("id",) and other.kind == slot.kind:
                    probed_value = probed.get(slot)
                    if probed_value is not None:
                        probed[other] = probed_value
                        randoms[other] = randoms[slot]
                    else:
                        values[other] = values[slot]
        unique = f"{random.randint(100000, 999999)}"
        names = ", ".join(f"{s.where}:{s.name}" for s in probed)
        writes_directory = op.writes_directory and any(s.kind in DIRECTORY_KINDS for s in probed)
        first_response = await self.send(account, op, variant, slots, {**values, **probed}, unique)
        foreign = answer(first_response, {v: f"{s.where}:{s.name}" for s, v in probed.items()})
        if writes_directory:
            await self.directory_unchanged(party, account, op, names)
            # Records of the caller's own are new for each request, so the second (which
            # names only the caller's records and random ones) cannot touch the first LA's.
            values = {s: self.own_value(party, s) for s in slots} | {
                s: v for s, v in values.items() if s.key not in WHOLE_RECORDS
            }
        second_response = await self.send(
            account, op, variant, slots, {**values, **randoms}, unique
        )
        unknown = answer(second_response, {v: f"{s.where}:{s.name}" for s, v in randoms.items()})
        self.judge(party, account, op, probed, foreign, unknown)

    @staticmethod
    def expectation(
        op: Operation, account: Account, probed: dict[Slot, str]
    ) -> tuple[str, int, str] | None:
        """What the first LA's id must get where the rules fix it: (failure, status, type)."""
        if not op.admits(account):
            return "expected 403 insufficient-scope", 403, "insufficient-scope"
        if op.writes_directory and any(
            s.where == "path" and s.kind in DIRECTORY_KINDS for s in probed
        ):
            return "directory has no owner", 403, "forbidden"
        in_path = op.slots_at("path")
        if in_path and all(s in probed for s in in_path):
            return "expected 404", 404, "not-found"
        if any(s.kind == "la" and s.where == "body" for s in probed):
            return "another LA's la_code not refused with 403", 403, "forbidden"
        return None

    def judge(
        self,
        party: Party,
        account: Account,
        op: Operation,
        probed: dict[Slot, str],
        foreign: Answer,
        unknown: Answer,
    ) -> None:
        who = f"{party.label} {account.label}"
        names = ", ".join(f"{s.where}:{s.name}" for s in probed)
        for label, got in (("first LA's id", foreign), ("random id", unknown)):
            if leaks := party.finder.found(got.text):
                self.flag(
                    "leak", who, op, names, f"answer to the {label} shows " + "; ".join(leaks)
                )
        expected = self.expectation(op, account, probed)
        if expected and (foreign.status, foreign.problem_type) != expected[1:]:
            failure, status, kind = expected
            self.flag(failure, who, op, names, f"expected {status} {kind}, got {foreign.brief()}")
        lacks = not op.admits(account)
        if op.writes_directory and not lacks:
            return  # directory ids are public: an existing one may answer unlike a random one
        if (foreign.status, foreign.media, foreign.body) != (
            unknown.status,
            unknown.media,
            unknown.body,
        ):
            self.flag(
                "differs from a random id",
                who,
                op,
                names,
                f"first LA's id -> {foreign.brief()}  |  random id -> {unknown.brief()}",
            )
            return
        # Both refused alike, but for a field other than the one probed: the probe proved
        # nothing, so the body in bodies() needs fixing.
        in_body = {s.path[0] for s in probed if s.where == "body"}
        errors = foreign.body.get("errors") if isinstance(foreign.body, dict) else None
        if (
            not lacks
            and foreign.status == 422
            and errors
            and in_body
            and not any(s.where == "path" for s in probed)
            and not any(loc_names(e.get("loc", [])) & in_body for e in errors)
        ):
            self.flag(
                "probe did not reach its slot",
                who,
                op,
                names,
                f"both answers refuse other fields ({foreign.brief()}): fix bodies()[{op.op_id!r}]",
            )

    async def directory_unchanged(
        self, party: Party, account: Account, op: Operation, names: str
    ) -> None:
        now = await snapshot(self.http, self.first, parts={"directory"})
        changed = [k for k in now if now[k] != self.directory_before.get(k)]
        if changed:
            self.flag(
                "directory has no owner",
                f"{party.label} {account.label}",
                op,
                names,
                "changed the first LA's records: "
                + "; ".join(
                    f"{key} {_difference(self.directory_before.get(key), now[key])}"
                    for key in changed
                ),
            )
            await self.restore_directory()

    async def restore_directory(self) -> None:
        """Put the first LA's directory records back as its admin wrote them, so the next
        probe is judged on its own (the records read back are valid bodies for PUT)."""
        admin = self.first.accounts["admin"]
        for key, seen in self.directory_original.items():
            kind, _, record_id = key.removeprefix("/oruk/").partition("/")
            if kind in ("services", "taxonomies") and seen["status"] == 200:
                await self.http.put(
                    f"/v1/directory/{kind}/{record_id}", json=seen["body"], headers=admin.headers
                )
        self.directory_before = await snapshot(self.http, self.first, parts={"directory"})

    async def public_read(self, party: Party, account: Account, op: Operation, slot: Slot) -> None:
        """The directory stays open: the first LA's records read like anyone's."""
        for value in party.foreign.get(slot.kind, []):
            self.probes += 1
            self.requests += 1
            response = await self.http.get(
                op.path.replace("{" + slot.name + "}", value), headers=account.headers
            )
            if response.status_code != 200:
                self.flag(
                    "directory reads must stay open",
                    f"{party.label} {account.label}",
                    op,
                    f"path:{slot.name}",
                    f"the first LA's record answered {response.status_code} {response.text[:200]}",
                )

    # --- one operation, for one caller ------------------------------------------------------

    async def operation(self, party: Party, account: Account, op: Operation) -> None:
        if not any(party.foreign.get(s.kind) for s in op.slots) and op.body is None:
            return
        for n, variant in enumerate(self.variants(op)):
            slots = (
                op.slots_at("path") + op.slots_at("query") + self.body_slots_in(op, variant, n == 0)
            )
            probeable = [s for s in slots if party.foreign.get(s.kind)]
            if op.public:
                for slot in probeable:
                    if slot.where == "path" and slot.kind in DIRECTORY_KINDS:
                        await self.public_read(party, account, op, slot)
                return
            probeable = [
                s for s in probeable if s.kind not in DIRECTORY_KINDS or op.writes_directory
            ]
            if not probeable:
                continue
            if not op.admits(account):
                # The scope check comes first: one probe shows it is the same for any id.
                slot = probeable[0]
                await self.probe(
                    party, account, op, variant, slots, {slot: party.foreign[slot.kind][0]}
                )
                return
            self.reached.add(op.op_id)
            for slot in probeable:
                for value in party.foreign[slot.kind]:
                    await self.probe(party, account, op, variant, slots, {slot: value})
            private = [s for s in probeable if s.kind not in DIRECTORY_KINDS]
            if len(private) > 1:
                for family in party.families:
                    together = {s: family.get(s.kind) or party.foreign[s.kind][0] for s in private}
                    await self.probe(party, account, op, variant, slots, together)

    # --- lists ----------------------------------------------------------------------------

    async def scan_lists(self, party: Party, account: Account, ops: list[Operation]) -> None:
        """Every GET list, unfiltered and with each filter that takes a fixed set of values,
        following its pages: none may show the first LA's data."""
        secrets = party.finder
        who = f"{party.label} {account.label}"
        for op in ops:
            filters: list[dict[str, Any]] = [{}]
            if not op.admits(account):
                self.list_scans += 1
                await self.scan_pages(op, account, {}, secrets, who)
                continue
            for name, schema in op.query.items():
                value = _a_value(schema, self.components)
                if value is not None and name not in ("limit", "page", "per_page", "all_dates"):
                    filters.append({name: value})
            if "all_dates" in op.query:
                filters.append({"all_dates": "true"})
            for params in filters:
                self.list_scans += 1
                await self.scan_pages(op, account, params, secrets, who)

    async def scan_pages(
        self,
        op: Operation,
        account: Account,
        params: dict[str, Any],
        secrets: Secrets,
        who: str,
    ) -> None:
        query = dict(params)
        if "limit" in op.query:
            query["limit"] = 200
        if "per_page" in op.query:
            query["per_page"] = 200
        for _ in range(10):
            self.requests += 1
            response = await self.http.get(op.path, params=query, headers=account.headers)
            if leaks := secrets.found(response.text):
                shown_params = "&".join(f"{k}={v}" for k, v in params.items()) or "no filter"
                self.flag("leak", who, op, f"list ({shown_params})", "shows " + "; ".join(leaks))
            if response.status_code != 200:
                return
            cursor = (
                response.json().get("next_cursor")
                if "json" in response.headers.get("content-type", "")
                else None
            )
            if not cursor:
                return
            query["cursor"] = cursor


def _a_value(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """A value for a filter that takes a fixed set of values (an enum or a boolean)."""
    if "$ref" in schema:
        return _a_value(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    for option in schema.get("anyOf", []):
        value = _a_value(option, components)
        if value is not None:
            return value
    if "enum" in schema:
        return schema["enum"][0]
    if schema.get("type") == "boolean":
        return "true"
    return None


def _difference(before: Any, after: Any, where: str = "") -> str:
    """The first place two JSON values differ, briefly."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                return _difference(before.get(key), after.get(key), f"{where}.{key}")
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for n, (old, new) in enumerate(zip(before, after, strict=True)):
            if old != new:
                return _difference(old, new, f"{where}[{n}]")
    return f"{where or 'value'}: {json.dumps(before)[:150]} -> {json.dumps(after)[:150]}"


def loc_names(loc: list[Any]) -> set[str]:
    return {str(part) for part in loc}


def _present(body: Any, path: tuple[str, ...]) -> bool:
    if not path:
        return True
    step, rest = path[0], path[1:]
    if step == "[]":
        return isinstance(body, list) and bool(body) and _present(body[0], rest)
    return isinstance(body, dict) and step in body and _present(body[step], rest)


def _put(body: Any, path: tuple[str, ...], value: Any) -> None:
    """Set the value at `path`, making the objects and one-element lists on the way."""
    node = body
    for n, step in enumerate(path[:-1]):
        following = path[n + 1]
        if step == "[]":
            if not node:
                node.append([] if following == "[]" else {})
            node = node[0]
        else:
            if node.get(step) is None:
                node[step] = [] if following == "[]" else {}
            node = node[step]
    if path[-1] == "[]":
        if node:
            node[0] = value
        else:
            node.append(value)
    else:
        node[path[-1]] = value


def _drop(body: Any, path: tuple[str, ...]) -> None:
    node = body
    for step in path[:-1]:
        if step == "[]":
            if not node:
                return
            node = node[0]
        else:
            if not isinstance(node, dict) or step not in node:
                return
            node = node[step]
    if isinstance(node, dict):
        node.pop(path[-1], None)


def _template_slots(body: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    found: list[tuple[tuple[str, ...], str]] = []
    if isinstance(body, dict):
        for key, value in body.items():
            if key != "id" and (IDENTIFYING.search(key) or key in IDENTIFYING_NAMES):
                found.append(((*path, key), key))
            found += _template_slots(value, (*path, key))
    elif isinstance(body, list) and body:
        found += _template_slots(body[0], (*path, "[]"))
    return found


def report(matrix: Matrix, summary: str) -> str:
    by_cause: dict[str, list[Violation]] = defaultdict(list)
    for violation in matrix.violations:
        by_cause[violation.cause].append(violation)
    lines = [summary]
    for cause, found in sorted(by_cause.items()):
        lines.append(f"\n== {cause}: {len(found)} ==")
        lines += [f"  {v}" for v in found]
    return "\n".join(lines)


# --- the test -------------------------------------------------------------------------------


def test_the_matrix_finds_every_id_and_refuses_unknown_ones() -> None:
    """The route table is read as the matrix needs, and can fail: an id-bearing name it does
    not know, nested or not, is reported; a body it lacks is derived."""
    spec: dict[str, Any] = {
        "paths": {
            "/v1/widgets/{widget_id}": {
                "post": {
                    "operationId": "widgets-frob",
                    "security": [{"Client": ["cases:write"]}, {"Staff": ["cases:write"]}],
                    "parameters": [
                        {"name": "widget_id", "in": "path", "schema": {"type": "string"}},
                        {"name": "case_id", "in": "query", "schema": {"type": "string"}},
                        {"name": "colour", "in": "query", "schema": {"enum": ["red"]}},
                    ],
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/F"}}
                        }
                    },
                }
            }
        },
        "components": {
            "schemas": {
                "F": {
                    "type": "object",
                    "required": ["parts", "when"],
                    "properties": {
                        "parts": {"type": "array", "items": {"$ref": "#/components/schemas/P"}},
                        "when": {"type": "string", "format": "date"},
                        "lead_practitioner_id": {"type": "string", "format": "uuid"},
                    },
                },
                "P": {
                    "type": "object",
                    "required": ["gadget_ids", "kind"],
                    "properties": {
                        "id": {"type": "string"},
                        "gadget_ids": {"type": "array", "items": {"type": "string"}},
                        "kind": {"enum": ["big", "small"]},
                    },
                },
            }
        },
    }
    [op], unknown = operations(spec)
    assert op.scopes == ("cases:write",) and not op.public
    assert [(s.where, s.name, s.kind) for s in op.slots] == [
        ("query", "case_id", "case"),
        ("body", "lead_practitioner_id", "staff"),
    ]
    assert len(unknown) == 3, unknown
    assert all(name in " ".join(unknown) for name in ("widget_id", "P.id", "gadget_ids"))
    body = derive(spec["components"]["schemas"]["F"], spec["components"]["schemas"])
    assert (
        body["parts"][0]["kind"] == "big" and body["when"] == datetime.now(UTC).date().isoformat()
    )
    assert set(body) == {"parts", "when"}


async def test_authorisation_matrix(
    client: httpx.AsyncClient, world: World, fresh_app: FastAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every operation, every role of a second LA (and a sibling hub and school in the same
    LA), against the first LA's objects: nothing found, nothing shown, nothing changed."""
    started = time.perf_counter()
    first = await build_first_la(world)
    second = await build_second_la(world)
    spec = fresh_app.openapi()
    ops, unknown = operations(spec)
    matrix = Matrix(
        client,
        first,
        spec.get("components", {}).get("schemas", {}),
        datetime.now(UTC).isoformat(),
        bodies(),
    )
    for problem in first.setup_problems:
        matrix.flag("reference data has no LA", "first LA admin", "setup", "la_code", problem)
    for name in unknown:
        matrix.flag("unknown id-bearing name", "-", "route table", "-", name)
    before = await snapshot(client, first)
    matrix.directory_original = await snapshot(client, first, parts={"directory"})
    matrix.directory_before = matrix.directory_original
    built = time.perf_counter()

    everyone = parties(first, second)
    lists = [op for op in ops if op.is_list]
    for party in everyone:
        for account in party.accounts.values():
            await matrix.scan_lists(party, account, lists)
    # Lists first (their filters read the audit trail as it stood before the probes), writes
    # to the directory last (what they break should not show up as other routes' failures);
    # each operation by every caller before the next.
    ordered = sorted(
        ops,
        key=lambda op: (
            op.writes_directory,
            not op.is_list,
            "until" not in op.query,
        ),
    )
    for op in ordered:
        for party in everyone:
            for account in party.accounts.values():
                await matrix.operation(party, account, op)

    for op in ops:
        if (
            op.op_id not in matrix.reached
            and not op.public
            and any(s.kind not in DIRECTORY_KINDS or op.writes_directory for s in op.slots)
        ):
            matrix.flag(
                "not covered",
                "every caller",
                op,
                ", ".join(s.name for s in op.slots),
                "no caller holding the operation's scopes probed it: add a role or a body",
            )
    after = await snapshot(client, first)
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            matrix.flag(
                "first LA's data changed",
                "all probes",
                "read back as the first LA",
                key,
                f"before {json.dumps(before.get(key))[:300]}  |  after "
                f"{json.dumps(after.get(key))[:300]}",
            )

    with_slots = [op for op in ops if op.slots]
    summary = (
        f"authorisation matrix: {len(ops)} operations, {len(with_slots)} with id slots, "
        f"{matrix.probes} probes, {matrix.list_scans} list scans, {matrix.requests} requests, "
        f"{len(matrix.violations)} failures "
        f"(world {built - started:.1f}s, probes {time.perf_counter() - built:.1f}s); "
        f"derived bodies: {', '.join(sorted(matrix.derived)) or 'none'}"
    )
    with capsys.disabled():  # the counts belong in every run's output, passing or not
        print(f"\n{summary}")  # noqa: T201
    assert not matrix.violations, report(matrix, summary)


async def test_referrers_learn_only_what_they_gave(client: httpx.AsyncClient, world: World) -> None:
    """Matching and disclosure, which no route table shows: a hub's referral is matched only
    within its LA, and a hub (no `cases:read`) sees a child only as it named the child, and
    never a case id."""
    first = await build_first_la(world)
    second = await build_second_la(world)
    problems: list[str] = []
    outsiders = Secrets(parties(first, second)[0].secrets)
    case_ids = {case_id: f"case id ({name})" for name, case_id in first.objects["case"].items()}
    ha1 = first.accounts["hub_HA1"]

    async def answers(hub: Account, referral: dict[str, Any]) -> list[tuple[str, Any]]:
        """The create answer, the read-back and the referral as listed."""
        read = await client.get(f"/v1/referrals/{referral['id']}", headers=hub.headers)
        listed = await client.get("/v1/referrals", params={"limit": 200}, headers=hub.headers)
        assert read.status_code == 200 and listed.status_code == 200, (read.text, listed.text)
        [in_list] = [r for r in listed.json()["items"] if r["id"] == referral["id"]]
        return [("create", referral), ("read", read.json()), ("list", in_list)]

    # A child of the first LA whose case there closed this month, named by name and date of
    # birth by the second LA's hub: a new child to the second LA, not a re-referral.
    closed_child = first.pupils["A1-0002"]
    outside = Builder(world, second)
    referral = await outside.refer(
        second.accounts["hub"], "same_name", [closed_child.by_name], "Secondla"
    )
    sent = {closed_child.given_name, closed_child.family_name, closed_child.date_of_birth}
    for step, seen in await answers(second.accounts["hub"], referral):
        if seen["re_referral"] or seen["previous_case_id"]:
            problems.append(
                f"[matching crosses LAs] LA {second.code} hub, {step}: re_referral="
                f"{seen['re_referral']}, previous_case_id={seen['previous_case_id']} (the "
                f"first LA's closed case)"
            )
        text = json.dumps(seen)
        for value in sent:
            text = text.replace(value, "<sent>")
        for leak in outsiders.found(text):
            problems.append(f"[leak] LA {second.code} hub, referral by name, {step}: {leak}")

    # Hub HA1 names a child by UPN and school code: it learns no name or date of birth.
    inside = Builder(world, first)
    flagged = first.pupils["A1-0003"]
    by_upn = await inside.refer(ha1, "disclosure_by_upn", [flagged.by_upn], FIRST_LA_MARK)
    for step, seen in await answers(ha1, by_upn):
        for child in seen["children"]:
            shown_fields = {
                k: child[k]
                for k in ("given_name", "family_name", "date_of_birth")
                if child.get(k) is not None
            }
            if shown_fields:
                problems.append(
                    f"[over-disclosure to hubs] hub HA1 referred by UPN and school code; "
                    f"{step} shows the roster's {shown_fields}"
                )

    # ...and naming a child on a roll by name, it learns no UPN it did not give.
    on_roll = first.pupils["A1-0004"]
    by_name = await inside.refer(ha1, "disclosure_by_name", [on_roll.by_name], FIRST_LA_MARK)
    for step, seen in await answers(ha1, by_name):
        for child in seen["children"]:
            if child.get("upn"):
                problems.append(
                    f"[over-disclosure to hubs] hub HA1 referred by name; {step} shows the "
                    f"roster's UPN {child['upn']!r}"
                )

    # A hub never sees a case id: not of the case its referral was accepted into, nor of
    # the case a re-referral follows.
    rereferral = await inside.refer(ha1, "rereferral", [closed_child.by_upn], FIRST_LA_MARK)
    accepted = await client.get(
        f"/v1/referrals/{first.id('referral', 'accepted')}", headers=ha1.headers
    )
    seen_by_hub = [
        *[(f"re-referral, {step}", seen) for step, seen in await answers(ha1, rereferral)],
        ("accepted referral, read", accepted.json()),
    ]
    for where, seen in seen_by_hub:
        for case_id, label in case_ids.items():
            if case_id in json.dumps(seen):
                problems.append(f"[hub sees a case id] hub HA1, {where}: {label}")

    # What stays shared: the national reference lists and the public directory.
    outsider = second.accounts["practitioner"]
    for path, code in (
        ("/v1/referral-concerns", "attendance"),
        ("/v1/outcome-categories", "school_attendance_managed"),
        ("/v1/measure-instruments", "reading_age"),
        ("/v1/levels-of-need", "targeted_early_help"),
    ):
        listed = await client.get(path, headers=outsider.headers)
        if listed.status_code != 200 or code not in {i["code"] for i in listed.json()["items"]}:
            problems.append(
                f"[national lists are for everyone] LA {second.code} practitioner: {path} "
                f"lacks the built-in {code!r}: {listed.status_code} {listed.text[:200]}"
            )
    service_id = first.id("directory_service", "main")
    anonymous = await client.get(f"/oruk/services/{service_id}")
    if anonymous.status_code != 200:
        problems.append(
            f"[directory reads must stay open] GET /oruk/services/{{id}} of the first LA's "
            f"service without a token: {anonymous.status_code} {anonymous.text[:200]}"
        )

    assert not problems, "\n".join(problems)
