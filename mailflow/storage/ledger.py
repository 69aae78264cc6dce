"""The ledger of emails taken from the mailbox: who may process which email, and what became of it.

Every worker consults the database, never its own memory, so several workers on several machines can
share one mailbox: a claim is a row insert (the unique location key decides the race) or the takeover
of a claim whose lease has run out, or whose worker's heartbeat stopped (``stale_after``): a worker that
died gives its claims back within a few heartbeats rather than at the end of the lease.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import and_, exists, false, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from mailflow.audit import lock_chain
from mailflow.domain import Status
from mailflow.storage.models import Event, MailboxState, Message, WorkerHeartbeat

log = logging.getLogger(__name__)


class _TakenByAnother(Exception):
    """Another worker changed the row we were about to take."""


class ClaimResult(StrEnum):
    PROCESS = "process"  # ours to analyse and act on
    MOVE_ONLY = "move_only"  # its outcome is committed; it only still needs to leave the inbox
    BUSY = "busy"  # another worker holds it


@dataclass(frozen=True)
class Claim:
    result: ClaimResult
    message_pk: int
    status: Status


@dataclass(frozen=True)
class Known:
    """What the ledger holds about an email still in the mailbox."""

    message_pk: int
    status: Status
    held_by_another: bool  # another worker's lease on it is still running
    holder: str | None = None
    held_until: datetime | None = None


@dataclass(frozen=True)
class Arrival:
    """What the worker knows of an email before analysing it."""

    mailbox: str
    uidvalidity: int
    uid: int
    sha256: str
    size: int
    message_id: str | None
    from_address: str | None
    subject: str | None


class Ledger:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        worker_id: str,
        lease: timedelta,
        clock: Callable[[], datetime],
        stale_after: timedelta | None = None,
    ) -> None:
        """``stale_after``: a claim whose worker has a heartbeat row not written for this long is free.
        A worker without a row (``poll-once``) keeps its claims until the lease runs out."""
        self.sessions = sessions
        self.worker_id = worker_id
        self.lease = lease
        self.clock = clock
        self.stale_after = stale_after

    def observe_uidvalidity(self, mailbox: str, uidvalidity: int) -> bool:
        """Remember the folder's UIDVALIDITY; True when it differs from the one seen before.

        Several workers may see a new folder, or a changed UIDVALIDITY, at the same moment: the first
        insert or conditional update wins, and only the winner records the change.
        """
        for _attempt in range(3):
            try:
                with self.sessions.begin() as session:
                    return self._observe(session, mailbox, uidvalidity)
            except IntegrityError:
                continue  # another worker inserted the folder's row first: read theirs
        raise RuntimeError(f"cannot record the UIDVALIDITY of {mailbox}")

    def _observe(self, session: Session, mailbox: str, uidvalidity: int) -> bool:
        seen = session.scalar(select(MailboxState.uidvalidity).where(MailboxState.mailbox == mailbox))
        if seen is None:
            session.add(MailboxState(mailbox=mailbox, uidvalidity=uidvalidity, changed_at=self.clock()))
            session.flush()
            return False
        if seen == uidvalidity:
            return False
        changed = session.execute(
            update(MailboxState)
            .where(MailboxState.mailbox == mailbox, MailboxState.uidvalidity == seen)
            .values(uidvalidity=uidvalidity, changed_at=self.clock())
            .execution_options(synchronize_session=False)
        )
        if changed.rowcount != 1:
            return False  # another worker recorded the change first
        session.add(
            Event(
                at=self.clock(),
                actor="ingest",
                kind="uidvalidity_changed",
                detail={"mailbox": mailbox, "old": seen, "new": uidvalidity},
            )
        )
        return True

    def known(self, mailbox: str, uidvalidity: int, uids: Iterable[int]) -> dict[int, Known]:
        """Ledger rows for these UIDs."""
        uid_list = list(uids)
        now = self.clock()
        found: dict[int, Known] = {}
        with self.sessions() as session:
            for start in range(0, len(uid_list), 500):
                rows = session.execute(
                    select(
                        Message.uid,
                        Message.id,
                        Message.status,
                        Message.lease_owner,
                        Message.lease_until,
                        self._owner_gone(now).label("gone"),
                    ).where(
                        Message.mailbox == mailbox,
                        Message.uidvalidity == uidvalidity,
                        Message.uid.in_(uid_list[start : start + 500]),
                    )
                )
                for uid, pk, status, owner, until, gone in rows:
                    held = self._held_by_another(owner, until, now) and not gone
                    found[uid] = Known(pk, Status(status), held, *((owner, until) if held else (None, None)))
        return found

    def _held_by_another(self, owner: str | None, until: datetime | None, now: datetime) -> bool:
        return owner is not None and owner != self.worker_id and until is not None and until > now

    def _owner_gone(self, now: datetime) -> ColumnElement[bool]:
        """The row's worker has a heartbeat, and it stopped: the worker died (or lost the database)."""
        if self.stale_after is None:
            return false()
        return exists(
            select(WorkerHeartbeat.worker_id).where(
                WorkerHeartbeat.worker_id == Message.lease_owner,
                WorkerHeartbeat.updated_at < now - self.stale_after,
            )
        )

    def take_for_moving(self, message_pks: Iterable[int]) -> set[int]:
        """Of these settled emails, those we may move now: no other worker holds them. Two workers moving
        one email at once can leave a copy in the target folder, as an IMAP MOVE is not atomic between
        sessions on every server (Dovecot copies, then expunges)."""
        now = self.clock()
        taken: set[int] = set()
        with self.sessions.begin() as session:
            for pk in sorted(set(message_pks)):
                done = session.execute(
                    update(Message)
                    .where(Message.id == pk, Message.status != Status.RECEIVED, self._free(now))
                    .values(lease_owner=self.worker_id, lease_until=now + self.lease)
                    .execution_options(synchronize_session=False)
                )
                if done.rowcount == 1:
                    taken.add(pk)
        return taken

    def _free(self, now: datetime) -> ColumnElement[bool]:
        """No other worker holds the row: nobody, we, or a lease that ran out."""
        return or_(
            Message.lease_owner.is_(None),
            Message.lease_owner == self.worker_id,
            Message.lease_until <= now,
            self._owner_gone(now),
        )

    def claim(self, arrival: Arrival) -> Claim:
        """Take an email for processing, or learn what to do with it instead."""
        now = self.clock()
        session = self.sessions()
        try:
            claim = self._claim(session, arrival, now)
            session.commit()
            return claim
        except (IntegrityError, _TakenByAnother):
            # Another worker inserted the same location, or rebound the same email, first: it is theirs.
            session.rollback()
            return Claim(ClaimResult.BUSY, 0, Status.RECEIVED)
        finally:
            session.close()

    def _claim(self, session: Session, arrival: Arrival, now: datetime) -> Claim:
        _one_claim_per_content(session, arrival.sha256)
        lock_chain(session)
        row = session.scalar(
            select(Message).where(
                Message.mailbox == arrival.mailbox,
                Message.uidvalidity == arrival.uidvalidity,
                Message.uid == arrival.uid,
            )
        )
        if row is None:
            row = self._rebind_after_renumbering(session, arrival)
        if row is not None:
            return self._claim_existing(session, row, now)
        row = self._new_row(arrival, now)
        session.add(row)
        session.flush()
        original = self._earlier_copy(session, arrival, row.id)
        session.add(
            Event(message_id=row.id, at=now, actor="ingest", kind="stored", detail={"sha256": arrival.sha256})
        )
        if original is not None:
            # The very same bytes arrived twice: keep the copy, answer and file once. We hold it until moved.
            row.status, row.duplicate_of_id = Status.IGNORED, original
            session.add(
                Event(message_id=row.id, at=now, actor="ingest", kind="duplicate", detail={"of": original})
            )
            return Claim(ClaimResult.MOVE_ONLY, row.id, Status.IGNORED)
        return Claim(ClaimResult.PROCESS, row.id, Status.RECEIVED)

    def _new_row(self, arrival: Arrival, now: datetime) -> Message:
        return Message(
            mailbox=arrival.mailbox,
            uidvalidity=arrival.uidvalidity,
            uid=arrival.uid,
            message_id=arrival.message_id,
            sha256=arrival.sha256,
            size=arrival.size,
            received_at=now,
            from_address=arrival.from_address,
            subject=arrival.subject,
            status=Status.RECEIVED,
            lease_owner=self.worker_id,
            lease_until=now + self.lease,
        )

    def _rebind_after_renumbering(self, session: Session, arrival: Arrival) -> Message | None:
        """After a UIDVALIDITY change the same email has a new UID: find it by hash and Message-ID."""
        candidates = session.scalars(
            select(Message)
            .where(
                Message.mailbox == arrival.mailbox,
                Message.sha256 == arrival.sha256,
                Message.uidvalidity != arrival.uidvalidity,
                Message.duplicate_of_id.is_(None),
            )
            .order_by(Message.id)
        ).all()
        for row in candidates:
            if row.message_id == arrival.message_id:
                old = (row.uidvalidity, row.uid)
                # Conditional: of several workers meeting the renumbered email, one rebinds it.
                rebound = session.execute(
                    update(Message)
                    .where(Message.id == row.id, Message.uidvalidity == old[0], Message.uid == old[1])
                    .values(uidvalidity=arrival.uidvalidity, uid=arrival.uid)
                    .execution_options(synchronize_session=False)
                )
                if rebound.rowcount != 1:
                    raise _TakenByAnother
                session.refresh(row)
                session.add(
                    Event(
                        message_id=row.id,
                        at=self.clock(),
                        actor="ingest",
                        kind="rebound",
                        detail={"from": list(old), "to": [arrival.uidvalidity, arrival.uid]},
                    )
                )
                session.flush()
                return row
        return None

    def _earlier_copy(self, session: Session, arrival: Arrival, own_id: int) -> int | None:
        return session.scalar(
            select(Message.id)
            .where(
                Message.mailbox == arrival.mailbox,
                Message.sha256 == arrival.sha256,
                Message.id != own_id,
                Message.duplicate_of_id.is_(None),
                Message.erased_at.is_(None),  # an erased email's copy arriving again is new: nothing is kept
            )
            .order_by(Message.id)
            .limit(1)
        )

    def _claim_existing(self, session: Session, row: Message, now: datetime) -> Claim:
        status = Status(row.status)
        # One UPDATE decides a race between two workers taking over the same expired claim, or moving the
        # same settled email: the worker that settled it holds it until it has moved it.
        taken = session.execute(
            update(Message)
            .where(Message.id == row.id, Message.status == status, self._free(now))
            .values(lease_owner=self.worker_id, lease_until=now + self.lease)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:
            return Claim(ClaimResult.BUSY, row.id, status)
        previous, until = row.lease_owner, row.lease_until
        if previous not in (None, self.worker_id) and until is not None and until > now:
            log.warning(
                "message %s: worker %s holds it until %s but its heartbeat stopped; taking it over",
                row.id,
                previous,
                f"{until:%H:%M:%S}",
            )
        if status is not Status.RECEIVED:
            return Claim(ClaimResult.MOVE_ONLY, row.id, status)
        session.add(Event(message_id=row.id, at=now, actor="ingest", kind="resumed", detail={}))
        return Claim(ClaimResult.PROCESS, row.id, status)

    def unclaimed(self, mailbox: str, uidvalidity: int, uids: list[int]) -> list[int]:
        """Of these UIDs, in their order, those no other worker holds or has settled: still worth
        fetching. Another worker moves what it settled itself."""
        now = self.clock()
        taken: set[int] = set()
        with self.sessions() as session:
            for start in range(0, len(uids), 500):
                taken.update(
                    session.scalars(
                        select(Message.uid).where(
                            Message.mailbox == mailbox,
                            Message.uidvalidity == uidvalidity,
                            Message.uid.in_(uids[start : start + 500]),
                            or_(
                                Message.status != Status.RECEIVED,
                                and_(
                                    Message.lease_owner != self.worker_id,
                                    Message.lease_until > now,
                                    ~self._owner_gone(now),
                                ),
                            ),
                        )
                    )
                )
        return [uid for uid in uids if uid not in taken]

    def mark_moved(self, message_pks: Iterable[int], folder: str) -> None:
        now = self.clock()
        with self.sessions.begin() as session:
            lock_chain(session)
            # Ascending, so two workers marking overlapping sets lock rows in the same order.
            for pk in sorted(set(message_pks)):
                # Conditional, so that of two workers moving the same email one records the move.
                moved = session.execute(
                    update(Message)
                    .where(
                        Message.id == pk,
                        or_(Message.moved_at.is_(None), Message.folder.is_(None), Message.folder != folder),
                    )
                    .values(moved_at=now, folder=folder)
                    .execution_options(synchronize_session=False)
                )
                if moved.rowcount == 1:
                    session.add(
                        Event(message_id=pk, at=now, actor="ingest", kind="moved", detail={"folder": folder})
                    )
            session.execute(
                update(Message)
                .where(Message.id.in_(set(message_pks)), Message.lease_owner == self.worker_id)
                .values(lease_owner=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )


def _one_claim_per_content(session: Session, sha256: str) -> None:
    """Serialise the claims of identical bytes, so a copy arriving twice is seen as a duplicate even when
    two workers claim both copies at once. SQLite needs nothing: BEGIN IMMEDIATE serialises every claim."""
    if session.get_bind().dialect.name == "postgresql":
        # Until the transaction ends; the 60 bits of the hash are a key, not a secret.
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": int(sha256[:15], 16)})
