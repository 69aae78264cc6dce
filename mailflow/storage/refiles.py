"""The ledger's side of refiling: which filed emails' outcomes changed, who refiles each, where it went.

A person's decision in the desk or a successful retry changes an email's status, nothing more: the
desk holds no IMAP credentials. ``status`` says where the email belongs, ``folder`` where it was last
filed; where the two differ, the worker's next cycle moves it (``mailflow.ingest``). Claims use the
ledger's lease, so of several workers only one refiles an email, and a crashed one's claim expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select, update

from mailflow.audit import lock_chain
from mailflow.domain import Status
from mailflow.ports import Fingerprint
from mailflow.storage.ledger import Ledger
from mailflow.storage.models import Event, Message

FILED = tuple(status for status in Status if status is not Status.RECEIVED)


@dataclass(frozen=True)
class Misfiled:
    """An email filed in the folder of an outcome that has changed since."""

    message_pk: int
    folder: str  # where it was filed
    status: Status  # its outcome now
    email: Fingerprint

    @property
    def target(self) -> str:
        return self.status.folder


class Refiles:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def misfiled(self, limit: int) -> list[Misfiled]:
        """Filed emails whose folder is not their outcome's any more, and that no worker is refiling."""
        now = self.ledger.clock()
        with self.ledger.sessions() as session:
            rows = session.execute(
                select(
                    Message.id,
                    Message.folder,
                    Message.status,
                    Message.sha256,
                    Message.size,
                    Message.message_id,
                )
                .where(
                    Message.moved_at.is_not(None),
                    Message.folder.is_not(None),  # None: lost, not looked for again
                    or_(*(and_(Message.status == s, Message.folder != s.folder) for s in FILED)),
                    or_(Message.lease_owner.is_(None), Message.lease_until <= now),
                )
                .order_by(Message.id)
                .limit(limit)
            ).all()
        return [
            Misfiled(pk, folder, Status(status), Fingerprint(sha256, size, message_id))
            for pk, folder, status, sha256, size, message_id in rows
        ]

    def claim(self, item: Misfiled) -> bool:
        """Take the email for refiling, unless its folder or outcome changed or another worker has it."""
        now = self.ledger.clock()
        with self.ledger.sessions.begin() as session:
            taken = session.execute(
                update(Message)
                .where(
                    Message.id == item.message_pk,
                    Message.folder == item.folder,
                    Message.status == item.status,
                    or_(Message.lease_owner.is_(None), Message.lease_until <= now),
                )
                .values(lease_owner=self.ledger.worker_id, lease_until=now + self.ledger.lease)
                .execution_options(synchronize_session=False)
            )
            return taken.rowcount == 1

    def record(self, item: Misfiled, found_in: str | None) -> None:
        """Where the claimed email was found: now in ``item.target``, or (None) in no folder we file into."""
        now = self.ledger.clock()
        values: dict[str, Any]
        if found_in is None:  # deleted or moved away by hand: not looked for again
            values, kind, detail = {"folder": None}, "lost", {"folder": item.folder}
        else:
            # Found in the target itself: moved there before a crash kept it from being recorded.
            origin = item.folder if found_in == item.target else found_in
            values, kind, detail = (
                {"folder": item.target, "moved_at": now},
                "moved",
                {"folder": item.target, "from": origin},
            )
        with self.ledger.sessions.begin() as session:
            lock_chain(session)
            done = session.execute(
                update(Message)
                .where(Message.id == item.message_pk, Message.lease_owner == self.ledger.worker_id)
                .values(lease_owner=None, lease_until=None, **values)
                .execution_options(synchronize_session=False)
            )
            if done.rowcount == 1:  # else our claim ran out and another worker took over
                session.add(
                    Event(message_id=item.message_pk, at=now, actor="ingest", kind=kind, detail=detail)
                )
