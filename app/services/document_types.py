"""What a document is, judged from its bytes alone (never from the name or the media type a
client declared), against the allow-list of what Liaison keeps: PDF, PNG, JPEG, plain
UTF-8 text, Word (DOCX) and OpenDocument text (ODT).

Everything else is refused with a reason: executables (Windows `MZ`, ELF, Mach-O, a
script's `#!`), markup a browser would run (HTML, SVG, XML), other zip files, and anything
not recognised. A DOCX or ODT is a zip: only its list of names (and ODT's small `mimetype`
entry) is read, never anything is extracted, so a zip bomb costs nothing.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
TEXT = "text/plain"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT = "application/vnd.oasis.opendocument.text"

# The extension a download's file name ends with, by detected type.
EXTENSIONS = {PDF: ".pdf", PNG: ".png", JPEG: ".jpg", TEXT: ".txt", DOCX: ".docx", ODT: ".odt"}
ALLOWED = frozenset(EXTENSIONS)

# Media types a client may declare without claiming anything about the content.
NO_CLAIM = frozenset({"", "application/octet-stream", "binary/octet-stream"})
# What clients also call the allowed types.
_ALIASES = {"image/jpg": JPEG, "image/pjpeg": JPEG, "application/x-pdf": PDF}

_EXECUTABLES: tuple[tuple[bytes, str], ...] = (
    (b"MZ", "a Windows executable"),
    (b"\x7fELF", "an ELF executable"),
    (b"\xfe\xed\xfa\xce", "a Mach-O executable"),
    (b"\xfe\xed\xfa\xcf", "a Mach-O executable"),
    (b"\xce\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xca\xfe\xba\xbe", "a Mach-O universal binary or Java class"),
    (b"#!", "a script"),
)
# Text that is not plain: control characters other than tab, line feed, form feed and
# carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_ODT_MIMETYPE = ODT.encode()


@dataclass(frozen=True)
class Refused:
    """Why the bytes are not a document Liaison keeps."""

    reason: str


def detect(data: bytes) -> str | Refused:
    """The allowed media type of `data`, or why it is refused."""
    if not data:
        return Refused("the document is empty")
    for magic, what in _EXECUTABLES:
        if data.startswith(magic):
            return Refused(f"the content is {what}")
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"PK\x03\x04"):
        return _zip_kind(data)
    return _text_kind(data)


def _zip_kind(data: bytes) -> str | Refused:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if names and names[0] == "mimetype":
                info = archive.getinfo("mimetype")
                if info.file_size <= 100 and archive.read("mimetype") == _ODT_MIMETYPE:
                    return ODT
    except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError, RuntimeError):
        return Refused("the content is a damaged zip file")
    if "[Content_Types].xml" in names and any(n.startswith("word/") for n in names):
        return DOCX
    return Refused("the content is a zip file that is not a Word or OpenDocument text document")


def _text_kind(data: bytes) -> str | Refused:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Refused("the content is of a type Liaison does not keep")
    if _CONTROL.search(text):
        return Refused("the content is not plain text (it holds control characters)")
    start = text.lstrip("\ufeff \t\r\n\f").lower()
    if start.startswith("<"):
        # HTML, SVG or any XML: a browser may run scripts in it.
        return Refused("the content is markup (HTML, SVG or XML), which Liaison does not keep")
    return TEXT


def declared_type(content_type: str | None) -> str:
    """The media type a client declared, without parameters, lower case, aliases resolved."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(media, media)


_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()-]+")


def safe_filename(name: str | None, media_type: str) -> str:
    """A file name safe for a `Content-Disposition` header and any file system: the last
    part of the client's name, in ASCII letters, digits and `._ ()-`, at most 120
    characters, ending with the extension of the detected type."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    base = _UNSAFE.sub("_", base).strip(" ._") or "document"
    extension = EXTENSIONS[media_type]
    if media_type == JPEG and base.lower().endswith(".jpeg"):
        extension = ".jpeg"
    stem = base[: -len(extension)] if base.lower().endswith(extension) else base
    return f"{stem[: 120 - len(extension)]}{extension}"
