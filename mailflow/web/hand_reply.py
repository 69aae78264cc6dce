"""A reply written by a person: the headers the composer made for this email, the person's own text."""

from __future__ import annotations

import quopri
import re
import unicodedata

from mailflow.replies.mime import header_line, verify_header_block

MAX_TEXT = 20_000
# The composer's MIME structure is replaced; its auto-reply markers do not fit a reply a person wrote.
_DROPPED = frozenset(
    {
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "auto-submitted",
        "x-auto-response-suppress",
    }
)


def _fields(head: bytes) -> list[tuple[str, bytes]]:
    """The header block as (name, raw field bytes with its folded lines)."""
    fields: list[tuple[str, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, raw = fields[-1]
            fields[-1] = (name, raw + b"\r\n" + line)
        elif line:
            fields.append((line.split(b":", 1)[0].decode("ascii"), line))
    return fields


def hand_written(composed: bytes, text: str) -> bytes:
    """``composed`` (a reply from the composer) with ``text`` as its only, plain-text body."""
    body = clean_text_block(text)
    if not body.strip():
        raise ValueError("the reply is empty")
    head, separator, _ = composed.partition(b"\r\n\r\n")
    if not separator:
        raise ValueError("the composed reply has no header block")
    kept = [(name, raw) for name, raw in _fields(head) if name.lower() not in _DROPPED]
    block = b"".join(raw + b"\r\n" for _, raw in kept)
    block += header_line("MIME-Version", ["1.0"])
    block += header_line("Content-Type", ["text/plain;", 'charset="utf-8"'])
    block += header_line("Content-Transfer-Encoding", ["quoted-printable"])
    encoded = quopri.encodestring(body.encode("utf-8")).replace(b"\n", b"\r\n")
    data = block + b"\r\n" + encoded.rstrip(b"\r\n") + b"\r\n"
    verify_header_block(
        data, [name for name, _ in kept] + ["MIME-Version", "Content-Type", "Content-Transfer-Encoding"]
    )
    return data


def clean_text_block(text: str) -> str:
    """Line ends normalised; control, bidi-override and other invisible format characters removed."""
    lines = re.split(r"\r\n|\r|\n", unicodedata.normalize("NFC", text[:MAX_TEXT]))
    kept = (
        "".join(c for c in line if c == "\t" or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Zl", "Zp"))
        for line in lines
    )
    return "\n".join(line.rstrip() for line in kept).strip("\n") + "\n"
