"""Noticing a step of the wall clock (NTP correcting it, a virtual machine resumed), which APScheduler 3
does not: it keeps each timer as a wall-clock time, so after a step back of a day no interval job (the
safety-net poll, the outbox, the heartbeat, the watchdog) would run for a day."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger


class ClockSteps:
    """Measures how far the wall clock moved against the monotonic one between two looks."""

    def __init__(
        self,
        tolerance: float = 2.0,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tolerance = tolerance
        self._wall, self._monotonic = wall, monotonic
        self._offset = self._read()

    def _read(self) -> float:
        return self._wall() - self._monotonic()

    def step(self) -> float:
        """Seconds the wall clock jumped since the last look (negative: back); 0.0 if it merely ran."""
        offset = self._read()
        moved, self._offset = offset - self._offset, offset
        return moved if abs(moved) > self.tolerance else 0.0


def reschedule(scheduler: BaseScheduler) -> None:
    """Every job's next run from the clock's new time: interval jobs at once (each of ours is safe to run
    early), the others at their next time from now."""
    now = datetime.now(UTC)
    for job in scheduler.get_jobs():
        if isinstance(job.trigger, IntervalTrigger):
            scheduler.modify_job(job.id, next_run_time=now)
        else:
            scheduler.modify_job(job.id, next_run_time=job.trigger.get_next_fire_time(None, now))
