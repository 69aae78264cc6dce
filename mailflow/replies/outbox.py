"""Delivering the replies recorded in the outbox table: each at most once, retried while it can help.

A reply row goes pending → sending → sent. A send that was cut short (the worker died between
handing the message to the server and recording it) is never repeated blindly: when the lease of a
``sending`` row runs out it becomes ``unconfirmed`` and waits for a person, unless the transport can
tell for certain whether it was delivered. The same holds for a connection lost after the whole
message was sent but before the server's final reply: the reply is ``unconfirmed`` at once.

Why never resend an unconfirmed reply automatically, although its Message-ID is stable: few mail
clients drop a second copy by Message-ID (Gmail may, Outlook does not), so a resident would read the
same answer twice, and RFC 5321 6.1 makes an accepted message the server's to deliver. Staff see
"possibly delivered" and decide; a resend they choose carries the same Message-ID.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from mailflow.audit import lock_chain
from mailflow.domain import Action, Status
from mailflow.errors import TransportError
from mailflow.ports import ReplyTransport
from mailflow.storage.models import DecisionRecord, Event, Message, Reply, WorkerHeartbeat

log = logging.getLogger(__name__)

# The start of a triage reason: the reply may or may not have reached the resident.
POSSIBLY_DELIVERED = "reply possibly delivered"


def hold_for_triage(session: Session, message_pk: int, reason: str, now: datetime) -> None:
    """A reply that did not reach the resident puts its email back before a person."""
    message = session.get(Message, message_pk)
    if message is None:
        return
    last = session.scalar(
        select(DecisionRecord)
        .where(DecisionRecord.message_id == message_pk)
        .order_by(DecisionRecord.id.desc())
    )
    message.status = Status.TRIAGE
    session.add(
        DecisionRecord(
            message_id=message_pk,
            decided_at=now,
            decided_by="outbox",
            category=last.category if last else "unclear",
            action=Action.TRIAGE.value,
            confidence=last.confidence if last else 0.0,
            language=last.language if last else "nl",
            intents=list(last.intents) if last else [],
            reasons=[reason],
            missing_documents=[],
            sender_verdict=last.sender_verdict if last else "none",
        )
    )
    session.add(
        Event(
            message_id=message_pk, at=now, actor="outbox", kind="held_for_triage", detail={"reason": reason}
        )
    )


class ConfirmingTransport(Protocol):
    def was_delivered(self, message_id: str) -> bool | None:
        """True/False when the transport knows; None when it cannot tell."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 12

    def delay(self, attempts: int) -> timedelta:
        return min(self.cap, self.base * (2 ** max(0, attempts - 1)))


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unconfirmed: int = 0


class Outbox:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        transport: ReplyTransport,
        *,
        envelope_from: str,
        worker_id: str,
        clock: Callable[[], datetime],
        retry: RetryPolicy,
        lease: timedelta = timedelta(minutes=5),
        stale_after: timedelta | None = None,
    ) -> None:
        """``stale_after``: a send whose worker's heartbeat is older than this was cut short by its death."""
        self.sessions = sessions
        self.stale_after = stale_after
        self.started = clock()
        self.transport = transport
        self.envelope_from = envelope_from
        self.worker_id = worker_id
        self.clock = clock
        self.retry = retry
        self.lease = lease

    def deliver_due(self, page: int = 100) -> DeliveryReport:
        """Send every reply that is due now, a page of rows at a time."""
        report = DeliveryReport()
        report.unconfirmed = self._resolve_interrupted_sends()
        after = 0
        while ids := self._due_ids(after, page):
            for reply_id in ids:
                if self._take(reply_id):
                    outcome = self._send(reply_id)
                    setattr(report, outcome, getattr(report, outcome) + 1)
            after = ids[-1]
        return report

    def _due_ids(self, after: int, page: int) -> list[int]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(Reply.id)
                    .where(Reply.status == "pending", Reply.next_attempt_at <= self.clock(), Reply.id > after)
                    .order_by(Reply.id)
                    .limit(page)
                )
            )

    def _take(self, reply_id: int) -> bool:
        """Mark the row as being sent by us; the conditional UPDATE settles races between workers."""
        now = self.clock()
        with self.sessions.begin() as session:
            taken = session.execute(
                update(Reply)
                .where(Reply.id == reply_id, Reply.status == "pending")
                .values(
                    status="sending",
                    lease_until=now + self.lease,
                    sending_by=self.worker_id,
                    attempts=Reply.attempts + 1,
                )
            )
            return taken.rowcount == 1

    def _send(self, reply_id: int) -> str:
        with self.sessions() as session:
            reply = session.get_one(Reply, reply_id)
            to, data, rfc_id, message_pk = (
                reply.to_address,
                reply.data,
                reply.rfc_message_id,
                reply.message_id,
            )
        try:
            self.transport.send(self.envelope_from, [to], data, rfc_id)
        except TransportError as exc:
            if exc.ambiguous:
                return self._record_unconfirmed(reply_id, message_pk, exc)
            return self._record_failure(reply_id, message_pk, exc)
        now = self.clock()
        with self.sessions.begin() as session:
            lock_chain(session)  # before the reply's row: the order every event-writing transaction keeps
            session.execute(
                update(Reply)
                .where(Reply.id == reply_id)
                .values(status="sent", sent_at=now, lease_until=None, last_error=None)
            )
            session.add(
                Event(
                    message_id=message_pk,
                    at=now,
                    actor="outbox",
                    kind="reply_sent",
                    detail={"reply": reply_id},
                )
            )
        log.info("reply %s for message %s sent", reply_id, message_pk)
        return "sent"

    def _record_failure(self, reply_id: int, message_pk: int, exc: TransportError) -> str:
        now = self.clock()
        with self.sessions.begin() as session:
            reply = session.get_one(Reply, reply_id)
            give_up = exc.permanent or reply.attempts >= self.retry.max_attempts
            reply.status = "failed" if give_up else "pending"
            reply.last_error = str(exc)[:1000]
            reply.lease_until = None
            reply.next_attempt_at = now + self.retry.delay(reply.attempts)
            session.add(
                Event(
                    message_id=message_pk,
                    at=now,
                    actor="outbox",
                    kind="reply_failed" if give_up else "reply_deferred",
                    detail={"reply": reply_id, "attempts": reply.attempts, "error": str(exc)[:300]},
                )
            )
            if give_up:
                hold_for_triage(session, message_pk, f"reply not delivered: {str(exc)[:200]}", now)
        log.warning(
            "reply %s for message %s not sent (%s): %s",
            reply_id,
            message_pk,
            "giving up" if give_up else "will retry",
            exc,
        )
        return "failed" if give_up else "retried"

    def _record_unconfirmed(self, reply_id: int, message_pk: int, exc: TransportError) -> str:
        now = self.clock()
        with self.sessions.begin() as session:
            lock_chain(session)
            reply = session.get_one(Reply, reply_id)
            reply.status, reply.lease_until, reply.last_error = "unconfirmed", None, str(exc)[:1000]
            session.add(
                Event(
                    message_id=message_pk,
                    at=now,
                    actor="outbox",
                    kind="reply_unconfirmed",
                    detail={"reply": reply_id, "error": str(exc)[:300]},
                )
            )
            reason = f"{POSSIBLY_DELIVERED}: the mail server did not confirm"
            hold_for_triage(session, message_pk, reason, now)
        log.error(
            "reply %s for message %s possibly delivered, not confirmed (%s); not resent: a person decides",
            reply_id,
            message_pk,
            exc,
        )
        return "unconfirmed"

    def _cut_short(self, now: datetime) -> ColumnElement[bool]:
        """A send nobody is doing any more: its lease ran out, its worker's heartbeat stopped, or it was
        ours before this process started (restarted under the same worker name)."""
        conditions = [
            Reply.lease_until.is_(None),
            Reply.lease_until <= now,
            (Reply.sending_by == self.worker_id) & (Reply.lease_until < self.started + self.lease),
        ]
        if self.stale_after is not None:
            conditions.append(
                exists(
                    select(WorkerHeartbeat.worker_id).where(
                        WorkerHeartbeat.worker_id == Reply.sending_by,
                        WorkerHeartbeat.updated_at < now - self.stale_after,
                    )
                )
            )
        return or_(*conditions)

    def _resolve_interrupted_sends(self) -> int:
        now = self.clock()
        confirm = getattr(self.transport, "was_delivered", None)
        unresolved = 0
        with self.sessions.begin() as session:
            query = select(Reply).where(Reply.status == "sending", self._cut_short(now))
            stale = session.scalars(query).all()
            for reply in stale:
                delivered = confirm(reply.rfc_message_id) if confirm else None
                if delivered is True:
                    reply.status, reply.sent_at = "sent", now
                elif delivered is False:
                    reply.status = "pending"  # certain it never left: sending again is not a repeat
                else:
                    reply.status = "unconfirmed"
                    unresolved += 1
                    reason = f"{POSSIBLY_DELIVERED}: sending was interrupted"
                    hold_for_triage(session, reply.message_id, reason, now)
                reply.lease_until = None
                session.add(
                    Event(
                        message_id=reply.message_id,
                        at=now,
                        actor="outbox",
                        kind="interrupted_send_resolved",
                        detail={"reply": reply.id, "status": reply.status},
                    )
                )
        return unresolved
