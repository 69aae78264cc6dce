"""Three workers, started at the same instant on an empty database, drain one mailbox together: real
``mailflow run`` processes, a real Dovecot, SMTP server and PostgreSQL. On SQLite the same workers
cooperate too (every write transaction takes the database's write lock), on fewer emails."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from benchmarks.generate import generate
from mailflow.storage.models import Message, Reply
from tests.integration.worker_harness import FOLDERS, export, mailflow_command, run_mailflow, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORKERS = 3
EMAILS = {"postgres": 500, "sqlite": 150}
COPIES = 10  # of those, byte-identical second copies of other emails: answered once, filed once
DRAIN_TIMEOUT = 240.0


def text_emails(count: int) -> list[bytes]:
    originals = list(generate(count - COPIES, pdf_share=0.0, seed=10))
    emails = originals + originals[:: len(originals) // COPIES][:COPIES]
    random.Random(10).shuffle(emails)
    return emails


def drained(dovecot, engine) -> bool:
    """Inbox empty, every email settled and moved, every queued reply sent."""
    if dovecot.folder_count("INBOX"):
        return False
    with engine.connect() as connection:
        open_emails = connection.execute(
            select(func.count(Message.id)).where((Message.status == "received") | Message.moved_at.is_(None))
        ).scalar_one()
        unsent = connection.execute(select(func.count(Reply.id)).where(Reply.status != "sent")).scalar_one()
    return open_emails == 0 and unsent == 0


def processed_by(log: str) -> int:
    return sum(int(n) for n in re.findall(r"processed (\d+) emails", log))


def test_three_workers_on_an_empty_database_each_email_once_each_reply_once(
    dovecot, smtp_server, tmp_path: Path, database_url: str
):
    count = EMAILS["postgres" if database_url.startswith("postgresql") else "sqlite"]
    emails = text_emails(count)
    for data in emails:
        dovecot.append("INBOX", data)
    env = worker_env(
        dovecot,
        smtp_server,
        tmp_path / "data",
        database_url,
        # Every email comes from another sender: lift the hourly cap so every reply is sent.
        MAILFLOW_REPLY_HOURLY_CAP=str(2 * count),
        MAILFLOW_OUTBOX_INTERVAL="1",
    )
    logs = [tmp_path / f"worker{n}.log" for n in range(WORKERS)]
    handles = [path.open("wb") for path in logs]
    # No schema yet: each worker migrates as it starts, all at once.
    workers = [
        subprocess.Popen(mailflow_command("-v", "run"), env=env, stdout=handle, stderr=subprocess.STDOUT)
        for handle in handles
    ]
    engine = create_engine(database_url)
    started = time.monotonic()
    try:
        deadline = started + DRAIN_TIMEOUT
        while time.monotonic() < deadline and all(w.poll() is None for w in workers):
            try:
                if drained(dovecot, engine):
                    break
            except Exception:  # the schema may not exist yet
                pass
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        alive = [w.poll() is None for w in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(timeout=60) for worker in workers]
        for handle in handles:
            handle.close()
        engine.dispose()
    texts = [path.read_text(errors="replace") for path in logs]
    shares = [processed_by(text) for text in texts]
    print(f"{count} emails drained by {WORKERS} workers in {elapsed:.1f} s; processed each: {shares}")

    assert all(alive), f"a worker died: exit codes {codes}\n" + "\n".join(t[-3000:] for t in texts)
    assert codes == [0] * WORKERS
    for text in texts:
        # No cycle failed (nor was retried), nothing was quarantined: no warning of ours, no traceback.
        found = re.search(r"(WARNING|ERROR|CRITICAL) mailflow|Traceback", text)
        assert not found, text[max(0, found.start() - 1000) : found.end() + 3000] if found else ""
    assert elapsed < DRAIN_TIMEOUT, "the workers did not drain the mailbox in time"

    # Every email exactly once in the ledger, and out of the inbox into exactly one folder.
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(Message.uid, Message.status, Message.duplicate_of_id)).all()
    finally:
        engine.dispose()
    assert len(rows) == count
    assert len({uid for uid, _, _ in rows}) == count
    assert sum(1 for _, _, original in rows if original is not None) == COPIES
    assert dovecot.folder_count("INBOX") == 0
    assert sum(dovecot.folder_count(folder) for folder in FOLDERS) == count

    # Every reply once: one per answered email, none for a second copy.
    entries = export(env)
    replied = [entry for entry in entries if entry["replies"]]
    received = Counter(reply.message["In-Reply-To"] for reply in smtp_server.received)
    assert replied and len(smtp_server.received) == len(replied)
    assert max(received.values()) == 1
    assert all(len(entry["replies"]) == 1 for entry in replied)
    assert Counter(entry["message_id"] for entry in replied).most_common(1)[0][1] == 1

    assert "event log intact" in run_mailflow(env, "audit", "verify").stdout
    # The three shared the work (each took a real part of it), and all of it was done once.
    assert sum(shares) == count - COPIES
    assert min(shares) >= count // (4 * WORKERS), shares
