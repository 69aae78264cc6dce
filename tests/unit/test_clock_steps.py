"""A step of the wall clock is told from its running, and the scheduler's timers follow it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from mailflow.clock_steps import ClockSteps, reschedule


class Clocks:
    def __init__(self) -> None:
        self.wall, self.monotonic = 1_000_000.0, 50.0

    def run(self, seconds: float) -> None:
        self.wall += seconds
        self.monotonic += seconds


def test_a_running_clock_is_no_step_a_jump_either_way_is():
    clocks = Clocks()
    steps = ClockSteps(tolerance=2.0, wall=lambda: clocks.wall, monotonic=lambda: clocks.monotonic)
    clocks.run(3600)
    assert steps.step() == 0.0
    clocks.wall += 1.5  # NTP slewing, or two clocks read a moment apart: within the tolerance
    assert steps.step() == 0.0
    clocks.wall -= 86_400
    assert steps.step() == -86_400
    assert steps.step() == 0.0, "a step is reported once"
    clocks.wall += 6 * 3600
    clocks.run(5)
    assert steps.step() == 6 * 3600


def test_after_a_step_back_interval_jobs_are_due_at_once_and_cron_jobs_at_their_next_time():
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start(paused=True)
    try:
        scheduler.add_job(print, "interval", seconds=10, id="outbox")
        scheduler.add_job(print, CronTrigger(hour=3, minute=30, timezone=UTC), id="nightly")
        a_day_ahead = datetime.now(UTC) + timedelta(days=1)  # as left by a clock that stepped back a day
        scheduler.modify_job("outbox", next_run_time=a_day_ahead)
        scheduler.modify_job("nightly", next_run_time=a_day_ahead + timedelta(days=1))

        reschedule(scheduler)

        now = datetime.now(UTC)
        assert abs(scheduler.get_job("outbox").next_run_time - now) < timedelta(seconds=5)
        nightly = scheduler.get_job("nightly").next_run_time
        assert now < nightly <= now + timedelta(days=1)
        assert (nightly.hour, nightly.minute) == (3, 30)
    finally:
        scheduler.shutdown(wait=False)
