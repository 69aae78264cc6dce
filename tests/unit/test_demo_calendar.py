"""The demo's calendar: weeks of arrivals, busier on weekdays and in office hours, the same every time."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

import pytest

from mailflow.demo_calendar import (
    BRUSSELS,
    CLOSES,
    DAYS,
    OPENS,
    arrival_times,
    office_hours_from,
    staff_moment,
)

# A Thursday afternoon in Brussels (14:00 local).
NOW = datetime(2026, 3, 19, 13, 0, tzinfo=UTC)


def _local(moment: datetime) -> datetime:
    return moment.astimezone(BRUSSELS)


def test_the_same_seed_and_day_give_the_same_moments() -> None:
    assert arrival_times(40, now=NOW) == arrival_times(40, now=NOW)
    assert arrival_times(40, now=NOW, seed=1) != arrival_times(40, now=NOW, seed=2)


def test_moments_are_sorted_in_the_window_and_never_in_the_future() -> None:
    moments = arrival_times(300, now=NOW)
    first_day = _local(NOW).date() - timedelta(days=DAYS - 1)
    assert moments == sorted(moments)
    assert all(m.tzinfo is not None and m <= NOW for m in moments)
    assert min(_local(m).date() for m in moments) >= first_day
    assert (max(moments) - min(moments)).days >= 3 * 7


def test_weekdays_are_busier_than_weekends_and_most_come_in_office_hours() -> None:
    moments = [_local(m) for m in arrival_times(600, now=NOW)]
    weekday = sum(1 for m in moments if m.weekday() < 5) / (DAYS * 5 / 7)
    weekend = sum(1 for m in moments if m.weekday() >= 5) / (DAYS * 2 / 7)
    assert weekday > 4 * weekend
    in_hours = sum(1 for m in moments if OPENS <= m.time() < CLOSES)
    assert in_hours / len(moments) > 0.8
    assert all(m.time() >= OPENS for m in moments)  # nobody writes in the small hours


def test_nothing_arrives_today_before_it_happened() -> None:
    early = datetime(2026, 3, 19, 6, 30, tzinfo=UTC)  # 07:30 in Brussels: the counter is not open yet
    moments = arrival_times(300, now=early)
    assert all(m <= early for m in moments)
    assert max(_local(m).date() for m in moments) < _local(early).date()


def test_an_email_drawn_later_than_now_changes_only_its_own_moment() -> None:
    morning = datetime(2026, 3, 19, 9, 0, tzinfo=UTC)
    evening = datetime(2026, 3, 19, 22, 0, tzinfo=UTC)
    before = set(arrival_times(60, now=morning))
    after = set(arrival_times(60, now=evening))
    assert len(before - after) < 5


@pytest.mark.parametrize(
    ("local", "expected_day"),
    [
        (datetime(2026, 3, 20, 18, 30), 23),  # Friday evening: Monday
        (datetime(2026, 3, 21, 11, 0), 23),  # Saturday: Monday
        (datetime(2026, 3, 17, 6, 0), 17),  # Tuesday before opening: the same morning
        (datetime(2026, 3, 17, 23, 0), 18),  # Tuesday night: Wednesday
    ],
)
def test_outside_office_hours_a_person_starts_at_the_next_opening(local: datetime, expected_day: int) -> None:
    moment = office_hours_from(local.replace(tzinfo=BRUSSELS).astimezone(UTC), random.Random(1))
    assert _local(moment).day == expected_day
    assert OPENS <= _local(moment).time() <= time(9, 30)


def test_in_office_hours_a_moment_stays_as_it_is() -> None:
    moment = datetime(2026, 3, 17, 10, 15, tzinfo=BRUSSELS).astimezone(UTC)
    assert office_hours_from(moment, random.Random(1)) == moment


def test_staff_open_triage_items_later_and_only_in_office_hours() -> None:
    rng = random.Random(7)
    for received in arrival_times(200, now=NOW):
        opened = _local(staff_moment(received, rng))
        assert opened > received
        assert opened.weekday() < 5
        assert OPENS <= opened.time() < CLOSES
