"""The small interfaces behind which every side effect lives.

Real adapters live in ``mailflow.adapters``; fakes for unit tests live in ``mailflow.adapters.fakes``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Fingerprint:
    """What picks one email out of a folder: its exact bytes. Size and Message-ID only narrow the search."""

    sha256: str
    size: int
    message_id: str | None


class Mailbox(Protocol):
    """One folder of a mailbox that mailflow empties, and the folders it files into."""

    @property
    def name(self) -> str:
        """Stable name of the mailbox and folder, used as part of the ledger key."""
        ...

    def uidvalidity(self) -> int:
        """The folder's UIDVALIDITY; when it changes, every UID seen before is meaningless."""
        ...

    def list_uids(self) -> list[int]:
        """Every message now in the folder, read or not, in ascending UID order."""
        ...

    def fetch(self, uids: Sequence[int]) -> Iterator[tuple[int, bytes]]:
        """The raw bytes of these messages without changing their flags (BODY.PEEK[]).

        UIDs that vanished in the meantime are skipped.
        """
        ...

    def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """The size in bytes of each message (IMAP RFC822.SIZE), read without fetching it.

        UIDs that vanished are left out.
        """
        ...

    def fetch_headers(self, uids: Sequence[int], max_bytes: int) -> Iterator[tuple[int, bytes]]:
        """At most the first ``max_bytes`` of each message's header block, flags unchanged.

        For emails too large to fetch: who sent them, and about what. UIDs that vanished are skipped.
        """
        ...

    def move(self, uids: Sequence[int], folder: str) -> None:
        """Move these messages into ``folder`` (created when missing), in one command where the server can.

        UIDs that are gone are skipped.
        """
        ...

    def refile(self, email: Fingerprint, target: str, look_in: Sequence[str]) -> str | None:
        """Put ``email`` into ``target`` (created when missing), taking it from the first folder of
        ``look_in`` that holds it.

        Returns that folder (``target`` itself when it was there already and nothing moved), or None
        when none of them holds it. Safe to repeat: a second call finds it in ``target``.
        """
        ...

    def delete(self, email: Fingerprint, folder: str) -> bool:
        """Remove ``email`` from ``folder`` for good (retention, erasure); False when it is not there.

        Refuses (MailboxError) the watched folder: what is still there has not been processed.
        """
        ...

    def wait_for_new_mail(self, timeout: float) -> bool:
        """Block until new mail may have arrived or ``timeout`` passes.

        Returns True when the server signalled a change. Servers without push return False after
        sleeping, so a caller can always loop on this.
        """
        ...

    def close(self) -> None: ...


class ReplyTransport(Protocol):
    """Hands a finished email to the outside world."""

    def send(self, envelope_from: str, recipients: Sequence[str], message: bytes, message_id: str) -> None:
        """Deliver ``message``; raise ``TransportError`` (``permanent`` when retrying cannot help)."""
        ...


class BlobStore(Protocol):
    """Content-addressed storage of raw emails and attachments."""

    def put(self, data: bytes) -> str:
        """Store ``data`` durably and return its SHA-256 (hex). Storing the same bytes twice is free."""
        ...

    def get(self, sha256: str) -> bytes: ...

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str) -> bool: ...
