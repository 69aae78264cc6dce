"""Read a delivery-failure report: which of our replies bounced, and whether for good.

Hard bounces of our own replies feed the suppression list, so an address that does not exist is not
written to again.
"""

from __future__ import annotations

import email
import email.policy
import re
from email.message import Message

from mailflow.domain import BounceReport

_STATUS = re.compile(rb"^\s*Status:\s*([245])\.\d{1,3}\.\d{1,3}", re.IGNORECASE | re.MULTILINE)
_ACTION_FAILED = re.compile(rb"^\s*Action:\s*failed", re.IGNORECASE | re.MULTILINE)
_SMTP_PERMANENT = re.compile(rb"\b5[0-5]\d[\s-]+5\.\d{1,3}\.\d{1,3}\b")


def read_bounce(raw: bytes, own_domain: str) -> BounceReport:
    """Never raises: a report it cannot read is simply not hard and names nothing."""
    ours = re.compile(rb"<mailflow\.[A-Za-z0-9.-]+@" + re.escape(own_domain.encode()) + rb">", re.IGNORECASE)
    ids = tuple(dict.fromkeys(m.decode("ascii", "replace") for m in ours.findall(raw)))
    return BounceReport(hard=_is_permanent(raw), our_message_ids=ids)


def _is_permanent(raw: bytes) -> bool:
    try:
        report = email.message_from_bytes(raw, policy=email.policy.compat32)
        statuses = [
            _status_of(part) for part in report.walk() if part.get_content_type() == "message/delivery-status"
        ]
    except Exception:  # a malformed report: fall back to the text
        statuses = []
    found = [s for s in statuses if s is not None]
    if found:
        return any(found)
    status = _STATUS.search(raw)
    if status:
        return status.group(1) == b"5"
    return bool(_ACTION_FAILED.search(raw) or _SMTP_PERMANENT.search(raw))


def _status_of(part: Message) -> bool | None:
    """True for a permanent failure (5.x.x or Action: failed), False for a delay, None when unsaid."""
    payload = part.get_payload()
    blocks = payload if isinstance(payload, list) else []
    text = b"".join(bytes(block) for block in blocks) if blocks else part.as_bytes()
    status = _STATUS.search(text)
    if status:
        return status.group(1) == b"5"
    return True if _ACTION_FAILED.search(text) else None
