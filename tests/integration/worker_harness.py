"""Run the real ``mailflow`` command against the test servers, as an operator would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from mailflow.settings import PROJECT_ROOT

CORPUS_DIR = PROJECT_ROOT.parent / "shared" / "corpus" / "dev"
SAMPLES_DIR = PROJECT_ROOT / "samples" / "mailbox"
REPLYING_ACTIONS = {"file", "request_documents", "book", "online", "redirect_info", "redirect_other"}
FOLDERS = ("Processed", "Triage", "Ignored", "Quarantine")


def worker_env(
    dovecot, smtp_server, data_dir: Path, database_url: str | None = None, **extra: str
) -> dict[str, str]:
    """The worker's environment; ``database_url`` (the ``database_url`` fixture) else SQLite in
    ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    if database_url is not None:
        env["MAILFLOW_DATABASE_URL"] = database_url
    env.update(
        {
            "MAILFLOW_IMAP_HOST": dovecot.host,
            "MAILFLOW_IMAP_PORT": str(dovecot.port),
            "MAILFLOW_IMAP_USER": dovecot.user,
            "MAILFLOW_IMAP_PASSWORD": dovecot.password,
            "MAILFLOW_IMAP_SECURITY": "none",
            "MAILFLOW_SMTP_HOST": smtp_server.host,
            "MAILFLOW_SMTP_PORT": str(smtp_server.port),
            "MAILFLOW_SMTP_SECURITY": "none",
            "MAILFLOW_DATA_DIR": str(data_dir),
            "MAILFLOW_TRUSTED_AUTHSERV_ID": "mx.stad.gent",
            # Retraining only where a test asks for it: a worker whose (faked) clock passes retrain_at
            # would otherwise retrain into the checkout's model directory, loading the machine meanwhile.
            "MAILFLOW_RETRAIN_ENABLED": "false",
            **extra,
        }
    )
    return env


def mailflow_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mailflow.cli", *args]


def run_mailflow(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        mailflow_command(*args), env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"mailflow {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def export(env: dict[str, str]) -> list[dict[str, Any]]:
    output = run_mailflow(env, "archive", "export", "--jsonl").stdout
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def eml_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.eml"))


class LedgerCount:
    """How many emails the ledger holds, asked as often as a test likes over one connection pool."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.engine: Engine | None = None

    def __call__(self) -> int:
        if self.engine is None:
            url = self.database_url
            sqlite_file = url.split("///", 1)[1] if url.startswith("sqlite") else ""
            if sqlite_file and not Path(sqlite_file).exists():
                return 0  # connecting would create the file before the worker does
            self.engine = create_engine(self.database_url)
        try:
            with self.engine.connect() as connection:
                return connection.execute(text("SELECT count(*) FROM messages")).scalar_one()
        except DBAPIError:
            return 0  # schema not created yet, or the database locked a moment

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
