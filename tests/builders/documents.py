"""Documents on a case: sample files of each kind (and of kinds Liaison refuses), an upload
through the API, and the bytes the filesystem store holds."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import httpx

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(20)
TEXT = b"Consent given by phone; letter to follow.\n"
WINDOWS_EXE = b"MZ\x90\x00\x03" + bytes(64) + b"This program cannot be run in DOS mode."
ELF = b"\x7fELF\x02\x01\x01" + bytes(40)
SCRIPT = b"#!/bin/sh\nrm -rf /\n"
HTML = b"<!DOCTYPE html><html><script>alert(1)</script></html>"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'


def zipped(names: dict[str, bytes], *, mimetype_first: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        if mimetype_first is not None:
            archive.writestr("mimetype", mimetype_first, compress_type=zipfile.ZIP_STORED)
        for name, data in names.items():
            archive.writestr(name, data)
    return buffer.getvalue()


DOCX = zipped({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})
ODT = zipped(
    {"content.xml": b"<office:document-content/>"},
    mimetype_first=b"application/vnd.oasis.opendocument.text",
)
ZIP = zipped({"notes.txt": b"just a zip"})


async def upload(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    case_id: str,
    data: bytes,
    *,
    filename: str = "consent.pdf",
    declared: str = "application/pdf",
    kind: str = "consent_form",
    title: str = "Signed consent form",
) -> httpx.Response:
    return await http.post(
        f"/v1/cases/{case_id}/documents",
        files={"file": (filename, data, declared)},
        data={"kind": kind, "title": title},
        headers=headers,
    )


def stored_files(root: str | Path) -> set[Path]:
    """Every file the filesystem store holds under `root`."""
    return {p for p in Path(root).rglob("*") if p.is_file()}


def content_url(document: dict[str, Any]) -> str:
    url: str = document["content_url"]
    return url
