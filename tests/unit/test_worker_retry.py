"""A failed cycle is tried again within seconds, not at the next poll a minute later."""

from __future__ import annotations

import threading
import time

from mailflow.adapters.fakes import FakeMailbox
from mailflow.errors import MailboxError
from mailflow.ingest import IngestReport
from mailflow.replies.outbox import DeliveryReport
from mailflow.runner import Backoff, Worker


class FlakyIngestor:
    """Fails the cycles listed in ``failures`` (first one is 1), with the given exception."""

    def __init__(self, calls: list[float], failures: dict[int, Exception]) -> None:
        self.calls, self.failures = calls, failures

    def run_once(self) -> IngestReport:
        self.calls.append(time.monotonic())
        failure = self.failures.get(len(self.calls))
        if failure is not None:
            raise failure
        return IngestReport()


class QuietOutbox:
    def deliver_due(self) -> DeliveryReport:
        return DeliveryReport()


def run_until(worker: Worker, calls: list[float], count: int, timeout: float, linger: float) -> None:
    """Run the worker until ``count`` cycles have started, then ``linger`` seconds more."""
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while len(calls) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(linger)
    worker.stop()
    thread.join(timeout=15)
    assert not thread.is_alive()


def test_a_failed_cycle_is_retried_within_seconds_and_then_polls_resume_their_pace():
    calls: list[float] = []
    failures = {1: RuntimeError("a bug"), 2: MailboxError("MOVE failed")}
    worker = Worker(
        open_mailbox=FakeMailbox,
        make_ingestor=lambda _mailbox, _stop: FlakyIngestor(calls, failures),
        outbox=QuietOutbox(),  # type: ignore[arg-type]
        poll_interval=60,
        outbox_interval=60,
        idle_slice=0.2,
    )

    run_until(worker, calls, 3, timeout=15, linger=3)

    assert len(calls) == 3, "after the retry succeeded, the next cycle waits for the poll interval"
    assert calls[1] - calls[0] < 3 and calls[2] - calls[1] < 5  # 2 s, then 4 s, each less jitter
    assert worker.retry.attempt == 0


def test_retries_back_off_up_to_the_poll_interval():
    backoff = Backoff(base=2.0, cap=10.0)
    delays = [backoff.next_delay() for _ in range(6)]
    assert all(1.0 <= delay <= 10.0 for delay in delays)
    assert delays[-1] >= 5.0
