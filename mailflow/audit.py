"""The hash chain over the event log: written as events are added, verified by ``mailflow audit verify``.

Every transaction that adds events locks the single ``audit_head`` row, links its new events to the
head in the order they were added, and moves the head. Two workers therefore never fork the chain,
and a changed, removed or reordered entry breaks it at that point.

Two hash schemes (migration 0011). Scheme 1, of entries written before it, hashes the payload
(``detail``) itself. Scheme 2 hashes ``sha256(canonical detail)``, kept beside the payload, so retention
can erase a payload (``detail`` becomes ``ERASED``) and the entry still verifies. Every erasure is
itself an entry (kind ``erased``) listing the entries it erased and the tombstone it left; verify
checks both, and for a scheme-1 entry, whose hash cannot be recomputed without its payload, the
fingerprint of its other fields that the erasure entry recorded.
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

from mailflow.storage.models import AuditHead, Case, Event, Message

GENESIS = "0" * 64
ERASED: dict[str, Any] = {"erased": True}
ERASURE_KIND = "erased"
SCHEME = 2


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _instant(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat(timespec="microseconds") if at is not None else None


def detail_digest(detail: dict[str, Any]) -> str:
    """What a scheme-2 entry's hash commits to instead of its payload."""
    return hashlib.sha256(_canonical(detail).encode()).hexdigest()


def entry_hash_v2(
    prev_hash: str,
    *,
    seq: int,
    at: datetime,
    actor: str,
    kind: str,
    message_id: int | None,
    detail_sha256: str,
) -> str:
    canonical = _canonical(
        {
            "v": 2,
            "seq": seq,
            "at": _instant(at),
            "actor": actor,
            "kind": kind,
            "message": message_id,
            "detail_sha256": detail_sha256,
        }
    )
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def legacy_fingerprint(entry: Event) -> str:
    """A scheme-1 entry's fields besides its payload, recorded when the payload is erased."""
    fields = [entry.seq, _instant(entry.at), entry.actor, entry.kind, entry.message_id, entry.hash]
    return hashlib.sha256(_canonical(fields).encode()).hexdigest()


def tombstone_of(row: Message | Case) -> dict[str, Any]:
    """What an erased email or case keeps; its erasure entry records it, so verify sees it altered."""
    if isinstance(row, Message):
        return {
            "message": row.id,
            "received_at": _instant(row.received_at),
            "status": row.status,
            "category": row.erased_category,
            "sha256": row.sha256,
            "size": row.size,
            "erased_at": _instant(row.erased_at),
            "rule": row.erased_rule,
        }
    return {
        "case": row.id,
        "reference": row.reference,
        "category": row.category,
        "status": row.status,
        "opened_at": _instant(row.opened_at),
        "closed_at": _instant(row.closed_at),
        "erased_at": _instant(row.erased_at),
    }


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
    entry.hash_scheme = SCHEME
    entry.detail_sha256 = detail_digest(entry.detail or {})
    entry.hash = entry_hash_v2(
        head.hash,
        seq=entry.seq,
        at=entry.at,
        actor=entry.actor,
        kind=entry.kind,
        message_id=entry.message_id,
        detail_sha256=entry.detail_sha256,
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


_CHAINED = "_mailflow_chains_events"


def enable_chaining(sessions: sessionmaker[Session]) -> None:
    """Make every session of this factory chain the events it writes.

    The mark lives on the factory's own session class: ``event.contains`` keys its registry by
    ``id()`` and keeps the key after a collected factory's class is gone, so a new factory born at the
    same address would be taken for chained and write unchained events.
    """
    session_class = sessions.class_
    if not session_class.__dict__.get(_CHAINED, False):
        event.listen(sessions, "before_flush", _chain_new_events)
        setattr(session_class, _CHAINED, True)


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    head_hash: str
    broken_seq: int | None = None
    broken_event_id: int | None = None
    problem: str | None = None
    erased: int = 0


class _Broken(Exception):
    def __init__(self, entry_seq: int | None, event_id: int | None, problem: str) -> None:
        super().__init__(problem)
        self.seq, self.event_id, self.problem = entry_seq, event_id, problem


def _entries(session: Session) -> Iterator[Event]:
    last = 0
    while True:
        page = session.scalars(select(Event).where(Event.seq > last).order_by(Event.seq).limit(1000)).all()
        if not page:
            return
        yield from page
        last = page[-1].seq or last
        session.expunge_all()


class _Checker:
    """One pass over the chain in order; raises ``_Broken`` at the first entry that does not hold."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.prev, self.expected_seq, self.checked = GENESIS, 1, 0
        self.newer_scheme_seen = False
        # Erased entries not yet accounted for by an erasure entry: seq -> (event id, legacy fingerprint).
        self.unaccounted: dict[int, tuple[int, str | None]] = {}
        self.erased = 0

    def check(self, entry: Event) -> None:
        seq = entry.seq or 0
        if seq != self.expected_seq:
            raise _Broken(entry.seq, entry.id, f"entry {self.expected_seq} is missing (next is {entry.seq})")
        if entry.prev_hash != self.prev:
            raise _Broken(seq, entry.id, "its link to the entry before does not match")
        if entry.hash_scheme == 1 and self.newer_scheme_seen:
            raise _Broken(seq, entry.id, "an entry of the old hash scheme follows newer ones")
        self.newer_scheme_seen |= entry.hash_scheme != 1
        if entry.erased_at is not None:
            self._check_erased(entry)
        elif self._recomputed(entry, entry.detail or {}) != entry.hash:
            raise _Broken(seq, entry.id, "its content was altered")
        if entry.kind == ERASURE_KIND and entry.erased_at is None:
            self._check_erasure(entry)
        self.prev, self.expected_seq, self.checked = entry.hash or "", seq + 1, self.checked + 1

    def finish(self) -> None:
        if self.unaccounted:
            seq = min(self.unaccounted)
            raise _Broken(seq, self.unaccounted[seq][0], "it was erased, but no deletion entry says so")

    def _recomputed(self, entry: Event, detail: dict[str, Any]) -> str:
        common = {"seq": entry.seq or 0, "at": entry.at, "actor": entry.actor, "kind": entry.kind}
        if entry.hash_scheme == 1:
            return entry_hash(self.prev, message_id=entry.message_id, detail=detail, **common)
        if detail_digest(detail) != entry.detail_sha256 and entry.erased_at is None:
            return ""  # the payload does not match the digest the hash commits to
        return entry_hash_v2(
            self.prev, message_id=entry.message_id, detail_sha256=entry.detail_sha256 or "", **common
        )

    def _check_erased(self, entry: Event) -> None:
        seq = entry.seq or 0
        if entry.detail != ERASED:
            raise _Broken(seq, entry.id, "its erased payload was replaced by something else")
        if entry.hash_scheme == 1:  # checked against its erasure entry's record, when that comes
            self.unaccounted[seq] = (entry.id, legacy_fingerprint(entry))
        else:
            if self._recomputed(entry, {}) != entry.hash:
                raise _Broken(seq, entry.id, "its content was altered (the tombstone of an erased entry)")
            self.unaccounted[seq] = (entry.id, None)
        self.erased += 1

    def _check_erasure(self, entry: Event) -> None:
        detail = entry.detail or {}
        for item in detail.get("entries", []):
            erased_seq, fingerprint = item.get("seq"), item.get("legacy")
            found = self.unaccounted.pop(erased_seq, None)
            if found is None:
                raise _Broken(entry.seq, entry.id, f"it erased entry {erased_seq}, which is not erased")
            if fingerprint is not None and fingerprint != found[1]:
                raise _Broken(
                    erased_seq, found[0], "its content was altered (the tombstone of an erased entry)"
                )
        tombstone = detail.get("tombstone")
        if tombstone:
            row: Message | Case | None = (
                self.session.get(Message, tombstone["message"])
                if "message" in tombstone
                else self.session.get(Case, tombstone.get("case"))
            )
            if row is None or tombstone_of(row) != tombstone:
                what = (
                    f"message {tombstone['message']}"
                    if "message" in tombstone
                    else f"case {tombstone.get('case')}"
                )
                raise _Broken(
                    entry.seq, entry.id, f"the tombstone of {what} it recorded was altered or removed"
                )


def verify_chain(sessions: sessionmaker[Session]) -> Verification:
    """Recompute every link; report the first entry whose hash, link or tombstone does not hold."""
    with sessions() as session:
        head = session.get_one(AuditHead, 1)
        head_seq, head_hash = head.seq, head.hash
        unchained = session.scalar(select(Event.id).where(Event.seq.is_(None)).limit(1))
        checker = _Checker(session)
        try:
            for entry in _entries(session):
                checker.check(entry)
            checker.finish()
        except _Broken as broken:
            return Verification(
                False, checker.checked, head_hash, broken.seq, broken.event_id, broken.problem, checker.erased
            )
        checked, erased = checker.checked, checker.erased
        if unchained is not None:
            return Verification(
                False, checked, head_hash, None, unchained, "an entry is outside the chain", erased
            )
        if checked != head_seq or checker.prev != head_hash:
            return Verification(
                False, checked, head_hash, head_seq, None, "the chain ends before its head", erased
            )
        return Verification(True, checked, head_hash, erased=erased)
