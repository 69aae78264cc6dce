"""The hash chain over the event log: written as events are added, verified by ``mailflow audit verify``.

Every transaction that adds events locks the single ``audit_head`` row, links its new events to the
head in the order they were added, and moves the head. Two workers therefore never fork the chain,
and a changed, removed or reordered entry breaks it at that point.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from mailflow.storage.models import AuditHead, Event

GENESIS = "0" * 64


def entry_hash(
    prev_hash: str,
    *,
    seq: int,
    at: datetime,
    actor: str,
    kind: str,
    message_id: int | None,
    detail: dict[str, Any],
) -> str:
    canonical = json.dumps(
        {
            "seq": seq,
            "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": actor,
            "kind": kind,
            "message": message_id,
            "detail": detail,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def _link(head: AuditHead, entry: Event) -> None:
    entry.seq = head.seq + 1
    entry.prev_hash = head.hash
    entry.hash = entry_hash(
        head.hash,
        seq=entry.seq,
        at=entry.at,
        actor=entry.actor,
        kind=entry.kind,
        message_id=entry.message_id,
        detail=entry.detail or {},
    )
    head.seq, head.hash = entry.seq, entry.hash


def _chain_new_events(session: Session, _context: Any, _instances: Any) -> None:
    new = [obj for obj in session.new if isinstance(obj, Event) and obj.hash is None]
    if not new:
        return
    with session.no_autoflush:
        head = session.scalars(select(AuditHead).where(AuditHead.id == 1).with_for_update()).one()
        # session.new is unordered; link in the order the events were added.
        for entry in sorted(new, key=lambda e: inspect(e).insert_order):
            _link(head, entry)


def lock_chain(session: Session) -> None:
    """Take the event log's lock now, before any row lock of this transaction.

    A transaction that locks a row and then, adding its first event, the audit head can deadlock with
    one that holds the head and wants that row (PostgreSQL aborts one of them). Taking the head first
    keeps one order everywhere. SQLite ignores FOR UPDATE: its BEGIN IMMEDIATE already serialises.
    """
    session.execute(select(AuditHead.id).where(AuditHead.id == 1).with_for_update())


def enable_chaining(sessions: sessionmaker[Session]) -> None:
    """Make every session of this factory chain the events it writes."""
    if not event.contains(sessions, "before_flush", _chain_new_events):
        event.listen(sessions, "before_flush", _chain_new_events)


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    head_hash: str
    broken_seq: int | None = None
    broken_event_id: int | None = None
    problem: str | None = None


def _entries(session: Session) -> Iterator[Event]:
    last = 0
    while True:
        page = session.scalars(select(Event).where(Event.seq > last).order_by(Event.seq).limit(1000)).all()
        if not page:
            return
        yield from page
        last = page[-1].seq or last
        session.expunge_all()


def verify_chain(sessions: sessionmaker[Session]) -> Verification:
    """Recompute every link; report the first entry whose hash or link does not hold."""
    with sessions() as session:
        head = session.get_one(AuditHead, 1)
        head_seq, head_hash = head.seq, head.hash
        unchained = session.scalar(select(Event.id).where(Event.seq.is_(None)).limit(1))
        prev, expected_seq, checked = GENESIS, 1, 0
        for entry in _entries(session):
            problem = None
            if entry.seq != expected_seq:
                problem = f"entry {expected_seq} is missing (next is {entry.seq})"
            elif entry.prev_hash != prev:
                problem = "its link to the entry before does not match"
            else:
                recomputed = entry_hash(
                    prev,
                    seq=entry.seq,
                    at=entry.at,
                    actor=entry.actor,
                    kind=entry.kind,
                    message_id=entry.message_id,
                    detail=entry.detail or {},
                )
                if recomputed != entry.hash:
                    problem = "its content was altered"
            if problem:
                return Verification(False, checked, head_hash, entry.seq, entry.id, problem)
            prev, expected_seq, checked = entry.hash or "", expected_seq + 1, checked + 1
        if unchained is not None:
            return Verification(False, checked, head_hash, None, unchained, "an entry is outside the chain")
        if checked != head_seq or prev != head_hash:
            return Verification(False, checked, head_hash, head_seq, None, "the chain ends before its head")
        return Verification(True, checked, head_hash)
