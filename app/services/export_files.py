"""Streaming an export: reading its rows with server-side cursors in one read-only snapshot,
and writing them as JSON text or a zip of CSV files, piece by piece.

An export is a header (its `subject` and `generated_at`) and sections, each a name, its
columns and a way to stream its rows. Nothing here holds more than one buffer of output
(`CHUNK_BYTES`) and one batch of rows (`YIELD_PER`) at a time: a child with seven years of
marks is written in the memory of a thousand rows.

The zip is written to a sink that cannot seek, so `zipfile` puts each member's sizes in a
data descriptor after it; members are zip64 because a stream cannot know its size first.
"""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import orjson
import structlog
from pydantic import BaseModel
from sqlalchemy import Executable
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import SessionFactory, is_postgresql
from app.models.base import as_utc
from app.models.subject_access import columns_of

log = structlog.get_logger("liaison.subject_access")

CHUNK_BYTES = 64 * 1024
# Rows fetched per round trip of a server-side cursor.
YIELD_PER = 1000
JSON_FILE = "subject_access.json"
README_FILE = "README.txt"
_JSON_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS

# A section's rows arrive in batches (a server-side cursor's fetch each): per-row awaits
# would cost a switch into SQLAlchemy's greenlet for every row.
Batch = list[dict[str, Any]]
Rows = Callable[[], AsyncIterator[Batch]]


@dataclass(frozen=True)
class Section:
    """One record type: its name (the JSON key, the CSV file's stem), its columns (the CSV
    header) and its rows, streamed afresh in batches on each call."""

    name: str
    description: str
    columns: tuple[str, ...]
    rows: Rows


@dataclass(frozen=True)
class Export:
    header: dict[str, Any]
    sections: list[Section]
    title: str


def section(name: str, model: type[BaseModel], rows: Rows) -> Section:
    """A section whose rows are `model`'s: its docstring describes them, its fields are the
    columns."""
    return Section(name, (model.__doc__ or "").strip(), columns_of(model), rows)


# --- reading -----------------------------------------------------------------------------


def rows_of(
    session: AsyncSession,
    statement: Executable,
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> Rows:
    """Rows of `statement` through a server-side cursor, as dicts in batches of at most
    `YIELD_PER`, read afresh per call."""

    async def rows() -> AsyncIterator[Batch]:
        result = await session.stream(statement.execution_options(yield_per=YIELD_PER))
        try:
            names = list(result.keys())
            async for partition in result.partitions():
                batch = [dict(zip(names, row, strict=True)) for row in partition]
                yield batch if keep is None else [row for row in batch if keep(row)]
        finally:
            await result.close()

    return rows


# --- writing -----------------------------------------------------------------------------


def _text(value: Any) -> str:
    """What orjson leaves to us: asyncpg's own UUID type (equal to `uuid.UUID`, not one)."""
    if isinstance(value, uuid.UUID) or type(value).__name__ == "UUID":
        return str(value)
    raise TypeError(f"{type(value).__name__} is not exported")


def dumps(value: Any) -> bytes:
    """JSON as the export writes it: times in UTC with their offset, ids as text."""
    return orjson.dumps(value, default=_text, option=_JSON_OPTIONS)


class _Sink(io.RawIOBase):
    """A write-only, unseekable file collecting what is written until it is taken."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self.size += len(chunk)
        return len(chunk)

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        self.size = 0
        return data


async def json_chunks(export: Export) -> AsyncIterator[bytes]:
    """The export as one JSON object, in chunks of about `CHUNK_BYTES`."""
    sink = _Sink()
    sink.write(b"{")
    for n, (key, value) in enumerate(export.header.items()):
        sink.write((b"," if n else b"") + dumps(key) + b":" + dumps(value))
    for section in export.sections:
        sink.write(b"," + dumps(section.name) + b":[")
        first = True
        async for batch in section.rows():
            if not batch:
                continue
            # One call for the batch: the list's brackets dropped, its commas kept.
            sink.write((b"" if first else b",") + dumps(batch)[1:-1])
            first = False
            if sink.size >= CHUNK_BYTES:
                yield sink.take()
        sink.write(b"]")
    sink.write(b"}")
    yield sink.take()


_FORMULA_STARTS = frozenset("=+-@\t\r")


def cell(value: Any) -> str:
    """A value as a CSV cell: nested values as JSON text, times in UTC, booleans as
    `true`/`false`, nothing as empty. Text that a spreadsheet would run as a formula is
    quoted with a leading apostrophe (records hold free text)."""
    kind = type(value)
    if kind is str:
        text: str = value
        return "'" + text if text[:1] in _FORMULA_STARTS else text
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is datetime:
        return as_utc(value).isoformat()
    if kind is dict or kind is list:
        return dumps(value).decode()
    if isinstance(value, Enum):
        return cell(value.value)
    if isinstance(value, str):
        return cell(str(value))
    return str(value)  # numbers, dates, ids (asyncpg's too)


def readme(export: Export) -> str:
    lines = [
        export.title,
        "",
        f"{JSON_FILE}: the whole export as JSON (the same as the API's JSON answer).",
        "Each CSV file below is one record type: one row per record, the header row naming",
        "the columns. Nested values are JSON text; times are UTC (ISO 8601); true/false are",
        "booleans; an empty cell is no value. Text starting with = + - @ is shown with a",
        "leading apostrophe so that a spreadsheet does not run it as a formula.",
        "",
    ]
    for section in export.sections:
        lines.append(f"{section.name}.csv: {section.description}")
        lines.append("  columns: " + ", ".join(section.columns))
    return "\r\n".join(lines) + "\r\n"


async def zip_chunks(export: Export) -> AsyncIterator[bytes]:
    """The export as a zip: README.txt, one CSV per section, and the JSON."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open(README_FILE, "w") as member:
            member.write(readme(export).encode())
        for section in export.sections:
            with archive.open(f"{section.name}.csv", "w", force_zip64=True) as member:
                text = io.StringIO()
                writer = csv.writer(text, lineterminator="\r\n")
                writer.writerow(section.columns)
                async for batch in section.rows():
                    writer.writerows([cell(row[c]) for c in section.columns] for row in batch)
                    if text.tell() >= CHUNK_BYTES:
                        member.write(text.getvalue().encode())
                        text.seek(0)
                        text.truncate()
                        if sink.size >= CHUNK_BYTES:
                            yield sink.take()
                member.write(text.getvalue().encode())
            if sink.size >= CHUNK_BYTES:
                yield sink.take()
        with archive.open(JSON_FILE, "w", force_zip64=True) as member:
            async for piece in json_chunks(export):
                member.write(piece)
                if sink.size >= CHUNK_BYTES:
                    yield sink.take()
    yield sink.take()


# --- the answer ----------------------------------------------------------------------------


async def _snapshot(session: AsyncSession) -> None:
    """Begin the export's one read-only snapshot. SQLite's transaction already reads one
    snapshot (WAL) from its first read to its end."""
    if is_postgresql(session):
        await session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )
    else:
        await session.connection()


async def stream(
    factory: SessionFactory,
    build: Callable[[AsyncSession], Export],
    *,
    as_zip: bool,
) -> AsyncIterator[bytes]:
    """The export's bytes, read in a session of its own (the request's has been committed
    and closed by the time a streamed body is sent). A failure part way can no longer
    change the status: it ends the stream (the client gets truncated JSON or a zip without
    its central directory) and is logged by its type alone, never with a record's values."""
    write = zip_chunks if as_zip else json_chunks
    try:
        async with factory() as session:
            await _snapshot(session)
            async for chunk in write(build(session)):
                yield chunk
    except Exception as exc:
        log.error("subject_access.stream_failed", error=type(exc).__name__)
