"""Outlook's TNEF wrapper (``winmail.dat``, ``application/ms-tnef``): the files inside it, unpacked.

Outlook sends a resident's attachments inside one opaque ``winmail.dat`` when it thinks the receiver
is Outlook too (osTicket#1212: a document inside it was lost). When ``tnefparse`` cannot read it, the
``.dat`` is kept as it is and the email says so (``tnef_unparsed``).
"""

from __future__ import annotations

import logging

TNEF_TYPES = frozenset(("application/ms-tnef", "application/vnd.ms-tnef"))
TNEF_UNPARSED = "tnef_unparsed"


def is_tnef(content_type: str, filename: str | None) -> bool:
    return content_type in TNEF_TYPES or (filename or "").strip().lower() == "winmail.dat"


def unpack_tnef(payload: bytes) -> tuple[str, list[tuple[str, bytes]]] | None:
    """(body text, [(file name, bytes)]) of a TNEF stream; None when it holds nothing readable."""
    from tnefparse import TNEF  # imported here: only the parse worker ever needs it

    logging.getLogger("tnefparse").setLevel(logging.ERROR)  # it logs every odd attribute as a warning
    try:
        tnef = TNEF(payload)
        files = [(_name(item), bytes(item.data or b"")) for item in tnef.attachments]
        body = tnef.body or b""
    except Exception:  # any error in a stranger's binary format: keep the .dat as it is
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    files = [(name, data) for name, data in files if data]
    if not files and not text.strip():
        return None
    return text, files


def _name(item) -> str:
    try:
        return str(item.long_filename() or item.name or "")
    except Exception:
        return ""
