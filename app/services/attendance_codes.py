"""Attendance code tables: statutory codes per jurisdiction with effective dates, codes an
admin adds, and each school's own display codes mapped onto statutory ones."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import Conflict, ValidationFailed
from app.models.attendance import (
    AttendanceCode,
    Category,
    CodeCreate,
    CodeRead,
    SchoolCodeIn,
    SchoolCodeMapping,
)
from app.models.base import shown_as, utcnow
from app.models.school import Jurisdiction, School


@dataclass(frozen=True, slots=True)
class Meaning:
    """What a statutory code means on a given date."""

    code: str
    category: str  # a Category value, kept as a plain string for the hot path
    late: bool
    unexplained: bool


def present(code: AttendanceCode) -> CodeRead:
    return shown_as(CodeRead, code, counts_as_possible=code.category != Category.not_possible)


async def get_all(
    session: AsyncSession, jurisdiction: Jurisdiction | None, on: date | None
) -> list[AttendanceCode]:
    """Codes of one or every jurisdiction; with `on`, only those valid on that date."""
    query = select(AttendanceCode)
    if jurisdiction is not None:
        query = query.where(col(AttendanceCode.jurisdiction) == jurisdiction)
    if on is not None:
        query = query.where(col(AttendanceCode.effective_from) <= on).where(
            (col(AttendanceCode.effective_to).is_(None)) | (col(AttendanceCode.effective_to) > on)
        )
    query = query.order_by(
        col(AttendanceCode.jurisdiction),
        col(AttendanceCode.effective_from),
        col(AttendanceCode.category),
        col(AttendanceCode.code),
    )
    return list((await session.exec(query)).all())


async def create(session: AsyncSession, new: CodeCreate) -> AttendanceCode:
    if new.effective_to is not None and new.effective_to <= new.effective_from:
        raise ValidationFailed("effective_to must be after effective_from.")
    overlapping = (
        await session.exec(
            select(AttendanceCode).where(
                col(AttendanceCode.jurisdiction) == new.jurisdiction,
                col(AttendanceCode.code) == new.code,
            )
        )
    ).all()
    for other in overlapping:
        if _overlaps(
            other.effective_from, other.effective_to, new.effective_from, new.effective_to
        ):
            raise Conflict(
                f"{new.jurisdiction} already has code {new.code!r} from {other.effective_from}"
                + (f" to {other.effective_to}" if other.effective_to else "")
                + "; dates of one code may not overlap."
            )
    code = AttendanceCode(**new.model_dump(), statutory=False)
    session.add(code)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"{new.jurisdiction} already has code {new.code!r}.") from None
    return code


def _overlaps(a_from: date, a_to: date | None, b_from: date, b_to: date | None) -> bool:
    return (a_to is None or b_from < a_to) and (b_to is None or a_from < b_to)


class CodeBook:
    """Every code of the given jurisdictions and the schools' display-code mappings, loaded
    once per push and answering each mark from memory."""

    def __init__(
        self,
        codes: Iterable[AttendanceCode],
        mappings: dict[tuple[uuid.UUID, str], str],
    ) -> None:
        self._codes: dict[tuple[str, str], list[AttendanceCode]] = defaultdict(list)
        for code in codes:
            self._codes[(code.jurisdiction, code.code)].append(code)
        self._mappings = mappings
        self._memo: dict[tuple[str, str, date], Meaning | str] = {}

    @classmethod
    async def load(
        cls, session: AsyncSession, schools: Iterable[School | tuple[uuid.UUID, str]]
    ) -> CodeBook:
        pairs = [(s.id, s.jurisdiction) if isinstance(s, School) else s for s in schools]
        jurisdictions = {j for _, j in pairs}
        school_ids = [i for i, _ in pairs]
        codes = (
            await session.exec(
                select(AttendanceCode).where(col(AttendanceCode.jurisdiction).in_(jurisdictions))
            )
        ).all()
        mappings: dict[tuple[uuid.UUID, str], str] = {}
        if school_ids:
            rows = await session.exec(
                select(
                    col(SchoolCodeMapping.school_id),
                    col(SchoolCodeMapping.display_code),
                    col(SchoolCodeMapping.statutory_code),
                ).where(col(SchoolCodeMapping.school_id).in_(school_ids))
            )
            mappings = {(r[0], r[1]): r[2] for r in rows}
        return cls(codes, mappings)

    def statutory_for(self, school_id: uuid.UUID, display_code: str) -> str:
        return self._mappings.get((school_id, display_code), display_code)

    def meaning(self, jurisdiction: str, code: str, on: date) -> Meaning | str:
        """The meaning of `code` on `on`, or the reason it has none."""
        memo_key = (jurisdiction, code, on)
        found = self._memo.get(memo_key)
        if found is None:
            found = self._resolve(jurisdiction, code, on)
            self._memo[memo_key] = found
        return found

    def _resolve(self, jurisdiction: str, code: str, on: date) -> Meaning | str:
        versions = self._codes.get((jurisdiction, code))
        if not versions:
            return f"code: {code!r} is not a {jurisdiction} attendance code"
        for version in versions:
            if version.effective_from <= on and (
                version.effective_to is None or on < version.effective_to
            ):
                return Meaning(
                    version.code,
                    Category(version.category).value,
                    version.late,
                    version.unexplained,
                )
        retired = [v.effective_to for v in versions if v.effective_to and v.effective_to <= on]
        if retired:
            return (
                f"code: {code!r} was retired in {jurisdiction} from {max(retired)} "
                f"and cannot be used for {on}"
            )
        first = min(v.effective_from for v in versions)
        return f"code: {code!r} is valid in {jurisdiction} only from {first}"


async def school_mappings(session: AsyncSession, school: School) -> list[SchoolCodeMapping]:
    return list(
        (
            await session.exec(
                select(SchoolCodeMapping)
                .where(col(SchoolCodeMapping.school_id) == school.id)
                .order_by(col(SchoolCodeMapping.display_code))
            )
        ).all()
    )


async def replace_school_mappings(
    session: AsyncSession, school: School, codes: list[SchoolCodeIn]
) -> list[SchoolCodeMapping]:
    """Replace the school's display-code map. Each statutory code must exist in the school's
    jurisdiction (on some date: old registers keep their old codes)."""
    known = set(
        (
            await session.exec(
                select(col(AttendanceCode.code)).where(
                    col(AttendanceCode.jurisdiction) == school.jurisdiction
                )
            )
        ).all()
    )
    seen: set[str] = set()
    for index, entry in enumerate(codes):
        if entry.display_code in seen:
            raise ValidationFailed(
                f"codes[{index}]: display code {entry.display_code!r} appears twice."
            )
        seen.add(entry.display_code)
        if entry.statutory_code not in known:
            raise ValidationFailed(
                f"codes[{index}]: {entry.statutory_code!r} is not a {school.jurisdiction} "
                "attendance code."
            )
    await session.exec(
        delete(SchoolCodeMapping).where(col(SchoolCodeMapping.school_id) == school.id)
    )
    now = utcnow()
    if codes:
        await session.exec(
            insert(SchoolCodeMapping),
            params=[{**c.model_dump(), "school_id": school.id, "updated_at": now} for c in codes],
        )
    return await school_mappings(session, school)
