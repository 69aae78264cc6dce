"""In-memory stand-ins for unit tests of code that talks to the ports."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from mailflow.errors import MailboxError
from mailflow.ports import Fingerprint
from mailflow.stages.limits import header_part


@dataclass
class FakeMailbox:
    """A ``Mailbox`` whose folders are dicts of UID -> bytes, following IMAP's UID rules.

    UIDs grow per folder and are never reused; ``change_uidvalidity`` renumbers the watched folder.
    ``fail_next`` makes the next call of an operation raise, to exercise error handling.
    """

    folder: str = "INBOX"
    validity: int = 1
    folders: dict[str, dict[int, bytes]] = field(default_factory=dict)
    moves: list[tuple[int, str]] = field(default_factory=list)  # every effective move, in order
    refiles: list[tuple[str, str]] = field(default_factory=list)  # (from, to) of every effective refile
    fetched: list[int] = field(default_factory=list)
    closed: bool = False
    _next_uid: dict[str, int] = field(default_factory=dict)
    _failures: dict[str, list[Exception]] = field(default_factory=dict)
    _arrived: bool = False
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self.folders.setdefault(self.folder, {})

    @property
    def name(self) -> str:
        return f"fake:{self.folder}"

    # The Mailbox port

    def uidvalidity(self) -> int:
        self._maybe_fail("uidvalidity")
        return self.validity

    def list_uids(self) -> list[int]:
        self._maybe_fail("list_uids")
        with self._changed:
            self._arrived = False
            return sorted(self.folders[self.folder])

    def fetch(self, uids: Sequence[int]) -> Iterator[tuple[int, bytes]]:
        self._maybe_fail("fetch")
        inbox = self.folders[self.folder]
        for uid in uids:
            if uid in inbox:
                self.fetched.append(uid)
                yield uid, inbox[uid]

    def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        self._maybe_fail("sizes")
        inbox = self.folders[self.folder]
        return {uid: len(inbox[uid]) for uid in uids if uid in inbox}

    def fetch_headers(self, uids: Sequence[int], max_bytes: int) -> Iterator[tuple[int, bytes]]:
        self._maybe_fail("fetch_headers")
        inbox = self.folders[self.folder]
        for uid in uids:
            if uid in inbox:
                yield uid, header_part(inbox[uid], max_bytes)

    def move(self, uids: Sequence[int], folder: str) -> None:
        self._maybe_fail("move")
        with self._changed:
            for uid in uids:
                data = self.folders[self.folder].pop(uid, None)
                if data is not None:
                    self._store(folder, data)
                    self.moves.append((uid, folder))

    def refile(self, email: Fingerprint, target: str, look_in: Sequence[str]) -> str | None:
        self._maybe_fail("refile")
        with self._changed:
            for folder in look_in:
                messages = self.folders.get(folder, {})
                for uid, data in sorted(messages.items()):
                    if hashlib.sha256(data).hexdigest() != email.sha256:
                        continue
                    if folder != target:
                        self._store(target, messages.pop(uid))
                        self.refiles.append((folder, target))
                    return folder
            return None

    def delete(self, email: Fingerprint, folder: str) -> bool:
        self._maybe_fail("delete")
        if folder == self.folder:
            raise MailboxError(f"refusing to delete from the watched folder {folder}")
        with self._changed:
            messages = self.folders.get(folder, {})
            for uid, data in sorted(messages.items()):
                if hashlib.sha256(data).hexdigest() == email.sha256:
                    del messages[uid]
                    return True
            return False

    def wait_for_new_mail(self, timeout: float) -> bool:
        self._maybe_fail("wait_for_new_mail")
        with self._changed:
            arrived = self._changed.wait_for(lambda: self._arrived, timeout=max(timeout, 0))
            self._arrived = False
            return arrived

    def close(self) -> None:
        self.closed = True

    # Test helpers

    def append(self, folder: str, data: bytes) -> int:
        with self._changed:
            uid = self._store(folder, data)
            if folder == self.folder:
                self._arrived = True
                self._changed.notify_all()
            return uid

    def messages(self, folder: str) -> list[bytes]:
        return [data for _uid, data in sorted(self.folders.get(folder, {}).items())]

    def change_uidvalidity(self) -> int:
        """Renumber the watched folder's messages under a new UIDVALIDITY, as a server rebuild would."""
        with self._changed:
            self.validity += 1
            old = self.folders[self.folder]
            self.folders[self.folder] = {}
            for _uid, data in sorted(old.items()):
                self._store(self.folder, data)
            return self.validity

    def fail_next(self, operation: str, error: Exception | None = None) -> None:
        """Make the next call of ``operation`` (e.g. "move") raise ``error`` (a MailboxError by default)."""
        self._failures.setdefault(operation, []).append(error or MailboxError(f"{operation} failed"))

    def _maybe_fail(self, operation: str) -> None:
        pending = self._failures.get(operation)
        if pending:
            raise pending.pop(0)

    def _store(self, folder: str, data: bytes) -> int:
        uid = self._next_uid.get(folder, 1)
        self._next_uid[folder] = uid + 1
        self.folders.setdefault(folder, {})[uid] = data
        return uid
