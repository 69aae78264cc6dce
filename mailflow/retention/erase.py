"""Erasing emails and cases: content gone, a tombstone and a chained deletion entry left.

``erase_messages`` and ``erase_case`` change the database inside the caller's transaction and return
the blob digests that may have lost their last user; ``Eraser`` wraps both in a transaction and removes
those blobs once it has committed (a file cannot take part in the transaction). What remains of an
email: its id, where and when it arrived, its outcome (status), its category, the digests of its bytes,
and when and under which rule it was erased; its events keep their place in the chain, their payloads
replaced by ``ERASED``. Nothing is erased while a legal hold applies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from mailflow.audit import ERASED, ERASURE_KIND, legacy_fingerprint, lock_chain, tombstone_of
from mailflow.domain import Status
from mailflow.errors import MailflowError
from mailflow.ports import BlobStore
from mailflow.storage.desk_models import CaseNote, DeskLease, LabelledExample, PendingDecision
from mailflow.storage.models import AttachmentRecord, Case, DecisionRecord, Event, Message, Reply

log = logging.getLogger(__name__)

REQUEST_RULE = "request"  # an erasure asked for by a person (GDPR art. 17), not the schedule


class ErasureRefused(MailflowError):
    """Nothing was erased: see ``reason`` (and ``held`` for legal holds)."""

    def __init__(self, reason: str, *, held: Iterable[str] = ()) -> None:
        self.held = tuple(sorted(set(held)))
        super().__init__(reason + (f": {', '.join(self.held)}" if self.held else ""))


class LegalHoldError(ErasureRefused):
    """A legal hold applies to a case (references in ``held``) that the erasure would touch."""


@dataclass
class Erased:
    messages: list[int] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    events: int = 0
    blob_candidates: set[str] = field(default_factory=set)  # digests that may have lost their last user
    files: int = 0  # blobs deleted once the erasure was committed (``Eraser`` only)

    def add(self, other: Erased) -> None:
        self.messages += other.messages
        self.cases += other.cases
        self.events += other.events
        self.blob_candidates |= other.blob_candidates


def erase_messages(
    session: Session,
    message_pks: Iterable[int],
    *,
    reason: str,
    actor: str,
    now: datetime,
    rule: str = REQUEST_RULE,
) -> Erased:
    """Erase these emails' content in the caller's transaction; already erased ones are skipped.

    Raises ``LegalHoldError`` when one belongs to a case under a legal hold, ``ErasureRefused`` when one
    is still unprocessed (it sits in the inbox) or does not exist; then nothing is changed.
    """
    lock_chain(session)
    wanted = sorted(set(message_pks))
    rows = list(session.scalars(select(Message).where(Message.id.in_(wanted)).order_by(Message.id)))
    missing = set(wanted) - {row.id for row in rows}
    if missing:
        raise ErasureRefused("no such emails", held=(str(pk) for pk in missing))
    _refuse_held(session, [row.case_id for row in rows if row.case_id is not None])
    unprocessed = [str(row.id) for row in rows if row.status == Status.RECEIVED and row.erased_at is None]
    if unprocessed:
        raise ErasureRefused("emails still being processed cannot be erased yet", held=unprocessed)
    result = Erased()
    session.flush()  # every event of these emails has its place in the chain before any is erased
    for row in rows:
        if row.erased_at is None:
            _erase_one(session, row, result, reason=reason, actor=actor, now=now, rule=rule)
    return result


def erase_case(
    session: Session,
    case_id: int,
    *,
    reason: str,
    actor: str,
    now: datetime,
    rule: str = REQUEST_RULE,
    spare: Collection[int] = (),
) -> Erased:
    """Erase a case and all its emails but ``spare`` (an erasure request keeps other senders' emails
    filed in the person's case); its reference, category, status and dates stay as its tombstone."""
    lock_chain(session)
    case = session.get(Case, case_id, with_for_update=True)
    if case is None:
        raise ErasureRefused("no such case", held=[str(case_id)])
    _refuse_held(session, [case_id])
    pks = [
        pk for pk in session.scalars(select(Message.id).where(Message.case_id == case_id)) if pk not in spare
    ]
    result = erase_messages(session, pks, reason=reason, actor=actor, now=now, rule=rule)
    if case.erased_at is None:
        case.resident_address = ""
        session.execute(delete(CaseNote).where(CaseNote.case_id == case_id))
        case.erased_at = now
        session.flush()
        session.add(
            Event(
                message_id=None,
                at=now,
                actor=actor,
                kind=ERASURE_KIND,
                detail={"rule": rule, "reason": reason, "entries": [], "tombstone": tombstone_of(case)},
            )
        )
        result.cases.append(case.reference or str(case.id))
    return result


def _refuse_held(session: Session, case_ids: list[int]) -> None:
    if not case_ids:
        return
    held = session.scalars(
        select(func.coalesce(Case.reference, "")).where(
            Case.id.in_(set(case_ids)), Case.legal_hold_at.is_not(None)
        )
    ).all()
    if held:
        raise LegalHoldError("a legal hold applies to", held=held)


def _latest_category(session: Session, pk: int) -> str | None:
    return session.scalar(
        select(DecisionRecord.category)
        .where(DecisionRecord.message_id == pk)
        .order_by(DecisionRecord.id.desc())
        .limit(1)
    )


def _erase_one(
    session: Session, row: Message, result: Erased, *, reason: str, actor: str, now: datetime, rule: str
) -> None:
    pk = row.id
    row.erased_category = _latest_category(session, pk)
    attachments = session.scalars(
        select(AttachmentRecord.sha256).where(AttachmentRecord.message_id == pk)
    ).all()
    result.blob_candidates.update([row.sha256, *attachments])
    drop_from_search(session, pk)
    for model in (DecisionRecord, Reply, AttachmentRecord, LabelledExample, DeskLease, PendingDecision):
        session.execute(delete(model).where(model.message_id == pk))  # type: ignore[attr-defined]
    row.from_address = row.subject = row.message_id = row.error = None
    row.lease_owner = row.lease_until = None
    row.erased_at, row.erased_rule = now, rule
    entries: list[dict[str, Any]] = []
    events = session.scalars(
        select(Event)
        .where(Event.message_id == pk, Event.erased_at.is_(None), Event.kind != ERASURE_KIND)
        .order_by(Event.seq)
    ).all()
    for entry in events:
        legacy = legacy_fingerprint(entry) if entry.hash_scheme == 1 else None
        entries.append({"seq": entry.seq, "legacy": legacy} if legacy else {"seq": entry.seq})
        entry.detail, entry.erased_at = dict(ERASED), now
    session.flush()
    session.add(
        Event(
            message_id=pk,
            at=now,
            actor=actor,
            kind=ERASURE_KIND,
            detail={
                "rule": rule,
                "reason": reason,
                "entries": entries,
                "tombstone": tombstone_of(row),
                "attachments": sorted(set(attachments)),
            },
        )
    )
    result.messages.append(pk)
    result.events += len(entries)


def drop_from_search(session: Session, pk: int) -> None:
    """Take an email out of the desk's full-text index (``mailflow.web.search``)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("DELETE FROM message_search WHERE message_id = :id"), {"id": pk})
    else:
        session.execute(text("DELETE FROM message_fts WHERE rowid = :id"), {"id": pk})


def remove_unused_blobs(sessions: sessionmaker[Session], blobs: BlobStore, digests: Iterable[str]) -> int:
    """Delete the blobs no email or attachment still kept uses (a shared attachment stays)."""
    removed = 0
    with sessions() as session:
        for digest in sorted(set(digests)):
            used = session.scalar(
                select(
                    exists().where(Message.sha256 == digest, Message.erased_at.is_(None))
                    | exists().where(AttachmentRecord.sha256 == digest)
                    | exists().where(LabelledExample.sha256 == digest)
                )
            )
            if not used and blobs.delete(digest):
                removed += 1
    return removed


class Eraser:
    """Erasure in one transaction, then the blobs it freed: for retention and for erasure requests."""

    def __init__(
        self, sessions: sessionmaker[Session], blobs: BlobStore, clock: Callable[[], datetime]
    ) -> None:
        self.sessions, self.blobs, self.clock = sessions, blobs, clock

    def messages(self, pks: Iterable[int], *, reason: str, actor: str, rule: str = REQUEST_RULE) -> Erased:
        with self.sessions.begin() as session:
            result = erase_messages(session, pks, reason=reason, actor=actor, now=self.clock(), rule=rule)
        self._after(result)
        return result

    def case(self, case_id: int, *, reason: str, actor: str, rule: str = REQUEST_RULE) -> Erased:
        with self.sessions.begin() as session:
            result = erase_case(session, case_id, reason=reason, actor=actor, now=self.clock(), rule=rule)
        self._after(result)
        return result

    def request(
        self,
        pks: Iterable[int],
        case_ids: Iterable[int],
        *,
        reason: str,
        actor: str,
        spare: Collection[int] = (),
        within: Callable[[Session, Erased], None] | None = None,
    ) -> Erased:
        """A person's erasure request: these emails, and these cases with their emails but ``spare``, in
        one transaction: all or nothing. ``within`` runs last inside it, to refuse (by raising) or to
        add its own entry to the log."""
        with self.sessions.begin() as session:
            now = self.clock()
            result = erase_messages(session, pks, reason=reason, actor=actor, now=now)
            for case_id in case_ids:
                result.add(erase_case(session, case_id, reason=reason, actor=actor, now=now, spare=spare))
            if within is not None:
                within(session, result)
        self._after(result)
        return result

    def _after(self, result: Erased) -> None:
        removed = remove_unused_blobs(self.sessions, self.blobs, result.blob_candidates)
        result.files = removed
        log.info(
            "erased %d emails, %d cases, %d event payloads, %d files",
            len(result.messages),
            len(result.cases),
            result.events,
            removed,
        )
