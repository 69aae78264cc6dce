"""Emails refused before any work on them: too large to fetch, or poison (the worker died on them).

An email over the size limit is never fetched whole: its size comes from the server (RFC822.SIZE)
and only the start of its header block is fetched, stored and recorded, so that staff see who sent it.
It is quarantined and moved like any other outcome, and the queue moves on.

Poison: every claim that takes over an unfinished one ("resumed" in the event log) means an earlier
attempt was cut short; the worker was killed (out of memory, a crash, an operator) while processing
it. After ``poison_attempts`` such deaths the email is quarantined instead of tried again, so one
email cannot take the worker down for ever. ``quarantine retry`` (a "reprocess" event) starts the
count afresh.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailflow.domain import Status
from mailflow.ports import BlobStore, Mailbox
from mailflow.stages.limits import POISON, oversize_reason
from mailflow.storage.ledger import Arrival, ClaimResult, Ledger
from mailflow.storage.models import Event

if TYPE_CHECKING:
    from mailflow.ingest import IngestReport
    from mailflow.processing import Processor

log = logging.getLogger(__name__)

Outcome = tuple[int, int, Status]  # uid, ledger row, status
BATCH_BYTES = 16 * 1024 * 1024  # fetched at once, at most (an email larger than this comes alone)


@dataclass(frozen=True)
class IntakeLimits:
    max_message_bytes: int = 36 * 1024 * 1024
    max_header_bytes: int = 256 * 1024
    poison_attempts: int = 3


def fetch_batches(
    uids: list[int], sizes: dict[int, int], count: int, max_bytes: int = BATCH_BYTES
) -> Iterator[list[int]]:
    """``uids`` in batches of at most ``count`` emails and, when sizes are known, about ``max_bytes``:
    fifty emails of 30 MB fetched at once would hold 1.5 GB in memory."""
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if batch and (len(batch) >= count or total + size > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


def attempts_cut_short(session: Session, message_pk: int) -> int:
    """How many times processing this email was taken over unfinished, since it was last retried."""
    retried = select(func.coalesce(func.max(Event.id), 0)).where(
        Event.message_id == message_pk, Event.kind == "reprocess"
    )
    return (
        session.scalar(
            select(func.count(Event.id)).where(
                Event.message_id == message_pk, Event.kind == "resumed", Event.id > retried.scalar_subquery()
            )
        )
        or 0
    )


class Refusals:
    def __init__(
        self,
        limits: IntakeLimits,
        *,
        mailbox: Mailbox,
        ledger: Ledger,
        blobs: BlobStore,
        sessions: sessionmaker[Session],
        processor: Processor,
        arrival: Callable[[int, int, bytes, str], Arrival],
    ) -> None:
        self.limits = limits
        self.mailbox = mailbox
        self.ledger = ledger
        self.blobs = blobs
        self.sessions = sessions
        self.processor = processor
        self.arrival = arrival

    def refuse_oversize(
        self, uidvalidity: int, uids: list[int], report: IngestReport
    ) -> tuple[list[int], list[Outcome], dict[int, int]]:
        """(the UIDs small enough to fetch, the outcomes of those that are not, every UID's size)."""
        if not uids:
            return uids, [], {}
        limit = self.limits.max_message_bytes
        sizes = self.mailbox.sizes(uids)
        over = {uid: size for uid, size in sizes.items() if size > limit}
        if not over:
            return uids, [], sizes
        outcomes: list[Outcome] = []
        for uid, header in self.mailbox.fetch_headers(list(over), self.limits.max_header_bytes):
            size = over[uid]
            sha256 = self.blobs.put(header)
            claim = self.ledger.claim(replace(self.arrival(uidvalidity, uid, header, sha256), size=size))
            if claim.result is ClaimResult.BUSY:
                report.busy += 1
                continue
            status = claim.status
            if claim.result is ClaimResult.PROCESS:
                status = self.processor.quarantine(claim.message_pk, oversize_reason(size, limit))
                report.count(status)
            else:
                report.moved_only += 1
            log.warning(
                "message %s: %d bytes, over the limit of %d: not fetched", claim.message_pk, size, limit
            )
            outcomes.append((uid, claim.message_pk, status))
        return [uid for uid in uids if uid not in over], outcomes, sizes

    def poison(self, message_pk: int) -> Status | None:
        """Quarantine the email when earlier attempts died on it too often; None to process it."""
        with self.sessions() as session:
            died = attempts_cut_short(session, message_pk)
        if died < self.limits.poison_attempts:
            return None
        log.error("message %s: processing was cut short %d times; quarantined as poison", message_pk, died)
        return self.processor.quarantine(
            message_pk, f"{POISON}: processing was cut short {died} times (the worker died on it)"
        )
