"""The retention run: dispose of what is past its period in the retention schedule.

Work is done per record type and jurisdiction, in batches. Each batch is its own short
transaction that claims its rows, disposes of them (deletes, or de-identifies where the
schedule says so), records one audit event naming what went (record type, count, ids,
cutoff, never content) and commits. So:

- several runs at once (cron on several machines) never do the same work twice: on
  PostgreSQL a batch claims its rows, or the parent rows that own them, with
  `FOR [NO KEY] UPDATE SKIP LOCKED`, and another run's claim skips them; `FOR NO KEY UPDATE`
  on a pupil does not block the foreign-key checks of ingestion. SQLite has one writer at a
  time: each batch begins with a write, so a second run waits for the lock (busy timeout)
  rather than failing to upgrade a read;
- a crash loses at most the batch in flight; every batch re-evaluates its predicates, so the
  next run finishes the rest;
- holds are re-read by every batch (`app/services/legal_holds.py`): a held record is never
  claimed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import ScalarSelect, func, literal, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.db import SessionFactory, is_postgresql, run
from app.models.base import utcnow
from app.models.retention import RetentionCutoff
from app.security import Principal, Reach
from app.services.document_store import DocumentStore
from app.services.retention_disposals import DISPOSALS, RUN_STARTED, Disposal, Disposed
from app.services.retention_schedule import ALL, Rule, Schedule

# The actor of every disposal's audit event.
RETENTION_PRINCIPAL = Principal(
    kind="system",
    id=uuid.UUID(int=0),
    name="retention run",
    scopes=frozenset(),
    reach=Reach(),
)
DEFAULT_BATCH_SIZE = 500

# --- the run -----------------------------------------------------------------------------


@dataclass
class TypeSummary:
    record_type: str
    jurisdiction: str
    action: str
    cutoff: date
    due: int = 0
    held: int = 0
    disposed: int = 0
    batches: int = 0
    seconds: float = 0.0


@dataclass
class RunSummary:
    today: date
    dry_run: bool
    types: list[TypeSummary] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def disposed(self) -> int:
        return sum(t.disposed for t in self.types)

    @property
    def rows_per_second(self) -> float:
        return self.disposed / self.seconds if self.seconds else 0.0


class Hooks:
    """Callbacks a caller (the CLI's progress bar, a test injecting a crash) gives the run."""

    def planned(self, summary: TypeSummary) -> None:
        """Called once per rule before its batches, with `due` and `held` counted."""

    def disposed(self, summary: TypeSummary, rows: int) -> None:
        """Called after each committed batch."""

    async def after_batch(self, summary: TypeSummary) -> None:
        """Awaited after each committed batch."""


async def _begin_writing(session: AsyncSession) -> None:
    """On SQLite, take the write lock before reading, so a second run waits for the busy
    timeout instead of failing to upgrade its read (SQLITE_BUSY). PostgreSQL needs nothing:
    its row locks do the claiming."""
    if not is_postgresql(session):
        await run(session, text("DELETE FROM audit_disposal_permit WHERE 1 = 0"))


async def _record_cutoff(session: AsyncSession, rule: Rule, cutoff: date) -> None:
    values = {
        "record_type": rule.record_type.name,
        "jurisdiction": rule.jurisdiction,
        "disposed_before": cutoff,
        "recorded_at": utcnow(),
    }
    dialect = postgresql if is_postgresql(session) else sqlite
    statement = dialect.insert(RetentionCutoff).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["record_type", "jurisdiction"],
        set_={"disposed_before": cutoff, "recorded_at": values["recorded_at"]},
        where=col(RetentionCutoff.disposed_before) < cutoff,
    )
    await run(session, statement)


async def _one_batch(
    sessions: SessionFactory,
    disposal: Disposal,
    rule: Rule,
    cutoff: date,
    limit: int,
    after: Any,
    store: DocumentStore | None,
) -> Disposed | None:
    async with sessions() as session:
        await _begin_writing(session)
        rows = (await run(session, disposal.claim(rule, cutoff, limit, after))).all()
        if not rows:
            await session.rollback()
            return None
        keys: list[Any] = [r[0] if len(r) == 1 else tuple(r) for r in rows]
        auditor = Auditor(session, RETENTION_PRINCIPAL)
        details = {
            "record_type": disposal.name,
            "jurisdiction": rule.jurisdiction,
            "action": rule.record_type.action.value,
            "cutoff": cutoff.isoformat(),
        }
        if getattr(disposal, "audit_first", False):
            pupils = list(keys)
            await auditor.record(
                "retention.dispose",
                disposal.name,
                pupil_ids=pupils,
                details={**details, "count": len(keys), "ids": [str(k) for k in keys]},
            )
            done = await disposal.dispose(session, keys, rule, cutoff)
            done.last_key = rows[-1][0]
        else:
            done = await disposal.dispose(session, keys, rule, cutoff)
            done.last_key = rows[-1][0]
            if not done.rows:
                # Another run disposed of them between our read and our lock: nothing went.
                await session.commit()
                return done
            await auditor.record(
                "retention.dispose",
                disposal.name,
                pupil_ids=done.pupil_ids,
                details={**details, "count": done.rows, **done.details},
            )
        if done.storage_keys:
            # Before the commit: were it to fail, the rows stay and the next run disposes of
            # them again, but bytes past their period are never left behind a committed run.
            if store is None:
                raise RuntimeError("documents are disposed of only with their document store")
            for key in done.storage_keys:
                await store.delete(key)
        await session.commit()
        return done


async def run_retention(
    sessions: SessionFactory,
    schedule: Schedule,
    *,
    today: date | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    only: Sequence[str] | None = None,
    hooks: Hooks | None = None,
    pause: float = 0.0,
    store: DocumentStore | None = None,
) -> RunSummary:
    """Dispose of everything past its period on `today` (the service's clock by default),
    record type by record type, in batches of `batch_size` claimed keys, waiting between
    batches as long as the batch took, at most `pause` seconds, so that the requests served
    beside the run keep their pace.
    With `dry_run` nothing changes: the summary says what would go and what is held.
    `store` holds the bytes of documents, which go with their cases."""
    hooks = hooks or Hooks()
    today = today or utcnow().date()
    summary = RunSummary(today=today, dry_run=dry_run)
    RUN_STARTED.set(utcnow())
    started = time.perf_counter()
    for rule in schedule.rules:
        disposal = DISPOSALS[rule.record_type.name]
        if only and disposal.name not in only:
            continue
        cutoff = rule.cutoff(today)
        part = TypeSummary(disposal.name, rule.jurisdiction, rule.record_type.action.value, cutoff)
        summary.types.append(part)
        async with sessions() as session:
            part.due = (await run(session, disposal.due(rule, cutoff, held=False))).scalar_one()
            part.held = (await run(session, disposal.due(rule, cutoff, held=True))).scalar_one()
        hooks.planned(part)
        if dry_run:
            continue
        began = time.perf_counter()
        after = None
        while True:
            batch_began = time.perf_counter()
            done = await _one_batch(sessions, disposal, rule, cutoff, batch_size, after, store)
            if done is None:
                break
            after = done.last_key
            part.disposed += done.rows
            part.batches += 1
            hooks.disposed(part, done.rows)
            await hooks.after_batch(part)
            if pause:
                # As long as the batch took, at most `pause`: the run has the database at
                # most half the time, and a quick batch (a few weekly rows) waits little.
                await asyncio.sleep(min(pause, time.perf_counter() - batch_began))
        async with sessions() as session:
            await _record_cutoff(session, rule, cutoff)
            await session.commit()
        part.seconds = time.perf_counter() - began
    summary.seconds = time.perf_counter() - started
    return summary


def disposed_before_of(record_type: str, jurisdiction: Any) -> ScalarSelect[Any]:
    """`disposed_before` as a scalar subquery for the jurisdiction column of an outer
    statement, so a hot read learns it in the statement that finds its record."""
    return (
        select(func.max(col(RetentionCutoff.disposed_before)))
        .where(
            col(RetentionCutoff.record_type) == record_type,
            or_(
                col(RetentionCutoff.jurisdiction) == jurisdiction,
                col(RetentionCutoff.jurisdiction) == ALL,
            ),
        )
        .scalar_subquery()
    )


async def disposed_before(
    session: AsyncSession, record_type: str, jurisdiction: str
) -> date | None:
    """The date before which `record_type`'s detail in `jurisdiction` has been disposed of
    (held records apart), or None when nothing has been."""
    found = await run(session, select(disposed_before_of(record_type, literal(jurisdiction))))
    day: date | None = found.scalar()
    return day
