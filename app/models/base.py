"""What every table shares: constraint naming, time-ordered ids and UTC timestamps."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from datetime import UTC, datetime

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


class Timestamped(SQLModel):
    created_at: datetime = Field(default_factory=utcnow, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, nullable=False)
