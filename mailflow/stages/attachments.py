"""Attachment values: a clean display name, a generated storage name and a sniffed type.

The sender's file name is only ever shown, never used to store or to decide the type: it can carry
paths, control characters, right-to-left overrides and misleading extensions.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import filetype

from mailflow.domain import Attachment

MAX_FILENAME_CHARS = 200
_TEXT_CONTROLS = frozenset("\t\n\r\f")
_OFFICE_CONTAINERS = frozenset(("application/zip", "application/x-cfb", "application/x-ole-storage"))
_EXTENSIONS = {"text/plain": ".txt", "application/octet-stream": ".bin"}


def clean_filename(name: str) -> str:
    """The last path component, without control or format characters, trimmed to a sane length."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    # Cc: control characters; Cf: format characters such as U+202E, used to disguise extensions.
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf"))
    name = re.sub(r"\s+", " ", unicodedata.normalize("NFC", name)).strip(" .")
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: MAX_FILENAME_CHARS - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else name
        name = name[:MAX_FILENAME_CHARS]
    return name


def mixed_scripts(name: str) -> bool:
    """Whether the letters of ``name`` come from more than one alphabet: "раspoort" with a Cyrillic
    "р" looks like "paspoort" (Unicode TR#39). Only a warning: a name in two alphabets can be honest."""
    stem = name.rsplit(".", 1)[0] if "." in name else name  # "Ελληνικά.pdf" is honest
    scripts = {unicodedata.name(ch, "?").split(" ", 1)[0] for ch in stem if ch.isalpha()}
    return len(scripts) > 1


def type_mismatch(declared: str, sniffed: str) -> bool:
    """Whether the content is not what the email said it was (a "PDF" that is a zip, an executable…)."""
    declared = declared.lower().strip()
    if declared in ("", "application/octet-stream") or declared == sniffed:
        return False
    if sniffed in _OFFICE_CONTAINERS and declared.startswith(("application/vnd.", "application/msword")):
        return False  # Office files are zip or OLE containers underneath
    if sniffed == "text/plain":
        return not (declared.startswith("text/") or declared.endswith(("json", "xml", "csv")))
    return declared.split("/", 1)[0] != sniffed.split("/", 1)[0] or declared.startswith("application/")


def sniff(payload: bytes) -> tuple[str, str]:
    """(MIME type, extension with dot) from the content alone."""
    kind = filetype.guess(payload[:8192]) if payload else None
    if kind is not None:
        return kind.mime, f".{kind.extension}"
    mime = "text/plain" if looks_like_text(payload) else "application/octet-stream"
    return mime, _EXTENSIONS[mime]


def looks_like_text(payload: bytes) -> bool:
    if not payload:
        return False
    sample = payload[:65536]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # a cut multi-byte sequence at the end is no evidence
            try:
                text = sample.decode("cp1252")
            except UnicodeDecodeError:
                return False
        else:
            text = sample[: exc.start].decode("utf-8")
    return not any(unicodedata.category(ch) == "Cc" and ch not in _TEXT_CONTROLS for ch in text)


def make_attachment(index: int, filename: str, declared_type: str, payload: bytes) -> Attachment:
    digest = hashlib.sha256(payload).hexdigest()
    sniffed, extension = sniff(payload)
    return Attachment(
        filename=clean_filename(filename),
        storage_name=f"{index:02d}-{digest[:16]}{extension}",
        declared_type=declared_type,
        sniffed_type=sniffed,
        size=len(payload),
        sha256=digest,
        payload=payload,
    )
