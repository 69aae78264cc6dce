"""Parts that keep an email from any automatic answer: calendar messages and archives.

A calendar message (iMIP, ``text/calendar``) is an appointment accepted, declined, moved or cancelled
by a calendar program: answering it automatically can loop with the program, and a CANCEL or a declined
REPLY is a resident cancelling an appointment, which a person handles. An archive (zip, rar, 7z…) is
stored as it came and never opened by the worker (zip bombs, CVE-2024-0450): what is inside it may be
the very document a case needs, so a person looks.
"""

from __future__ import annotations

import re

from mailflow.domain import Attachment

CALENDAR_TYPES = frozenset(("text/calendar", "application/ics"))
ARCHIVE_TYPES = frozenset(
    (
        "application/zip",
        "application/x-zip-compressed",
        "application/x-rar-compressed",
        "application/vnd.rar",
        "application/x-7z-compressed",
        "application/gzip",
        "application/x-tar",
        "application/x-bzip2",
        "application/x-xz",
        "application/zstd",
        "application/x-lzip",
    )
)
_METHOD = re.compile(rb"^METHOD:[ \t]*([A-Za-z-]{1,20})[ \t]*\r?$", re.MULTILINE)


def calendar_method(attachments: tuple[Attachment, ...]) -> str | None:
    """The iCalendar METHOD of the first calendar part (``"PUBLISH"`` when it names none), else None."""
    for attachment in attachments:
        declared = attachment.declared_type.lower()
        if declared in CALENDAR_TYPES or attachment.filename.lower().endswith(".ics"):
            found = _METHOD.search(attachment.payload[:65536])
            return found.group(1).decode("ascii").upper() if found else "PUBLISH"
    return None


def archives(attachments: tuple[Attachment, ...]) -> int:
    """How many attachments are archives, by their content (or by what they claim to be)."""
    return sum(
        attachment.sniffed_type in ARCHIVE_TYPES or attachment.declared_type.lower() in ARCHIVE_TYPES
        for attachment in attachments
    )
