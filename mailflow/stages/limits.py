"""Limits before work: what one email may cost, checked as cheaply as possible before it is parsed.

Python's email parser is slow and recursive on hostile input (measured on this machine: a ``To:`` of
30 000 addresses takes 12 s, 1 000 nested parts raise ``RecursionError``), so the size of the header
block and the nesting depth are read from the raw bytes first, with a plain line scan. An email over a
limit is refused with a ``MessageRefused`` whose reason starts with a code the desk explains
(``mailflow.web.labels.quarantine_reason``).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from mailflow.errors import UnreadableMessage

# The reason codes of quarantine, first word of the stored reason ("too_deep: nested 1000 levels…").
OVERSIZE = "oversize"
HEADER_TOO_LARGE = "header_too_large"
TOO_DEEP = "too_deep"
ENCRYPTED = "encrypted"
TOO_COSTLY = "too_costly"
POISON = "poison"
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Limits:
    message_bytes: int = 36 * 1024 * 1024
    header_bytes: int = 256 * 1024
    mime_depth: int = 20
    attachments: int = 50
    attachment_bytes: int = 30 * 1024 * 1024


class MessageRefused(UnreadableMessage):
    """An email over a limit, or one that cannot be read at all: quarantined with ``reason``."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail

    @property
    def reason(self) -> str:
        return str(self)


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def oversize_reason(size: int, limit: int) -> str:
    return f"{OVERSIZE}: {megabytes(size)}, over the limit of {megabytes(limit)}; not downloaded"


def header_block_size(raw: bytes, stop_after: int) -> int:
    """Bytes up to the blank line that ends the header block; ``stop_after + 1`` when longer than that."""
    window = raw[: stop_after + 4]
    ends = [found for found in (window.find(b"\n\n"), window.find(b"\n\r\n")) if found >= 0]
    if not ends:
        return len(raw) if len(raw) <= stop_after else stop_after + 1
    return min(ends) + 1


def header_part(raw: bytes, max_bytes: int) -> bytes:
    """The header block with its ending blank line, cut at ``max_bytes`` (as BODY[HEADER]<0.max_bytes>)."""
    size = header_block_size(raw, max_bytes)
    if size > max_bytes:
        return raw[:max_bytes]
    blank = b"\r\n" if raw[size : size + 2] == b"\r\n" else b"\n" if raw[size : size + 1] == b"\n" else b""
    return raw[: min(size + len(blank), max_bytes)]


_CONTENT_TYPE = re.compile(rb"^content-type\s*:", re.IGNORECASE)
_MULTIPART = re.compile(rb"multipart/", re.IGNORECASE)
_BOUNDARY = re.compile(rb'boundary\s*=\s*(?:"([^"\r\n]*)"|([^\s;]+))', re.IGNORECASE)
_ENCAPSULATED = re.compile(rb"^\s*message/(rfc822|global)\b", re.IGNORECASE)


def mime_depth(raw: bytes, stop_above: int) -> int:
    """How deep multiparts and forwarded messages nest, read line by line without parsing.

    Stops counting once the depth passes ``stop_above``. A boundary line closes every part opened
    inside its multipart, as the parser reads it, so broken inner parts cannot inflate the count.
    """
    stack: list[tuple[bytes, int]] = []  # (boundary, depth of the multipart that declared it)
    depth = deepest = 0
    in_header, content_type = True, b""
    for line in io.BytesIO(raw):
        if in_header:
            stripped = line.rstrip(b"\r\n")
            if stripped:
                if _CONTENT_TYPE.match(stripped):
                    content_type = stripped.split(b":", 1)[1]
                elif content_type and stripped[:1] in b" \t" and len(content_type) < 4096:
                    content_type += stripped
                else:
                    content_type = content_type if not _CONTENT_TYPE.match(stripped) else b""
                continue
            in_header = False
            if _MULTIPART.search(content_type) and (found := _BOUNDARY.search(content_type)):
                stack.append((found.group(1) or found.group(2) or b"", depth))
            elif _ENCAPSULATED.match(content_type):
                depth += 1  # the forwarded message's own header block follows at once
                in_header = True
            content_type = b""
            deepest = max(deepest, depth)
            if deepest > stop_above:
                return deepest
            continue
        if not line.startswith(b"--") or not stack:
            continue
        marker = line.rstrip()
        for index in range(len(stack) - 1, -1, -1):
            boundary, owner = stack[index]
            if marker == b"--" + boundary + b"--":
                del stack[index:]
                depth = owner
                break
            if marker == b"--" + boundary:
                del stack[index + 1 :]
                depth, in_header = owner + 1, True
                deepest = max(deepest, depth)
                break
        if deepest > stop_above:
            return deepest
    return deepest


def check_before_parsing(raw: bytes, limits: Limits) -> None:
    """Raise ``MessageRefused`` when the email is over a limit that parsing itself would suffer from."""
    if len(raw) > limits.message_bytes:
        raise MessageRefused(
            OVERSIZE, f"{megabytes(len(raw))}, over the limit of {megabytes(limits.message_bytes)}"
        )
    header = header_block_size(raw, limits.header_bytes)
    if header > limits.header_bytes:
        raise MessageRefused(
            HEADER_TOO_LARGE, f"header block over the limit of {limits.header_bytes // 1024} KB"
        )
    depth = mime_depth(raw, limits.mime_depth)
    if depth > limits.mime_depth:
        raise MessageRefused(TOO_DEEP, f"parts nested more than {limits.mime_depth} levels deep")


_ENCRYPTED_TYPES = ("multipart/encrypted", "application/pkcs7-mime", "application/x-pkcs7-mime")


def check_encrypted(content_type: str, smime_type: str | None) -> None:
    """Encrypted mail (PGP/MIME, S/MIME enveloped) cannot be read here: staff ask for a plain email.

    Signed mail is read as usual; an S/MIME ``signed-data`` blob is signed, not encrypted.
    """
    if content_type == "multipart/encrypted" or (
        content_type in _ENCRYPTED_TYPES and (smime_type or "enveloped-data").lower() != "signed-data"
    ):
        raise MessageRefused(ENCRYPTED, f"{content_type}: cannot be read without the resident's key")
