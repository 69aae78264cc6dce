"""parse: raw RFC 5322 bytes → ParsedMessage.

Tolerant by design: malformed headers, unknown charsets and broken encodings become ``defects``,
not exceptions. Only bytes that are not an email at all raise ``UnreadableMessage``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.feedparser import BytesFeedParser
from email.message import Message

from mailflow.domain import Attachment, ParsedMessage
from mailflow.errors import UnreadableMessage
from mailflow.stages.attachments import make_attachment
from mailflow.stages.headers import (
    decode_bytes,
    decode_header_value,
    decode_words,
    message_ids,
    parse_address,
    parse_date,
    parse_return_path,
)
from mailflow.stages.html import html_to_text
from mailflow.stages.limits import TOO_DEEP, Limits, MessageRefused, check_before_parsing, check_encrypted
from mailflow.stages.text import FORWARD_MARKER
from mailflow.stages.tnef import TNEF_UNPARSED, is_tnef, unpack_tnef

_HEADER_LINE = re.compile(rb"^(From |[!-9;-~]+[ \t]*:)")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
FEED_BYTES = 1 << 20
_KNOWN_HEADERS = frozenset(
    {
        "from", "to", "cc", "subject", "date", "message-id", "received", "return-path", "mime-version",
        "content-type", "reply-to", "sender", "delivered-to", "in-reply-to", "references", "x-mailer",
    }
)  # fmt: skip
NAME_HOLDS_ADDRESS = "sender name holds an address"
MAX_DEPTH = 12
MAX_PARTS = 500


def parse(raw: bytes, limits: Limits | None = None) -> ParsedMessage:
    """``limits``: refuse (``MessageRefused``) an email over them, and leave out attachments beyond them."""
    if limits is not None:
        check_before_parsing(raw, limits)
    head, body_start, repairs = _repair_header_block(raw)
    try:
        msg = _parse_bytes(head, memoryview(raw)[body_start:])
    except RecursionError as exc:  # the parser recurses per nested part
        raise MessageRefused(TOO_DEEP, "parts nested too deeply to be read") from exc
    if limits is not None:
        check_encrypted(_content_type(msg), _param(msg, "smime-type"))
    headers, defects = _headers(msg)
    defects[:0] = repairs
    if not any(name in _KNOWN_HEADERS for name, _ in headers):
        raise UnreadableMessage("no standard email header found")

    def first(name: str) -> str | None:
        return next((value for key, value in msg.raw_items() if key.lower() == name), None)

    from_name, from_address = parse_address(first("from"))
    if "@" in from_name:  # "boss@stad.gent <x@evil>": a name made to pass for an address
        defects.append(NAME_HOLDS_ADDRESS)
    message_id = message_ids(first("message-id"))
    in_reply_to = message_ids(first("in-reply-to"))
    body = _Body(budget=_Budget.of(limits or Limits(attachments=10**9, attachment_bytes=10**18)))
    try:
        body.walk(msg, depth=0)
    except RecursionError as exc:
        raise MessageRefused(TOO_DEEP, "parts nested too deeply to be read") from exc
    defects.extend(body.defects)
    defects.extend(_defect_names(msg))
    text = body.plain_text() or body.html_text()
    return ParsedMessage(
        message_id=message_id[0] if message_id else None,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=message_ids(first("references")),
        from_name=from_name,
        from_address=from_address,
        return_path=parse_return_path(first("return-path")),
        subject=re.sub(r"\s+", " ", decode_header_value(first("subject") or "")).strip(),
        date=parse_date(first("date")),
        content_type=_content_type(msg),
        text=text,
        html=body.html[0] if body.html else None,
        headers=tuple(headers),
        attachments=tuple(body.attachments()),
        defects=tuple(dict.fromkeys(defects)),
        dropped=body.budget.notes(),
    )


def _parse_bytes(head: bytes, body: memoryview) -> Message:
    """``BytesParser.parsebytes`` of head + body, fed a megabyte at a time. ``parsebytes`` decodes the
    whole email to one string and reads it through a StringIO, which holds four bytes a character:
    a 35 MB email took about 175 MB more than this way."""
    parser = BytesFeedParser(policy=policy.default)
    parser.feed(head)
    for start in range(0, len(body), FEED_BYTES):
        parser.feed(bytes(body[start : start + FEED_BYTES]))
    return parser.close()


def _repair_header_block(raw: bytes) -> tuple[bytes, int, list[str]]:
    """Check that the bytes start with a header block and drop lines in it that are no header at all:
    (the header block as repaired with the blank line after it, where the body starts, the repairs).

    Python's parser ends the header block at the first line that is not a header, so one garbled
    line would hide every header below it; such lines are dropped instead (and reported). The body
    is not copied: a large email is held once.
    """
    if not re.search(rb"\S", raw):
        raise UnreadableMessage("empty message")
    start = re.match(rb"[\r\n\t ]*", raw).end()  # type: ignore[union-attr]
    blank = _BLANK_LINE.search(raw, start)
    head = raw[start : blank.start()] if blank else raw[start:]
    separator = blank.group() if blank else b""
    body_start = blank.end() if blank else len(raw)
    controls = sum(byte < 9 or 13 < byte < 32 for byte in head)
    if controls > max(8, len(head) // 50):
        raise UnreadableMessage("binary data in the header block")
    lines = head.splitlines(keepends=True)
    header_lines = [i for i, line in enumerate(lines) if _HEADER_LINE.match(line)]
    if not header_lines or header_lines[0] > 5:
        raise UnreadableMessage("no header block")
    kept, dropped = [], 0
    for i, line in enumerate(lines):
        if i <= header_lines[-1] and not _HEADER_LINE.match(line) and not (i and line[:1] in b" \t"):
            dropped += 1
            continue
        kept.append(line.replace(b"\x00", b""))
    defects = [f"{dropped} malformed header line(s) dropped"] if dropped else []
    return b"".join(kept) + separator, body_start, defects


def _headers(msg: Message) -> tuple[list[tuple[str, str]], list[str]]:
    headers: list[tuple[str, str]] = []
    defects: list[str] = []
    for name, value in msg.raw_items():
        key = decode_header_value(str(name)).lower()
        try:
            headers.append((key, decode_header_value(str(value))))
        except Exception as exc:  # a header we cannot read must not cost us the email
            defects.append(f"header {key}: undecodable ({type(exc).__name__})")
            headers.append((key, str(value).encode("ascii", "replace").decode("ascii")))
    return headers, defects


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "text/plain"


def _param(part: Message, name: str) -> str | None:
    try:
        value = part.get_param(name)
    except Exception:
        return None
    return value if isinstance(value, str) else None


@dataclass
class _Budget:
    """What attachments may still be read: shared by every part of one email."""

    attachments: int
    attachment_bytes: int
    over_count: int = 0
    over_bytes: int = 0
    max_attachments: int = 0
    max_bytes: int = 0
    beyond_tree: int = 0  # multiparts past MAX_DEPTH or MAX_PARTS

    @classmethod
    def of(cls, limits: Limits) -> _Budget:
        return cls(
            limits.attachments, limits.attachment_bytes, 0, 0, limits.attachments, limits.attachment_bytes
        )

    def notes(self) -> tuple[str, ...]:
        notes = []
        if self.over_count:
            notes.append(
                f"{self.over_count} attachment(s) left out: over the limit of {self.max_attachments}"
                f" attachments or {MAX_PARTS} parts"
            )
        if self.over_bytes:
            notes.append(
                f"{self.over_bytes} attachment(s) left out: over the limit of "
                f"{self.max_bytes / 1_000_000:.1f} MB in all"
            )
        if self.beyond_tree:
            notes.append(f"{self.beyond_tree} nested part(s) left out: deeper than {MAX_DEPTH} levels")
        return tuple(notes)


def _defect_names(part: Message) -> list[str]:
    return [type(defect).__name__ for defect in getattr(part, "defects", [])]


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return None
    if name is None:
        return None
    return decode_words(str(name))  # control characters are removed by clean_filename


_MACHINE_PARTS = frozenset(
    (
        "message/delivery-status",
        "message/global-delivery-status",
        "text/rfc822-headers",
        "message/disposition-notification",
        "message/feedback-report",
    )
)


class _Body:
    """Collects the text, HTML and attachments of a MIME tree, depth first, in order."""

    def __init__(self, parts_seen: int = 0, *, budget: _Budget) -> None:
        self.budget = budget
        self.plain: list[str] = []
        self.html: list[str] = []
        self.files: list[tuple[str, str, bytes]] = []  # (filename, declared type, payload)
        self.defects: list[str] = []
        self.parts_seen = parts_seen

    def plain_text(self) -> str:
        return _normalise("\n\n".join(text for text in self.plain if text.strip()))

    def html_text(self) -> str:
        return _normalise("\n\n".join(html_to_text(html) for html in self.html))

    def attachments(self) -> list[Attachment]:
        return [make_attachment(i, *found) for i, found in enumerate(self.files, start=1)]

    def walk(self, part: Message, depth: int) -> None:
        self.parts_seen += 1
        if depth > MAX_DEPTH or self.parts_seen > MAX_PARTS:
            self.defects.append("MIME tree too deep or too large: rest ignored")
            if part.is_multipart():
                self.budget.beyond_tree += 1
            else:  # an attachment (or a text) past the 500th part
                self.budget.over_count += 1
            return
        ctype = _content_type(part)
        try:
            if ctype in _MACHINE_PARTS:
                return  # the screen stage reads the report's content type; nothing reads its parts
            if ctype in ("message/rfc822", "message/global"):
                self._forwarded(part, depth)
            elif part.is_multipart():
                if ctype == "multipart/alternative":
                    self._alternative(part, depth)
                else:
                    for sub in part.get_payload():
                        self.walk(sub, depth + 1)
            else:
                self._leaf(part, ctype)
        except Exception as exc:  # one broken part must not lose the rest of the email
            self.defects.append(f"part {self.parts_seen} ({ctype}) unreadable: {type(exc).__name__}")

    def _sub(self, part: Message, depth: int) -> _Body:
        sub = _Body(self.parts_seen, budget=self.budget)
        sub.walk(part, depth + 1)
        self.parts_seen = sub.parts_seen
        self.files.extend(sub.files)
        self.defects.extend(sub.defects)
        return sub

    def _alternative(self, part: Message, depth: int) -> None:
        choices = [self._sub(sub, depth) for sub in part.get_payload()]
        # The plain-text version is what the sender typed; the HTML is kept alongside.
        chosen = next((c for c in choices if c.plain_text()), None)
        if chosen is not None:
            self.plain.extend(chosen.plain)
        elif (with_html := next((c for c in choices if c.html), None)) is not None:
            self.plain.append(with_html.html_text())
        self.html.extend(html for c in choices for html in c.html)

    def _forwarded(self, part: Message, depth: int) -> None:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(inner, Message):
            return
        sub = self._sub(inner, depth)
        lines = [FORWARD_MARKER]
        for key, value in inner.raw_items():
            if key.lower() in ("from", "date", "subject"):
                lines.append(f"{key.capitalize()}: {decode_header_value(str(value))}")
        self.plain.append("\n".join(lines) + "\n\n" + (sub.plain_text() or sub.html_text()))

    def _leaf(self, part: Message, ctype: str) -> None:
        filename = _filename(part)
        disposition = (part.get_content_disposition() or "").lower()
        if ctype.startswith("multipart/"):  # a multipart without a usable boundary: read it as text
            ctype = "text/plain"
        if filename is None and disposition != "attachment" and ctype in ("text/plain", "text/html"):
            self._text_part(part, ctype)
            return
        if self.budget.attachments <= 0:
            self.budget.over_count += 1  # not even decoded
            return
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            payload = str(part.get_payload()).encode("utf-8", "surrogateescape")
        self.defects.extend(_defect_names(part))
        if is_tnef(ctype, filename):
            unpacked = unpack_tnef(payload)
            if unpacked is not None:
                body, files = unpacked
                self.plain.append(body)
                for name, data in files:
                    self._add_file(name, "application/octet-stream", data)
                return
            self.defects.append(TNEF_UNPARSED)
        self._add_file(filename or "", ctype, payload)

    def _add_file(self, filename: str, ctype: str, payload: bytes) -> None:
        if self.budget.attachments <= 0:
            self.budget.over_count += 1
            return
        if len(payload) > self.budget.attachment_bytes:
            self.budget.over_bytes += 1
            return
        self.budget.attachments -= 1
        self.budget.attachment_bytes -= len(payload)
        self.files.append((filename, ctype, payload))

    def _text_part(self, part: Message, ctype: str) -> None:
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else str(part.get_payload()).encode("utf-8", "replace")
        try:
            charset = part.get_content_charset()
        except Exception:
            charset = None
        text, fallback = decode_bytes(data, charset)
        if fallback:
            self.defects.append(f"part {self.parts_seen}: charset {charset or 'undeclared'} not usable")
        self.defects.extend(_defect_names(part))
        (self.html if ctype == "text/html" else self.plain).append(text)


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()
