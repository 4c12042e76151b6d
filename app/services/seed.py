"""Demo data for a first run: one LA, three schools, their pupils and an account per role.

Idempotent: running it again changes nothing but resets the demo secrets to the values it
prints. The secrets are public by construction, which is why the CLI refuses to seed in
production.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.config import Settings, get_settings
from app.models.principal import ApiClient, ApiClientSchool, StaffMember, StaffRole
from app.models.school import Jurisdiction, Phase, School
from app.security import Principal, Reach, Scope, hash_secret
from app.services import attendance, principals, pupils
from app.services.upn import check_letter

DEMO_LA = "999"
DEMO_SCHOOLS = [
    ("990001", "Riverside Primary School", Phase.primary, 2001),
    ("990002", "Hillview Academy", Phase.secondary, 4001),
    ("990003", "Brookfield Primary School", Phase.primary, 2002),
]
DEMO_CLIENTS = [
    # client_id, name, scopes, school codes (empty: the whole LA)
    (
        "demo-mis",
        "Riverside Primary MIS",
        "pupils:write pupils:read attendance:write attendance:read",
        ["990001"],
    ),
    (
        "demo-aggregator",
        "Demo LA attendance aggregator",
        "pupils:write pupils:read attendance:write attendance:read",
        [],
    ),
    ("demo-hub", "Demo LA early help hub", "referrals:write referrals:read", []),
    ("demo-admin", "Demo LA admin tool", "admin directory:write", []),
]
DEMO_STAFF = [
    (
        "practitioner@demo.liaison",
        "Priya Practitioner",
        StaffRole.practitioner,
        ["990001", "990003"],
    ),
    ("manager@demo.liaison", "Morgan Manager", StaffRole.manager, []),
    ("dpo@demo.liaison", "Dana Data-Protection", StaffRole.dpo, []),
    ("admin@demo.liaison", "Alex Admin", StaffRole.admin, []),
]
GIVEN = [
    "Amara",
    "Ben",
    "Chloe",
    "Dylan",
    "Ella",
    "Finn",
    "Grace",
    "Harry",
    "Isla",
    "Jack",
    "Kai",
    "Lily",
    "Mason",
    "Nia",
    "Oscar",
    "Poppy",
    "Rhys",
    "Sofia",
    "Theo",
    "Zara",
]
FAMILY = [
    "Ahmed",
    "Brown",
    "Clarke",
    "Davies",
    "Evans",
    "Fraser",
    "Green",
    "Hughes",
    "Iqbal",
    "Jones",
    "Khan",
    "Lewis",
    "Morgan",
]
PUPILS_PER_SCHOOL = 30

SEED_PRINCIPAL = Principal(
    kind="system",
    id=uuid.UUID(int=0),
    name="liaison seed-demo",
    scopes=frozenset({Scope.pupils_write, Scope.attendance_write}),
    reach=Reach(la_code=DEMO_LA),
)
# Six weeks of registers from the start of the 2026/27 autumn term: fixed dates, so running
# seed-demo again changes nothing.
DEMO_TERM_START = date(2026, 9, 7)
DEMO_WEEKS = 6


def demo_secret(name: str) -> str:
    return f"{name}-secret-for-demo-only"


def _upn(estab: int, serial: int) -> str:
    body = f"{DEMO_LA}{estab:04d}24{serial:03d}"
    return check_letter(body) + body


def _roster(estab: int, phase: Phase) -> list[dict[str, Any]]:
    rng = random.Random(estab)  # noqa: S311 (repeatable demo data, not secrets)
    youngest, oldest = (4, 11) if phase == Phase.primary else (11, 16)
    rows = []
    for serial in range(1, PUPILS_PER_SCHOOL + 1):
        age = rng.randint(youngest, oldest - 1)
        born = date(2026 - age, 9, 1) + timedelta(days=rng.randint(0, 364))
        year = age - 4
        rows.append(
            {
                "mis_id": f"{estab}-{serial:04d}",
                "upn": _upn(estab, serial),
                "given_name": rng.choice(GIVEN),
                "family_name": rng.choice(FAMILY),
                "date_of_birth": born.isoformat(),
                "year_group": "R" if year == 0 else str(year),
                "free_school_meals": rng.random() < 0.25,
                "looked_after": rng.random() < 0.03,
                "young_carer": rng.random() < 0.05,
                "forces_family": rng.random() < 0.04,
                "send": rng.random() < 0.15,
            }
        )
    return rows


def _registers(code: str, estab: int) -> list[dict[str, Any]]:
    """Mostly present; a few pupils persistently absent, one severely, and one whose last
    three sessions are unexplained, so the flag worklist has something on it."""
    rng = random.Random(estab * 7)  # noqa: S311 (repeatable demo data, not secrets)
    marks = []
    days = [
        DEMO_TERM_START + timedelta(weeks=w, days=d) for w in range(DEMO_WEEKS) for d in range(5)
    ]
    sessions = [(day, session) for day in days for session in ("AM", "PM")]
    for serial in range(1, PUPILS_PER_SCHOOL + 1):
        habit = {1: "severe", 2: "persistent", 3: "persistent", 4: "missing"}.get(serial, "good")
        for n, (day, session) in enumerate(sessions):
            roll = rng.random()
            mark = "/" if session == "AM" else "\\"
            if habit == "severe" and roll < 0.55:
                mark = rng.choice(["O", "G", "I"])
            elif habit == "persistent" and roll < 0.18:
                mark = rng.choice(["I", "M", "O", "U"])
            elif habit == "missing" and n >= len(sessions) - 3:
                mark = "N"
            elif roll < 0.03:
                mark = rng.choice(["I", "L", "M"])
            marks.append(
                {
                    "school_code": code,
                    "mis_id": f"{estab}-{serial:04d}",
                    "date": day.isoformat(),
                    "session": session,
                    "code": mark,
                }
            )
    return marks


async def _school(session: AsyncSession, code: str, name: str, phase: Phase) -> School:
    school = (await session.exec(select(School).where(School.code == code))).first()
    if school is None:
        school = School(
            code=code, name=name, la_code=DEMO_LA, jurisdiction=Jurisdiction.england, phase=phase
        )
        session.add(school)
        await session.flush()
    return school


async def seed_demo(session: AsyncSession, settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or get_settings()
    auditor = Auditor(session, SEED_PRINCIPAL)
    by_code: dict[str, School] = {}
    for code, name, phase, estab in DEMO_SCHOOLS:
        school = await _school(session, code, name, phase)
        by_code[code] = school
        await pupils.push_roster(session, auditor, school, _roster(estab, phase), full=False)
        await session.flush()
        await attendance.ingest(
            session, SEED_PRINCIPAL, auditor, settings, list(_registers(code, estab))
        )

    clients = []
    for client_id, name, scopes, codes in DEMO_CLIENTS:
        secret = demo_secret(client_id)
        client = (
            await session.exec(select(ApiClient).where(ApiClient.client_id == client_id))
        ).first()
        if client is None:
            client = ApiClient(
                client_id=client_id,
                secret_hash=hash_secret(secret),
                name=name,
                scopes=scopes,
                la_code=None if codes else DEMO_LA,
            )
            session.add(client)
            await session.flush()
            for code in codes:
                session.add(ApiClientSchool(api_client_id=client.id, school_id=by_code[code].id))
        else:
            client.secret_hash = hash_secret(secret)
        clients.append(
            {"client_id": client_id, "client_secret": secret, "name": name, "scope": scopes}
        )

    staff = []
    for username, display_name, role, codes in DEMO_STAFF:
        password = demo_secret(username.split("@")[0])
        member = (
            await session.exec(select(StaffMember).where(StaffMember.username == username))
        ).first()
        if member is None:
            await principals.create_staff(
                session,
                username=username,
                display_name=display_name,
                role=role,
                password=password,
                school_codes=codes,
                la_code=None if codes else DEMO_LA,
            )
        else:
            member.password_hash = hash_secret(password)
        staff.append({"username": username, "password": password, "role": role.value})
    await session.flush()
    return {
        "la_code": DEMO_LA,
        "schools": [{"id": str(s.id), "code": s.code, "name": s.name} for s in by_code.values()],
        "clients": clients,
        "staff": staff,
    }
