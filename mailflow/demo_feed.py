"""The demo's feed: its sample emails arrive one by one over the past weeks, and staff decide some.

Nothing is written into the archive by hand. Each email is appended to the demo's mailbox and taken
by the worker's own ingest, with the application's clock set to the moment it arrives; a triage item
is decided through the desk's own ``decide_item``, with the clock set to when a person got to it. So
the ledger's received_at, the decisions, cases, replies and events are what the pipeline wrote, only
on earlier days. The clock is the demo's alone: the worker and the desk it starts afterwards build
their own application, on the real clock.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from mailflow.bootstrap import App
from mailflow.demo_calendar import SEED, arrival_times, staff_moment
from mailflow.domain import Status
from mailflow.ports import Mailbox
from mailflow.storage.models import Message
from mailflow.web import leases
from mailflow.web.decisions import DecisionRefused, Part, decide_item, suggestion
from mailflow.web.triage import unverified

log = logging.getLogger(__name__)
STAFF = "staff"  # the demo's staff account (mailflow.web.demo)
StaffQueue = list[tuple[datetime, int, str]]  # (when a person gets to it, message id, sha256), a heap


class DemoClock:
    """The demo's time: set to a moment, then running on at real speed from there."""

    def __init__(self) -> None:
        self.set(datetime.now(UTC))

    def set(self, moment: datetime) -> None:
        self._moment, self._since = moment, time.monotonic()

    def __call__(self) -> datetime:
        return self._moment + timedelta(seconds=time.monotonic() - self._since)


@dataclass
class FeedReport:
    fed: int = 0  # sample emails that arrived in the past weeks
    skipped: int = 0  # sample emails the archive held already
    waiting: int = 0  # emails found in the inbox before the feed, taken as arriving now
    processed: int = 0
    decided_by_staff: int = 0
    replies_sent: int = 0


def feed(
    app: App,
    clock: DemoClock,
    source: Path,
    *,
    now: datetime | None = None,
    seed: int = SEED,
    on_progress: Callable[[int, int], None] | None = None,
) -> FeedReport:
    """Let the ``.eml`` files of ``source`` the archive does not hold yet arrive over the weeks before
    ``now``, each processed as it arrives; a person decides triage items when they get to them."""
    files = sorted(source.glob("*.eml"))
    if not files:
        raise FileNotFoundError(f"no .eml files in {source}")
    now = now or datetime.now(UTC)
    report = FeedReport()
    emails = [data for data in (path.read_bytes() for path in files) if not app.blobs.exists(_digest(data))]
    report.skipped = len(files) - len(emails)
    # Mixed, so each week has some of every kind of request; the seed keeps the mix the same.
    random.Random(f"{seed}:order").shuffle(emails)
    arrivals = arrival_times(len(emails), now=now, seed=seed)
    mailbox = app.open_mailbox()
    try:
        # Whatever already waits in the inbox arrived now, not in the demo's past.
        clock.set(now)
        report.waiting = _ingest(app, mailbox, report)
        staff_queue: StaffQueue = []
        for data, at in zip(emails, arrivals, strict=True):
            _staff_until(app, clock, staff_queue, at, report)
            clock.set(at)
            mailbox.append(app.settings.imap_folder, data)  # type: ignore[attr-defined]
            _ingest(app, mailbox, report)
            _queue_for_staff(app, staff_queue, _digest(data), seed)
            report.fed += 1
            if on_progress:
                on_progress(report.fed, len(emails))
        _staff_until(app, clock, staff_queue, now, report)
    finally:
        mailbox.close()
    return report


def _ingest(app: App, mailbox: Mailbox, report: FeedReport) -> int:
    processed = app.make_ingestor(mailbox).run_once().processed
    report.processed += processed
    report.replies_sent += app.outbox.deliver_due().sent
    return processed


def _queue_for_staff(app: App, staff_queue: StaffQueue, sha256: str, seed: int) -> None:
    with app.sessions() as session:
        row = session.execute(
            select(Message.id, Message.received_at).where(
                Message.sha256 == sha256, Message.status == Status.TRIAGE
            )
        ).first()
    if row is not None:
        at = staff_moment(row.received_at, random.Random(f"{seed}:staff:{sha256}"))
        heapq.heappush(staff_queue, (at, row.id, sha256))


def _staff_until(
    app: App, clock: DemoClock, staff_queue: StaffQueue, until: datetime, report: FeedReport
) -> None:
    """A person opens every triage item they get to before ``until`` and accepts the suggestion,
    as the desk's "accept" does; what needs more than that (a sender to check, a category to choose)
    stays in the queue, as it would for a person in a hurry."""
    while staff_queue and staff_queue[0][0] <= until:
        at, message_id, sha256 = heapq.heappop(staff_queue)
        clock.set(at)
        analysis = app.analyser.analyse(app.blobs.get(sha256))
        if unverified(analysis):
            continue
        held = leases.take(app.sessions, message_id, STAFF, now=clock(), lease=_desk_lease(app))
        if held.username != STAFF:
            continue
        category, action = suggestion(app, analysis)
        try:
            decide_item(app, message_id, STAFF, [Part(category, action)])
        except (DecisionRefused, ValueError) as exc:  # what a person would have to sort out
            log.info("demo staff left email %s in triage: %s", message_id, exc)
            with app.sessions.begin() as session:
                leases.release(session, message_id, STAFF)
            continue
        report.decided_by_staff += 1
        report.replies_sent += app.outbox.deliver_due().sent


def _desk_lease(app: App) -> timedelta:
    return timedelta(seconds=app.settings.triage_lease_seconds)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
