"""The retention schedule: how long Liaison keeps each kind of record, per jurisdiction, and
what happens when the period ends (deleted, or de-identified so reported figures survive).

The defaults below are the code's; an operator may override any of them with a JSON file
named by `LIAISON_RETENTION_SCHEDULE` (validated at start: a bad file stops the command with
the reason). An override may lengthen a period freely but never shorten one below its
statutory minimum, nor change its action or its clock.

Sources, and where the choice is ours:

- Attendance register entries: the School Attendance (Pupil Registration) (England)
  Regulations 2024 (SI 2024/208, regulation 7) require every entry in a register to be kept
  for at least six years. The Welsh (Education (Pupil Registration) (Wales)
  Regulations 2010) and Scottish (Schools General (Scotland) Regulations 1975) periods were
  not confirmed for this schedule, so England's six years applies to both until an operator
  who has checked them configures otherwise (keeping longer is the safe side of an unknown).
- Child-protection and pupil files: the IRMS Information Management Toolkit for Schools
  keeps them until the child's date of birth plus 25 years. Early-help casework is kept on
  the same footing. A case may name a child with no recorded date of birth (known only to a
  hub), so a case's clock is its closure: closure + 25 years is never earlier than any of
  its children's birth + 25 years, which makes it the conservative reading for every child.
- Everything else (flags, referrals that never became a case, the audit trail, outbox
  events, idempotency records) has no statutory period; the choices and reasons are stated
  on each rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.models.school import Jurisdiction


class Action(StrEnum):
    delete = "delete"
    deidentify = "deidentify"


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    years: int = Field(default=0, ge=0, le=200)
    days: int = Field(default=0, ge=0, le=36_500)

    def cutoff(self, today: date) -> date:
        """The first day still kept: records whose clock is before it are past the period."""
        try:
            moved = today.replace(year=today.year - self.years)
        except ValueError:  # 29 February in a year without one
            moved = today.replace(year=today.year - self.years, day=28)
        return moved - timedelta(days=self.days)

    def longer_or_equal(self, other: Period) -> bool:
        probe = date(2100, 1, 1)
        return self.cutoff(probe) <= other.cutoff(probe)

    def __str__(self) -> str:
        parts = [f"{self.years} years"] if self.years else []
        if self.days or not parts:
            parts.append(f"{self.days} days")
        return " ".join(parts)


@dataclass(frozen=True)
class RecordType:
    """One kind of record the schedule covers."""

    name: str
    description: str
    clock: str
    action: Action
    source: str
    per_jurisdiction: bool = True


RECORD_TYPES: dict[str, RecordType] = {
    rt.name: rt
    for rt in (
        RecordType(
            "attendance_mark",
            "attendance register entries (one per pupil, date and session)",
            "the session's date",
            Action.delete,
            "School Attendance (Pupil Registration) (England) Regulations 2024, reg. 7: every "
            "register entry kept at least six years; Wales and Scotland: the same until their "
            "own periods are configured",
        ),
        RecordType(
            "attendance_week",
            "weekly attendance figures per pupil, derived from the marks",
            "the week's Monday",
            Action.delete,
            "derived from the register: kept exactly as long as the marks they count",
        ),
        RecordType(
            "attendance_flag",
            "acknowledged or resolved absence flags with their event history",
            "the flag's resolution (else acknowledgement, else raising)",
            Action.delete,
            "our choice: as long as the register entries that raised them (six years); a "
            "flag that became part of a case is kept until that case is de-identified",
        ),
        RecordType(
            "early_help_case",
            "closed early-help cases: children, plan goals, reviews and scores are kept "
            "de-identified; contacts, measures, timetables, signposts, chronology and the "
            "referrals that led to the case go with the de-identification",
            "the case's closure",
            Action.deidentify,
            "IRMS Information Management Toolkit for Schools: child-protection and pupil "
            "files until the child's date of birth + 25 years (closure + 25 years is never "
            "earlier); de-identified, not deleted, so outcome and closure figures reported "
            "for past periods stay reproducible",
        ),
        RecordType(
            "referral_not_taken_up",
            "referrals declined, withdrawn or redirected",
            "the referral's last change (its decision or withdrawal)",
            Action.deidentify,
            "our choice: six years, the limitation period for a claim about the decision "
            "(Limitation Act 1980), then de-identified so referral figures stay reproducible",
        ),
        RecordType(
            "referral_stepped_up",
            "referrals stepped up to children's social care",
            "the referral's last change (the step-up)",
            Action.deidentify,
            "IRMS: child-protection files until date of birth + 25 years; the decision "
            "date + 25 years is never earlier",
        ),
        RecordType(
            "pupil",
            "pupil records of children off roll, with everything still attached to them",
            "the child's date of birth (off roll only, and never while a case or referral "
            "still names the child in full)",
            Action.delete,
            "IRMS: pupil files until the child's date of birth + 25 years",
        ),
        RecordType(
            "audit_event",
            "audit events (who read or changed which children's data)",
            "the event's time",
            Action.delete,
            "our choice: as long as the longest-kept casework (25 years), so every access to "
            "a record can be accounted for while the record could exist",
            per_jurisdiction=False,
        ),
        RecordType(
            "outbox_event",
            "published webhook events",
            "the event's publication",
            Action.delete,
            "our choice: 90 days, long enough to investigate a delivery dispute",
            per_jurisdiction=False,
        ),
        RecordType(
            "idempotent_request",
            "stored answers to retried creates (Idempotency-Key)",
            "the record's expiry (`expires_at`)",
            Action.delete,
            "operational: useless after expiry (LIAISON_IDEMPOTENCY_HOURS)",
            per_jurisdiction=False,
        ),
    )
}

_SIX = Period(years=6)
_TWENTY_FIVE = Period(years=25)
DEFAULT_PERIODS: dict[str, Period] = {
    "attendance_mark": _SIX,
    "attendance_week": _SIX,
    "attendance_flag": _SIX,
    "early_help_case": _TWENTY_FIVE,
    "referral_not_taken_up": _SIX,
    "referral_stepped_up": _TWENTY_FIVE,
    "pupil": _TWENTY_FIVE,
    "audit_event": _TWENTY_FIVE,
    "outbox_event": Period(days=90),
    "idempotent_request": Period(),
}
# Periods no configuration may shorten: the law's.
STATUTORY_MINIMUM: dict[tuple[str, str], Period] = {
    ("attendance_mark", Jurisdiction.england.value): _SIX,
}
ALL = "all"
JurisdictionKey = Literal["england", "wales", "scotland", "all"]


@dataclass(frozen=True)
class Rule:
    record_type: RecordType
    jurisdiction: str  # a Jurisdiction value, or "all" for LA-wide records
    period: Period
    overridden: bool

    def cutoff(self, today: date) -> date:
        return self.period.cutoff(today)


class ScheduleFile(BaseModel):
    """`{"<record type>": {"england": {"years": 7}, "all": {"days": 30}}, ...}`: "all" sets
    every jurisdiction at once; a named one wins over it."""

    model_config = ConfigDict(extra="forbid")

    periods: dict[str, dict[JurisdictionKey, Period]] = Field(default_factory=dict)


class ScheduleError(ValueError):
    """The configured schedule is unusable; the message says why."""


class Schedule:
    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules

    def for_type(self, name: str) -> list[Rule]:
        return [r for r in self.rules if r.record_type.name == name]


def _jurisdictions(record_type: RecordType) -> list[str]:
    return [j.value for j in Jurisdiction] if record_type.per_jurisdiction else [ALL]


def build(overrides: ScheduleFile | None = None) -> Schedule:
    overrides = overrides or ScheduleFile()
    unknown = sorted(set(overrides.periods) - set(RECORD_TYPES))
    if unknown:
        raise ScheduleError(f"unknown record type(s) {unknown}; known: {sorted(RECORD_TYPES)}")
    rules: list[Rule] = []
    for name, record_type in RECORD_TYPES.items():
        given = overrides.periods.get(name, {})
        if not record_type.per_jurisdiction and set(given) - {ALL}:
            raise ScheduleError(f'{name} is kept LA-wide: configure it under "all" only')
        for jurisdiction in _jurisdictions(record_type):
            period = given.get(jurisdiction) or given.get(ALL)  # type: ignore[call-overload]
            minimum = STATUTORY_MINIMUM.get((name, jurisdiction))
            if period is not None and minimum is not None and not period.longer_or_equal(minimum):
                raise ScheduleError(
                    f"{name} in {jurisdiction} may not be kept less than {minimum} (the law's "
                    f"minimum); {period} was configured"
                )
            rules.append(
                Rule(
                    record_type,
                    jurisdiction,
                    period or DEFAULT_PERIODS[name],
                    overridden=period is not None,
                )
            )
    return Schedule(rules)


def load(path: str | None) -> Schedule:
    """The effective schedule: the defaults, with the file at `path` (JSON) over them."""
    if not path:
        return build()
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScheduleError(f"cannot read the retention schedule {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ScheduleError(f"the retention schedule {path} is not JSON: {exc}") from None
    try:
        overrides = ScheduleFile.model_validate(raw)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ScheduleError(f"the retention schedule {path} is not valid: {reasons}") from None
    return build(overrides)
