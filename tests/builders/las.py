"""Whole local authorities for tests that need more than one school and one account.

`build_first_la` and `build_second_la` make, through the API and the services as a real
deployment would, every kind of object Liaison holds: schools and rosters, marks that raise
a flag, referrals in each state, an open case with a full family plan, a closed case,
LA-specific reference data and a directory service, and an account for every role. Tests
of tenant isolation probe one LA's objects with the other LA's accounts; the names, texts
and dates used here are distinctive so a leak can be found by searching an answer for them.

`snapshot` reads an LA's objects back as that LA, so a test can prove a probe changed
nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.models.principal import StaffRole
from app.security import ROLE_SCOPES, Scope
from app.services import principals
from tests.builders.casework import HUB_SCOPES
from tests.builders.clock import today
from tests.builders.schools import MIS_SCOPES, upn
from tests.conftest import Credentials, World

FIRST_LA = "886"
SECOND_LA = "887"
# An LA code no school or account has: "another LA" that does not exist.
NO_SUCH_LA = "999"

EVERY_SCOPE = " ".join(s.value for s in Scope)
# Every scope a school's own system could be given short of administering the service.
SCHOOL_EVERY_SCOPE = " ".join(
    s.value for s in Scope if s not in (Scope.admin, Scope.directory_write)
)

# The first LA writes this word into every piece of casework text it creates (references,
# summaries, notes, family members, goals...), so one search finds any of it in an answer.
FIRST_LA_MARK = "Firstla"
# Staff of the first LA carry this in their display names.
FIRST_LA_STAFF_MARK = "Staffla"

CONSENT_DATE = "2026-09-01"
MARK_DAYS = ("2026-11-02", "2026-11-03")  # a Monday and a Tuesday of this autumn term


def _upn(la: str, estab: int, serial: int) -> str:
    """A UPN of this world: allocated in 2025."""
    return upn(serial, estab, la=la, year=25)


def consent(given_by: str) -> dict[str, Any]:
    return {"given": True, "given_by": given_by, "date": CONSENT_DATE, "share_with": ["school"]}


@dataclass
class Account:
    """An account that calls the API: its token's headers, its scopes and who it is."""

    label: str
    kind: str  # "client" or "staff"
    id: str  # the api_client's or the staff member's id
    headers: dict[str, str]
    scopes: frozenset[str]
    client_id: str | None = None  # a client's public client_id
    username: str | None = None
    display_name: str | None = None

    @property
    def subject(self) -> str:
        return f"{self.kind}:{self.id}"

    def has(self, *scopes: str) -> bool:
        return all(s in self.scopes for s in scopes)


@dataclass
class Child:
    """A pupil on a roster push, and its id once pushed."""

    mis_id: str
    given_name: str
    family_name: str
    date_of_birth: str
    school: dict[str, Any]
    upn: str | None = None
    id: str = ""

    def row(self) -> dict[str, Any]:
        return {
            "mis_id": self.mis_id,
            "upn": self.upn,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "date_of_birth": self.date_of_birth,
            "year_group": "5",
        }

    @property
    def by_upn(self) -> dict[str, Any]:
        return {"upn": self.upn, "school_code": self.school["code"]}

    @property
    def by_name(self) -> dict[str, Any]:
        return {
            "given_name": self.given_name,
            "family_name": self.family_name,
            "date_of_birth": self.date_of_birth,
        }


@dataclass
class LocalAuthority:
    """Everything one LA holds, by name, as the builders made it."""

    code: str
    schools: dict[str, dict[str, Any]] = field(default_factory=dict)
    pupils: dict[str, Child] = field(default_factory=dict)  # by mis_id
    not_on_roll: list[dict[str, Any]] = field(default_factory=list)  # children known by name
    accounts: dict[str, Account] = field(default_factory=dict)
    objects: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> name -> id
    reference_codes: dict[str, str] = field(default_factory=dict)  # list -> LA-specific code
    public_names: list[str] = field(default_factory=list)  # school and reference-data names
    setup_problems: list[str] = field(default_factory=list)  # what the API would not build
    timetables: dict[str, str] = field(default_factory=dict)  # mis_id -> case with its timetable

    def add(self, kind: str, name: str, object_id: str) -> str:
        self.objects.setdefault(kind, {})[name] = object_id
        return object_id

    def id(self, kind: str, name: str) -> str:
        return self.objects[kind][name]

    def ids(self, kind: str) -> list[str]:
        return list(self.objects.get(kind, {}).values())


class Builder:
    """Calls the API as an LA's accounts would, failing loudly when a step is refused."""

    def __init__(self, world: World, la: LocalAuthority) -> None:
        self.world = world
        self.http: httpx.AsyncClient = world.http
        self.la = la

    async def call(
        self,
        account: Account,
        method: str,
        path: str,
        body: Any = None,
        expect: int | tuple[int, ...] = (200, 201),
        **params: Any,
    ) -> httpx.Response:
        headers = dict(account.headers)
        if method != "GET":
            headers["If-Match"] = "*"
        response = await self.http.request(
            method, path, json=body, params=params or None, headers=headers
        )
        wanted = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in wanted, (
            f"building LA {self.la.code}: {account.label} {method} {path} -> "
            f"{response.status_code} {response.text}"
        )
        return response

    async def json(
        self, account: Account, method: str, path: str, body: Any = None, **params: Any
    ) -> Any:
        return (await self.call(account, method, path, body, **params)).json()

    # --- accounts --------------------------------------------------------------------------

    async def client(
        self,
        label: str,
        scopes: str,
        *,
        schools: list[dict[str, Any]] | None = None,
        la_code: str | None = None,
    ) -> Account:
        async with self.world.app.state.session_factory() as session:
            new = await principals.create_client(
                session,
                name=f"{label} of LA {self.la.code}",
                scopes=scopes,
                school_codes=[s["code"] for s in schools or []],
                la_code=la_code,
            )
            await session.commit()
            client_uuid, client_id = str(new.client.id), new.client.client_id
            secret = new.client_secret
        headers = await self.world.headers(Credentials(client_id, secret))
        account = Account(
            label, "client", client_uuid, headers, frozenset(scopes.split()), client_id=client_id
        )
        self.la.accounts[label] = account
        self.la.add("client", label, client_uuid)
        return account

    async def staff(
        self,
        label: str,
        role: StaffRole,
        *,
        schools: list[dict[str, Any]] | None = None,
        la_code: str | None = None,
        display_name: str | None = None,
    ) -> Account:
        username = f"{label.replace('_', '-')}.{uuid.uuid4().hex[:6]}@la{self.la.code}.example"
        password = "correct horse battery staple"
        display_name = display_name or f"{label} of LA {self.la.code}"
        async with self.world.app.state.session_factory() as session:
            staff = await principals.create_staff(
                session,
                username=username,
                display_name=display_name,
                role=role,
                password=password,
                school_codes=[s["code"] for s in schools or []],
                la_code=la_code,
            )
            await session.commit()
            staff_id = str(staff.id)
        headers = await self.world.headers({"username": username, "password": password})
        account = Account(
            label,
            "staff",
            staff_id,
            headers,
            frozenset(str(s) for s in ROLE_SCOPES[role]),
            username=username,
            display_name=display_name,
        )
        self.la.accounts[label] = account
        self.la.add("staff", label, staff_id)
        return account

    # --- schools, rosters, marks ---------------------------------------------------------

    async def school(self, label: str, code: str, name: str) -> dict[str, Any]:
        school = await self.world.school(la_code=self.la.code, code=code, name=name)
        self.la.schools[label] = school
        self.la.add("school", label, school["id"])
        self.la.public_names.append(name)
        return school

    async def roster(self, mis: Account, school: dict[str, Any], children: list[Child]) -> None:
        answer = await self.json(
            mis,
            "PUT",
            f"/v1/schools/{school['id']}/pupils",
            {"pupils": [c.row() for c in children]},
            mode="partial",
        )
        assert not answer["rejected"], answer
        listed = await self.json(mis, "GET", "/v1/pupils", school_id=school["id"], limit=200)
        ids = {p["mis_id"]: p["id"] for p in listed["items"]}
        for child in children:
            child.id = ids[child.mis_id]
            self.la.pupils[child.mis_id] = child
            self.la.add("pupil", child.mis_id, child.id)

    async def unexplained_absence(self, mis: Account, child: Child) -> str:
        """Four `N` sessions in a row: the child's unexplained-absence flag, by id."""
        marks = [
            {
                "school_code": child.school["code"],
                "mis_id": child.mis_id,
                "date": day,
                "session": session,
                "code": "N",
            }
            for day in MARK_DAYS
            for session in ("AM", "PM")
        ]
        answer = await self.json(mis, "POST", "/v1/attendance/marks", {"marks": marks})
        assert not answer["rejected"], answer
        flags = await self.json(mis, "GET", "/v1/attendance/flags", pupil_id=child.id)
        flag_id: str = next(f["id"] for f in flags["items"] if f["kind"] == "unexplained_absence")
        return self.la.add("flag", child.mis_id, flag_id)

    # --- reference data and the directory ---------------------------------------------------

    async def reference_list(
        self, admin: Account, path: str, kind: str, body: dict[str, Any]
    ) -> None:
        """An LA-specific entry in a reference list. Where the API will not record the LA
        (it has no `la_code` yet), the refusal is kept in `setup_problems`, not raised."""
        response = await self.http.post(path, json=body, headers=admin.headers)
        made = response.json() if response.status_code == 201 else None
        if made is None or made.get("la_code", self.la.code) != self.la.code:
            self.la.setup_problems.append(
                f"POST {path} with la_code {self.la.code!r} by the LA's admin: an LA-specific "
                f"entry could not be made (answer {response.status_code} "
                f"{response.text[:300]}); the API does not take `la_code` for this list yet"
            )
            return
        self.la.reference_codes[kind] = body["code"]
        self.la.public_names.append(body["label"])

    async def directory(self, admin: Account, prefix: str) -> None:
        """A taxonomy with a term, and a service with its organization, location, schedule
        and that term, all written by the LA's admin (`directory:write`)."""
        taxonomy_id, term_id = str(uuid.uuid4()), str(uuid.uuid4())
        await self.call(
            admin,
            "PUT",
            f"/v1/directory/taxonomies/{taxonomy_id}",
            {
                "id": taxonomy_id,
                "name": f"{prefix} needs",
                "description": f"{prefix} needs taxonomy",
                "taxonomy_terms": [
                    {"id": term_id, "name": f"{prefix} bereavement", "description": "Loss"}
                ],
            },
            expect=201,
        )
        service = await self.json(
            admin,
            "POST",
            "/v1/directory/services",
            {
                "name": f"{prefix} parenting group",
                "description": f"{prefix} weekly sessions for parents.",
                "status": "active",
                "organization": {"id": str(uuid.uuid4()), "name": f"{prefix} Family Trust"},
                "attributes": [{"taxonomy_term_id": term_id}],
                "service_at_locations": [
                    {
                        "location": {
                            "id": str(uuid.uuid4()),
                            "location_type": "physical",
                            "name": f"{prefix} community hall",
                        }
                    }
                ],
                "schedules": [
                    {"freq": "WEEKLY", "byday": "MO", "opens_at": "10:00", "closes_at": "12:00"}
                ],
            },
        )
        self.la.add("directory_taxonomy", "main", taxonomy_id)
        self.la.add("directory_term", "main", term_id)
        self.la.add("directory_service", "main", service["id"])
        self.la.add("directory_organization", "main", service["organization"]["id"])
        place = service["service_at_locations"][0]
        self.la.add("directory_service_at_location", "main", place["id"])
        self.la.add("directory_location", "main", place["location"]["id"])
        self.la.add("directory_attribute", "main", service["attributes"][0]["id"])
        self.la.add("directory_schedule", "main", service["schedules"][0]["id"])

    # --- casework ---------------------------------------------------------------------------

    async def refer(
        self,
        hub: Account,
        name: str,
        children: list[dict[str, Any]],
        mark: str,
        kind: str = "referral",
        **fields: Any,
    ) -> dict[str, Any]:
        body = {
            "external_reference": f"{mark}-REF-{name}-{uuid.uuid4().hex[:6]}",
            "children": children,
            "family": [
                {
                    "name": f"{mark} Parent Vexmoor",
                    "relationship": "mother",
                    "phone": "07700 900123",
                    "preferred_contact": "phone",
                    "interpreter_needed": False,
                }
            ],
            "concerns": ["attendance", "parental_mental_health"],
            "level_of_need": "targeted_early_help",
            "consent": consent(f"{mark} Parent Vexmoor (mother)"),
            "urgency": "routine",
            "summary": f"{mark} summary: attendance has fallen ({name}).",
            **fields,
        }
        referral: dict[str, Any] = await self.json(hub, "POST", "/v1/referrals", body)
        self.la.add(kind, name, referral["id"])
        return referral

    async def decide(
        self, practitioner: Account, referral_id: str, decision: str, mark: str
    ) -> dict[str, Any]:
        answer: dict[str, Any] = await self.json(
            practitioner,
            "POST",
            f"/v1/referrals/{referral_id}/decision",
            {"decision": decision, "reason": f"{mark} decision reason"},
        )
        return answer

    async def open_case(
        self, practitioner: Account, name: str, children: list[dict[str, Any]], mark: str
    ) -> dict[str, Any]:
        case: dict[str, Any] = await self.json(
            practitioner,
            "POST",
            "/v1/cases",
            {
                "children": children,
                "level_of_need": "targeted_early_help",
                "consent": consent(f"{mark} Parent Ashgrove (father)"),
                "summary": f"{mark} case summary ({name})",
            },
        )
        self.la.add("case", name, case["id"])
        return case

    async def family_plan(
        self,
        practitioner: Account,
        case: str,
        child: Child,
        service_id: str,
        mark: str,
        category: str,
    ) -> None:
        """A goal, a review scoring it, a contact, a measure, a signpost, a document, a
        timetable, a member of the team around the family and a planned meeting on the case
        named `case`; each is kept under that name. The records are dated today:
        the case opened today, and nothing is dated before its case opened."""
        case_id = self.la.id("case", case)
        base = f"/v1/cases/{case_id}"
        goal = await self.json(
            practitioner,
            "POST",
            f"{base}/goals",
            {"title": f"{mark} goal: mornings", "outcome_category": category},
        )
        self.la.add("goal", case, goal["id"])
        review = await self.json(
            practitioner,
            "POST",
            f"{base}/reviews",
            {
                "held_on": today().isoformat(),
                "worries": f"{mark} worries",
                "working_well": f"{mark} working well",
                "next_steps": f"{mark} next steps",
                "scores": [{"goal_id": goal["id"], "score": 4}],
            },
        )
        self.la.add("review", case, review["id"])
        contact = await self.json(
            practitioner,
            "POST",
            f"{base}/interventions",
            {
                "type": "one_to_one_session",
                "occurred_at": datetime.now(UTC).isoformat(),
                "minutes": 50,
                "location": "school",
                "participants": [f"{mark} learning mentor"],
                "child_ids": [child.id],
                "child_seen": True,
                "actions": [],
            },
        )
        self.la.add("intervention", case, contact["id"])
        action = await self.json(
            practitioner,
            "POST",
            f"{base}/actions",
            {
                "text": f"{mark} action: book the nurse",
                "source_kind": "contact",
                "source_id": contact["id"],
                "owner": {"kind": "staff", "staff_id": practitioner.id},
                "due_on": today().isoformat(),
            },
        )
        self.la.add("action", case, action["id"])
        measure = await self.json(
            practitioner,
            "POST",
            f"{base}/measures",
            {
                "child_id": child.id,
                "instrument": "reading_age",
                "score": 8.5,
                "measured_on": today().isoformat(),
            },
        )
        self.la.add("measure", case, measure["id"])
        signpost = await self.json(
            practitioner,
            "POST",
            f"{base}/signposts",
            {"service_id": service_id, "child_id": child.id, "reason": f"{mark} signpost reason"},
        )
        self.la.add("signpost", case, signpost["id"])
        document = await self.http.post(
            f"{base}/documents",
            files={"file": ("plan.txt", f"{mark} signed plan\n".encode(), "text/plain")},
            data={"kind": "signed_plan", "title": f"{mark} signed plan"},
            headers=practitioner.headers,
        )
        assert document.status_code == 201, document.text
        self.la.add("document", case, document.json()["id"])
        timetable = await self.json(
            practitioner,
            "PUT",
            f"{base}/timetables/{child.id}",
            {
                "steps": [
                    {"starts_on": (today() - timedelta(days=7)).isoformat(), "planned_hours": 10},
                    {"starts_on": (today() + timedelta(days=7)).isoformat(), "planned_hours": 32.5},
                ]
            },
        )
        assert timetable["child_id"] == child.id, timetable
        self.la.timetables[child.mis_id] = case_id
        member = await self.json(
            practitioner,
            "POST",
            f"{base}/team",
            {
                "kind": "agency",
                "name": f"{mark} school nursing",
                "role": "school nurse",
                "contact": f"{mark} nurse's phone",
            },
        )
        self.la.add("team_member", case, member["id"])
        meeting = await self.json(
            practitioner,
            "POST",
            f"{base}/meetings",
            {
                "type": "multi_agency_meeting",
                "scheduled_at": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
                "minutes": 60,
                "location": "school",
                "place": f"{mark} meeting room",
                "agenda": f"{mark} agenda",
                "child_ids": [child.id],
                "invitees": [
                    {"team_member_id": member["id"]},
                    {"child_id": child.id},
                    {"name": f"{mark} Parent Ashgrove", "role": "father"},
                ],
            },
        )
        self.la.add("meeting", case, meeting["id"])


# --- the two LAs ----------------------------------------------------------------------------


async def build_first_la(world: World) -> LocalAuthority:
    """LA 886: schools SA1 and SA2 with their MIS clients, hubs HA1 and HA2, LA-bound staff
    of every role, a flagged pupil, referrals in every state, an open case with a whole
    family plan, a closed case (its child is a re-referral within 12 months), LA-specific
    reference data and a directory service its admin wrote; and a client bound to SA2 alone
    holding every school-level scope."""
    la = LocalAuthority(FIRST_LA)
    build = Builder(world, la)
    mark = FIRST_LA_MARK
    sa1 = await build.school("SA1", "886101", "Larkspur Primary")
    sa2 = await build.school("SA2", "886102", "Osier Academy")
    mis_a1 = await build.client("mis_SA1", MIS_SCOPES, schools=[sa1])
    mis_a2 = await build.client("mis_SA2", MIS_SCOPES, schools=[sa2])
    ha1 = await build.client("hub_HA1", HUB_SCOPES, la_code=FIRST_LA)
    ha2 = await build.client("hub_HA2", HUB_SCOPES, la_code=FIRST_LA)
    await build.client("client_SA2_every_scope", SCHOOL_EVERY_SCOPE, schools=[sa2])
    roles = {
        "practitioner": StaffRole.practitioner,
        "manager": StaffRole.manager,
        "dpo": StaffRole.dpo,
        "admin": StaffRole.admin,
    }
    for label, role in roles.items():
        await build.staff(
            label,
            role,
            la_code=FIRST_LA,
            display_name=f"{FIRST_LA_STAFF_MARK} {label} Quennell",
        )
    practitioner, manager, admin = (la.accounts[n] for n in ("practitioner", "manager", "admin"))

    a1 = [
        Child("A1-0001", "Zephyrine", "Quillfeather", "2013-02-27", sa1, _upn(FIRST_LA, 4101, 1)),
        Child("A1-0002", "Bartholomew", "Vexley", "2014-11-03", sa1, _upn(FIRST_LA, 4101, 2)),
        Child("A1-0003", "Isolde", "Marchbanks", "2015-07-19", sa1, _upn(FIRST_LA, 4101, 3)),
        Child("A1-0004", "Perpetua", "Hollowgrange", "2012-05-21", sa1, _upn(FIRST_LA, 4101, 4)),
    ]
    a2 = [Child("A2-0001", "Ottoline", "Fairquince", "2016-01-30", sa2, _upn(FIRST_LA, 4102, 1))]
    await build.roster(mis_a1, sa1, a1)
    await build.roster(mis_a2, sa2, a2)
    on_case, closed_child, flagged, by_name = a1
    await build.unexplained_absence(mis_a1, flagged)
    la.not_on_roll.append(
        {"given_name": "Cassius", "family_name": "Wintermantle", "date_of_birth": "2013-09-09"}
    )

    # Reference data of its own: the LA's set of levels of need replaces the default set,
    # so it keeps targeted_early_help and adds one only this LA has.
    for code, label, rank in (
        ("targeted_early_help", "Targeted early help", 3),
        ("kestrel_tier", "Kestrel tier", 5),
    ):
        await build.call(
            admin,
            "POST",
            "/v1/levels-of-need",
            {"code": code, "label": label, "rank": rank, "la_code": FIRST_LA},
            expect=201,
        )
    la.reference_codes["levels-of-need"] = "kestrel_tier"
    la.public_names.append("Kestrel tier")
    await build.reference_list(
        admin,
        "/v1/referral-concerns",
        "referral-concerns",
        {"code": "kestrel_concern", "label": "Kestrel concern", "la_code": FIRST_LA},
    )
    await build.reference_list(
        admin,
        "/v1/outcome-categories",
        "outcome-categories",
        {"code": "kestrel_outcome", "label": "Kestrel outcome", "la_code": FIRST_LA},
    )
    await build.reference_list(
        admin,
        "/v1/measure-instruments",
        "measure-instruments",
        {
            "code": "kestrel_scale",
            "label": "Kestrel scale",
            "min_score": 0,
            "max_score": 10,
            "la_code": FIRST_LA,
        },
    )
    await build.directory(admin, "Publicla")

    # Referrals from hub HA1: by UPN (received), by name of a child not on a roll, by name
    # of a child on a roll, one accepted into a case, one awaiting a manager's approval.
    await build.refer(ha1, "by_upn", [flagged.by_upn], mark)
    await build.refer(ha1, "by_name_not_on_roll", [la.not_on_roll[0]], mark)
    await build.refer(ha1, "by_name_on_roll", [by_name.by_name], mark)
    accepted = await build.refer(ha1, "accepted", [on_case.by_upn], mark)
    await build.decide(practitioner, accepted["id"], "accept", mark)
    pending = await build.refer(ha1, "awaiting_approval", [by_name.by_upn], mark)
    await build.decide(practitioner, pending["id"], "step_up", mark)
    await build.refer(
        ha2,
        "hub_HA2_own",
        [{"given_name": "Leopold", "family_name": "Nethercott", "date_of_birth": "2014-02-02"}],
        "Hubtwo",
        kind="referral_of_HA2",
    )

    read = await build.json(practitioner, "GET", f"/v1/referrals/{accepted['id']}")
    la.add("case", "open", read["decision"]["case_id"])
    await build.family_plan(
        practitioner,
        "open",
        on_case,
        la.id("directory_service", "main"),
        mark,
        "debt_managed",
    )
    closed = await build.open_case(practitioner, "closed", [{"pupil_id": closed_child.id}], mark)
    await build.call(
        manager,
        "POST",
        f"/v1/cases/{closed['id']}/closure",
        {"reason": "needs_met", "note": f"{mark} closure note"},
    )
    hold = await build.json(
        la.accounts["dpo"],
        "POST",
        "/v1/legal-holds",
        {"kind": "case", "case_id": closed["id"], "reason": f"{mark} hold reason"},
    )
    la.add("legal_hold", "closed_case", hold["id"])
    webhook = await build.json(
        ha1,
        "POST",
        "/v1/webhooks",
        {
            "url": "https://hub-ha1.example.org/liaison",
            "event_types": ["referral.decided"],
            "description": f"{mark} decisions",
        },
    )
    la.add("webhook", "hub_HA1", webhook["id"])
    return la


async def build_second_la(world: World) -> LocalAuthority:
    """LA 887: school SB1 with two pupils (one flagged), an MIS client bound to SB1 and one
    bound to the LA, a hub, staff of every role (and a practitioner bound to SB1 alone), a
    client bound to the LA holding every scope, a referral, an open case with a goal and a
    signpost, and a directory service of its own."""
    la = LocalAuthority(SECOND_LA)
    build = Builder(world, la)
    mark = "Secondla"
    sb1 = await build.school("SB1", "887101", "Thornbury Primary")
    mis = await build.client("mis_client_school", MIS_SCOPES, schools=[sb1])
    await build.client("mis_client_la", MIS_SCOPES, la_code=SECOND_LA)
    hub = await build.client("hub", HUB_SCOPES, la_code=SECOND_LA)
    await build.client("client_every_scope", EVERY_SCOPE, la_code=SECOND_LA)
    practitioner = await build.staff("practitioner", StaffRole.practitioner, la_code=SECOND_LA)
    await build.staff("practitioner_school", StaffRole.practitioner, schools=[sb1])
    await build.staff("manager", StaffRole.manager, la_code=SECOND_LA)
    await build.staff("dpo", StaffRole.dpo, la_code=SECOND_LA)
    admin = await build.staff("admin", StaffRole.admin, la_code=SECOND_LA)

    b1 = [
        Child("B1-0001", "Rosamund", "Thistlewood", "2013-06-14", sb1, _upn(SECOND_LA, 5101, 1)),
        Child("B1-0002", "Evander", "Blackthorne", "2014-04-08", sb1, _upn(SECOND_LA, 5101, 2)),
    ]
    await build.roster(mis, sb1, b1)
    await build.unexplained_absence(mis, b1[1])
    await build.directory(admin, "Secondla")
    await build.refer(hub, "received", [b1[0].by_upn], mark)
    await build.open_case(practitioner, "open", [{"pupil_id": b1[0].id}], mark)
    await build.family_plan(
        practitioner,
        "open",
        b1[0],
        la.id("directory_service", "main"),
        mark,
        "school_attendance_managed",
    )
    return la


# --- reading an LA back ---------------------------------------------------------------------


def _settled(body: Any) -> Any:
    """An answer without what changes by itself between two identical reads."""
    if isinstance(body, dict):
        return {k: _settled(v) for k, v in body.items() if k not in ("request_id",)}
    if isinstance(body, list):
        return [_settled(v) for v in body]
    return body


async def snapshot(
    http: httpx.AsyncClient, la: LocalAuthority, parts: frozenset[str] | set[str] | None = None
) -> dict[str, Any]:
    """Every object of the LA as its own manager, admin and the public directory see it,
    with versions and ETags: two snapshots are equal exactly when nothing changed. `parts`
    narrows it to some of "casework", "reference" and "directory"."""
    parts = parts or {"casework", "reference", "directory"}
    manager, admin = la.accounts["manager"], la.accounts["admin"]
    reads: list[tuple[Account | None, str, dict[str, Any]]] = []
    if "casework" in parts:
        for case_id in la.ids("case"):
            base = f"/v1/cases/{case_id}"
            reads.append((manager, base, {}))
            for part in (
                "goals",
                "reviews",
                "interventions",
                "actions",
                "measures",
                "signposts",
                "team",
                "meetings",
            ):
                reads.append((manager, f"{base}/{part}", {}))
            reads.append((manager, f"{base}/chronology", {}))
        for name, child in la.pupils.items():
            if name in la.timetables:
                reads.append(
                    (manager, f"/v1/cases/{la.timetables[name]}/timetables/{child.id}", {})
                )
        for kind in ("referral", "referral_of_HA2"):
            for referral_id in la.ids(kind):
                reads.append((manager, f"/v1/referrals/{referral_id}", {}))
        for school in la.schools.values():
            reads.append((manager, f"/v1/schools/{school['id']}", {}))
            reads.append((manager, f"/v1/schools/{school['id']}/attendance-codes", {}))
            reads.append((manager, "/v1/pupils", {"school_id": school["id"], "limit": 200}))
            reads.append((manager, f"/v1/schools/{school['id']}/attendance", {"limit": 200}))
            reads.append((manager, "/v1/attendance/flags", {"school_id": school["id"]}))
        for webhook_id in la.ids("webhook"):
            base = f"/v1/webhooks/{webhook_id}"
            for path in (base, f"{base}/attempts", f"{base}/deliveries"):
                reads.append((admin, path, {}))
    if "reference" in parts:
        reads.append((admin, "/v1/levels-of-need", {"la_code": la.code}))
        for path in ("/v1/referral-concerns", "/v1/outcome-categories", "/v1/measure-instruments"):
            reads.append((admin, path, {}))
    if "directory" in parts:
        for kind, path in (
            ("directory_service", "/oruk/services"),
            ("directory_taxonomy", "/oruk/taxonomies"),
            ("directory_term", "/oruk/taxonomy_terms"),
            ("directory_service_at_location", "/oruk/service_at_locations"),
        ):
            for object_id in la.ids(kind):
                reads.append((None, f"{path}/{object_id}", {}))
    seen: dict[str, Any] = {}
    for account, path, params in reads:
        headers = account.headers if account else {}
        response = await http.get(path, params=params or None, headers=headers)
        body = response.json() if "json" in response.headers.get("content-type", "") else None
        key = path + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")
        seen[key] = {
            "status": response.status_code,
            "etag": response.headers.get("etag"),
            "body": _settled(body),
        }
    return seen
