"""Empty the mailbox: store each email, claim it, run the pipeline, commit its outcome, then move it.
Then refile the emails whose outcome changed after they were filed (``mailflow.storage.refiles``).

The order is what makes it safe to kill at any moment: raw bytes are on disk before the ledger row
exists, the outcome (decision, case, queued reply) is one transaction, and the email leaves the inbox
only after that transaction committed. A restart finds each email either unclaimed, claimed without
outcome (processed again from the stored bytes), or decided but not yet moved (only moved).
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from mailflow.domain import Analysis, Status
from mailflow.errors import StorageError
from mailflow.identifiers import mask
from mailflow.ports import BlobStore, Mailbox
from mailflow.processing import Processor
from mailflow.refusals import IntakeLimits, Refusals, fetch_batches
from mailflow.stages.act import Actor
from mailflow.stages.headers import decode_header_value
from mailflow.stages.limits import header_part
from mailflow.storage.ledger import Arrival, ClaimResult, Known, Ledger
from mailflow.storage.refiles import FILED, Refiles

log = logging.getLogger(__name__)

# What the ledger reads of an email before it is parsed: a capped header block, capped values.
PEEK_BYTES = 256 * 1024
PEEK_VALUE_CHARS = 4096


@dataclass
class IngestReport:
    seen: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    moved_only: int = 0
    refiled: int = 0
    busy: int = 0
    held: int = 0  # left alone at the start of the cycle: another worker's claim was running
    vanished: int = 0  # listed, then expunged by another client before we fetched them
    stopped_early: bool = False

    def count(self, status: Status) -> None:
        self.by_status[status.value] = self.by_status.get(status.value, 0) + 1

    @property
    def processed(self) -> int:
        return sum(self.by_status.values())


class Ingestor:
    def __init__(
        self,
        *,
        mailbox: Mailbox,
        ledger: Ledger,
        sessions: sessionmaker[Session],
        blobs: BlobStore,
        analyse: Callable[[bytes], Analysis],
        actor: Actor,
        clock: Callable[[], datetime],
        batch_size: int = 50,
        should_stop: Callable[[], bool] = lambda: False,
        on_progress: Callable[[int, int], None] | None = None,
        limits: IntakeLimits | None = None,
    ) -> None:
        self.mailbox = mailbox
        self.ledger = ledger
        self.sessions = sessions
        self.blobs = blobs
        self.processor = Processor(sessions=sessions, analyse=analyse, actor=actor, clock=clock)
        self.clock = clock
        self.batch_size = batch_size
        self.should_stop = should_stop
        self.on_progress = on_progress
        self.refusals: Refusals | None = None
        if limits is not None:
            self.refusals = Refusals(
                limits,
                mailbox=mailbox,
                ledger=ledger,
                blobs=blobs,
                sessions=sessions,
                processor=self.processor,
                arrival=self._arrival,
            )
        self.order = random.Random()

    def run_once(self) -> IngestReport:
        report = IngestReport()
        name = self.mailbox.name
        uidvalidity = self.mailbox.uidvalidity()
        if self.ledger.observe_uidvalidity(name, uidvalidity):
            log.warning(
                "UIDVALIDITY of %s changed to %s: re-syncing by hash and Message-ID", name, uidvalidity
            )
        uids = self.mailbox.list_uids()
        report.seen = len(uids)
        known = self.ledger.known(name, uidvalidity, uids)
        report.held = _log_held(known)
        settled = [
            (uid, row.message_pk, row.status)
            for uid, row in known.items()
            if row.status is not Status.RECEIVED and not row.held_by_another
        ]
        movable = self.ledger.take_for_moving(pk for _, pk, _ in settled) if settled else set()
        settled = [item for item in settled if item[1] in movable]
        self._move_all(settled)
        report.moved_only += len(settled)
        todo = [uid for uid in uids if uid not in known or known[uid].status is Status.RECEIVED]
        sizes: dict[int, int] = {}
        if self.refusals is not None:  # too large to fetch: quarantined from their size alone
            todo, refused, sizes = self.refusals.refuse_oversize(uidvalidity, todo, report)
            self._move_all(refused)
        done = 0
        for listed in self._share(todo, sizes):
            # Another worker of the same mailbox may have taken some since we listed them.
            batch = self.ledger.unclaimed(name, uidvalidity, listed)
            report.busy += len(listed) - len(batch)
            done += len(listed) - len(batch)
            if not batch:
                continue
            outcomes: list[tuple[int, int, Status]] = []
            fetched: set[int] = set()
            try:
                for uid, raw in self.mailbox.fetch(batch):
                    if self.should_stop():
                        report.stopped_early = True
                        break
                    fetched.add(uid)
                    outcome = self._handle(uidvalidity, uid, raw, report)
                    if outcome is not None:
                        outcomes.append(outcome)
                    done += 1
                    if self.on_progress:
                        self.on_progress(done, len(todo))
            finally:
                # Outcomes are committed: whatever happens next, their emails leave the inbox.
                self._move_all(outcomes)
            if report.stopped_early:
                break
            self._count_vanished(batch, fetched, report)
        if not report.stopped_early:
            report.refiled = self._refile()
        return report

    def _count_vanished(self, batch: list[int], fetched: set[int], report: IngestReport) -> None:
        vanished = [uid for uid in batch if uid not in fetched]
        if vanished:
            report.vanished += len(vanished)
            log.info(
                "%d messages of %s were expunged by another client before we fetched them (UIDs %s); skipped",
                len(vanished),
                self.mailbox.name,
                ",".join(map(str, vanished[:20])),
            )

    def _share(self, todo: list[int], sizes: dict[int, int]) -> list[list[int]]:
        """The batches in an order of our own: workers draining one mailbox together each start
        elsewhere, rather than all fetching the same batch and racing for every email in it."""
        batches = list(fetch_batches(todo, sizes, self.batch_size))
        self.order.shuffle(batches)
        return batches

    def _refile(self) -> int:
        """Move each email whose outcome changed since it was filed; how many were moved."""
        refiles, moved = Refiles(self.ledger), 0
        for item in refiles.misfiled(self.batch_size):
            if self.should_stop():
                break
            if not refiles.claim(item):
                continue
            found_in = self.mailbox.refile(item.email, item.target, places_to_look(item.folder, item.target))
            refiles.record(item, found_in)
            if found_in is None:
                log.warning("message %s: in no folder of ours any more; not refiled", item.message_pk)
            elif found_in != item.target:
                log.info("message %s: moved from %s to %s", item.message_pk, found_in, item.target)
                moved += 1
        return moved

    def _handle(
        self, uidvalidity: int, uid: int, raw: bytes, report: IngestReport
    ) -> tuple[int, int, Status] | None:
        try:
            sha256 = self.blobs.put(raw)
        except OSError as exc:  # nothing recorded yet: the email stays in the mailbox, untouched
            raise StorageError(
                f"cannot store message UID {uid} of {self.mailbox.name} ({exc.strerror or exc}); "
                "it stays in the mailbox"
            ) from exc
        claim = self.ledger.claim(self._arrival(uidvalidity, uid, raw, sha256))
        if claim.result is ClaimResult.BUSY:
            report.busy += 1
            return None
        status = claim.status
        if claim.result is ClaimResult.PROCESS:
            poisoned = self.refusals.poison(claim.message_pk) if self.refusals is not None else None
            status = poisoned or self.processor.process(claim.message_pk, raw)
            report.count(status)
        else:
            report.moved_only += 1
        return uid, claim.message_pk, status

    def _move_all(self, outcomes: list[tuple[int, int, Status]]) -> None:
        """One MOVE per target folder for a whole batch, then one ledger transaction."""
        by_folder: dict[str, list[tuple[int, int]]] = {}
        for uid, pk, status in outcomes:
            by_folder.setdefault(status.folder, []).append((uid, pk))
        for folder, pairs in by_folder.items():
            self.mailbox.move([uid for uid, _ in pairs], folder)
            self.ledger.mark_moved([pk for _, pk in pairs], folder)

    def _arrival(self, uidvalidity: int, uid: int, raw: bytes, sha256: str) -> Arrival:
        message_id, sender, subject = peek_headers(raw)
        if subject:  # identifiers stay in the raw email only (docs/encryption.md)
            subject = mask(subject)
        return Arrival(
            mailbox=self.mailbox.name,
            uidvalidity=uidvalidity,
            uid=uid,
            sha256=sha256,
            size=len(raw),
            message_id=message_id,
            from_address=sender,
            subject=subject,
        )


def _log_held(known: dict[int, Known]) -> int:
    """Say why an email in the inbox is left alone: another worker holds it, and until when."""
    held = sorted((r.message_pk, r.holder, r.held_until) for r in known.values() if r.held_by_another)
    if held:
        shown = [f"email {pk} held by worker {who} until {until:%H:%M:%S}" for pk, who, until in held[:5]]
        log.info("%d emails held by other workers, left to them: %s", len(held), "; ".join(shown))
    return len(held)


def places_to_look(filed_in: str, target: str) -> list[str]:
    """Where to look for an email to refile: where it was filed; then the target (moved there, but a
    crash kept that from the ledger); then the other outcome folders (the same, and its outcome changed
    again since)."""
    return list(dict.fromkeys([filed_in, target, *(status.folder for status in FILED)]))


def peek_headers(raw: bytes) -> tuple[str | None, str | None, str | None]:
    """Message-ID, sender address and subject for the ledger; never fails, whatever the bytes."""
    try:
        # Only the header block, and only so much of it: the rest is the parse worker's (in a child).
        head = header_part(raw, PEEK_BYTES)
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
        # The raw values: compat32 turns 8-bit bytes into U+FFFD; decode_words reads them as UTF-8 or cp1252.
        raw = {name.lower(): str(value) for name, value in reversed(list(headers.raw_items()))}
        message_id = _clean(raw.get("message-id"))
        sender = _clean(email.utils.parseaddr(raw.get("from", "")[:PEEK_VALUE_CHARS])[1].lower())
        subject = _clean(decode_header_value(raw["subject"][:PEEK_VALUE_CHARS])) if "subject" in raw else None
    except Exception:  # a header we cannot read is the parse stage's to report, not the ledger's
        return None, None, None
    return message_id, sender, subject


def _clean(value: object) -> str | None:
    text = " ".join(str(value).split()) if value is not None else ""
    # 8-bit bytes reach the raw header values as surrogate escapes, which no database can store.
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text[:998] or None
