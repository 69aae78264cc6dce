"""``mailflow check`` with OAuth2 logins: it logs in with a token as the worker would, and names a
refused credential with what to look at; the credentials' expiry dates are warned about in time."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.oauth2 import OAuth2Account
from tests.fixtures.smtp import SmtpServer
from tests.integration.test_check_command import check, migrated_data_dir
from tests.integration.worker_harness import FOLDERS

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:Requiring AUTH while not")]


def oauth2_env(account: OAuth2Account, smtp: SmtpServer, data_dir: Path, **overrides: Any) -> dict[str, str]:
    values = account.settings_values(
        smtp_host=smtp.host, smtp_port=smtp.port, smtp_security="none", smtp_auth="oauth2", **overrides
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    env.update({f"MAILFLOW_{k.upper()}": str(v) for k, v in values.items() if v is not None})
    env["MAILFLOW_DATA_DIR"] = str(data_dir)
    return env


def test_check_logs_in_with_tokens_and_warns_of_a_secret_about_to_expire(
    oauth2_account: OAuth2Account, oauth2_smtp_server: SmtpServer, tmp_path: Path
) -> None:
    for folder in FOLDERS:
        oauth2_account.mailbox.create(folder)
    soon = date.today() + timedelta(days=5)
    env = oauth2_env(
        oauth2_account,
        oauth2_smtp_server,
        migrated_data_dir(tmp_path / "data"),
        oauth2_client_secret_expires=soon.isoformat(),
    )

    status, lines = check(env)

    assert status == 0, lines  # a warning is not a failure
    assert lines["imap"].startswith("OK ") and "OAuth2 XOAUTH2" in lines["imap"], lines
    assert lines["smtp"].startswith("OK ") and "AUTH XOAUTH2" in lines["smtp"], lines
    assert lines["oauth2 credentials"].startswith("WARN "), lines
    assert f"expires on {soon:%Y-%m-%d}, in 5 days" in lines["oauth2 credentials"]
    assert oauth2_smtp_server.received == []


def test_a_refused_client_secret_fails_both_logins_with_the_oauth2_fix(
    oauth2_account: OAuth2Account, oauth2_smtp_server: SmtpServer, tmp_path: Path
) -> None:
    wrong = "not-the-secret-456"
    env = oauth2_env(
        oauth2_account, oauth2_smtp_server, migrated_data_dir(tmp_path / "data"), oauth2_client_secret=wrong
    )

    status, lines = check(env)

    assert status == 1
    for name in ("imap", "smtp"):
        assert lines[name].startswith("FAIL "), lines
        assert oauth2_account.client_id in lines[name]
        assert "MAILFLOW_OAUTH2_CLIENT_ID" in lines[name]
        assert wrong not in lines[name]
