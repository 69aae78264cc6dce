"""The embedded transport: each reply written as an ``.eml`` file instead of sent.

Used when no SMTP server is configured (development, demos, or a mail system that picks files up).
Each file appears whole or not at all, and writing the same message id again changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from mailflow.errors import TransportError
from mailflow.storage.files import write_atomically

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


def safe_file_name(message_id: str) -> str:
    """A file name from a message id: path-safe, and distinct for distinct ids."""
    bare = message_id.strip().removeprefix("<").removesuffix(">")
    name = _UNSAFE.sub("_", bare).lstrip(".")[:150]
    if name != bare or not name:
        # Cleaning may map two ids to one name: the hash of the original keeps them apart.
        name = f"{name}-{hashlib.sha256(message_id.encode('utf-8')).hexdigest()[:16]}"
    return f"{name}.eml"


class DirectoryTransport:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path_for(self, message_id: str) -> Path:
        return self.directory / safe_file_name(message_id)

    def send(self, envelope_from: str, recipients: Sequence[str], message: bytes, message_id: str) -> None:
        target = self.path_for(message_id)
        if target.exists():
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomically(target, message)
        except OSError as exc:
            raise TransportError(f"cannot write reply {message_id} to the outbox directory: {exc}") from exc
        log.info("reply %s written to %s", message_id, target.name)

    def was_delivered(self, message_id: str) -> bool:
        """Writing is atomic, so the file's presence tells for certain whether a send completed."""
        return self.path_for(message_id).exists()
