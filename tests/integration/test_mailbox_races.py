"""Other clients of the mailbox, and the clock, change things under a working worker: emails APPENDed
while a batch runs, an email expunged after we fetched it, the wall clock stepped forward and back.
Real Dovecot, aiosmtpd and database; the helpers are those of ``test_server_faults``."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import select

from mailflow.storage.models import DecisionRecord, Event, Message, Reply
from tests.integration.test_crash_safety import distinct_copies
from tests.integration.test_server_faults import (
    FAST,
    Ledger,
    Workers,
    assert_each_reply_once,
    assert_folders_agree,
    log_text,
    wait_until,
)
from tests.integration.worker_harness import (
    FOLDERS,
    SAMPLES_DIR,
    mailflow_command,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    running = Workers(tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'mailflow.sqlite3'}"


def decisions_per_email(ledger: Ledger) -> Counter[int]:
    with ledger.engine.connect() as connection:
        return Counter(connection.execute(select(DecisionRecord.message_id)).scalars())


def assert_each_email_once(ledger: Ledger, emails: Sequence[bytes]) -> None:
    """One ledger row and one pipeline decision for each email given, and nothing else."""
    rows = ledger.rows()
    hashes = Counter(sha256 for _, sha256, _, _, _ in rows)
    assert set(hashes) == {hashlib.sha256(data).hexdigest() for data in emails}
    assert max(hashes.values()) == 1, hashes.most_common(2)
    decided = decisions_per_email(ledger)
    assert set(decided) == {pk for pk, *_ in rows} and max(decided.values()) == 1, decided


class LedgerWithout(Ledger):
    """The ledger but for one email (by its hash)."""

    def __init__(self, url: str, sha256: str) -> None:
        super().__init__(url)
        self.left_out = sha256

    def rows(self) -> list[tuple[int, str, str, str | None, str | None]]:
        return [row for row in super().rows() if row[1] != self.left_out]


def all_sent(ledger: Ledger) -> bool:
    replies = ledger.replies()
    return bool(replies) and all(status == "sent" for _, status, _ in replies)


# 1. APPEND by another client while a batch is being processed


def test_emails_appended_by_another_client_mid_batch_are_each_processed_once_and_soon(
    dovecot, smtp_server, tmp_path, sqlite_url, workers
):
    emails = distinct_copies(SAMPLES_DIR, 1)[:31]  # those the pipeline answers, each sender once
    present, appended, later = emails[:12], emails[12:20], emails[20]
    for data in present:
        dovecot.append("INBOX", data)
    env = worker_env(
        dovecot, smtp_server, tmp_path / "data", sqlite_url, MAILFLOW_IMAP_BATCH_SIZE="4", **FAST
    )
    ledger = Ledger(sqlite_url)
    _process, log = workers.start(env)
    assert wait_until(lambda: len(ledger.rows()) >= 2, 60), log_text(log)

    other = dovecot.client("INBOX")  # another client, as a mail server delivering would be
    for data in appended:
        other.append("INBOX", data)
    assert len(ledger.rows()) < len(present), "the batch was over before the other client appended"
    present_hashes = {hashlib.sha256(data).hexdigest() for data in present}

    def present_settled() -> bool:
        settled = {sha for _, sha, status, folder, _ in ledger.rows() if status != "received" and folder}
        return present_hashes <= settled

    assert wait_until(present_settled, 40), log_text(log)
    cycle_over = time.monotonic()
    assert wait_until(lambda: ledger.settled(len(present) + len(appended)), 60), log_text(log)
    took = time.monotonic() - cycle_over
    print(f"APPEND mid-batch: the {len(appended)} appended settled {took:.1f} s after the first cycle")
    # Announced through IDLE while the cycle ran: processed right after it, not at the next poll (120 s).
    assert took < 15, f"the emails appended mid-batch waited {took:.1f} s"

    dovecot.append("INBOX", later)
    assert wait_until(lambda: ledger.settled(len(present) + len(appended) + 1), 60), log_text(log)
    assert wait_until(lambda: all_sent(ledger), 60), ledger.replies()
    assert_each_email_once(ledger, [*present, *appended, later])
    assert dovecot.folder_count("INBOX") == 0
    assert_folders_agree(dovecot, ledger)
    assert_each_reply_once(smtp_server, ledger)
    assert len(smtp_server.received) == len(ledger.replies())
    ledger.close()


# 2. Another client expunges an email after we fetched it, while we classify and act on it


def test_an_email_expunged_by_another_client_while_being_processed_is_still_decided_and_answered(
    dovecot, smtp_server, tmp_path, caplog
):
    from mailflow.adapters.imap import ImapMailbox
    from mailflow.bootstrap import App

    class RememberingMailbox(ImapMailbox):
        """Knows which UID the ingestor is working on: the one fetched last."""

        current: int | None = None

        def fetch(self, uids: Sequence[int]) -> Iterator[tuple[int, bytes]]:
            for uid, raw in super().fetch(uids):
                self.current = uid
                yield uid, raw

    emails = distinct_copies(SAMPLES_DIR, 1)[:3]  # each answered by the pipeline
    uids = [dovecot.append("INBOX", data) for data in emails]
    settings = dovecot.settings(
        data_dir=tmp_path / "data",
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_security="none",
    )
    caplog.set_level(logging.INFO, logger="mailflow.adapters.imap")
    app = App(settings)
    expunged: list[int] = []
    try:
        with RememberingMailbox.from_settings(settings) as mailbox:
            ingestor = app.make_ingestor(mailbox)
            process = ingestor.processor.process

            def expunge_first_then_process(pk: int, raw: bytes):
                if not expunged:  # the first email: gone from the server once we hold its bytes
                    other = dovecot.client("INBOX")
                    other.delete_messages([mailbox.current])
                    other.expunge()
                    expunged.append(mailbox.current)
                return process(pk, raw)

            ingestor.processor.process = expunge_first_then_process
            report = ingestor.run_once()
        delivery = app.outbox.deliver_due()

        assert expunged == [uids[0]]
        assert report.processed == len(emails) and report.vanished == 0, report
        assert delivery.sent == len(emails), delivery
        ledger = Ledger(settings.effective_database_url)
        assert_each_email_once(ledger, emails)
        gone_sha = hashlib.sha256(emails[0]).hexdigest()
        [(gone_pk, status, folder)] = [
            (pk, status, folder) for pk, sha, status, folder, _ in ledger.rows() if sha == gone_sha
        ]
        with ledger.engine.connect() as connection:
            moved_at = connection.execute(select(Message.moved_at).where(Message.id == gone_pk)).scalar_one()
            replies = connection.execute(select(Reply.status).where(Reply.message_id == gone_pk)).all()
        # Processing went on from the stored bytes: its blob is kept, its outcome recorded and answered.
        assert app.blobs.get(gone_sha) == emails[0]
        assert status == "processed", status
        assert [r.status for r in replies] == ["sent"]
        # The MOVE of the batch was refused for the vanished UID (Dovecot: NO [EXPUNGEISSUED]); the others
        # were moved and the vanished one counted as moved: the usual cause is another worker of this
        # mailbox that moved it, so the ledger records the folder its outcome names, though no folder of
        # ours holds it.
        assert moved_at is not None and folder == "Processed", (folder, moved_at)
        assert f"1 of {len(emails)} messages of {mailbox.name} were gone already" in caplog.text
        dovecot.close()
        assert dovecot.folder_count("INBOX") == 0
        assert all(gone_sha != hashlib.sha256(b).hexdigest() for f in FOLDERS for b in dovecot.bodies(f))
        assert_folders_agree(dovecot, LedgerWithout(ledger.url, gone_sha))  # the others, each moved once
        assert_each_reply_once(smtp_server, ledger)
        assert len(smtp_server.received) == len(emails)
        ledger.close()
    finally:
        app.close()


# 3. The wall clock steps forward, then back, while the worker runs


# Debian's libfaketime, wherever the machine's architecture puts it.
# The plain build: its multi-threaded one (libfaketimeMT) left workers hanging at exit under its lock.
LIBFAKETIME = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))), Path("/nonexistent"))


def set_clock_offset(clock_file: Path, offset: str) -> None:
    """Step the worker's wall clock to ``offset`` from the real one ("+6h", "-18h"), atomically."""
    partial = clock_file.with_suffix(".new")
    partial.write_text(f"{offset}\n")
    os.replace(partial, clock_file)


# libfaketime 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC passes a negative time to the kernel for
# clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME), which Python 3.11's time.sleep calls: EINVAL
# (wolfcw/libfaketime#426). The worker under it sleeps on a monotonic wait instead, which it handles.
SLEEP_SHIM = """import threading, time
time.sleep = lambda seconds: threading.Event().wait(seconds) and None
"""


def under_faketime(env: dict[str, str], clock_file: Path) -> dict[str, str]:
    """``env`` with the wall clock of ``clock_file`` ("+0" to begin with), the monotonic clock real."""
    set_clock_offset(clock_file, "+0")
    shim = clock_file.parent / "faketime-shim"
    shim.mkdir(exist_ok=True)
    (shim / "sitecustomize.py").write_text(SLEEP_SHIM)
    return {
        **env,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(shim), env.get("PYTHONPATH")])),
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(clock_file),
        # The file is read again at most once a second (each test lets a step settle 1.5 s): read at
        # every clock call (FAKETIME_NO_CACHE), by several threads at once, it now and then hung a worker.
        "FAKETIME_CACHE_DURATION": "1",
        # Only CLOCK_REALTIME steps, as under NTP: timeouts and sleeps keep their monotonic clock.
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def assert_stops_cleanly(workers: Workers) -> None:
    workers.stop_all()
    for process, log in workers.started:
        text = log_text(log)
        assert process.returncode == 0 and "Traceback" not in text, text[-5000:]


def replies_to(ledger: Ledger) -> Counter[str]:
    with ledger.engine.connect() as connection:
        return Counter(connection.execute(select(Reply.to_address)).scalars())


def withheld(ledger: Ledger) -> int:
    with ledger.engine.connect() as connection:
        return len(connection.execute(select(Event.id).where(Event.kind == "reply_withheld")).all())


def test_wall_clock_jumps_forward_then_back_nothing_stalls_nothing_is_answered_twice(
    dovecot, smtp_server, tmp_path, sqlite_url, workers
):
    if not LIBFAKETIME.exists():
        pytest.skip("libfaketime is missing: apt-get install faketime libfaketime")
    rounds = distinct_copies(SAMPLES_DIR, 3)
    per_round = len(rounds) // 3

    def copy(round_: int, sample: int) -> bytes:
        return rounds[round_ * per_round + sample]

    a, b, c = 13, 14, 15  # three senders, each answered by the pipeline ("book": no case to join)
    first = [copy(0, a)]
    second = [copy(0, b), copy(1, a)]  # a new sender; and sender a again, answered before the step
    third = [copy(0, c), copy(1, b), copy(2, a)]  # a new sender; and both answered before, again
    clock_file = tmp_path / "faketime.rc"
    env = worker_env(dovecot, smtp_server, tmp_path / "data", sqlite_url, **FAST)
    faked = under_faketime(env, clock_file)
    ledger = Ledger(sqlite_url)
    for data in first:
        dovecot.append("INBOX", data)
    _process, log = workers.start(faked)
    assert wait_until(lambda: ledger.settled(1) and all_sent(ledger), 60), log_text(log)

    done = len(first)
    for offset, emails in (("+6h", second), ("-18h", third)):  # forward six hours; then back a day
        set_clock_offset(clock_file, offset)
        time.sleep(1.5)  # the worker lives a moment in its new time before mail arrives
        for data in emails:
            dovecot.append("INBOX", data)
        arrived, done = time.monotonic(), done + len(emails)
        settled = wait_until(lambda n=done: ledger.settled(n) and all_sent(ledger), 60)
        assert settled, f"after the step to {offset}:\n{log_text(log)}"
        print(
            f"clock stepped {offset}: {len(emails)} emails settled {time.monotonic() - arrived:.1f} s later"
        )

    # One reply per sender: a backward step of a day does not reopen a sender's reply period.
    assert replies_to(ledger) == Counter({address: 1 for address in replies_to(ledger)})
    assert len(replies_to(ledger)) == 3 and withheld(ledger) == 3
    assert_each_email_once(ledger, [*first, *second, *third])
    assert_each_reply_once(smtp_server, ledger)
    assert len(smtp_server.received) == 3
    dovecot.close()
    assert dovecot.folder_count("INBOX") == 0
    assert_folders_agree(dovecot, ledger)
    verify = subprocess.run(mailflow_command("audit", "verify"), env=env, capture_output=True, text=True)
    assert verify.returncode == 0 and "event log intact" in verify.stdout, verify.stdout + verify.stderr
    assert_stops_cleanly(workers)
    ledger.close()


def test_after_the_wall_clock_steps_back_a_refused_reply_is_retried_within_seconds(
    dovecot, smtp_server, tmp_path, sqlite_url, workers
):
    """The outbox's timer, not a new email, must bring the retry: nothing else arrives meanwhile."""
    if not LIBFAKETIME.exists():
        pytest.skip("libfaketime is missing: apt-get install faketime libfaketime")
    emails = distinct_copies(SAMPLES_DIR, 1)[13:15]  # two senders, each answered by the pipeline
    clock_file = tmp_path / "faketime.rc"
    env = worker_env(dovecot, smtp_server, tmp_path / "data", sqlite_url, **FAST)
    ledger = Ledger(sqlite_url)
    dovecot.append("INBOX", emails[0])
    _process, log = workers.start(under_faketime(env, clock_file))
    assert wait_until(lambda: ledger.settled(1) and all_sent(ledger), 60), log_text(log)

    set_clock_offset(clock_file, "-24h")
    time.sleep(1.5)
    smtp_server.handler.refuse_with = "451 4.3.0 try again later"
    dovecot.append("INBOX", emails[1])
    # The email itself may wait for the next poll (2 min): once in the suite under load, IDLE's
    # announcement right after the step found nothing new (left for investigation). What is tested
    # here is the retry after the refusal, below.
    assert wait_until(lambda: ledger.settled(2) and "will retry" in log_text(log), 150), log_text(log)
    smtp_server.handler.refuse_with = None
    accepting = time.monotonic()
    assert wait_until(lambda: all_sent(ledger), 20), f"{ledger.replies()}\n{log_text(log)}"
    print(f"clock stepped back a day: the refused reply was sent {time.monotonic() - accepting:.1f} s later")
    noticed = r"WARNING mailflow.runner: the wall clock jumped -864\d\d s; timers rescheduled"
    assert re.search(noticed, log_text(log)), log_text(log)
    assert_each_reply_once(smtp_server, ledger)
    assert len(smtp_server.received) == 2
    assert_stops_cleanly(workers)
    ledger.close()
