"""The long-running worker: push (IDLE) or polling, timers on APScheduler, reconnects with backoff."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.exc import OperationalError

from mailflow.clock_steps import ClockSteps, reschedule
from mailflow.errors import MailboxError, MailboxLoginError, MailboxMissingError, StorageError
from mailflow.ingest import Ingestor, IngestReport
from mailflow.operations.heartbeat import Heartbeat, Watchdog
from mailflow.ports import Mailbox
from mailflow.replies.outbox import DeliveryReport, Outbox

log = logging.getLogger(__name__)

POLL_JOB = "poll"
OUTBOX_JOB = "outbox"
RETRAIN_JOB = "retrain"
RETENTION_JOB = "retention"
WATCHDOG_JOB = "heartbeat"
BEAT_JOB = "beat"


@dataclass
class Backoff:
    """Exponential backoff with jitter, so several workers do not reconnect in step."""

    base: float = 1.0
    cap: float = 300.0
    attempt: int = field(default=0, init=False)

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class CycleResult:
    ingest: IngestReport
    delivery: DeliveryReport


class Worker:
    def __init__(
        self,
        *,
        open_mailbox: Callable[[], Mailbox],
        make_ingestor: Callable[[Mailbox, Callable[[], bool]], Ingestor],
        outbox: Outbox,
        poll_interval: float,
        outbox_interval: float,
        idle_slice: float = 5.0,
        nightly: Callable[[Callable[[], bool]], None] | None = None,  # given: "is the worker stopping?"
        nightly_at: str = "02:30",
        heartbeat: Heartbeat | None = None,
        watchdog: Watchdog | None = None,
        retention: Callable[[], None] | None = None,
        retention_at: str = "03:30",
        beat_interval: float = 10.0,
        reconnect_max: float = 15.0,
    ) -> None:
        self.open_mailbox = open_mailbox
        self.make_ingestor = make_ingestor
        self.outbox = outbox
        self.poll_interval = poll_interval
        self.outbox_interval = outbox_interval
        self.idle_slice = idle_slice
        self.nightly = nightly
        self.nightly_at = nightly_at
        self.heartbeat = heartbeat
        self.watchdog = watchdog
        self.retention = retention
        self.retention_at = retention_at
        self.beat_interval = beat_interval
        self.reconnect_max = reconnect_max
        self.stop_event = threading.Event()
        # A failed cycle is tried again within seconds, not at the next poll; longer after each failure,
        # but never longer than reconnect_max: a server back after a restart is used within seconds.
        self.retry = Backoff(base=2.0, cap=min(reconnect_max, poll_interval))
        self.mailbox_missing = False
        self._scheduler: BackgroundScheduler | None = None
        # One cycle at a time; mail announced while one runs makes that one go round again.
        self._cycling = threading.Lock()
        self._cycle_wanted = threading.Event()

    def cycle(self) -> CycleResult:
        """Process everything waiting now, then send what the outbox holds."""
        if self.heartbeat:
            self.heartbeat.poll_started()
        try:
            mailbox = self.open_mailbox()
            try:
                report = self.make_ingestor(mailbox, self.stop_event.is_set).run_once()
            finally:
                mailbox.close()
        except Exception as exc:
            if self.heartbeat:
                self.heartbeat.poll_failed(exc)
            raise
        if self.heartbeat:
            self.heartbeat.poll_succeeded()
        return CycleResult(report, self.outbox.deliver_due())

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        """Until ``stop()``: the current email is always finished before returning."""
        scheduler = BackgroundScheduler(jobstores={"default": MemoryJobStore()}, timezone=UTC)
        scheduler.add_job(
            self._scheduled_cycle,
            "interval",
            seconds=self.poll_interval,
            id=POLL_JOB,
            # A second instance started while a cycle runs only asks that cycle to go round again: with
            # one instance, APScheduler would skip the wake-up of mail announced meanwhile, and that mail
            # would wait for the next poll.
            max_instances=2,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
        scheduler.add_job(
            self._scheduled_delivery,
            "interval",
            seconds=self.outbox_interval,
            id=OUTBOX_JOB,
            max_instances=1,
            coalesce=True,
        )
        if self.nightly is not None:
            hour, minute = (int(part) for part in self.nightly_at.split(":"))
            scheduler.add_job(
                self._scheduled_nightly,
                # No timezone given: APScheduler 3 reads the machine's local zone, as retrain_at means.
                CronTrigger(hour=hour, minute=minute),
                id=RETRAIN_JOB,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=3600,
            )
        if self.retention is not None:
            hour, minute = (int(part) for part in self.retention_at.split(":"))
            scheduler.add_job(
                self._scheduled_retention,
                CronTrigger(hour=hour, minute=minute),  # local time, as retrain_at
                id=RETENTION_JOB,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=3600,
            )
        if self.heartbeat is not None:
            scheduler.add_job(
                self.heartbeat.beat, "interval", seconds=self.beat_interval, id=BEAT_JOB, coalesce=True
            )
        if self.watchdog is not None:
            scheduler.add_job(
                self._scheduled_watchdog,
                "interval",
                seconds=self.watchdog.check_every,
                id=WATCHDOG_JOB,
                max_instances=1,
                coalesce=True,
            )
        self._scheduler = scheduler
        scheduler.start()
        log.info("worker started")
        try:
            self._watch(scheduler)
        finally:
            scheduler.shutdown(wait=True)
            log.info("worker stopped")

    def _watch(self, scheduler: BackgroundScheduler) -> None:
        """Hold an IDLE connection and wake the poll job as soon as the server announces mail."""
        # A server coming back is used within seconds; a refused login is not retried that often, as
        # providers lock accounts that keep failing.
        backoff = Backoff(base=2.0, cap=self.reconnect_max)
        login_backoff = Backoff()
        recovering = False
        clock = ClockSteps()
        while not self.stop_event.is_set():
            self._follow_clock(clock, scheduler)
            try:
                watcher = self.open_mailbox()
            except MailboxError as exc:
                delay = (login_backoff if isinstance(exc, MailboxLoginError) else backoff).next_delay()
                _log_mailbox_error("mailbox unreachable", exc, delay)
                self.stop_event.wait(delay)
                continue
            try:
                if recovering:
                    watcher.uidvalidity()  # connects: mailboxes do so lazily, on first use
                    log.info("mailbox reachable again; polling now")
                    recovering = False
                    self._poll_now(scheduler)
                while not self.stop_event.is_set():
                    woke = watcher.wait_for_new_mail(self.idle_slice)
                    self._follow_clock(clock, scheduler)
                    # Only now is the login known to work: mailboxes connect lazily, on first use.
                    backoff.reset()
                    login_backoff.reset()
                    if woke:
                        self._poll_now(scheduler)
            except MailboxMissingError:
                # The poll cycle alerts; waiting here keeps the watcher from repeating it.
                recovering = True
                self.stop_event.wait(self.poll_interval)
            except MailboxError as exc:
                recovering = True
                delay = (login_backoff if isinstance(exc, MailboxLoginError) else backoff).next_delay()
                _log_mailbox_error("lost the mailbox connection", exc, delay)
                self.stop_event.wait(delay)
            except Exception:  # a bug in a token library, say: the worker must live on regardless
                recovering = True
                delay = backoff.next_delay()
                log.exception("watching the mailbox failed; retrying in %.0f s", delay)
                self.stop_event.wait(delay)
            finally:
                _close_quietly(watcher)

    def _follow_clock(self, clock: ClockSteps, scheduler: BackgroundScheduler) -> None:
        """The timers are wall-clock times: after a step of the clock, each is set again from the new time."""
        moved = clock.step()
        if moved and not self.stop_event.is_set():
            log.warning("the wall clock jumped %+.0f s; timers rescheduled from the new time", moved)
            reschedule(scheduler)

    def _poll_now(self, scheduler: BackgroundScheduler) -> None:
        if not self.stop_event.is_set():
            scheduler.modify_job(POLL_JOB, next_run_time=datetime.now(UTC))

    def _scheduled_cycle(self) -> None:
        self._cycle_wanted.set()
        while self._cycle_wanted.is_set() and not self.stop_event.is_set():
            if not self._cycling.acquire(blocking=False):
                return  # the running cycle sees the wish when it ends, and goes round again
            try:
                self._cycle_wanted.clear()
                succeeded = self._one_cycle()
            finally:
                self._cycling.release()
            if not succeeded:
                return  # _retry_soon has scheduled the retry

    def _one_cycle(self) -> bool:
        """One cycle, its failure logged; whether it succeeded."""
        try:
            result = self.cycle()
        except MailboxMissingError as exc:
            self._mailbox_missing(exc)
            return False
        except MailboxLoginError as exc:
            log.error("poll failed: %s; the next poll retries", exc)
            return False
        except MailboxError as exc:
            log.warning("poll failed (%s); retrying in %.0f s", exc, self._retry_soon())
            return False
        except StorageError as exc:
            log.error("poll stopped: %s; retrying in %.0f s", exc, self._retry_soon())
            return False
        except OperationalError as exc:  # a restart or failover: pool_pre_ping reconnects next time
            log.warning("database unreachable (%s); retrying in %.0f s", _first_line(exc), self._retry_soon())
            return False
        except Exception:
            log.exception("poll cycle failed; retrying in %.0f s", self._retry_soon())
            return False
        self.retry.reset()
        if result.ingest.held or result.ingest.busy:
            self._look_again_soon()
        if self.mailbox_missing:
            self.mailbox_missing = False
            log.warning("the watched mailbox exists again; processing it")
        if result.ingest.processed:
            log.info("processed %d emails: %s", result.ingest.processed, result.ingest.by_status)
        self._scheduled_watchdog()  # a recovery is announced at once, not at the next check
        return True

    def _look_again_soon(self) -> None:
        """Other workers hold emails here: look again within a heartbeat, so that those of a worker that
        died are taken over once its heartbeat has stopped, not at the next poll."""
        delay = min(self.poll_interval, self.beat_interval)
        if self._scheduler is not None and not self.stop_event.is_set():
            self._scheduler.modify_job(POLL_JOB, next_run_time=datetime.now(UTC) + timedelta(seconds=delay))

    def _mailbox_missing(self, exc: MailboxMissingError) -> None:
        """Not created (a typo or a rename must not start a new, empty inbox nobody reads): alert once,
        then look again at each poll."""
        if self.mailbox_missing:
            log.debug("still missing: %s", exc)
            return
        self.mailbox_missing = True
        summary = (
            f"mailbox missing: {exc}; not processing it and not creating it; renamed or deleted? "
            f"checking again every {self.poll_interval:.0f} s"
        )
        if self.watchdog is not None:
            self.watchdog.alarm("mailflow: the watched mailbox is missing", summary)
        else:
            log.error("%s", summary)

    def _scheduled_watchdog(self) -> None:
        if self.watchdog is None or self.stop_event.is_set():  # stopping: polls have ended on purpose
            return
        try:
            self.watchdog.check()
        except Exception:
            log.exception("heartbeat check failed")

    def _retry_soon(self) -> float:
        delay = self.retry.next_delay()
        if self._scheduler is not None and not self.stop_event.is_set():
            next_run = datetime.now(UTC) + timedelta(seconds=delay)
            self._scheduler.modify_job(POLL_JOB, next_run_time=next_run)
        return delay

    def _scheduled_nightly(self) -> None:
        if self.nightly is None or self.stop_event.is_set():
            return
        try:
            self.nightly(self.stop_event.is_set)
        except Exception:
            log.exception("nightly job failed")

    def _scheduled_retention(self) -> None:
        if self.retention is None or self.stop_event.is_set():
            return
        try:
            self.retention()  # one worker of several runs it: a lease in the database decides
        except Exception:
            log.exception("retention job failed")

    def _scheduled_delivery(self) -> None:
        try:
            report = self.outbox.deliver_due()
        except OperationalError as exc:
            log.warning("outbox delivery waits for the database (%s)", _first_line(exc))
            return
        except Exception:
            log.exception("outbox delivery failed")
            return
        if (report.failed or report.unconfirmed) and self._scheduler is not None:
            # Their emails went back to triage: the poll's refile moves them there now, not in a minute.
            self._poll_now(self._scheduler)


def _log_mailbox_error(what: str, exc: MailboxError, delay: float) -> None:
    # A refused login will not cure itself: an error, so that alerting on errors catches it.
    level = logging.ERROR if isinstance(exc, MailboxLoginError) else logging.WARNING
    log.log(level, "%s (%s); retrying in %.0f s", what, exc, delay)


def _first_line(exc: OperationalError) -> str:
    lines = str(exc.orig or exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def _close_quietly(mailbox: Mailbox) -> None:
    try:
        mailbox.close()
    except Exception:
        log.debug("closing the mailbox failed", exc_info=True)
