"""Tables of the web desk: accounts, login attempts, triage leases and the labelled examples staff make.

Kept apart from ``models`` (the worker's schema) but on the same ``Base``, so one migration history
covers both. Created by migration 0003.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailflow.storage.models import Base, Id

ROLES = ("staff", "auditor", "admin")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped on every password change and when disabled: sessions made before it stop being valid.
    session_version: Mapped[int] = mapped_column(default=1)
    # Failed logins before this no longer lock the account (migration 0005).
    unlocked_at: Mapped[datetime | None] = mapped_column(default=None)
    # The desk's language this person chose (migration 0007); none: the configured default.
    locale: Mapped[str | None] = mapped_column(String(10), default=None)


class LoginAttempt(Base):
    """Every login attempt, kept for throttling and for the record."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_address_at", "remote_addr", "at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    remote_addr: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    succeeded: Mapped[bool] = mapped_column(Boolean)


class DeskLease(Base):
    """Who is working a triage item, until when: two people never decide the same email at once."""

    __tablename__ = "desk_leases"

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    taken_at: Mapped[datetime]
    until: Mapped[datetime]


class LabelledExample(Base):
    """A staff decision kept as a training example: the raw email (by hash) and what a person said it is."""

    __tablename__ = "labelled_examples"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(30))
    intents: Mapped[list[Any]] = mapped_column(default=list)
    language: Mapped[str] = mapped_column(String(10))
    labelled_by: Mapped[str] = mapped_column(String(100))
    labelled_at: Mapped[datetime]
    # What the machine had said, to measure where it goes wrong.
    machine_category: Mapped[str | None] = mapped_column(String(60))
    machine_action: Mapped[str | None] = mapped_column(String(30))


class PendingDecision(Base):
    """A person's decision waiting out its undo window; applied when ``due_at`` has passed, unless
    its author takes it back first (migration 0006)."""

    __tablename__ = "pending_decisions"

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    parts: Mapped[list[Any]] = mapped_column()  # [[category, action or null], …]
    hand_text: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime]
    due_at: Mapped[datetime] = mapped_column(index=True)


class CaseNote(Base):
    """A person's note on a case: plain text, kept as written (migration 0008). The event log says
    that a note was written, by whom and when; its text stays here, out of the chained log."""

    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    author: Mapped[str] = mapped_column(String(100))
    written_at: Mapped[datetime]
    text: Mapped[str] = mapped_column(Text)
