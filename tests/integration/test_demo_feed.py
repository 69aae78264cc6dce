"""The demo's feed: sample emails taken by the real pipeline over past weeks give the dashboard real days."""

from __future__ import annotations

import hashlib
import io
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import select

from mailflow.bootstrap import App, utc_now
from mailflow.demo import run_demo, sample_mailbox
from mailflow.demo_calendar import BRUSSELS, arrival_times
from mailflow.demo_feed import STAFF
from mailflow.settings import Settings, load_settings
from mailflow.storage.models import DecisionRecord, Event, Message
from mailflow.web.dashboard import figures

NOW = datetime(2026, 3, 19, 13, 0, tzinfo=UTC)  # a Thursday afternoon
NO_ATTACHMENT = 4096  # bytes: the samples below this have no scan to read, so the test stays quick


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "samples"
    folder.mkdir()
    for path in sample_mailbox().glob("*.eml"):
        if path.stat().st_size < NO_ATTACHMENT:
            shutil.copy(path, folder)
    assert len(list(folder.glob("*.eml"))) >= 20
    return folder


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data", imap_host=None, smtp_host=None)


def _quiet() -> Console:
    return Console(file=io.StringIO())


def test_the_demo_feeds_weeks_of_email_through_the_pipeline(settings: Settings, source: Path) -> None:
    report = run_demo(settings, source, _quiet(), now=NOW)
    assert report.fed == report.processed == len(list(source.glob("*.eml")))

    app = App(settings)
    try:
        with app.sessions() as session:
            received = session.scalars(select(Message.received_at)).all()
            days = {moment.astimezone(BRUSSELS).date() for moment in received}
            assert max(received) <= NOW
            assert max(received) - min(received) >= timedelta(weeks=3)
            assert len(days) >= 8

            # Every email's own events happened when it arrived, not when the test ran.
            stored = dict(
                session.execute(select(Event.message_id, Event.at).where(Event.kind == "stored")).all()
            )
            arrival = dict(session.execute(select(Message.id, Message.received_at)).all())
            assert stored == arrival

            # Staff decided some triage items, on earlier days, after the email had arrived.
            staff = session.execute(
                select(DecisionRecord.decided_at, Message.received_at)
                .join(Message, Message.id == DecisionRecord.message_id)
                .where(DecisionRecord.decided_by == STAFF)
            ).all()
            assert staff and report.decided_by_staff == len(staff)
            assert all(received_at < decided_at < NOW for decided_at, received_at in staff)
            assert min(decided_at for decided_at, _ in staff) < NOW - timedelta(days=7)

            data = figures(session, now=NOW, days=30)
        per_day = data["per_day"]
        assert sum(1 for count in per_day["emails"] if count) > 1
        assert sum(1 for rate in per_day["rate"] if rate is not None) > 1
        assert sum(1 for hours in per_day["median_hours"] if hours is not None) >= 1
        assert data["totals"]["emails"] == len(received)
        assert data["totals"]["handled"] == len(staff)
    finally:
        app.close()


def test_a_second_run_feeds_nothing_again(settings: Settings, source: Path) -> None:
    run_demo(settings, source, _quiet(), now=NOW)
    again = run_demo(settings, source, _quiet(), now=NOW + timedelta(days=1))
    assert (again.fed, again.processed, again.decided_by_staff) == (0, 0, 0)
    assert again.skipped == len(list(source.glob("*.eml")))


def test_emails_waiting_in_the_inbox_arrive_now_and_the_app_keeps_the_real_clock(
    settings: Settings, source: Path
) -> None:
    waiting = next(iter(sorted(source.glob("*.eml")))).read_bytes()
    app = App(settings)
    try:
        assert app.clock is utc_now  # what the worker and the desk are built with
        mailbox = app.open_mailbox()
        try:
            mailbox.append(settings.imap_folder, waiting + b"\n")  # type: ignore[attr-defined]
        finally:
            mailbox.close()
        for path in source.glob("*.eml"):
            if path.read_bytes() != waiting:
                path.unlink()
        report = run_demo(settings, source, _quiet(), now=NOW)
        assert report.waiting == 1
        with app.sessions() as session:
            received = dict(session.execute(select(Message.sha256, Message.received_at)).all())
        assert len(received) == 2
        assert NOW <= received[hashlib.sha256(waiting + b"\n").hexdigest()] < NOW + timedelta(minutes=1)
        fed = received[hashlib.sha256(waiting).hexdigest()]
        assert timedelta(0) <= fed - arrival_times(1, now=NOW)[0] < timedelta(minutes=1)
    finally:
        app.close()
