"""Subject access for a family member: an adult named in referrals' family lists.

What Liaison holds about them: the referrals within reach whose family list names them
(with their own entries, not the rest of the family's), the consents they gave on those
referrals and on the cases the referrals led to, those cases' own records (not the
children's marks or plans: those are the children's data), the actions on those cases
they own by name (with every status each took) and the meetings on those cases they were
invited to or attended. The person is found by name, case and spacing ignored; a phone or
email given narrows it to entries recorded with the same one. A name written on a record
(a consent's `given_by`, an action's owner, a meeting's invitee or attendee) is theirs
when it is their name, alone or followed by a note in brackets ("Alex Example (mother)").
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
from app.models.action import CaseAction, CaseActionStatus, OwnerKind
from app.models.base import utcnow
from app.models.case import Case
from app.models.meeting import Meeting, PersonKind
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


def names_them(text: str | None, name: str) -> bool:
    """A name written on a record is the person's: their name (case and spacing ignored),
    alone or followed by a note in brackets ("Alex Example (mother)")."""
    written = _plain(text)
    wanted = _plain(name)
    return written == wanted or (written.startswith(wanted + " (") and written.endswith(")"))


def gave_consent(consent: dict[str, Any] | None, name: str) -> bool:
    """A consent was given by the person: `given_by` names them."""
    return names_them((consent or {}).get("given_by"), name)


# The owners an action names by a name: a family member by name, and a contact's or a
# meeting's action plan's free-text owner. (A child owns by id, staff and agencies are not
# family members.)
OWNED_BY_NAME = (OwnerKind.family_member.value, OwnerKind.named.value)
# The people a meeting names by a name that may be a family member's: one from a referral's
# family list, and anyone named with their role. (Children and team members are by id.)
MET_BY_NAME = frozenset({PersonKind.family_member.value, PersonKind.named.value})


def owns(row: dict[str, Any], name: str) -> bool:
    """An action is the person's: owned by name (`family_member` or `named`) by them."""
    return row["owner_kind"] in OWNED_BY_NAME and names_them(row["owner_name"], name)


def met(row: dict[str, Any], name: str) -> bool:
    """A meeting names the person among its invitees or attendees, by name."""
    return any(
        person.get("kind") in MET_BY_NAME and names_them(person.get("name"), name)
        for person in [*(row["invitees"] or []), *(row["attendees"] or [])]
    )


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

        actions_table = table_of(CaseAction)
        statuses = table_of(CaseActionStatus)
        meetings = table_of(Meeting)
        by_name = (
            actions_table.c.case_id.in_(scope.case_ids),
            actions_table.c.owner_kind.in_(OWNED_BY_NAME),
            actions_table.c.owner_name.is_not(None),
        )
        owned = (
            core_select(*[actions_table.c[c] for c in columns_of(FAMILY_RECORDS["actions"])])
            .where(*by_name)
            .order_by(actions_table.c.case_id, actions_table.c.id)
        )

        async def histories() -> AsyncIterator[Batch]:
            # The person's actions are few: their ids first, then every status they took.
            found = await session.exec(
                select(CaseAction.id, CaseAction.owner_kind, CaseAction.owner_name).where(*by_name)
            )
            theirs = [
                action_id
                for action_id, kind, owner in found.all()
                if owns({"owner_kind": kind, "owner_name": owner}, query.name)
            ]
            columns = [statuses.c[c] for c in columns_of(FAMILY_RECORDS["action_statuses"])]
            statement = (
                core_select(*columns)
                .where(statuses.c.action_id.in_(theirs))
                .order_by(statuses.c.action_id, statuses.c.changed_at, statuses.c.id)
            )
            async for batch in rows_of(session, statement)():
                yield batch

        invited = (
            core_select(*[meetings.c[c] for c in columns_of(FAMILY_RECORDS["meetings"])])
            .where(meetings.c.case_id.in_(scope.case_ids))
            .order_by(meetings.c.case_id, meetings.c.scheduled_at, meetings.c.id)
        )

        subject = FamilyMemberSubject(name=query.name, phone=query.phone, email=query.email)
        return Export(
            header={"subject": subject.model_dump(mode="json"), "generated_at": utcnow()},
            sections=[
                whole("referrals", referrals, scope.referral_ids),
                section("family_entries", FAMILY_RECORDS["family_entries"], entries),
                section("consents", FAMILY_RECORDS["consents"], consents),
                whole("cases", cases, scope.case_ids),
                section(
                    "actions",
                    FAMILY_RECORDS["actions"],
                    rows_of(session, owned, lambda row: owns(row, query.name)),
                ),
                section("action_statuses", FAMILY_RECORDS["action_statuses"], histories),
                # Meeting rows as recorded, everyone invited and attending included (as the
                # child's export keeps a contact's participants).
                section(
                    "meetings",
                    FAMILY_RECORDS["meetings"],
                    rows_of(session, invited, lambda row: met(row, query.name)),
                ),
            ],
            title="Subject access export: what Liaison holds about one family member.",
        )

    return build
