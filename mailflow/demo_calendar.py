"""When the demo's emails arrive and when its staff get to them: weeks of a counter's mailbox.

Pure and seeded: the same seed and the same day give the same moments, so the demo's dashboard (and the
screenshots made of it) come out the same. Residents write mostly on weekdays and in office hours;
staff work weekdays in office hours. Every moment is in Europe/Brussels, returned in UTC.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

BRUSSELS = ZoneInfo("Europe/Brussels")
SEED = 11  # chosen for a backlog of several ages with the shipped samples and model
DAYS = 28  # four weeks: all of it within the dashboard's default 30 days
# How busy each weekday is, Monday first: Mondays bring the weekend's questions, Sundays are quiet.
DAY_WEIGHTS = (1.3, 1.0, 1.0, 0.9, 0.8, 0.15, 0.1)
OPENS, CLOSES = time(8, 0), time(17, 30)
EVENING = 0.12  # share of emails written after work, before midnight
# How long a triage item waits before someone opens it: half a working day as a rule, days at times.
STAFF_DELAY_MEDIAN_HOURS, STAFF_DELAY_SPREAD = 5.0, 1.0


def arrival_times(count: int, *, now: datetime, days: int = DAYS, seed: int = SEED) -> list[datetime]:
    """``count`` moments over the ``days`` days up to ``now`` (today included), oldest first.

    Each email gets its own random stream, so an email drawn later today than ``now`` changes only
    its own moment when drawn again, not everyone else's.
    """
    today = now.astimezone(BRUSSELS).date()
    window = [today - timedelta(days=back) for back in range(days - 1, -1, -1)]
    weights = [DAY_WEIGHTS[day.weekday()] for day in window]
    moments = []
    for index in range(count):
        rng = random.Random(f"{seed}:arrival:{index}")
        while True:
            moment = _time_of_day(rng.choices(window, weights)[0], rng)
            if moment <= now:
                break
        moments.append(moment)
    return sorted(moments)


def _time_of_day(day: date, rng: random.Random) -> datetime:
    if rng.random() < EVENING:
        start, end = time(18, 0), time(23, 30)
    else:
        start, end = OPENS, CLOSES
    return _local(day, start) + rng.random() * (_local(day, end) - _local(day, start))


def staff_moment(received: datetime, rng: random.Random) -> datetime:
    """When a person opens a triage item that arrived at ``received``: some hours later, in office
    hours (a person opens it at the next opening when that is outside them)."""
    hours = rng.lognormvariate(math.log(STAFF_DELAY_MEDIAN_HOURS), STAFF_DELAY_SPREAD)
    return office_hours_from(received + timedelta(hours=hours), rng)


def office_hours_from(moment: datetime, rng: random.Random) -> datetime:
    """``moment`` itself when it is in a weekday's office hours, else a little after the next opening."""
    local = moment.astimezone(BRUSSELS)
    day = local.date()
    if day.weekday() < 5 and OPENS <= local.time() < CLOSES:
        return moment
    opening = day if day.weekday() < 5 and local.time() < OPENS else day + timedelta(days=1)
    while opening.weekday() >= 5:
        opening += timedelta(days=1)
    return _local(opening, OPENS) + timedelta(minutes=rng.uniform(0, 90))


def _local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, BRUSSELS).astimezone(UTC)
