"""Case references carried, signed, in the Message-IDs of our replies.

A resident's answer names our reply in ``In-Reply-To``/``References``; only a reference whose signature
holds is trusted, so a case cannot be joined by typing or forging a reference.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

_OUR_ID = re.compile(
    r"<mailflow\.[0-9a-f]+\.(?P<ref>[a-z0-9-]+)\.(?P<sig>[0-9a-f]{16})@[^>]+>", re.IGNORECASE
)


class ThreadSigner:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the thread signing key is too short")
        self._key = key

    def _signature(self, case_ref: str) -> str:
        return hmac.new(self._key, case_ref.upper().encode(), hashlib.sha256).hexdigest()[:16]

    def token(self, case_ref: str) -> str:
        """The part of a Message-ID that names ``case_ref`` verifiably."""
        return f"{case_ref.lower()}.{self._signature(case_ref)}"

    def case_ref(self, message_ids: Iterable[str | None]) -> str | None:
        """The case named by one of our own Message-IDs among these, when its signature holds."""
        for message_id in message_ids:
            found = _OUR_ID.fullmatch((message_id or "").strip())
            if found and hmac.compare_digest(found["sig"].lower(), self._signature(found["ref"])):
                return found["ref"].upper()
        return None


def load_or_create_key(configured: str | None, path: Path) -> bytes:
    """The configured secret, else one generated once and kept in the data directory.

    Workers on several machines must share it: set ``MAILFLOW_THREAD_SECRET`` there.
    """
    if configured:
        return configured.encode()
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    # Written whole under a name of our own, then linked into place: a worker starting at the same
    # moment finds either no key or the whole key, never the empty file of one being written.
    partial = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(partial, path)
    except FileExistsError:  # another worker made it first
        return path.read_bytes().strip()
    finally:
        partial.unlink(missing_ok=True)
    return key
