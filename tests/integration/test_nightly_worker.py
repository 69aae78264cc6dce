"""The nightly retraining inside a running worker: a worker asked to stop while it retrains stops within
seconds, installs nothing half-done, and says so in the event log. Real Dovecot, aiosmtpd and SQLite;
the worker's wall clock is moved by libfaketime to just before its retrain_at."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from mailflow.storage.models import Event
from tests.integration.test_mailbox_races import LIBFAKETIME, set_clock_offset, under_faketime
from tests.integration.test_server_faults import FAST, Ledger, Workers, log_text, wait_until
from tests.integration.worker_harness import PROJECT_ROOT, SAMPLES_DIR, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def tree_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def test_a_worker_stopped_during_its_nightly_retraining_stops_within_seconds_and_keeps_its_model(
    dovecot, smtp_server, tmp_path
):
    if not LIBFAKETIME.exists():
        pytest.skip("libfaketime is missing: apt-get install faketime libfaketime")
    model_dir = tmp_path / "model"
    shutil.copytree(PROJECT_ROOT / "classifiers" / "model", model_dir)
    before = tree_digest(model_dir)
    # retrain_at is a whole minute of the worker's (UTC) clock, two to three minutes from now: later
    # than the worker's start-up, which the clock step below then skips.
    start_of_retraining = (int(time.time()) // 60 + 3) * 60
    url = f"sqlite:///{tmp_path / 'data' / 'mailflow.sqlite3'}"
    env = under_faketime(
        worker_env(
            dovecot, smtp_server, tmp_path / "data", url, **FAST,
            TZ="UTC",
            MAILFLOW_RETRAIN_ENABLED="true",
            MAILFLOW_RETRAIN_AT=time.strftime("%H:%M", time.gmtime(start_of_retraining)),
            MAILFLOW_MODEL_DIR=str(model_dir),
            MAILFLOW_TRAINING_CORPORA=json.dumps([str(SAMPLES_DIR)]),
        ),
        tmp_path / "faketime.rc",
    )  # fmt: skip
    workers = Workers(tmp_path)
    try:
        process, log = workers.start(env)
        assert wait_until(lambda: "worker started" in log_text(log), 60), log_text(log)
        # The clock steps to three seconds before retrain_at, as an NTP correction would.
        step = start_of_retraining - time.time() - 3
        assert step > 0, "the worker took minutes to start"
        set_clock_offset(tmp_path / "faketime.rc", f"+{step:.0f}")
        assert wait_until(lambda: "corpus emails" in log_text(log), 60), log_text(log)[-3000:]

        asked = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        took = time.monotonic() - asked
    finally:
        workers.stop_all()
    text = log_text(log)
    assert process.returncode == 0 and "Traceback" not in text, text[-5000:]
    assert "nightly retraining given up" in text and "worker stopped" in text, text[-3000:]
    print(f"stopped {took:.1f} s after SIGTERM, mid-retraining")
    assert took < 15, text[-3000:]
    assert tree_digest(model_dir) == before  # nothing installed, not even in part
    with Ledger(url).engine.connect() as connection:
        kinds = connection.execute(select(Event.kind).order_by(Event.seq)).scalars().all()
    assert kinds[-2:] == ["retrain_started", "retrain_interrupted"], kinds
