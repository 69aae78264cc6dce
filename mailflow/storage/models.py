"""The database schema. Portable SQL only: SQLite is the embedded default, PostgreSQL production."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and read back time-zone aware, on SQLite (which drops zones) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UtcDateTime}


class MailboxState(Base):
    """The UIDVALIDITY last seen per mailbox, to notice when the server renumbers a folder."""

    __tablename__ = "mailbox_state"

    mailbox: Mapped[str] = mapped_column(String(300), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    changed_at: Mapped[datetime]


class Message(Base):
    """The ledger: one row per email taken from the mailbox, keyed by where it was found."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_messages_location"),
        Index("ix_messages_sha256", "mailbox", "sha256"),
        Index("ix_messages_status", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(300))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime]
    from_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    # Where the email was last filed; None until it leaves the inbox, or when it was lost there.
    # Where it differs from its status's folder, the worker moves it (``mailflow.storage.refiles``).
    folder: Mapped[str | None] = mapped_column(String(100))
    moved_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    # Who is processing (or refiling) it, until when: a crashed worker's claim expires and another
    # takes over.
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    # Set when retention or an erasure request removed its content (migration 0011): the row stays as
    # a tombstone (ids, dates, outcome, digests), under the rule or request named here.
    erased_at: Mapped[datetime | None] = mapped_column(default=None)
    erased_rule: Mapped[str | None] = mapped_column(String(100), default=None)
    erased_category: Mapped[str | None] = mapped_column(String(60), default=None)

    case: Mapped[Case | None] = relationship(back_populates="messages")
    attachments: Mapped[list[AttachmentRecord]] = relationship(
        back_populates="message", order_by="AttachmentRecord.position"
    )
    decisions: Mapped[list[DecisionRecord]] = relationship(
        back_populates="message", order_by="DecisionRecord.id"
    )
    replies: Mapped[list[Reply]] = relationship(back_populates="message", order_by="Reply.id")


CASE_CLOSED = "closed"


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(40), unique=True)
    category: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(20))  # complete | incomplete | closed
    resident_address: Mapped[str] = mapped_column(String(320))
    opened_at: Mapped[datetime]
    missing_documents: Mapped[list[Any]] = mapped_column(default=list)
    # Set by a person closing the case in the desk, cleared when it reopens (migration 0008).
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_by: Mapped[str | None] = mapped_column(String(100), default=None)
    # A legal hold keeps the case and its emails from retention and erasure until an admin lifts it.
    legal_hold_at: Mapped[datetime | None] = mapped_column(default=None)
    legal_hold_by: Mapped[str | None] = mapped_column(String(100), default=None)
    legal_hold_reason: Mapped[str | None] = mapped_column(String(300), default=None)
    erased_at: Mapped[datetime | None] = mapped_column(default=None)

    messages: Mapped[list[Message]] = relationship(back_populates="case")

    @property
    def is_closed(self) -> bool:
        return self.status == CASE_CLOSED

    def close(self, by: str, at: datetime) -> None:
        self.status, self.closed_at, self.closed_by = CASE_CLOSED, at, by

    def reopen(self) -> None:
        """Open again, in the state it was closed in: documents still missing, or complete."""
        self.status = "incomplete" if self.missing_documents else "complete"
        self.closed_at = self.closed_by = None


class AttachmentRecord(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(500))
    storage_name: Mapped[str] = mapped_column(String(200))
    declared_type: Mapped[str] = mapped_column(String(200))
    sniffed_type: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(60))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)

    message: Mapped[Message] = relationship(back_populates="attachments")


class DecisionRecord(Base):
    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    decided_at: Mapped[datetime]
    decided_by: Mapped[str] = mapped_column(String(100))  # a stage ("pipeline") or a person
    category: Mapped[str] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(30))
    confidence: Mapped[float]
    language: Mapped[str] = mapped_column(String(10))
    intents: Mapped[list[Any]] = mapped_column(default=list)
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    missing_documents: Mapped[list[Any]] = mapped_column(default=list)
    sender_verdict: Mapped[str] = mapped_column(String(10))

    message: Mapped[Message] = relationship(back_populates="decisions")


class Reply(Base):
    """The outbox: a reply is recorded here, in the same transaction as its decision, before any send."""

    __tablename__ = "replies"
    __table_args__ = (Index("ix_replies_created_at", "created_at"),)  # migration 0004

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    rfc_message_id: Mapped[str] = mapped_column(String(300), unique=True)
    to_address: Mapped[str] = mapped_column(String(320), index=True)
    subject: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(10))
    action: Mapped[str] = mapped_column(String(30))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    # pending → sending → sent; failed (permanent); unconfirmed (a send cut short: never resent blindly)
    status: Mapped[str] = mapped_column(String(20), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    sending_by: Mapped[str | None] = mapped_column(String(200))  # the worker that took it for sending
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    message: Mapped[Message] = relationship(back_populates="replies")


class Event(Base):
    """Append-only log of what happened to each email, when, and by which stage or person.

    Each entry carries the hash of the one before (``seq`` orders the chain); ``mailflow.audit`` fills
    ``seq``, ``prev_hash``, ``hash`` and ``detail_sha256`` as the entry is written and verifies the chain.
    Scheme 2 hashes commit to ``detail_sha256``, not ``detail``, so an erasure can replace the payload by
    a marker (``erased_at`` set) and the chain still verifies; scheme 1 entries predate migration 0011.
    """

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(50))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    hash_scheme: Mapped[int] = mapped_column(Integer, default=2, server_default="1")
    detail_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    erased_at: Mapped[datetime | None] = mapped_column(default=None)


class AuditHead(Base):
    """The newest link of the event chain: one row, locked by every transaction that appends events."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class SuppressedAddress(Base):
    """Addresses never to be auto-replied to again (our reply bounced for good)."""

    __tablename__ = "suppressed_addresses"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(String(200))
    since: Mapped[datetime]
    source_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))


class WorkerHeartbeat(Base):
    """One row per worker process, written each poll (migration 0010): the desk's /metrics reads what
    workers on other machines did from here. Rows stay after the worker stops, so the counts summed
    over all rows only ever grow."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_poll_started_at: Mapped[datetime | None]
    last_poll_succeeded_at: Mapped[datetime | None]
    last_error_at: Mapped[datetime | None]
    last_error_kind: Mapped[str | None] = mapped_column(String(100))  # an exception's class name only
    polls_succeeded: Mapped[int] = mapped_column(BigInteger, default=0)
    polls_failed: Mapped[int] = mapped_column(BigInteger, default=0)
    # Classification latency since the worker started: {"buckets": [count per bound], "sum": s, "count": n}
    latency: Mapped[dict[str, Any]] = mapped_column(default=dict)


class JobRun(Base):
    """One row per scheduled job that must run in one worker only (migration 0011): a worker takes the
    lease by a conditional UPDATE, so of several starting at once exactly one runs it."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]
    last_started_at: Mapped[datetime | None]
    last_finished_at: Mapped[datetime | None]
