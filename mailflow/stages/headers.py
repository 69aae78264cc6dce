"""Decoding of raw header values: RFC 2047 words, 8-bit bytes, addresses, message ids, dates.

Every function here returns a value for any input; what could not be decoded cleanly is reported
through the ``defects`` list the caller passes in, never by raising.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re
from datetime import UTC, datetime
from email.utils import parseaddr, parsedate_to_datetime

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?]*)\?=")
# Whitespace between two adjacent encoded words is not part of the text (RFC 2047 §6.2).
_BETWEEN_WORDS = re.compile(r"(=\?[^?\s]+\?[qQbB]\?[^?]*\?=)\s+(?==\?)")
_ASCII = codecs.lookup("ascii").name
_LATIN_1 = codecs.lookup("latin-1").name
_MSG_ID = re.compile(r"<([^<>\s]+)>")
_ANGLE_ADDRESS = re.compile(r"<\s*([^<>\s@]+@[^<>\s@]+)\s*>\s*$")
_USABLE_ADDRESS = re.compile(
    r"[^\s@<>\"(),;:\\\[\]\x00-\x1f\x7f]{1,64}@[^\s@<>\"(),;:\\\[\]\x00-\x1f\x7f]{1,253}"
)
_ADDR_SPEC = re.compile(r"[^\s<>\"'(),;:@]+@[^\s<>\"'(),;:@]+")


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, bool]:
    """Decode text bytes; returns the text and whether the declared charset had to be abandoned."""
    declared = _codec(charset)
    if declared == _ASCII:  # 8-bit text labelled ASCII is nearly always UTF-8
        declared = None
    elif declared == _LATIN_1:  # ISO-8859-1 labels routinely carry windows-1252 text
        declared = "cp1252"
    if declared:
        try:
            return data.decode(declared), False
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), declared is not None or (charset is not None and _codec(charset) is None)
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), True
    except UnicodeDecodeError:
        return data.decode("latin-1"), True


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        return codecs.lookup(charset.strip().strip("\"'")).name
    except (LookupError, ValueError):
        return None


def _from_surrogates(value: str) -> str:
    """BytesParser keeps raw 8-bit header bytes as surrogate escapes; decode them as UTF-8 or cp1252."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    data = value.encode("utf-8", errors="surrogateescape")
    return decode_bytes(data, "utf-8")[0]


def _decode_word(charset: str, encoding: str, text: str) -> str:
    if encoding in "bB":
        padded = text + "=" * (-len(text) % 4)
        try:
            data = base64.b64decode(padded, validate=False)
        except (binascii.Error, ValueError):
            data = text.encode("ascii", errors="replace")
    else:
        data = quopri.decodestring(text.replace("_", " ").encode("ascii", errors="replace"), header=False)
    return decode_bytes(data, charset.split("*", 1)[0])[0]


def decode_words(raw: str) -> str:
    """Unfold a raw value and decode its RFC 2047 words and 8-bit bytes; nothing else is changed."""
    value = re.sub(r"\r?\n(?=[ \t])", "", raw)
    value = _from_surrogates(value)
    if "=?" in value:
        value = _BETWEEN_WORDS.sub(r"\1", value)
        value = _ENCODED_WORD.sub(lambda m: _decode_word(m.group(1), m.group(2), m.group(3)), value)
    return value


def decode_header_value(raw: str) -> str:
    """A raw header value as readable text: unfolded, encoded words and 8-bit bytes decoded."""
    value = decode_words(raw)
    # Control characters have no business in a header (and could forge lines in logs or replies).
    value = "".join(ch if ch >= " " or ch == "\t" else " " for ch in value)
    return value.replace("\x7f", " ").strip()


def parse_address(raw: str | None) -> tuple[str, str]:
    """(display name, lower-cased addr-spec) of an address header; ("", "") when there is none."""
    if not raw:
        return "", ""
    unfolded = _from_surrogates(re.sub(r"\r?\n(?=[ \t])", "", raw))
    angle = _ANGLE_ADDRESS.search(unfolded)
    if angle:
        # "Name <addr>": the address in brackets is unambiguous, whatever the name holds (":" or "<" in
        # encoded words confuse parseaddr into taking a forged address from inside the name).
        name, address = unfolded[: angle.start()].strip(), angle.group(1)
    else:
        name, address = parseaddr(unfolded)
    if "@" not in address:
        found = _ADDR_SPEC.search(unfolded)
        name = unfolded.replace(found.group(0), "").strip(' <>"') if found else name
        address = found.group(0) if found else ""
    return decode_header_value(name).strip("\"' "), address.strip().lower()


def usable_address(address: str) -> bool:
    """Whether an automatic reply may go to ``address``: one plain addr-spec, no encoded word in it
    (Mailsploit hid a second address inside one), no control or space characters."""
    return bool(_USABLE_ADDRESS.fullmatch(address)) and "=?" not in address


def parse_return_path(raw: str | None) -> str | None:
    """None when absent, "" for the null sender ``<>``, else the lower-cased address."""
    if raw is None:
        return None
    value = raw.strip()
    if value in ("", "<>") or re.fullmatch(r"<\s*>", value):
        return ""
    return parse_address(value)[1] or value.strip("<> ").lower()


def message_ids(raw: str | None) -> tuple[str, ...]:
    """Every message id in a Message-ID/In-Reply-To/References value, each in angle brackets."""
    if not raw:
        return ()
    value = _from_surrogates(raw)
    if "=?" in value:
        # Some writers (Python's own email package among them) encode a long id as RFC 2047 words.
        value = decode_header_value(value)
    found = _MSG_ID.findall(value)
    if not found:
        # Broken senders omit the brackets: take each bare token that looks like an id.
        found = [token for token in re.split(r"[\s,]+", value) if "@" in token or len(token) > 8]
    return tuple(f"<{token.strip('<>')}>" for token in found if token.strip("<>"))


def parse_date(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        parsed = parsedate_to_datetime(decode_header_value(raw))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # "-0000" or no zone at all: the time is in UTC as far as we can know
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
