"""/metrics after a real poll of Dovecot, /healthz, and who may read the metrics."""

from __future__ import annotations

from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from mailflow.bootstrap import App
from mailflow.storage.models import Message, WorkerHeartbeat
from mailflow.web import create_app
from tests.integration.worker_harness import SAMPLES_DIR, eml_files

pytestmark = pytest.mark.integration


def samples(metrics_text: str) -> dict[tuple[str, tuple], float]:
    found: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def desk(app: App):
    return create_app(app, TESTING=True).test_client()


def test_metrics_after_a_poll_show_what_the_worker_did(dovecot, smtp_server, tmp_path):
    files = eml_files(SAMPLES_DIR)[:8]
    for path in files:
        dovecot.append("INBOX", path.read_bytes())
    settings = dovecot.settings(
        data_dir=tmp_path / "data",
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_security="none",
    )
    worker_app = App(settings)
    try:
        result = worker_app.worker().cycle()
    finally:
        worker_app.close()
    assert result.ingest.processed == len(files)

    desk_app = App(settings)  # another process in production: it shares only the database
    try:
        response = desk(desk_app).get("/metrics")
        with desk_app.sessions() as session:
            statuses = Counter(session.scalars(select(Message.status)).all())
            [beat] = session.scalars(select(WorkerHeartbeat)).all()
    finally:
        desk_app.close()

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    values = samples(response.get_data(as_text=True))
    for status in ("processed", "triage", "ignored", "quarantined"):
        assert values[("mailflow_emails", (("status", status),))] == statuses.get(status, 0)
    assert sum(statuses.values()) == len(files)
    assert values[("mailflow_triage_backlog", ())] == statuses.get("triage", 0)
    if statuses.get("triage"):
        assert values[("mailflow_triage_oldest_age_seconds", ())] > 0
    assert values[("mailflow_polls_total", (("result", "succeeded"),))] == 1
    assert values[("mailflow_polls_total", (("result", "failed"),))] == 0
    assert 0 <= values[("mailflow_last_successful_poll_age_seconds", ())] < 120
    assert values[("mailflow_classification_seconds_count", ())] == len(files)
    assert values[("mailflow_classification_seconds_bucket", (("le", "+Inf"),))] == len(files)
    assert values[("mailflow_classification_seconds_sum", ())] > 0
    sent = len(smtp_server.received)
    assert values[("mailflow_outbox_replies", (("status", "sent"),))] == sent
    assert values[("mailflow_outbox_deferred", ())] == 0
    assert values[("mailflow_outbox_failed", ())] == 0
    assert beat.polls_succeeded == 1 and beat.last_poll_succeeded_at is not None
    assert beat.latency["count"] == len(files)


def test_healthz_answers_without_login_and_says_nothing_personal(tmp_path):
    app = App(_settings(tmp_path))
    try:
        response = desk(app).get("/healthz")
    finally:
        app.close()
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}
    assert "Set-Cookie" not in response.headers


def test_metrics_before_any_poll_say_never(tmp_path):
    app = App(_settings(tmp_path))
    try:
        values = samples(desk(app).get("/metrics").get_data(as_text=True))
    finally:
        app.close()
    assert values[("mailflow_last_successful_poll_age_seconds", ())] == float("inf")
    assert values[("mailflow_classification_seconds_count", ())] == 0


@pytest.mark.parametrize(
    ("restriction", "headers", "expected"),
    [
        ({"metrics_token": "s3cret-token"}, {}, 401),
        ({"metrics_token": "s3cret-token"}, {"Authorization": "Bearer wrong"}, 401),
        ({"metrics_token": "s3cret-token"}, {"Authorization": "Bearer s3cret-token"}, 200),
        ({"metrics_allow": "10.0.0.0/8"}, {}, 403),
        ({"metrics_allow": "10.0.0.0/8, 127.0.0.1"}, {}, 200),
        ({"metrics_allow": "127.0.0.0/8", "metrics_token": "t0ken"}, {}, 401),
    ],
)
def test_metrics_can_be_restricted(tmp_path, restriction, headers, expected):
    app = App(_settings(tmp_path, **restriction))
    try:
        response = desk(app).get("/metrics", headers=headers)  # the test client calls from 127.0.0.1
    finally:
        app.close()
    assert response.status_code == expected
    if expected == 200:
        assert "mailflow_emails" in response.get_data(as_text=True)


def _settings(tmp_path, **overrides):
    from mailflow.settings import Settings

    return Settings(data_dir=tmp_path / "data", secret_key="x" * 40, **overrides)
