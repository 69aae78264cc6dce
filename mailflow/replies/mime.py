"""The bytes of an outgoing reply, built without trusting the email package with header text.

Python 3.11.7's email package re-parses the header values it is given: an RFC 2047 word that decodes
to CR LF turns into a real line break when the header is folded (CVE-2024-6923). So text that came
from an incoming email is cleaned here first, every header is encoded and folded by hand, and the
finished header block is checked line by line before anything leaves this module.
"""

from __future__ import annotations

import base64
import quopri
import re
import unicodedata
from collections.abc import Collection, Sequence
from email import policy
from email.parser import BytesHeaderParser

# Directional overrides and marks can make a subject read differently from what it says.
_INVISIBLE = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
# Whitespace between two adjacent encoded words is not part of the text (RFC 2047, section 6.2).
_BETWEEN_WORDS = re.compile(r"(?<=\?=)\s+(?==\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_HEADER_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+):")
_MAX_PLAIN_WORD = 70
# 42 bytes of UTF-8 → 56 base64 characters → a 68-character encoded word: "Subject: " + word ≤ 78.
_ENCODED_CHUNK_BYTES = 42
_LINE_LIMIT = 78


class UnsafeHeaderError(ValueError):
    """The serialized header block is not exactly the headers mailflow meant to write."""


def _decode_word(match: re.Match[str]) -> str:
    charset, encoding, payload = match.groups()
    if encoding in "bB":
        try:
            data = base64.b64decode(payload + "=" * (-len(payload) % 4))
        except ValueError:
            return match.group(0)
    else:
        data = quopri.decodestring(payload.replace("_", " ").encode("ascii", errors="replace"), header=False)
    try:
        return data.decode(charset.split("*", 1)[0], errors="replace")
    except LookupError:
        return data.decode("latin-1")


def decode_encoded_words(value: str) -> str:
    """Decode RFC 2047 words (nested ones too, a few levels deep); leave anything else as it is."""
    for _ in range(3):
        decoded = _ENCODED_WORD.sub(_decode_word, _BETWEEN_WORDS.sub("", value))
        if decoded == value:
            break
        value = decoded
    return value


def clean_text(value: str) -> str:
    """One line of plain text: encoded words decoded, line breaks and control characters removed."""
    value = unicodedata.normalize("NFC", decode_encoded_words(value))
    kept = []
    for char in value:
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp") or char.isspace():
            kept.append(" ")
        elif category != "Cs" and char not in _INVISIBLE:
            kept.append(char)
    return " ".join("".join(kept).split())


def is_printable_ascii(value: str) -> bool:
    return _PRINTABLE_ASCII.fullmatch(value) is not None


def text_tokens(text: str) -> list[str]:
    """Tokens for an unstructured header: plain words when that is safe, else base64 encoded words."""
    text = clean_text(text)
    words = text.split(" ")
    if is_printable_ascii(text) and "=?" not in text and all(len(word) <= _MAX_PLAIN_WORD for word in words):
        return words
    tokens, chunk = [], ""
    for char in text:
        if chunk and len((chunk + char).encode("utf-8")) > _ENCODED_CHUNK_BYTES:
            tokens.append(_encoded_word(chunk))
            chunk = ""
        chunk += char
    if chunk:
        tokens.append(_encoded_word(chunk))
    return tokens


def _encoded_word(chunk: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(chunk.encode("utf-8")).decode("ascii") + "?="


def phrase_token(display_name: str) -> list[str]:
    """A display name as header tokens: atoms, a quoted string, or encoded words."""
    name = clean_text(display_name)
    if re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*", name) and "=?" not in name:
        return name.split(" ")
    if is_printable_ascii(name) and "=?" not in name and len(name) <= _MAX_PLAIN_WORD:
        return ['"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"']
    return text_tokens(name)


def header_line(name: str, tokens: Sequence[str]) -> bytes:
    """``Name: tokens…`` folded between tokens so that lines stay short; tokens must be ASCII."""
    line, lines = f"{name}:", []
    for token in tokens:
        if not is_printable_ascii(token) or " " in token:
            raise UnsafeHeaderError(f"header {name} got a token that is not one printable ASCII word")
        if len(line) + 1 + len(token) > _LINE_LIMIT and line.strip() != f"{name}:":
            lines.append(line)
            line = ""
        line += " " + token
    lines.append(line)
    return "\r\n".join(lines).encode("ascii") + b"\r\n"


def _quoted_printable(text: str) -> bytes:
    normal = text.replace("\r\n", "\n").replace("\r", "\n")
    return quopri.encodestring(normal.encode("utf-8")).replace(b"\n", b"\r\n")


def build_message(headers: Sequence[tuple[str, Sequence[str]]], text: str, html: str, boundary: str) -> bytes:
    """A multipart/alternative message with these headers and a text and an HTML part.

    ``boundary`` should contain ``=_``, which quoted-printable output can never contain.
    """
    if not re.fullmatch(r"[A-Za-z0-9'()+_,./:=?-]{1,69}", boundary):
        raise ValueError("invalid MIME boundary")
    head = b"".join(header_line(name, tokens) for name, tokens in headers)
    head += header_line("MIME-Version", ["1.0"])
    head += header_line("Content-Type", ["multipart/alternative;", f'boundary="{boundary}"'])
    delimiter = b"--" + boundary.encode("ascii")
    body = b""
    for subtype, content in (("plain", text), ("html", html)):
        body += (
            delimiter
            + b"\r\nContent-Type: text/"
            + subtype.encode("ascii")
            + b'; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
            + _quoted_printable(content).rstrip(b"\r\n")
            + b"\r\n"
        )
    return head + b"\r\n" + body + delimiter + b"--\r\n"


def verify_header_block(data: bytes, expected: Collection[str]) -> None:
    """Raise ``UnsafeHeaderError`` unless the top-level headers are exactly ``expected`` (by name).

    Checks the bytes themselves (no bare CR or LF, no 8-bit bytes, no overlong lines) and then what
    Python's own parser makes of them, so that a mistake in either the encoder or the parser's view
    is caught before the message is stored or sent.
    """
    head, separator, _ = data.partition(b"\r\n\r\n")
    if not separator:
        raise UnsafeHeaderError("message has no header/body separator")
    lines = head.split(b"\r\n")
    names: list[str] = []
    for line in lines:
        if b"\r" in line or b"\n" in line:
            raise UnsafeHeaderError("bare CR or LF in the header block")
        if len(line) > 998 or re.search(rb"[^\x20-\x7e\t]", line):
            raise UnsafeHeaderError("overlong line or non-printable byte in the header block")
        if line[:1] in (b" ", b"\t"):
            if not names or not line.strip():
                raise UnsafeHeaderError("continuation line without a header, or a blank one")
            continue
        match = _HEADER_NAME.match(line)
        if match is None:
            raise UnsafeHeaderError("a header line without a name")
        names.append(match.group(1).decode("ascii").lower())
    wanted = sorted(name.lower() for name in expected)
    if sorted(names) != wanted:
        raise UnsafeHeaderError(f"header names {sorted(names)} differ from the expected {wanted}")
    parsed = BytesHeaderParser(policy=policy.default).parsebytes(data)  # the headers are what is checked
    if sorted(key.lower() for key in parsed) != wanted:
        raise UnsafeHeaderError("the email parser sees other headers than were written")
    for key, value in parsed.items():
        if re.search(r"[\x00-\x1f\x7f]", str(value)):
            raise UnsafeHeaderError(f"header {key} decodes to control characters")
