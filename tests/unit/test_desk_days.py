"""The desk's dates are the counter's calendar days (Europe/Brussels), not UTC days."""

from __future__ import annotations

from datetime import UTC, date, datetime

from mailflow.web.archive_queries import ArchiveFilter, start_of
from mailflow.web.audit_queries import AuditFilter


def test_a_brussels_day_starts_the_evening_before_in_utc_winter_and_summer():
    assert start_of(date(2026, 12, 6), "Europe/Brussels") == datetime(2026, 12, 5, 23, 0, tzinfo=UTC)
    assert start_of(date(2026, 7, 1), "Europe/Brussels") == datetime(2026, 6, 30, 22, 0, tzinfo=UTC)
    assert start_of(date(2026, 7, 1), "UTC") == datetime(2026, 7, 1, tzinfo=UTC)


def test_filters_read_their_dates_in_the_zone_they_are_given():
    args = {"from": "2026-12-06", "to": "2026-12-06"}
    archive = ArchiveFilter.from_args(args, zone="Europe/Brussels")
    audit = AuditFilter.from_args(args, zone="Europe/Brussels")
    assert archive.zone == audit.zone == "Europe/Brussels"
    # Half past midnight in Ghent on the 6th is still the 5th in UTC, and belongs to the 6th.
    compiled = str(audit.query().compile(compile_kwargs={"literal_binds": True}))
    assert "2026-12-05 23:00:00" in compiled and "2026-12-06 23:00:00" in compiled
