"""The heartbeat watchdog: the worker falls silent, says so once, and says so again when it recovers."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from sqlalchemy import select

from mailflow.bootstrap import App
from mailflow.storage.models import WorkerHeartbeat
from tests.fixtures.smtp import free_port

pytestmark = pytest.mark.integration

ALERT_TO = "ops@stad.gent"


def run_in_thread(app: App):
    worker = app.worker()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return worker, thread


def wait_for_failed_polls(app: App, count: int, timeout: float = 30) -> WorkerHeartbeat:
    deadline = time.monotonic() + timeout
    while True:
        with app.sessions() as session:
            beat = session.scalars(select(WorkerHeartbeat)).one()
        if beat.polls_failed >= count or time.monotonic() > deadline:
            return beat
        time.sleep(0.2)


def alert_settings(dovecot, smtp_server, tmp_path, **overrides):
    return dovecot.settings(
        data_dir=tmp_path / "data",
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_security="none",
        poll_interval=0.3,
        heartbeat_alert_minutes=0.03,  # 1.8 s
        heartbeat_alert_to=ALERT_TO,
        **overrides,
    )


def test_imap_down_fires_the_heartbeat_once(dovecot, smtp_server, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    settings = alert_settings(dovecot, smtp_server, tmp_path, imap_port=free_port())  # nothing listens
    app = App(settings)
    worker, thread = run_in_thread(app)
    try:
        [alert] = smtp_server.wait_for(1, timeout=20)
        beat = wait_for_failed_polls(app, 4)  # and the watchdog checks after them: still one alert
        time.sleep(1)
    finally:
        worker.stop()
        thread.join(timeout=30)
        app.close()

    assert len(smtp_server.received) == 1
    assert alert.recipients == [ALERT_TO]
    assert alert.message["Subject"].startswith("mailflow: no successful poll")
    assert alert.message["Auto-Submitted"] == "auto-generated"
    assert f"on worker {app.worker_id}" in alert.message.get_content()
    errors = [
        r for r in caplog.records if r.levelno == logging.ERROR and "no poll succeeded" in r.getMessage()
    ]
    assert len(errors) == 1
    assert beat.polls_failed >= 4 and beat.polls_succeeded == 0
    assert beat.last_error_kind == "MailboxError" and beat.last_poll_succeeded_at is None


def test_a_recovery_is_announced_once(dovecot, smtp_server, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    user_file = dovecot.server.root / "users" / dovecot.user
    good = user_file.read_text()
    user_file.write_text(good.replace(f"{{PLAIN}}{dovecot.password}", "{PLAIN}not-the-password"))
    time.sleep(1.1)  # Dovecot re-reads a changed passwd-file at most once a second
    app = App(alert_settings(dovecot, smtp_server, tmp_path))
    worker, thread = run_in_thread(app)
    try:
        smtp_server.wait_for(1, timeout=20)
        user_file.write_text(good)
        received = smtp_server.wait_for(2, timeout=20)
        time.sleep(1.5)
    finally:
        worker.stop()
        thread.join(timeout=30)
        app.close()

    assert [r.message["Subject"].split(" on ")[0] for r in smtp_server.received] == [
        "mailflow: no successful poll",
        "mailflow: polls succeed again",
    ], received
    assert any("polls succeed again" in r.getMessage() for r in caplog.records)
