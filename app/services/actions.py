"""Actions as records: agreed on a case (at a meeting, a review, in the plan, on a contact),
owned by someone, due on a day, and followed up to a final status.

Reach is the case's: an action outside reach is not found, and the work list reads only the
actions of cases within reach. Statuses move `open → done | not_done | superseded` once;
a final status never changes (409), so the follow-up an attendance officer shows before a
legal step is the record as it happened. Work that carries on is a new action, and the old
one is `superseded` with a note saying by what.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.errors import Conflict, NotFound, ProblemItem, ValidationFailed
from app.models.action import (
    FINAL_STATUSES,
    ActionCreate,
    ActionOwner,
    ActionRead,
    ActionSource,
    ActionStatus,
    CaseAction,
    CaseActionStatus,
    GivenOwnerKind,
    OwnerKind,
    OwnerRead,
    StatusChange,
    StatusRead,
)
from app.models.base import shown_as, utcnow
from app.models.case import Case
from app.models.case_team import CaseTeamMember
from app.models.directory import DirectoryOrganization
from app.models.intervention import Action, Intervention
from app.models.meeting import Meeting
from app.models.plan import Goal, Review
from app.pagination import Page, keyset
from app.security import Principal
from app.services import access, case_dates, case_records
from app.services.children import pupil_ids
from app.services.school_calendar import school_today

# How far ahead an action may be due: beyond this a date is a typing slip, not a plan.
MAX_DAYS_AHEAD = 2 * 366
# Where an action's `source_id` is looked for, by its kind: a record of the same case.
SOURCES: dict[ActionSource, Any] = {
    ActionSource.meeting: Meeting,
    ActionSource.review: Review,
    ActionSource.plan: Goal,
    ActionSource.contact: Intervention,
}
# The status note of an action agreed as already done, by where it was agreed.
DONE_WHEN_AGREED = {
    ActionSource.contact: "Recorded as done with the contact.",
    ActionSource.meeting: "Recorded as done at the meeting.",
}


def _problem(loc: list[str | int], title: str, detail: str) -> ValidationFailed:
    return ValidationFailed(title, errors=[ProblemItem(loc=loc, detail=detail)])


def _check_due(case: Case, due_on: date) -> None:
    opened = case_dates.opened_on(case)
    if due_on < opened:
        raise _problem(
            ["body", "due_on"],
            "The due date does not fit the case's dates.",
            f"due_on {due_on.isoformat()} is before the case opened ({opened.isoformat()})",
        )
    latest = school_today() + timedelta(days=MAX_DAYS_AHEAD)
    if due_on > latest:
        raise _problem(
            ["body", "due_on"],
            "The due date is too far ahead.",
            f"due_on {due_on.isoformat()} is more than two years ahead (latest "
            f"{latest.isoformat()})",
        )


async def _check_source(
    session: AsyncSession, case: Case, kind: ActionSource, source_id: uuid.UUID | None
) -> None:
    """The source, where it is a record, is one of this case's: a 422 otherwise, the same
    whether it does not exist or is another case's."""
    if source_id is None:
        return
    model = SOURCES.get(kind)
    found = None
    if model is not None:
        found = (
            await session.exec(
                select(model.id).where(model.id == source_id, model.case_id == case.id)
            )
        ).first()
    if found is None:
        raise _problem(
            ["body", "source_id"],
            "The action's source is not a record of this case.",
            f"no {kind.value} with this id on this case",
        )


async def _owner_columns(session: AsyncSession, case: Case, owner: ActionOwner) -> dict[str, Any]:
    """The owner as columns, after checking that whoever it names can own the action: a
    staff member who reaches the case, a child on it, an organisation in the directory. Each
    refusal is the same whether the id does not exist or is outside reach."""
    at: list[str | int] = ["body", "owner"]
    title = "The owner cannot take this action."
    if (problem := owner.naming_problem()) is not None:
        raise _problem(at, "The owner is not named as its kind needs.", problem)
    if owner.kind == GivenOwnerKind.staff:
        assert owner.staff_id is not None
        children = (await access.case_children(session, [case.id]))[case.id]
        schools = [case.school_id, *(c.school_id for c in children)]
        if await access.staff_reaching(session, owner.staff_id, case.la_code, schools) is None:
            raise _problem(
                [*at, "staff_id"],
                title,
                "no active staff member who can reach this case has this id",
            )
        return {"owner_staff_id": owner.staff_id}
    if owner.kind == GivenOwnerKind.family_member:
        if owner.child_id is not None:
            if owner.child_id not in await access.pupils_of(session, case.id):
                raise _problem([*at, "child_id"], title, "not a child on this case")
            return {"owner_child_id": owner.child_id}
        return {"owner_name": owner.name, "owner_role": owner.relationship}
    if owner.kind == GivenOwnerKind.agency:
        if owner.organization_id is not None:
            if await session.get(DirectoryOrganization, owner.organization_id) is None:
                raise _problem(
                    [*at, "organization_id"], title, "no such organisation in the directory"
                )
            return {"owner_organization_id": owner.organization_id}
        return {"owner_name": owner.name, "owner_role": owner.role}
    assert owner.team_member_id is not None
    member = (
        await session.exec(
            select(CaseTeamMember.id).where(
                col(CaseTeamMember.id) == owner.team_member_id,
                col(CaseTeamMember.case_id) == case.id,
                col(CaseTeamMember.left_on).is_(None),
            )
        )
    ).first()
    if member is None:
        raise _problem(
            [*at, "team_member_id"], title, "no current member of this case's team has this id"
        )
    return {"owner_team_member_id": owner.team_member_id}


def _owner_label(action: CaseAction) -> str:
    """The owner as the chronology says it: its kind, never a person's name."""
    return action.owner_kind.replace("_", " ")


async def create(auditor: Auditor, case_id: uuid.UUID, new: ActionCreate) -> ActionRead:
    work = await case_records.begin(auditor, case_id)
    session = work.session
    _check_due(work.case, new.due_on)
    await _check_source(session, work.case, new.source_kind, new.source_id)
    owner = await _owner_columns(session, work.case, new.owner)
    now = utcnow()
    action = CaseAction(
        case_id=work.case.id,
        text=new.text,
        source_kind=new.source_kind,
        source_id=new.source_id,
        owner_kind=OwnerKind(new.owner.kind.value),
        due_on=new.due_on,
        status=ActionStatus.open,
        status_changed_at=now,
        created_at=now,
        created_by=work.by,
        **owner,
    )
    first = CaseActionStatus(
        action_id=action.id, status=ActionStatus.open, changed_at=now, changed_by=work.by
    )
    await case_records.add(
        work,
        action,
        also=[first],
        event="action.recorded",
        summary=f"Action recorded from {new.source_kind.value} (owner: {_owner_label(action)}, "
        f"due {new.due_on.isoformat()})",
        details={"action_id": str(action.id), "source_kind": new.source_kind.value},
        action="action.create",
    )
    [shown] = await present(session, [action])
    return shown


def rows_for_plan(
    case_id: uuid.UUID,
    source: tuple[ActionSource, uuid.UUID],
    actions: Sequence[Action],
    by: str,
    now: datetime,
) -> list[Any]:
    """The action plan given with a contact, or agreed at a held meeting, as action records
    (`source` is the contact or the meeting): each owner as written (`named`), each already
    done recorded `done` at once."""
    source_kind, source_id = source
    rows: list[Any] = []
    for given in actions:
        status = ActionStatus.done if given.done else ActionStatus.open
        action = CaseAction(
            case_id=case_id,
            text=given.action,
            source_kind=source_kind,
            source_id=source_id,
            owner_kind=OwnerKind.named,
            owner_name=given.owner,
            due_on=given.due,
            status=status,
            status_changed_at=now,
            created_at=now,
            created_by=by,
        )
        rows.append(action)
        rows.append(
            CaseActionStatus(
                action_id=action.id, status=ActionStatus.open, changed_at=now, changed_by=by
            )
        )
        if given.done:
            rows.append(
                CaseActionStatus(
                    action_id=action.id,
                    status=ActionStatus.done,
                    note=DONE_WHEN_AGREED[source_kind],
                    changed_at=now,
                    changed_by=by,
                )
            )
    return rows


async def for_case(auditor: Auditor, case_id: uuid.UUID) -> list[ActionRead]:
    rows = await case_records.records(
        auditor, case_id, CaseAction, col(CaseAction.id), action="action.list"
    )
    return await present(auditor.session, rows)


async def _get(session: AsyncSession, principal: Principal, action_id: uuid.UUID) -> CaseAction:
    """The action, if its case is within reach; 404 in the same words otherwise."""
    query = (
        select(CaseAction)
        .join(Case, col(Case.id) == col(CaseAction.case_id))
        .where(col(CaseAction.id) == action_id, access.case_in_reach(principal))
    )
    found = (await session.exec(query)).first()
    if found is None:
        raise NotFound("No such action.")
    return found


async def change_status(auditor: Auditor, action_id: uuid.UUID, change: StatusChange) -> ActionRead:
    """Move an open action to its final status, with a note (required for `not_done` and
    `superseded`). A final status never changes: 409."""
    session = auditor.session
    action = await _get(session, auditor.principal, action_id)
    work = await case_records.begin(auditor, action.case_id)
    current = ActionStatus(action.status)  # read back from the column as text
    if current in FINAL_STATUSES:
        raise Conflict(
            f"This action is {current.value}, which is final; record a new action for "
            "work that carries on."
        )
    if change.status == ActionStatus.open:
        raise Conflict("This action is already open.")
    now = utcnow()
    # Claimed in SQL: of two changes at once, one wins and the other is told so.
    claimed = await session.exec(
        update(CaseAction)
        .where(col(CaseAction.id) == action.id, col(CaseAction.status) == ActionStatus.open.value)
        .values(status=change.status.value, status_changed_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        raise Conflict("This action changed status meanwhile; read it again.")
    await session.refresh(action)
    row = CaseActionStatus(
        action_id=action.id,
        status=change.status,
        note=change.note,
        changed_at=now,
        changed_by=work.by,
    )
    await case_records.add(
        work,
        row,
        event="action.status_changed",
        summary=f"Action marked {change.status.value.replace('_', ' ')} (owner: "
        f"{_owner_label(action)})",
        details={"action_id": str(action.id), "status": change.status.value},
        action="action.status",
        resource=("case_action", action.id),
    )
    [shown] = await present(session, [action])
    return shown


# --- the work list --------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkListFilters:
    owner_staff_id: uuid.UUID | None = None
    due_before: date | None = None
    status: ActionStatus | None = None
    case_id: uuid.UUID | None = None


def owner_of(principal: Principal, owner: str | None) -> uuid.UUID | None:
    """`owner=me` (the calling staff member) or a staff id; 422 for anything else."""
    if owner is None:
        return None
    if owner == "me":
        if principal.kind != "staff":
            raise _problem(
                ["query", "owner"], "No one is `me` here.", "owner=me needs a staff account"
            )
        return principal.id
    try:
        return uuid.UUID(owner)
    except ValueError:
        raise _problem(
            ["query", "owner"], "The owner is not valid.", "owner is `me` or a staff id"
        ) from None


async def work_list(
    auditor: Auditor, page: Page, filters: WorkListFilters
) -> tuple[list[ActionRead], str | None]:
    """Actions of the cases within reach, oldest first, filtered; audited with the children
    of the cases they are on."""
    session, principal = auditor.session, auditor.principal
    query = (
        select(CaseAction)
        .join(Case, col(Case.id) == col(CaseAction.case_id))
        .where(access.case_in_reach(principal))
    )
    if filters.owner_staff_id is not None:
        query = query.where(col(CaseAction.owner_staff_id) == filters.owner_staff_id)
    if filters.due_before is not None:
        query = query.where(col(CaseAction.due_on) < filters.due_before)
    if filters.status is not None:
        query = query.where(col(CaseAction.status) == filters.status.value)
    if filters.case_id is not None:
        query = query.where(col(CaseAction.case_id) == filters.case_id)
    items, next_cursor = await keyset(session, query, col(CaseAction.id), page)
    held = await access.case_children(session, list({a.case_id for a in items}))
    await auditor.record(
        "action.work_list",
        "action",
        pupil_ids=list(dict.fromkeys(p for c in held.values() for p in pupil_ids(c))),
        details={"returned": len(items)},
    )
    return await present(session, items), next_cursor


# --- presenting -----------------------------------------------------------------------------


def is_overdue(action: CaseAction, today: date) -> bool:
    return (
        action.status == ActionStatus.open and action.due_on is not None and action.due_on < today
    )


def _owner(action: CaseAction) -> OwnerRead:
    kind = OwnerKind(action.owner_kind)
    return OwnerRead(
        kind=kind,
        staff_id=action.owner_staff_id,
        child_id=action.owner_child_id,
        organization_id=action.owner_organization_id,
        team_member_id=action.owner_team_member_id,
        name=action.owner_name,
        relationship=action.owner_role if kind == OwnerKind.family_member else None,
        role=action.owner_role if kind == OwnerKind.agency else None,
    )


async def present(session: AsyncSession, actions: Sequence[CaseAction]) -> list[ActionRead]:
    history: dict[uuid.UUID, list[StatusRead]] = defaultdict(list)
    if actions:
        rows = await session.exec(
            select(CaseActionStatus)
            .where(col(CaseActionStatus.action_id).in_([a.id for a in actions]))
            .order_by(col(CaseActionStatus.changed_at), col(CaseActionStatus.id))
        )
        for row in rows.all():
            history[row.action_id].append(StatusRead.model_validate(row, from_attributes=True))
    today = school_today()
    return [
        shown_as(
            ActionRead,
            a,
            owner=_owner(a),
            overdue=is_overdue(a, today),
            history=history[a.id],
        )
        for a in actions
    ]
