"""The worker's heartbeat: a row per worker in the database, and a watchdog for silent workers.

The desk and the workers are separate processes, possibly on several machines, so what /metrics
reports about polls and classification latency travels through the ``worker_heartbeats`` table.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from mailflow.errors import TransportError
from mailflow.ports import ReplyTransport
from mailflow.storage.models import WorkerHeartbeat

log = logging.getLogger(__name__)

T = TypeVar("T")
# Upper bounds (seconds) of the classification latency histogram; a last bucket takes the rest.
LATENCY_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class LatencyRecorder:
    """How long analysing each email took in this process, cumulative since it started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self._sum = 0.0
        self._count = 0

    def observe(self, seconds: float) -> None:
        index = next((i for i, bound in enumerate(LATENCY_BUCKETS) if seconds <= bound), len(LATENCY_BUCKETS))
        with self._lock:
            self._buckets[index] += 1
            self._sum += seconds
            self._count += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"buckets": list(self._buckets), "sum": self._sum, "count": self._count}

    def timed(self, analyse: Callable[[bytes], T]) -> Callable[[bytes], T]:
        def timed_analyse(raw: bytes) -> T:
            started = time.perf_counter()
            try:
                return analyse(raw)
            finally:
                self.observe(time.perf_counter() - started)

        return timed_analyse


class Heartbeat:
    """This worker's row: written when a poll starts and when it ends. A database that cannot be
    reached is logged, never raised: the heartbeat must not stop the worker it reports on."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        worker_id: str,
        *,
        clock: Callable[[], datetime],
        latency: LatencyRecorder | None = None,
        host: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.worker_id = worker_id
        self.clock = clock
        self.latency = latency or LatencyRecorder()
        self.host = host or socket.gethostname()
        self.started_at = clock()
        self.last_success: datetime | None = None
        self.last_error_kind: str | None = None

    def beat(self) -> None:
        """Alive, whatever the polls are doing: other workers take this one's claims once it stops."""
        self._write(lambda row, now: None)

    def poll_started(self) -> None:
        self._write(lambda row, now: setattr(row, "last_poll_started_at", now))

    def poll_succeeded(self) -> None:
        self.last_success = self.clock()

        def succeeded(row: WorkerHeartbeat, now: datetime) -> None:
            row.last_poll_succeeded_at = now
            row.polls_succeeded += 1

        self._write(succeeded)

    def poll_failed(self, error: BaseException) -> None:
        self.last_error_kind = type(error).__name__  # the class only: messages may quote an address

        def failed(row: WorkerHeartbeat, now: datetime) -> None:
            row.last_error_at, row.last_error_kind = now, self.last_error_kind
            row.polls_failed += 1

        self._write(failed)

    def _write(self, change: Callable[[WorkerHeartbeat, datetime], None]) -> None:
        now = self.clock()
        try:
            with self.sessions.begin() as session:
                row = session.get(WorkerHeartbeat, self.worker_id)
                if row is None:
                    row = WorkerHeartbeat(
                        worker_id=self.worker_id,
                        host=self.host[:255],
                        started_at=self.started_at,
                        polls_succeeded=0,
                        polls_failed=0,
                    )
                    session.add(row)
                change(row, now)
                row.updated_at = now
                row.latency = self.latency.snapshot()
        except Exception as exc:
            log.warning("heartbeat not recorded: %s", type(exc).__name__)


class Watchdog:
    """When no poll succeeded for ``silence``: one ERROR line and one email per outage, and one of
    each when polls succeed again."""

    def __init__(
        self,
        heartbeat: Heartbeat,
        *,
        silence: timedelta,
        clock: Callable[[], datetime],
        notify: Callable[[str, str], None] | None = None,
    ) -> None:
        self.heartbeat = heartbeat
        self.silence = silence
        self.clock = clock
        self.notify = notify
        self.alerted = False

    @property
    def check_every(self) -> float:
        """Seconds between checks: often enough to alert within a quarter of the silence, at most 60."""
        return max(0.5, min(60.0, self.silence.total_seconds() / 4))

    def check(self) -> None:
        beat = self.heartbeat
        since = beat.last_success or beat.started_at
        silent = self.clock() - since
        if silent >= self.silence and not self.alerted:
            self.alerted = True
            what = "since the worker started" if beat.last_success is None else "since the last one"
            summary = (
                f"no poll succeeded for {_duration(silent)} ({what}) on worker "
                f"{beat.worker_id}; last error: {beat.last_error_kind or 'none'}"
            )
            log.error("heartbeat: %s", summary)
            self._notify(f"mailflow: no successful poll on {beat.host}", summary)
        elif self.alerted and beat.last_success is not None and silent < self.silence:
            self.alerted = False
            summary = (
                f"polls succeed again on worker {beat.worker_id} (last success {since:%Y-%m-%d %H:%M:%S} UTC)"
            )
            log.warning("heartbeat: %s", summary)
            self._notify(f"mailflow: polls succeed again on {beat.host}", summary)

    def alarm(self, subject: str, summary: str) -> None:
        """A fault somebody must fix, announced like a silent worker: an ERROR line and the alert email."""
        log.error("%s", summary)
        self._notify(subject, f"{summary} (worker {self.heartbeat.worker_id})")

    def _notify(self, subject: str, text: str) -> None:
        if self.notify is None:
            return
        try:
            self.notify(subject, text)
        except Exception as exc:
            log.error("heartbeat notification not sent: %s", exc)


def _duration(span: timedelta) -> str:
    seconds = span.total_seconds()
    return f"{seconds:.0f} seconds" if seconds < 120 else f"{seconds / 60:.0f} minutes"


def mail_notifier(
    transport: ReplyTransport, *, from_address: str, to: str, domain: str, clock: Callable[[], datetime]
) -> Callable[[str, str], None]:
    """Sends a short operator email through the replies' transport (SMTP or the outbox directory)."""
    envelope_from = from_address.rsplit("<", 1)[-1].rstrip(">").strip()

    def notify(subject: str, text: str) -> None:
        message = EmailMessage()
        message["From"] = from_address
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = format_datetime(clock())
        message["Message-ID"] = make_msgid("heartbeat", domain=domain)
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(text + "\n")
        try:
            transport.send(envelope_from, [to], message.as_bytes(), message["Message-ID"])
        except TransportError as exc:
            raise RuntimeError(f"the alert email was refused: {exc}") from exc

    return notify
