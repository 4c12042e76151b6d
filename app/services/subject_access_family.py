"""Subject access for a family member: an adult named in referrals' family lists.

What Liaison holds about them: the referrals within reach whose family list names them
(with their own entries, not the rest of the family's), the consents they gave on those
referrals and on the cases the referrals led to, and those cases' own records (not the
children's marks or plans: those are the children's data). The person is found by name,
case and spacing ignored; a phone or email given narrows it to entries recorded with the
same one. A consent is theirs when `given_by` is their name, alone or followed by a note
in brackets ("Alex Example (mother)").
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.db import table_of
from app.models.base import utcnow
from app.models.case import Case
from app.models.referral import Referral
from app.models.subject_access import (
    FAMILY_RECORDS,
    FamilyMemberQuery,
    FamilyMemberSubject,
    columns_of,
)
from app.services.access import cases_in_reach, referral_visible_to
from app.services.export_files import Batch, Export, Section, rows_of, section


def _plain(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def _digits(text: str | None) -> str:
    return re.sub(r"\D", "", text or "")


def names_person(entry: dict[str, Any], query: FamilyMemberQuery) -> bool:
    """A referral's family entry is the person's: the same name (case and spacing ignored),
    and the same phone (digits compared) and email (case ignored) where they are given."""
    if _plain(entry.get("name")) != _plain(query.name):
        return False
    if query.phone is not None and _digits(entry.get("phone")) != _digits(query.phone):
        return False
    return query.email is None or _plain(entry.get("email")) == _plain(query.email)


def gave_consent(consent: dict[str, Any] | None, name: str) -> bool:
    """A consent was given by the person: `given_by` is their name, alone or followed by a
    note in brackets ("Alex Example (mother)")."""
    given_by = _plain((consent or {}).get("given_by"))
    wanted = _plain(name)
    return given_by == wanted or (given_by.startswith(wanted + " (") and given_by.endswith(")"))


@dataclass(frozen=True)
class FamilyScope:
    query: FamilyMemberQuery
    referral_ids: tuple[uuid.UUID, ...]
    case_ids: tuple[uuid.UUID, ...]


async def for_family_member(auditor: Auditor, query: FamilyMemberQuery) -> FamilyScope:
    """The referrals within reach whose family list names the person, and the cases within
    reach they led to; audited as `family_member.subject_access` with counts and ids (never
    the name)."""
    session, principal = auditor.session, auditor.principal
    candidates = (
        select(col(Referral.id), col(Referral.family), col(Referral.case_id))
        .where(referral_visible_to(principal))
        .order_by(col(Referral.id))
    )
    referral_ids: list[uuid.UUID] = []
    led_to: list[uuid.UUID] = []
    # Family lists are JSON: matched here, a cursor's batch at a time.
    async for batch in rows_of(session, candidates)():
        for row in batch:
            if any(names_person(entry, query) for entry in row["family"] or []):
                referral_ids.append(row["id"])
                if row["case_id"] is not None:
                    led_to.append(row["case_id"])
    reachable = await cases_in_reach(session, principal, led_to)
    case_ids = tuple(sorted(reachable))
    await auditor.record(
        "family_member.subject_access",
        "family_member",
        details={
            "referrals": len(referral_ids),
            "cases": len(case_ids),
            "referral_ids": [str(r) for r in referral_ids],
            "case_ids": [str(c) for c in case_ids],
            "phone_given": query.phone is not None,
            "email_given": query.email is not None,
        },
    )
    return FamilyScope(query, tuple(referral_ids), case_ids)


FAMILY_ENTRY_KEYS = (
    "name",
    "relationship",
    "phone",
    "email",
    "preferred_contact",
    "language",
    "interpreter_needed",
)


def family_export(scope: FamilyScope) -> Callable[[AsyncSession], Export]:
    query = scope.query

    def build(session: AsyncSession) -> Export:
        referrals = table_of(Referral)
        cases = table_of(Case)

        def whole(name: str, table: Any, ids: Sequence[uuid.UUID]) -> Section:
            columns = [table.c[c] for c in columns_of(FAMILY_RECORDS[name])]
            statement = core_select(*columns).where(table.c.id.in_(ids)).order_by(table.c.id)
            return section(name, FAMILY_RECORDS[name], rows_of(session, statement))

        lists = core_select(referrals.c.id, referrals.c.family).where(
            referrals.c.id.in_(scope.referral_ids)
        )

        async def entries() -> AsyncIterator[Batch]:
            async for batch in rows_of(session, lists.order_by(referrals.c.id))():
                yield [
                    {"referral_id": row["id"], "position": position}
                    | {key: entry.get(key) for key in FAMILY_ENTRY_KEYS}
                    for row in batch
                    for position, entry in enumerate(row["family"] or [])
                    if names_person(entry, query)
                ]

        async def consents() -> AsyncIterator[Batch]:
            # Two short lists (a person's referrals and cases): read one after the other.
            for kind, table, ids in (
                ("referral", referrals, scope.referral_ids),
                ("case", cases, scope.case_ids),
            ):
                statement = (
                    core_select(table.c.id, table.c.consent)
                    .where(table.c.id.in_(ids))
                    .order_by(table.c.id)
                )
                async for batch in rows_of(session, statement)():
                    yield [
                        {
                            "record_type": kind,
                            "record_id": row["id"],
                            "given": row["consent"].get("given"),
                            "given_by": row["consent"].get("given_by"),
                            "date": row["consent"].get("date"),
                            "share_with": row["consent"].get("share_with") or [],
                        }
                        for row in batch
                        if row["consent"] and gave_consent(row["consent"], query.name)
                    ]

        subject = FamilyMemberSubject(name=query.name, phone=query.phone, email=query.email)
        return Export(
            header={"subject": subject.model_dump(mode="json"), "generated_at": utcnow()},
            sections=[
                whole("referrals", referrals, scope.referral_ids),
                section("family_entries", FAMILY_RECORDS["family_entries"], entries),
                section("consents", FAMILY_RECORDS["consents"], consents),
                whole("cases", cases, scope.case_ids),
            ],
            title="Subject access export: what Liaison holds about one family member.",
        )

    return build
