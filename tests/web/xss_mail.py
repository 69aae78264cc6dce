"""Emails that carry XSS vectors in every place a resident controls and the desk shows.

Each email carries a group of vectors, every one of them four times: in its HTML body, its subject,
its sender's display name and as the file name of an attachment of its own. The MIME is written by
hand so that each vector arrives exactly as listed, whatever it holds (quotes, angle brackets, line
breaks): headers as RFC 2047 encoded words, file names as RFC 2231 ``filename*`` parameters, the HTML
body in base64.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import quote

from tests.web.emails import AUTHSERV

SENDER = "xss.sender@example.com"
MARKER = "xssbatch"  # a word in every subject, so that one search finds them all
_BOUNDARY, _ALTERNATIVE = "=_mixed_boundary_xss", "=_alternative_boundary_xss"
_BLANK_DOCUMENT = base64.b64encode(b"\x00\x01\x02\x03").decode()  # no text: nothing to read in it


def encoded_words(text: str, prefix: str = "") -> str:
    """``text`` as a folded run of UTF-8 base64 encoded words (whitespace between them is dropped)."""
    words = ["=?utf-8?b?" + base64.b64encode(chunk).decode() + "?=" for chunk in _chunks(text.encode())]
    return prefix + "\r\n ".join(words)


def _chunks(data: bytes, size: int = 45) -> Iterator[bytes]:
    """Pieces of at most ``size`` bytes, cut between characters: an encoded word holds whole ones."""
    start = 0
    while start < len(data):
        end = min(start + size, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # a UTF-8 continuation byte
            end -= 1
        yield data[start:end]
        start = end


def _base64_lines(data: bytes) -> str:
    encoded = base64.b64encode(data).decode()
    return "\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def vector_email(number: int, vectors: Sequence[str], when: datetime | None = None) -> bytes:
    html = "\n".join(vectors)
    parts = [
        f"--{_BOUNDARY}",
        f'Content-Type: multipart/alternative; boundary="{_ALTERNATIVE}"',
        "",
        f"--{_ALTERNATIVE}",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Goedendag, ik wil mijn verblijfskaart vernieuwen. Ik kreeg een uitnodigingsbrief.",
        f"--{_ALTERNATIVE}",
        "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: base64",
        "",
        _base64_lines(html.encode("utf-8")),
        f"--{_ALTERNATIVE}--",
    ]
    for vector in vectors:
        parts += [
            f"--{_BOUNDARY}",
            "Content-Type: application/octet-stream",
            # "doc " first: a name in angle brackets whole would lose them to the email parser, which
            # reads "<...>" as quoting (email.utils.unquote); a vector must reach the desk as sent.
            "Content-Disposition: attachment; filename*=utf-8''" + quote(f"doc {vector}", safe=""),
            "Content-Transfer-Encoding: base64",
            "",
            _BLANK_DOCUMENT,  # the same bytes each time: one blob in the store
        ]
    parts.append(f"--{_BOUNDARY}--")
    headers = [
        f"Authentication-Results: {AUTHSERV}; dmarc=fail header.from=example.com",
        encoded_words(" ".join(vectors), "From: ") + f" <{SENDER}>",
        "To: migratie@stad.gent",
        f"Subject: {MARKER} {number:03d} " + encoded_words(" | ".join(vectors)),
        f"Date: {format_datetime(when or datetime.now(UTC))}",
        f"Message-ID: <xss-{number:03d}@example.com>",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{_BOUNDARY}"',
    ]
    return ("\r\n".join(headers) + "\r\n\r\n" + "\r\n".join(parts) + "\r\n").encode("utf-8")


def grouped(vectors: Sequence[str], size: int) -> list[Sequence[str]]:
    return [vectors[i : i + size] for i in range(0, len(vectors), size)]
