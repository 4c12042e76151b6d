"""What every table shares (constraint naming, time-ordered ids and UTC timestamps), and what
every request body shares: text the database can store, finite numbers, dates as dates."""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from datetime import UTC, date, datetime
from datetime import time as time_of_day
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    GetCoreSchemaHandler,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import core_schema
from sqlmodel import Field, SQLModel

# Set before any table is defined, so constraint names are deterministic in every
# migration and SQLite batch operations can find them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


_id_lock = threading.Lock()
_last_millis = 0
_sequence = 0


def new_id() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): time-ordered, so lists page by id in creation order.

    Ids made in the same millisecond stay ordered through a 12-bit counter in `rand_a`
    (RFC 9562 §6.2, method 1) that starts at a random point in its lower half.
    """
    global _last_millis, _sequence
    millis = time.time_ns() // 1_000_000
    with _id_lock:
        if millis <= _last_millis:
            millis = _last_millis
            _sequence += 1
            if _sequence > 0xFFF:
                millis += 1
                _sequence = secrets.randbelow(0x800)
        else:
            _sequence = secrets.randbelow(0x800)
        _last_millis = millis
        sequence = _sequence
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= sequence << 64
    value |= 0b10 << 62
    value |= secrets.randbits(62)
    return uuid.UUID(int=value)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite hands them back naive)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# A stored time as it is read back: aware, in UTC (SQLite hands times back naive).
Moment = Annotated[datetime, AfterValidator(as_utc)]

R = TypeVar("R", bound=BaseModel)


def shown_as(read_model: type[R], row: SQLModel, **computed: Any) -> R:
    """A row as its read model: the row's columns, validated into the model, and the fields
    computed for it. The one way a row is presented."""
    columns = {name: getattr(row, name) for name in type(row).model_fields}
    return read_model.model_validate({**columns, **computed})


class Timestamped(SQLModel):
    created_at: datetime = Field(default_factory=utcnow, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, nullable=False)


# --- input ---------------------------------------------------------------------------------

UNSTORABLE_TEXT = "text may not hold NUL (U+0000) or unpaired surrogates (U+D800 to U+DFFF)"
_SURROGATE = re.compile("[\ud800-\udfff]")


def unstorable(text: str) -> bool:
    """Whether PostgreSQL would refuse `text`: no text column takes a NUL, and a lone
    surrogate (which JSON's `\\ud800` escapes can make) is not UTF-8 at all. Cheap for
    ASCII, which most text is: the surrogate search runs only on the rest."""
    return "\x00" in text or (not text.isascii() and _SURROGATE.search(text) is not None)


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        if unstorable(value):
            raise ValueError(UNSTORABLE_TEXT)
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key)
            _storable(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _storable(item)
    elif isinstance(value, BaseModel) and not isinstance(value, InputModel):
        _storable(value.__dict__)
    return value


class InputModel(BaseModel):
    """The base of every request body: its text, at any depth (dict keys too), is text
    PostgreSQL can store, and its numbers are finite (Python's `json` reads `NaN` and
    `Infinity`). A refusal names its field, so a roster row or a feed record is rejected
    alone, with its reason."""

    model_config = ConfigDict(allow_inf_nan=False)

    @field_validator("*")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return _storable(value)


# Dates come as ISO 8601 text only: pydantic would otherwise read a number, or a numeric
# string such as `0` or `1700000000`, as a Unix time (and `?on=0` as 1 January 1970). Their
# years fall in a window wide enough for any record here and far from the ends of Python's
# calendar (years 1 and 9999), where date arithmetic (an academic year's start, the day
# after a range, a shift to UTC) would fail.
EARLIEST_YEAR, LATEST_YEAR = 1900, 2999
_YEAR = "(19|2[0-9])[0-9]{2}"
_TIME = "[0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,9})?)?"
_OFFSET = "([Zz]|[+-][0-9]{2}:[0-9]{2})"
_YEARS = f"in the years {EARLIEST_YEAR} to {LATEST_YEAR}"


class _IsoText:
    """Text of one ISO 8601 shape, parsed as pydantic parses it; a value of the type itself
    (a `date` built in Python) passes as it is. A pattern rather than a Python validator:
    it runs inside pydantic-core, so checking every mark of a 50,000-mark push costs
    almost nothing."""

    def __init__(self, pattern: str, message: str) -> None:
        self.pattern = f"^{pattern}$"
        self.message = message

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        parsed = handler(source)
        return core_schema.union_schema(
            [
                core_schema.chain_schema([core_schema.str_schema(pattern=self.pattern), parsed]),
                {**parsed, "strict": True},
            ],
            mode="left_to_right",
            custom_error_type="iso_8601",
            custom_error_message=self.message,
        )


IsoDate = Annotated[
    date,
    _IsoText(
        _YEAR + "-[0-9]{2}-[0-9]{2}", f"must be a date as ISO 8601 text, YYYY-MM-DD, {_YEARS}"
    ),
    WithJsonSchema({"type": "string", "format": "date"}),
]
IsoDatetime = Annotated[
    datetime,
    _IsoText(
        f"{_YEAR}-[0-9]{{2}}-[0-9]{{2}}[Tt]{_TIME}{_OFFSET}?",
        f"must be a date and time as ISO 8601 text, YYYY-MM-DDTHH:MM[:SS[.f]][Z|+HH:MM], {_YEARS}",
    ),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
IsoAwareDatetime = Annotated[
    AwareDatetime,
    _IsoText(
        f"{_YEAR}-[0-9]{{2}}-[0-9]{{2}}[Tt]{_TIME}{_OFFSET}",
        f"must be a date and time as ISO 8601 text with its offset, "
        f"YYYY-MM-DDTHH:MM[:SS[.f]](Z|+HH:MM), {_YEARS}",
    ),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
# A time of day, as the Open Referral UK profile writes it (`10:00:00`): JSON Schema's
# `format: time` would demand an offset, which the profile's own examples leave out.
IsoTime = Annotated[
    time_of_day,
    _IsoText(f"{_TIME}{_OFFSET}?", "must be a time of day as ISO 8601 text, HH:MM[:SS[.f]]"),
    WithJsonSchema({"type": "string", "pattern": f"^{_TIME}{_OFFSET}?$", "examples": ["09:30:00"]}),
]
