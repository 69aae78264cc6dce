"""The whole worker with OAuth2 logins to Dovecot and SMTP: it keeps working past its tokens' expiry,
and a mailbox that refuses it is logged and retried, never the end of the worker."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from mailflow.bootstrap import App
from mailflow.runner import Worker
from tests.fixtures.oauth2 import OAuth2Account
from tests.fixtures.smtp import SmtpServer
from tests.integration.worker_harness import (
    SAMPLES_DIR,
    eml_files,
    mailflow_command,
    run_mailflow,
    worker_env,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]


@pytest.fixture
def app(oauth2_account: OAuth2Account, oauth2_smtp_server: SmtpServer, tmp_path: Path) -> Iterator[App]:
    settings = oauth2_account.settings(
        smtp_host=oauth2_smtp_server.host,
        smtp_port=oauth2_smtp_server.port,
        smtp_security="none",
        smtp_auth="oauth2",
        data_dir=tmp_path / "data",
        poll_interval=1.0,
        outbox_interval=1.0,
        retrain_enabled=False,
    )
    app = App(settings)
    yield app
    app.close()


@pytest.fixture
def running(app: App) -> Iterator[Callable[[], Worker]]:
    started: list[tuple[Worker, threading.Thread]] = []

    def start() -> Worker:
        worker = app.worker()
        worker.idle_slice = 1.0
        thread = threading.Thread(target=worker.run, name="worker", daemon=True)
        thread.start()
        started.append((worker, thread))
        return worker

    yield start
    for worker, thread in started:
        worker.stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the worker did not stop"


def text_samples(count: int) -> list[Path]:
    """Small text-only emails: no OCR, so a cycle takes well under a token's lifetime."""
    return sorted(eml_files(SAMPLES_DIR), key=lambda path: path.stat().st_size)[:count]


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_the_worker_keeps_working_past_its_tokens_expiry(
    oauth2_account: OAuth2Account, oauth2_smtp_server: SmtpServer, running: Callable[[], Worker]
) -> None:
    server = oauth2_account.tokens
    server.lifetime = 3  # renewed after half of it, so several tokens during the test
    files = text_samples(6)
    grants_before, introspections_before = len(server.grants), len(server.introspections)
    running()

    for path in files:  # spread over more than two lifetimes
        oauth2_account.mailbox.append("INBOX", path.read_bytes())
        time.sleep(1.2)

    assert wait_until(lambda: oauth2_account.mailbox.folder_count("INBOX") == 0, 60), "mail left in INBOX"
    assert wait_until(lambda: len(oauth2_smtp_server.received) >= 1, 30), "no reply was sent"
    assert len(server.grants) - grants_before >= 3  # the worker asked for new tokens as they aged
    checked = server.introspections[introspections_before:]
    assert checked and all(checked), "a login used an expired token"


def test_a_refused_login_is_logged_retried_and_survived(
    oauth2_account: OAuth2Account, running: Callable[[], Worker], caplog: pytest.LogCaptureFixture
) -> None:
    server = oauth2_account.tokens
    client = server.clients[oauth2_account.client_id]
    configured, client.secret = client.secret, "rotated-by-an-admin"  # as when a client secret expired
    oauth2_account.mailbox.append("INBOX", text_samples(1)[0].read_bytes())
    caplog.set_level(logging.INFO, logger="mailflow")

    running()
    assert wait_until(lambda: sum(r.levelno == logging.ERROR for r in caplog.records) >= 3, 30)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert all("invalid_client" in e and oauth2_account.client_id in e for e in errors), errors
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "rotated-by-an-admin" not in logged and configured not in logged
    assert not [r for r in caplog.records if r.exc_info], "a traceback: not handled as a login error"
    assert oauth2_account.mailbox.folder_count("INBOX") == 1

    client.secret = configured  # fixed: the running worker recovers by itself
    assert wait_until(lambda: oauth2_account.mailbox.folder_count("INBOX") == 0, 60)


def oauth2_env(account: OAuth2Account, smtp: SmtpServer, tmp_path: Path, secret: str) -> dict[str, str]:
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(secret + "\n")
    env = worker_env(account.mailbox, smtp, tmp_path / "data")
    del env["MAILFLOW_IMAP_PASSWORD"]  # OAuth2 needs none
    env.update(
        {
            "MAILFLOW_IMAP_AUTH": "oauth2",
            "MAILFLOW_SMTP_AUTH": "oauth2",
            "MAILFLOW_OAUTH2_PROVIDER": "generic",
            "MAILFLOW_OAUTH2_TOKEN_URL": account.tokens.token_url,
            "MAILFLOW_OAUTH2_CLIENT_ID": account.client_id,
            "MAILFLOW_OAUTH2_CLIENT_SECRET_FILE": str(secret_file),
            "MAILFLOW_OAUTH2_SCOPE": "mail",
            "MAILFLOW_OAUTH2_CLIENT_SECRET_EXPIRES": (date.today() + timedelta(days=5)).isoformat(),
        }
    )
    return env


def test_poll_once_from_the_command_line_with_oauth2(
    oauth2_account: OAuth2Account, oauth2_smtp_server: SmtpServer, tmp_path: Path
) -> None:
    for path in text_samples(3):
        oauth2_account.mailbox.append("INBOX", path.read_bytes())
    env = oauth2_env(oauth2_account, oauth2_smtp_server, tmp_path, oauth2_account.client_secret)

    result = run_mailflow(env, "poll-once")

    assert oauth2_account.mailbox.folder_count("INBOX") == 0
    assert "replies sent" in result.stdout
    assert oauth2_smtp_server.received, "no reply went out over the OAuth2 SMTP login"
    assert "client secret expires on" in result.stderr and "in 5 days" in result.stderr
    assert oauth2_account.client_secret not in result.stdout + result.stderr


def test_poll_once_with_a_wrong_secret_says_what_was_refused(
    oauth2_account: OAuth2Account, oauth2_smtp_server: SmtpServer, tmp_path: Path
) -> None:
    env = oauth2_env(oauth2_account, oauth2_smtp_server, tmp_path, "wrong-secret-value")
    result = subprocess.run(
        mailflow_command("poll-once"), env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode != 0
    assert "invalid_client" in result.stderr and oauth2_account.client_id in result.stderr
    assert "Traceback" not in result.stderr and "wrong-secret-value" not in result.stderr
