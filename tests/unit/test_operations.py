"""The pure parts of operations: watchdog, latency, JSON logs, clock and settings checks."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from mailflow.adapters.tls import client_context
from mailflow.errors import ConfigurationError
from mailflow.logging_filter import MaskingFilter
from mailflow.operations.check import check_clock
from mailflow.operations.check_mail import _date_in
from mailflow.operations.heartbeat import LatencyRecorder, Watchdog
from mailflow.operations.json_logs import JsonFormatter
from mailflow.settings import load_settings
from mailflow.storage.database import postgres_tls_options

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NRN = "85.07.30-033.61"


class Beat:
    """A heartbeat without a database: what the watchdog reads."""

    def __init__(self) -> None:
        self.worker_id, self.host = "w1", "host1"
        self.started_at = NOW
        self.last_success: datetime | None = None
        self.last_error_kind: str | None = "MailboxError"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def test_the_watchdog_alerts_once_per_outage_and_once_on_recovery(caplog):
    beat, clock, sent = Beat(), Clock(), []
    watchdog = Watchdog(beat, silence=timedelta(minutes=15), clock=clock, notify=lambda s, t: sent.append(s))  # type: ignore[arg-type]
    clock.now += timedelta(minutes=14)
    watchdog.check()
    assert sent == []
    for minutes in (1, 5, 60):
        clock.now += timedelta(minutes=minutes)
        watchdog.check()
    assert sent == ["mailflow: no successful poll on host1"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "no poll succeeded for 15 minutes" in errors[0].getMessage()
    beat.last_success = clock.now
    watchdog.check()
    watchdog.check()
    assert sent[1:] == ["mailflow: polls succeed again on host1"]
    clock.now += timedelta(minutes=16)
    watchdog.check()
    assert len(sent) == 3  # a new outage, a new alert


def test_a_failing_notification_is_logged_not_raised(caplog):
    def refuse(subject: str, text: str) -> None:
        raise RuntimeError("SMTP down")

    clock = Clock()
    watchdog = Watchdog(Beat(), silence=timedelta(minutes=1), clock=clock, notify=refuse)  # type: ignore[arg-type]
    clock.now += timedelta(minutes=2)
    watchdog.check()
    assert any("notification not sent: SMTP down" in r.getMessage() for r in caplog.records)


def test_latency_buckets_and_sum():
    recorder = LatencyRecorder()
    for seconds in (0.01, 0.2, 0.2, 3.0, 500.0):
        recorder.observe(seconds)
    snapshot = recorder.snapshot()
    assert snapshot["count"] == 5 and snapshot["sum"] == pytest.approx(503.41)
    assert snapshot["buckets"][0] == 1 and snapshot["buckets"][2] == 2 and snapshot["buckets"][-1] == 1
    assert recorder.timed(lambda raw: raw.upper())(b"x") == b"X"
    assert recorder.snapshot()["count"] == 6


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("mailflow.test", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def test_json_lines_are_masked_and_keep_message_ids():
    record = _record(
        "message %s: NRN %s in the body", 42, NRN, message_id="<a.b@stad.gent>", note=f"nrn {NRN}"
    )
    MaskingFilter().filter(record)
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["level"] == "WARNING" and entry["logger"] == "mailflow.test"
    assert entry["message"] == "message 42: NRN **.**.**-***.61 in the body"
    assert entry["message_id"] == "<a.b@stad.gent>"
    assert entry["note"] == "nrn **.**.**-***.61"
    assert NRN not in line
    assert entry["time"].endswith("+00:00")


def test_json_exceptions_are_masked():
    try:
        raise ValueError(f"bad {NRN}")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    MaskingFilter().filter(record)
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: bad **.**.**-***.61" in entry["exception"]


def test_the_clock_is_behind_what_others_wrote():
    ahead = NOW + timedelta(minutes=12)
    result = check_clock(NOW, [("the newest entry in events", ahead)], None)
    assert result.level == "FAIL" and "12 minutes behind the newest entry in events" in result.detail
    assert "chrony" in result.fix
    assert check_clock(NOW, [("events", NOW + timedelta(minutes=2))], None).level == "OK"
    assert check_clock(NOW, [], NOW - timedelta(minutes=30)).level == "FAIL"
    assert check_clock(NOW, [], None).level == "OK"


def test_a_greeting_may_tell_the_servers_clock():
    banner = "mx.stad.gent ESMTP Exim 4.96 Mon, 02 Mar 2026 10:00:00 +0100"
    assert _date_in(banner) == NOW
    assert _date_in("mx.stad.gent ESMTP Postfix") is None


def test_operations_settings_are_checked():
    assert load_settings(metrics_allow="127.0.0.1, 10.0.0.0/8").metrics_networks[1].prefixlen == 8
    with pytest.raises(ConfigurationError, match="not an address or network"):
        load_settings(metrics_allow="prometheus.internal")
    with pytest.raises(ConfigurationError):
        load_settings(heartbeat_alert_minutes=0)
    with pytest.raises(ConfigurationError):
        load_settings(log_format="xml")


def test_ca_file_for_tls_and_postgres(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot read CA certificates"):
        client_context(tmp_path / "missing.pem")
    assert postgres_tls_options(tmp_path / "ca.pem") == {"sslrootcert": str(tmp_path / "ca.pem")}
    assert postgres_tls_options(None) == {}
