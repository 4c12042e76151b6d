"""Machine clients and staff accounts: creating them, checking their secrets, and turning a
verified token back into a principal with its current scopes and reach."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy import Select, bindparam, func
from sqlalchemy import select as select_columns
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import run
from app.errors import Conflict, NotFound, ValidationFailed
from app.models.base import utcnow
from app.models.principal import (
    ApiClient,
    ApiClientSchool,
    StaffMember,
    StaffMemberSchool,
    StaffRole,
)
from app.models.school import School
from app.security import (
    ROLE_SCOPES,
    Principal,
    Reach,
    Scope,
    TokenClaims,
    hash_secret,
    new_client_credentials,
    parse_scopes,
    unknown_scopes,
    verify_secret,
)


@dataclass(frozen=True)
class NewClient:
    client: ApiClient
    client_secret: str


async def load_principal(session: AsyncSession, claims: TokenClaims) -> Principal | None:
    """The principal behind a verified token, or None if its account is gone or disabled.

    Looked up on every request so that disabling an account or narrowing its reach takes
    effect at once, not when its tokens expire: one statement, the account joined to its
    schools (one row per school, or one row with none), since every audited read pays it.
    """
    if claims.kind == "client":
        try:
            client_uuid = uuid.UUID(claims.subject_id)
        except ValueError:
            return None
        found = await _with_schools(session, _CLIENT_BY_ID, client_uuid, width=5)
        if found is None:
            return None
        (client_id, public_id, name, granted, la_code), schools = found
        return Principal(
            kind="client",
            id=client_id,
            name=name,
            scopes=frozenset(claims.scopes & set(parse_scopes(granted))),
            reach=_reach(schools, la_code),
            client_id=public_id,
        )
    subject: str | uuid.UUID
    if claims.external:
        statement, subject = _STAFF_BY_EXTERNAL_SUBJECT, claims.subject_id
        scopes: frozenset[str] | None = None
    else:
        try:
            subject = uuid.UUID(claims.subject_id)
        except ValueError:
            return None
        statement, scopes = _STAFF_BY_ID, claims.scopes
    found = await _with_schools(session, statement, subject, width=4)
    if found is None:
        return None
    (staff_id, display_name, role_name, staff_la), schools = found
    role = StaffRole(role_name)
    role_scopes = ROLE_SCOPES[role]
    return Principal(
        kind="staff",
        id=staff_id,
        name=display_name,
        scopes=role_scopes if scopes is None else scopes & role_scopes,
        reach=_reach(schools, staff_la),
        client_id=claims.client_id,
        role=role,
    )


def _account_with_schools(
    account: type[ApiClient] | type[StaffMember],
    link_owner: Any,
    link_school: Any,
    which: Any,
    *columns: Any,
) -> Select[Any]:
    """An active account's `columns` and its schools (id, LA), in one statement: the account
    joined to its school links (one row per school, or one row with none). Built once, at
    import: every authenticated request runs one of these, so it pays neither for building
    the statement nor for its cache key."""
    return (
        select_columns(*columns, link_school, col(School.la_code))
        .select_from(account)
        .outerjoin(link_school.table, link_owner == col(account.id))
        .outerjoin(School, col(School.id) == link_school)
        .where(which, col(account.is_active).is_(True))
    )


_CLIENT_BY_ID = _account_with_schools(
    ApiClient,
    col(ApiClientSchool.api_client_id),
    col(ApiClientSchool.school_id),
    col(ApiClient.id) == bindparam("subject"),
    col(ApiClient.id),
    col(ApiClient.client_id),
    col(ApiClient.name),
    col(ApiClient.scopes),
    col(ApiClient.la_code),
)
_STAFF_COLUMNS = (
    col(StaffMember.id),
    col(StaffMember.display_name),
    col(StaffMember.role),
    col(StaffMember.la_code),
)
_STAFF_LINKS = (col(StaffMemberSchool.staff_member_id), col(StaffMemberSchool.school_id))
_STAFF_BY_ID = _account_with_schools(
    StaffMember, *_STAFF_LINKS, col(StaffMember.id) == bindparam("subject"), *_STAFF_COLUMNS
)
_STAFF_BY_EXTERNAL_SUBJECT = _account_with_schools(
    StaffMember,
    *_STAFF_LINKS,
    col(StaffMember.external_subject) == bindparam("subject"),
    *_STAFF_COLUMNS,
)


async def _with_schools(
    session: AsyncSession, statement: Select[Any], subject: object, *, width: int
) -> tuple[Sequence[Any], list[tuple[uuid.UUID, str]]] | None:
    """The account's first `width` columns and its schools (id, LA); None if there is no
    such active account."""
    rows: Sequence[Any] = (await run(session, statement, {"subject": subject})).all()
    if not rows:
        return None
    schools = [(row[width], row[width + 1]) for row in rows if row[width] is not None]
    return rows[0][:width], schools


async def load_subject(session: AsyncSession, subject: str) -> Principal | None:
    """The principal named by its subject (`client:<id>`, `staff:<id>`) with everything its
    account is granted, as a token asking for every scope would carry; None if the account
    is gone or disabled. Webhook delivery judges what a subscription's owner may receive
    with this, afresh for each batch of events."""
    kind, _, subject_id = subject.partition(":")
    if kind not in ("client", "staff"):
        return None
    claims = TokenClaims(
        kind=kind,
        subject_id=subject_id,
        scopes=frozenset(scope.value for scope in Scope),
        client_id=None,
    )
    return await load_principal(session, claims)


def _reach(schools: Sequence[tuple[uuid.UUID, str]], la_code: str | None) -> Reach:
    return Reach(
        school_ids=frozenset(school_id for school_id, _ in schools),
        la_code=la_code,
        school_las=frozenset(school_la for _, school_la in schools),
    )


async def _verified(secret: str, secret_hash: str | None) -> bool:
    """Argon2 takes about 0.1 s of CPU by design: in a worker thread (argon2-cffi releases
    the GIL), so one sign-in does not stall every other request on this worker."""
    return await anyio.to_thread.run_sync(verify_secret, secret, secret_hash)


async def authenticate_client(
    session: AsyncSession, client_id: str, client_secret: str
) -> ApiClient | None:
    client = (await session.exec(select(ApiClient).where(ApiClient.client_id == client_id))).first()
    valid = await _verified(client_secret, client.secret_hash if client else None)
    if client is None or not valid or not client.is_active:
        return None
    client.last_used_at = utcnow()
    return client


async def authenticate_staff(
    session: AsyncSession, username: str, password: str
) -> StaffMember | None:
    staff = (
        await session.exec(select(StaffMember).where(StaffMember.username == username.lower()))
    ).first()
    valid = await _verified(password, staff.password_hash if staff else None)
    if staff is None or not valid or not staff.is_active:
        return None
    return staff


def granted_scopes(principal: ApiClient | StaffMember) -> list[str]:
    if isinstance(principal, ApiClient):
        return parse_scopes(principal.scopes)
    return sorted(ROLE_SCOPES[StaffRole(principal.role)])


async def _schools_by_code(session: AsyncSession, codes: Sequence[str]) -> list[School]:
    if not codes:
        return []
    schools = list((await session.exec(select(School).where(School.code.in_(codes)))).all())  # type: ignore[attr-defined]
    missing = sorted(set(codes) - {s.code for s in schools})
    if missing:
        raise NotFound(f"No school with code(s): {', '.join(missing)}.")
    if len(schools) > len(set(codes)):
        raise Conflict("A school code matches schools in more than one jurisdiction.")
    return schools


async def create_client(
    session: AsyncSession,
    *,
    name: str,
    scopes: str,
    school_codes: Sequence[str] = (),
    la_code: str | None = None,
) -> NewClient:
    requested = parse_scopes(scopes)
    unknown = unknown_scopes(requested)
    if unknown:
        raise ValidationFailed(f"Unknown scope(s): {', '.join(unknown)}.")
    if not requested:
        raise ValidationFailed("A client needs at least one scope.")
    client_id, secret = new_client_credentials()
    client = ApiClient(
        client_id=client_id,
        secret_hash=hash_secret(secret),
        name=name,
        scopes=" ".join(requested),
        la_code=la_code,
    )
    session.add(client)
    await session.flush()
    for school in await _schools_by_code(session, school_codes):
        session.add(ApiClientSchool(api_client_id=client.id, school_id=school.id))
    await session.flush()
    return NewClient(client=client, client_secret=secret)


async def create_staff(
    session: AsyncSession,
    *,
    username: str,
    display_name: str,
    role: StaffRole,
    password: str | None,
    school_codes: Sequence[str] = (),
    la_code: str | None = None,
    external_subject: str | None = None,
) -> StaffMember:
    username = username.strip().lower()
    taken = await session.exec(
        select(func.count()).select_from(StaffMember).where(StaffMember.username == username)
    )
    if taken.one():
        raise Conflict(f"A staff account named {username!r} already exists.")
    staff = StaffMember(
        username=username,
        display_name=display_name,
        role=role,
        password_hash=hash_secret(password) if password else None,
        la_code=la_code,
        external_subject=external_subject,
    )
    session.add(staff)
    await session.flush()
    for school in await _schools_by_code(session, school_codes):
        session.add(StaffMemberSchool(staff_member_id=staff.id, school_id=school.id))
    await session.flush()
    return staff
