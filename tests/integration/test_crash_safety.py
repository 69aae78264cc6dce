"""SIGKILL the worker in the middle of its work, again and again: nothing is lost or done twice."""

from __future__ import annotations

import random
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.worker_harness import (
    FOLDERS,
    SAMPLES_DIR,
    LedgerCount,
    eml_files,
    export,
    mailflow_command,
    run_mailflow,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = 5


def distinct_copies(directory: Path, copies: int) -> list[bytes]:
    """Each sample several times over, made distinct by its Message-ID, for a longer run."""
    emails = []
    for round_ in range(copies):
        for path in eml_files(directory):
            data = path.read_bytes()
            head, sep, body = (
                data.partition(b"\n\n") if b"\r\n\r\n" not in data else data.partition(b"\r\n\r\n")
            )
            lines = [
                line.replace(b"@", f".r{round_}@".encode(), 1)
                if line.lower().startswith(b"message-id:")
                else line
                for line in head.splitlines(keepends=True)
            ]
            emails.append(b"".join(lines) + sep + body)
    return emails


def test_sigkill_mid_batch_never_loses_or_repeats(dovecot, smtp_server, tmp_path, database_url):
    emails = distinct_copies(SAMPLES_DIR, 3)
    for data in emails:
        dovecot.append("INBOX", data)
    data_dir = tmp_path / "data"
    # Short leases so a restarted worker takes over the claims of the killed one at once.
    env = worker_env(
        dovecot, smtp_server, data_dir, database_url, MAILFLOW_LEASE_SECONDS="1", MAILFLOW_IMAP_BATCH_SIZE="7"
    )
    rng = random.Random(20260302)
    ledger_rows = LedgerCount(database_url)

    kills = 0
    for _ in range(KILLS):
        before = ledger_rows()
        if before >= len(emails):
            break
        worker = subprocess.Popen(
            mailflow_command("poll-once"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        target = before + rng.randint(1, 6)
        deadline = time.monotonic() + 120
        while worker.poll() is None and ledger_rows() < target and time.monotonic() < deadline:
            time.sleep(0.01)
        if worker.poll() is None:
            time.sleep(rng.uniform(0, 0.3))
            worker.kill()
            kills += 1
        worker.wait(timeout=30)
        time.sleep(1.1)  # let the lease of the killed worker run out
    ledger_rows.close()
    assert kills >= 3, "the worker finished before it could be killed often enough"

    run_mailflow(env, "poll-once")

    assert dovecot.folder_count("INBOX") == 0
    entries = export(env)
    assert len(entries) == len(emails)
    assert Counter(e["message_id"] for e in entries).most_common(1)[0][1] == 1
    assert all(e["status"] != "received" for e in entries)
    # Every email was moved at least once; a kill between two moves may leave it in no other folder.
    moved = sum(dovecot.folder_count(folder) for folder in FOLDERS)
    assert moved == len(emails)
    replies = Counter(r.message["In-Reply-To"] for r in smtp_server.received)
    assert max(replies.values(), default=0) <= 1
    for entry in entries:
        assert len(entry["replies"]) <= 1
    # The event log stayed one unbroken chain across all the killed processes.
    assert "event log intact" in run_mailflow(env, "audit", "verify").stdout
