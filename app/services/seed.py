"""Demo data for a first run: one LA, three schools, their pupils, an account per role and
the partner services of the directory.

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
from app.models.directory import (
    DirectoryService,
    OrukServiceWrite,
    OrukTaxonomy,
)
from app.models.principal import ApiClient, ApiClientSchool, StaffMember, StaffRole
from app.models.school import Jurisdiction, Phase, School
from app.security import Principal, Reach, Scope, hash_secret
from app.services import attendance, directory, principals, pupils
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


# The service directory: typical partners of an early-help team. Ids are derived from
# names, so seeding again finds what the first run made.
DEMO_DIRECTORY = uuid.UUID("6f0e7c1a-3f59-4d8e-9a0e-5c1d2b7a9e10")
DEMO_TAXONOMY = "Liaison demo partner services"
DEMO_ORGANIZATIONS = {
    "council": ("Demoshire County Council", "https://www.demoshire.example.gov.uk"),
    "counselling": ("Riverside Counselling CIC", "https://riverside-counselling.example.org"),
    "advice": ("Citizens Advice Demoshire", "https://citizensadvice-demoshire.example.org"),
    "forces": ("Forces Families Network", "https://forcesfamilies.example.org"),
    "sport": ("Demoshire School Sport Partnership", "https://schoolsport.example.org"),
    "nhs": ("Demoshire NHS Foundation Trust", "https://demoshire-nhs.example.org"),
    "carers": ("Demoshire Carers Centre", "https://carers-demoshire.example.org"),
    "refuge": ("Safer Homes Demoshire", "https://saferhomes.example.org"),
}
DEMO_SERVICES = [
    # key, name, organization, term, ages, description, where (name, street, postcode), days
    ("counselling", "Young People's Counselling", "counselling", "Counselling", (11, 25),
     "Free, confidential counselling for young people, in school or at our centre.",
     ("Riverside Wellbeing Centre", "12 Mill Lane", "RV1 2AB"), "MO,TU,WE,TH,FR"),
    ("benefits", "Welfare Benefits Advice", "advice", "Welfare benefits and debt advice",
     (16, 120), "Help to check entitlement, claim benefits and deal with debt.",
     ("Citizens Advice Riverside", "3 Market Street", "RV1 1CD"), "MO,WE,FR"),
    ("forces", "Forces Families Support", "forces", "Forces families", (0, 120),
     "Support for serving and veteran families, including children facing deployment.",
     ("Riverside Garrison Community Hub", "Garrison Road", "RV4 7GH"), "TU,TH"),
    ("sport", "School Sport Programme", "sport", "Sport and physical activity", (5, 16),
     "After-school and holiday sport sessions that help children re-engage with school.",
     ("Hillview Academy Sports Hall", "Hill Road", "RV3 4EF"), "SA"),
    ("camhs", "Child and Adolescent Mental Health Services (CAMHS)", "nhs",
     "Children's mental health", (0, 18),
     "Assessment and treatment for children and young people with mental health needs.",
     ("Demoshire Children's Centre", "1 Hospital Way", "RV2 9JK"), "MO,TU,WE,TH,FR"),
    ("young-carers", "Young Carers Service", "carers", "Young carers", (5, 18),
     "Assessments, breaks and school support for children who care for a family member.",
     ("Demoshire Carers Centre", "8 Church Street", "RV1 3LM"), "MO,TU,WE,TH,FR"),
    ("parenting", "Parenting Support Programme", "council", "Parenting support", (0, 120),
     "Group and one-to-one parenting programmes for parents of children aged 0 to 18.",
     ("Riverside Family Hub", "20 Park Avenue", "RV2 5NP"), "TU,WE,TH"),
    ("fis", "Family Information Service", "council", "Family information", (0, 120),
     "Information on childcare, early education, activities and support for families.",
     ("Demoshire County Hall", "County Hall, High Street", "RV1 1AA"), "MO,TU,WE,TH,FR"),
    ("housing", "Housing Options and Advice", "council", "Housing advice", (16, 120),
     "Advice for families who are homeless or at risk of losing their home.",
     ("Demoshire County Hall", "County Hall, High Street", "RV1 1AA"), "MO,TU,WE,TH,FR"),
    ("domestic-abuse", "Domestic Abuse Support", "refuge", "Domestic abuse support", (0, 120),
     "Advocacy, safety planning and children's support for families living with abuse.",
     ("Safer Homes Outreach Office", "Confidential address: contact us", "RV1 9ZZ"),
     "MO,TU,WE,TH,FR"),
]  # fmt: skip


def _demo_id(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(DEMO_DIRECTORY, f"{kind}:{key}")


def _demo_service(
    key: str,
    name: str,
    org: str,
    term: str,
    ages: tuple[int, int],
    description: str,
    where: tuple[str, str, str],
    days: str,
) -> OrukServiceWrite:
    org_name, website = DEMO_ORGANIZATIONS[org]
    place, street, postcode = where
    return OrukServiceWrite.model_validate(
        {
            "id": _demo_id("service", key),
            "name": name,
            "description": description,
            "status": "active",
            "url": f"{website}/{key}",
            "email": f"{key}@{website.removeprefix('https://')}",
            "fees": "Free",
            "minimum_age": ages[0],
            "maximum_age": ages[1],
            "organization": {
                "id": _demo_id("organization", org),
                "name": org_name,
                "description": f"{org_name}: a partner of the demo LA's early help offer.",
                "website": website,
            },
            "attributes": [
                {
                    "taxonomy_term": {
                        "id": _demo_id("term", term),
                        "name": term,
                        "description": f"Services offering {term.lower()}.",
                        "taxonomy": DEMO_TAXONOMY,
                        "taxonomy_id": _demo_id("taxonomy", DEMO_TAXONOMY),
                        "term": key,
                    }
                }
            ],
            "service_at_locations": [
                {
                    "location": {
                        "id": _demo_id("location", place),
                        "location_type": "physical",
                        "name": place,
                        "addresses": [
                            {
                                "id": _demo_id("address", place),
                                "address_1": street,
                                "city": "Riverside",
                                "state_province": "Demoshire",
                                "postal_code": postcode,
                                "country": "GB",
                            }
                        ],
                    }
                }
            ],
            "schedules": [
                {
                    "id": _demo_id("schedule", key),
                    "freq": "WEEKLY",
                    "byday": days,
                    "opens_at": "10:00" if days == "SA" else "09:00",
                    "closes_at": "12:00" if days == "SA" else "17:00",
                }
            ],
            "contacts": [
                {
                    "id": _demo_id("contact", key),
                    "name": "Duty worker",
                    "title": "First contact for referrals",
                }
            ],
        }
    )


async def _seed_directory(session: AsyncSession) -> int:
    """The demo partner services, each added once (a second run leaves them as they are)."""
    taxonomy_id = _demo_id("taxonomy", DEMO_TAXONOMY)
    taxonomy = OrukTaxonomy(
        id=taxonomy_id,
        name=DEMO_TAXONOMY,
        description="Kinds of partner service an early-help team signposts families to.",
        version="1",
    )
    await directory.put_taxonomy(session, taxonomy_id, taxonomy, None)
    for row in DEMO_SERVICES:
        record = _demo_service(*row)
        if await session.get(DirectoryService, record.id) is None:
            await directory.upsert_service(session, record, None)
    return len(DEMO_SERVICES)


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
        await pupils.push_roster(auditor, school, _roster(estab, phase), full=False)
        await session.flush()
        await attendance.ingest(auditor, settings, list(_registers(code, estab)))

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
    directory_services = await _seed_directory(session)
    await session.flush()
    return {
        "la_code": DEMO_LA,
        "directory_services": directory_services,
        "schools": [{"id": str(s.id), "code": s.code, "name": s.name} for s in by_code.values()],
        "clients": clients,
        "staff": staff,
    }
