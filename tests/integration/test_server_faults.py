"""Server faults under real ``mailflow run`` processes: Dovecot restarted, the watched mailbox renamed,
SMTP refusing, down or dropping the connection after DATA, PostgreSQL restarted, the blob store's disk
full, a worker SIGKILLed holding claims. After each: recovery within seconds, nothing lost or sent twice,
and every email in the folder the database says."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select

from mailflow.domain import Status
from mailflow.storage.models import DecisionRecord, Message, Reply
from tests.fixtures.dovecot import DovecotAccount, new_account, running_dovecot
from tests.fixtures.dovecot_server import DovecotServer, _greets, find_dovecot
from tests.fixtures.postgres import PostgresServer, _cluster_owner, find_postgres_bin, running_postgres
from tests.fixtures.smtp import RecordingHandler
from tests.integration.test_crash_safety import distinct_copies
from tests.integration.worker_harness import FOLDERS, SAMPLES_DIR, mailflow_command, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAST = {
    "MAILFLOW_POLL_INTERVAL": "120",  # recovery must not come from the next poll
    "MAILFLOW_RECONNECT_MAX_SECONDS": "4",
    "MAILFLOW_OUTBOX_INTERVAL": "1",
    "MAILFLOW_OUTBOX_BACKOFF_BASE": "1",
    "MAILFLOW_SMTP_TIMEOUT": "3",
    "MAILFLOW_REPLY_HOURLY_CAP": "1000",
}


# Servers of our own: restarting the session's would disturb other tests.


@pytest.fixture(scope="module")
def own_dovecot() -> Iterator[DovecotServer]:
    with running_dovecot() as server:
        yield server


@pytest.fixture
def account(own_dovecot: DovecotServer) -> Iterator[DovecotAccount]:
    with new_account(own_dovecot) as account:
        yield account


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (read from /proc), children first."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found.extend(children)
        frontier = children
    return found


def restart_dovecot(server: DovecotServer, down: float) -> None:
    """Down and up again as after a crash: Dovecot's IMAP processes outlive a stopped master (they keep
    their clients), so those the test's server started are killed too."""
    sessions = descendants(server.process.pid)
    server.stop()
    for pid in sessions:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(down)
    with open(server.root / "stderr.log", "ab") as stderr:
        server.process = subprocess.Popen(
            [find_dovecot() or "dovecot", "-F", "-c", str(server.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    assert wait_until(lambda: _greets(server.port), 15), "Dovecot did not come back"


def restart_postgres(server: PostgresServer, down: float) -> None:
    server.stop()
    time.sleep(down)
    uid, gid = _cluster_owner()
    as_owner = {"user": uid, "group": gid, "extra_groups": []} if os.geteuid() == 0 else {}
    binaries = find_postgres_bin()
    assert binaries is not None
    with open(server.root / "postgres.log", "ab") as log:
        server.process = subprocess.Popen(
            [binaries / "postgres", "-D", server.root / "data", "-k", server.root / "run",
             "-p", str(server.port), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT, cwd=server.root, **as_owner,
        )  # fmt: skip

    def accepts() -> bool:
        with contextlib.suppress(Exception), server.connect():
            return True
        return False

    assert wait_until(accepts, 30), "PostgreSQL did not come back"


# Helpers


def replies_settled(ledger: Ledger, at_least: int = 1) -> bool:
    """At least so many replies, none of them still pending or being sent."""
    replies = ledger.replies()
    return len(replies) >= at_least and all(status not in ("pending", "sending") for _, status, _ in replies)


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


class Workers:
    """``mailflow -v run`` processes, each logging to its own file; all stopped at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, env: dict[str, str], **extra: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.tmp_path / f"worker{len(self.started)}.log"
        with log.open("wb") as handle:
            process = subprocess.Popen(
                mailflow_command("-v", "run"), env={**env, **extra}, stdout=handle, stderr=subprocess.STDOUT
            )
        self.started.append((process, log))
        return process, log

    def stop_all(self) -> None:
        for process, _log in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    running = Workers(tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


class Ledger:
    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(self.url, pool_pre_ping=True)
        return self._engine

    def rows(self) -> list[tuple[int, str, str, str | None, str | None]]:
        """(id, sha256, status, folder, lease owner) of every email; none before the schema exists."""
        if self.url.startswith("sqlite") and not Path(self.url.split("///", 1)[1]).exists():
            return []
        try:
            with self.engine.connect() as connection:
                query = select(
                    Message.id, Message.sha256, Message.status, Message.folder, Message.lease_owner
                )
                return [tuple(row) for row in connection.execute(query)]  # type: ignore[misc]
        except Exception:
            return []

    def settled(self, count: int) -> bool:
        rows = self.rows()
        return len(rows) == count and all(status != "received" and folder for _, _, status, folder, _ in rows)

    def replies(self) -> list[tuple[int, str, str]]:
        with self.engine.connect() as connection:
            return [
                tuple(r)
                for r in connection.execute(select(Reply.message_id, Reply.status, Reply.rfc_message_id))
            ]  # type: ignore[misc]

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'mailflow.sqlite3'}"


def assert_folders_agree(account: DovecotAccount, ledger: Ledger) -> None:
    """Each email once in the mailbox, in the folder its status names, as the database records."""
    places: dict[str, list[str]] = {}
    for folder in ("INBOX", *FOLDERS):
        for body in account.bodies(folder):
            places.setdefault(hashlib.sha256(body).hexdigest(), []).append(folder)
    for pk, sha256, status, folder, _owner in ledger.rows():
        expected = Status(status).folder
        assert folder == expected, f"email {pk}: status {status} but recorded in {folder}"
        assert places.get(sha256) == [expected], f"email {pk} ({status}) is in {places.get(sha256)}"


def assert_each_reply_once(smtp_server, ledger: Ledger) -> None:
    received = Counter(str(item.message["Message-ID"]) for item in smtp_server.received)
    assert all(count == 1 for count in received.values()), f"sent twice: {received.most_common(3)}"
    for _message, status, rfc_id in ledger.replies():
        if status == "sent":
            assert received[rfc_id] == 1


def log_text(path: Path) -> str:
    return path.read_text(errors="replace")


# 1. IMAP server restarts


def test_imap_restart_during_idle_a_new_email_is_processed_within_seconds(
    account, smtp_server, tmp_path, sqlite_url, workers
):
    emails = distinct_copies(SAMPLES_DIR, 1)[:2]
    account.append("INBOX", emails[0])
    env = worker_env(account, smtp_server, tmp_path / "data", sqlite_url, **FAST)
    ledger = Ledger(sqlite_url)
    _process, log = workers.start(env)
    assert wait_until(lambda: ledger.settled(1), 60), log_text(log)
    time.sleep(1)  # the watcher is in IDLE now

    restart_dovecot(account.server, down=2)
    back = time.monotonic()
    account.close()  # the helper connection died with the server
    account.append("INBOX", emails[1])

    assert wait_until(lambda: ledger.settled(2), 30), log_text(log)
    recovery = time.monotonic() - back
    print(f"IMAP restart during IDLE: the next email settled {recovery:.1f} s after the server was back")
    assert recovery < 10, f"took {recovery:.1f} s (poll interval 120 s)"
    text = log_text(log)
    assert re.search(r"lost the mailbox connection \(.*\); retrying in \d+ s", text), text
    assert "mailbox reachable again; polling now" in text
    assert_folders_agree(account, ledger)
    ledger.close()


def test_imap_restart_mid_batch_loses_nothing_and_repeats_nothing(
    account, smtp_server, tmp_path, sqlite_url, workers
):
    emails = distinct_copies(SAMPLES_DIR, 1)[:24]
    for data in emails:
        account.append("INBOX", data)
    env = worker_env(
        account, smtp_server, tmp_path / "data", sqlite_url, MAILFLOW_IMAP_BATCH_SIZE="4", **FAST
    )
    ledger = Ledger(sqlite_url)
    _process, log = workers.start(env)
    assert wait_until(lambda: len(ledger.rows()) >= 4, 60), log_text(log)

    restart_dovecot(account.server, down=1)
    back = time.monotonic()
    assert wait_until(lambda: ledger.settled(len(emails)), 90), log_text(log)
    print(f"IMAP restart mid-batch: all {len(emails)} settled {time.monotonic() - back:.1f} s after restart")
    account.close()
    assert account.folder_count("INBOX") == 0
    assert wait_until(lambda: replies_settled(ledger, at_least=0), 60)
    assert_folders_agree(account, ledger)
    assert_each_reply_once(smtp_server, ledger)
    ledger.close()


# 2. The watched mailbox renamed away


def test_a_renamed_watched_mailbox_alerts_is_not_recreated_and_is_used_again_when_back(
    account, smtp_server, tmp_path, sqlite_url, workers
):
    emails = distinct_copies(SAMPLES_DIR, 1)[:2]
    account.append("Counter", emails[0])
    env = worker_env(
        account, smtp_server, tmp_path / "data", sqlite_url, MAILFLOW_IMAP_FOLDER="Counter", **FAST
    )
    env["MAILFLOW_POLL_INTERVAL"] = "1"
    ledger = Ledger(sqlite_url)
    _process, log = workers.start(env)
    assert wait_until(lambda: ledger.settled(1), 60), log_text(log)

    account.server.doveadm("mailbox", "rename", "-u", account.user, "Counter", "Counter-old")
    assert wait_until(lambda: "mailbox missing" in log_text(log), 10), log_text(log)
    time.sleep(3)
    text = log_text(log)
    assert "Counter" not in account.folders(), "the watched folder was created again"
    missing = [line for line in text.splitlines() if "mailbox missing" in line]
    assert len(missing) == 1 and "ERROR" in missing[0] and "not creating it" in missing[0], missing

    account.server.doveadm("mailbox", "rename", "-u", account.user, "Counter-old", "Counter")
    account.close()
    account.append("Counter", emails[1])
    assert wait_until(lambda: ledger.settled(2), 15), log_text(log)
    # announced when the cycle that found it again ends, which is after its email was settled
    assert wait_until(lambda: "the watched mailbox exists again" in log_text(log), 10), log_text(log)
    ledger.close()


# 4. SMTP faults


class DropAfterData(RecordingHandler):
    """Keeps the message, then closes the connection before answering DATA: the client cannot know."""

    async def handle_DATA(self, server, session, envelope) -> str:
        await super().handle_DATA(server, session, envelope)
        server.transport.close()
        return "250 never heard"


def test_a_connection_dropped_after_data_is_possibly_delivered_never_resent_and_filed_to_triage(
    account, smtp_server, tmp_path, sqlite_url, workers
):
    smtp_server.stop()
    smtp_server.handler = DropAfterData()
    smtp_server.start()
    emails = distinct_copies(SAMPLES_DIR, 1)[:6]
    for data in emails:
        account.append("INBOX", data)
    env = worker_env(account, smtp_server, tmp_path / "data", sqlite_url, **FAST)
    env["MAILFLOW_POLL_INTERVAL"] = "2"  # the refile of the emails the outbox put back in triage
    ledger = Ledger(sqlite_url)
    _process, log = workers.start(env)
    assert wait_until(lambda: ledger.settled(len(emails)), 60), log_text(log)
    assert wait_until(lambda: replies_settled(ledger), 60)
    replies = ledger.replies()
    assert {status for _, status, _ in replies} == {"unconfirmed"}, replies
    time.sleep(5)  # later outbox rounds and polls: nothing resent; the emails refiled to Triage
    assert len(smtp_server.received) == len(replies), "an unconfirmed reply was sent again"
    assert_each_reply_once(smtp_server, ledger)
    assert wait_until(lambda: account.folder_count("Triage") >= len(replies), 10)
    account.close()
    assert_folders_agree(account, ledger)
    assert "possibly delivered, not confirmed" in log_text(log)
    ledger.close()


class SlowToConfirm(RecordingHandler):
    """Keeps the message, then takes its time before the final 250: a window to kill the sender in."""

    async def handle_DATA(self, server, session, envelope) -> str:
        await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(10)
        return "250 at last"


def test_a_worker_killed_while_the_server_confirms_restarts_and_marks_the_reply_possibly_delivered(
    account, smtp_server, tmp_path, sqlite_url, workers
):
    smtp_server.stop()
    smtp_server.handler = SlowToConfirm()
    smtp_server.start()
    account.append("INBOX", distinct_copies(SAMPLES_DIR, 1)[0])
    env = worker_env(
        account, smtp_server, tmp_path / "data", sqlite_url, MAILFLOW_WORKER_NAME="counter-a", **FAST
    )
    ledger = Ledger(sqlite_url)
    first, _log = workers.start(env)
    assert wait_until(lambda: len(smtp_server.received) == 1, 60)
    first.kill()
    first.wait()
    killed = time.monotonic()

    _again, log = workers.start(env)
    assert wait_until(lambda: [s for _, s, _ in ledger.replies()] == ["unconfirmed"], 30), log_text(log)
    print(f"SIGKILL awaiting the reply to DATA: unconfirmed {time.monotonic() - killed:.1f} s after the kill")
    assert time.monotonic() - killed < 20, "not after the sending lease (42 s here)"
    assert wait_until(lambda: account.folder_count("Triage") == 1, 15), log_text(log)
    account.close()
    assert_folders_agree(account, ledger)
    time.sleep(3)
    assert len(smtp_server.received) == 1, "sent again"
    with ledger.engine.connect() as connection:
        [reasons] = connection.execute(
            select(DecisionRecord.reasons).order_by(DecisionRecord.id.desc()).limit(1)
        ).scalars()
    assert reasons == ["reply possibly delivered: sending was interrupted"]
    ledger.close()


def test_smtp_refusing_then_down_then_back_each_reply_sent_once_within_seconds(
    account, smtp_server, tmp_path, sqlite_url, workers
):
    emails = distinct_copies(SAMPLES_DIR, 1)[:6]
    for data in emails:
        account.append("INBOX", data)
    smtp_server.handler.refuse_with = "451 4.3.0 try again later"
    env = worker_env(account, smtp_server, tmp_path / "data", sqlite_url, **FAST)
    ledger = Ledger(sqlite_url)
    _process, log = workers.start(env)
    assert wait_until(lambda: ledger.settled(len(emails)), 60), log_text(log)
    time.sleep(2)
    smtp_server.stop()  # and now down altogether
    time.sleep(4)
    smtp_server.handler.refuse_with = None
    smtp_server.start()
    back = time.monotonic()
    assert wait_until(lambda: all(s == "sent" for _, s, _ in ledger.replies()), 30), ledger.replies()
    print(f"SMTP back: every reply sent {time.monotonic() - back:.1f} s later")
    assert time.monotonic() - back < 20
    assert_each_reply_once(smtp_server, ledger)
    assert "will retry" in log_text(log)
    ledger.close()


# 5. The database restarted


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


def test_postgres_restart_the_worker_lives_on_and_the_next_email_is_processed_within_seconds(
    account, smtp_server, tmp_path, own_postgres, workers
):
    url = own_postgres.url(own_postgres.create_database())
    emails = distinct_copies(SAMPLES_DIR, 1)[:2]
    account.append("INBOX", emails[0])
    env = worker_env(account, smtp_server, tmp_path / "data", url, **FAST)
    ledger = Ledger(url)
    process, log = workers.start(env)
    assert wait_until(lambda: ledger.settled(1), 60), log_text(log)

    restart_postgres(own_postgres, down=2)
    back = time.monotonic()
    account.append("INBOX", emails[1])
    assert wait_until(lambda: ledger.settled(2), 30), log_text(log)
    print(f"PostgreSQL restart: the next email settled {time.monotonic() - back:.1f} s after it was back")
    assert time.monotonic() - back < 10
    assert process.poll() is None
    assert_folders_agree(account, ledger)
    ledger.close()


# 6. Disk full


@pytest.fixture
def small_blob_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    blobs = tmp_path / "data" / "blobs"
    blobs.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(blobs)], check=True)
    try:
        yield blobs
    finally:
        subprocess.run(["umount", "-l", str(blobs)], check=False)


def test_a_full_disk_leaves_the_email_in_the_inbox_and_it_is_processed_once_space_is_back(
    account, smtp_server, tmp_path, sqlite_url, workers, small_blob_disk
):
    large = distinct_copies(SAMPLES_DIR, 1)[0].replace(b"\r\n\r\n", b"\r\n\r\n" + b"x" * 200_000 + b"\r\n", 1)
    if large == distinct_copies(SAMPLES_DIR, 1)[0]:
        large = large.replace(b"\n\n", b"\n\n" + b"x" * 200_000 + b"\n", 1)
    account.append("INBOX", large)
    env = worker_env(account, smtp_server, tmp_path / "data", sqlite_url, **FAST)
    ledger = Ledger(sqlite_url)
    _process, log = workers.start(env)
    assert wait_until(lambda: "No space left on device" in log_text(log), 60), log_text(log)
    line = next(line for line in log_text(log).splitlines() if "No space left" in line)
    assert "ERROR" in line and "it stays in the mailbox; retrying in" in line, line
    assert ledger.rows() == []
    account.close()
    assert account.folder_count("INBOX") == 1
    assert [p for p in small_blob_disk.rglob("*") if p.is_file()] == [], "a half-written blob was left"

    subprocess.run(["mount", "-o", "remount,size=16m", str(small_blob_disk)], check=True)
    back = time.monotonic()
    assert wait_until(lambda: ledger.settled(1), 30), log_text(log)
    print(f"disk full: processed {time.monotonic() - back:.1f} s after space was freed")
    assert time.monotonic() - back < 10
    assert_folders_agree(account, ledger)
    ledger.close()


# 7. A dead worker's claims


def decided(ledger: Ledger, pk: int) -> bool:
    """Its outcome is committed (it is moved with the rest of its batch)."""
    return any(row[0] == pk and row[2] != "received" for row in ledger.rows())


def kill_holding_a_claim(process: subprocess.Popen[bytes], ledger: Ledger, name: str | None) -> int:
    """SIGKILL the worker at a moment it holds a claim on an email still being processed; its id.
    ``name``: the worker's; None when it is the only one."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        process.send_signal(signal.SIGSTOP)
        held = [
            pk
            for pk, _, status, _, owner in ledger.rows()
            if status == "received" and owner is not None and name in (None, owner)
        ]
        if held:
            process.kill()
            process.wait()
            return held[0]
        process.send_signal(signal.SIGCONT)
        time.sleep(0.03)
    raise AssertionError("the worker never held a claim")


def test_a_killed_workers_claims_go_to_another_when_its_heartbeat_stops(
    account, smtp_server, tmp_path, sqlite_url, workers
):
    emails = distinct_copies(SAMPLES_DIR, 1)[:4]
    for data in emails:
        account.append("INBOX", data)
    env = worker_env(
        account,
        smtp_server,
        tmp_path / "data",
        sqlite_url,
        # Stale after 20 s: longer than the second worker takes to start, so that it finds the claim held.
        MAILFLOW_WORKER_HEARTBEAT_SECONDS="2",
        MAILFLOW_WORKER_HEARTBEAT_MISSES="10",
        MAILFLOW_LEASE_SECONDS="300",
        **FAST,
    )
    ledger = Ledger(sqlite_url)
    first, _log = workers.start(env, MAILFLOW_WORKER_NAME="counter-a")
    held = kill_holding_a_claim(first, ledger, "counter-a")
    killed = time.monotonic()

    _second, log = workers.start(env, MAILFLOW_WORKER_NAME="counter-b")
    assert wait_until(lambda: decided(ledger, held), 60), log_text(log)
    taken = time.monotonic() - killed
    print(f"claim of a SIGKILLed worker: decided by another {taken:.1f} s after the kill (lease 300 s)")
    assert 18 <= taken < 40, "taken over once the heartbeat stopped (20 s), long before the lease (300 s)"
    assert wait_until(lambda: ledger.settled(len(emails)), 60), log_text(log)
    text = log_text(log)
    assert f"email {held} held by worker counter-a until" in text, text
    assert "heartbeat stopped; taking it over" in text
    account.close()
    assert_folders_agree(account, ledger)
    assert wait_until(lambda: all(s == "sent" for _, s, _ in ledger.replies()), 20)
    assert_each_reply_once(smtp_server, ledger)
    ledger.close()


@pytest.mark.parametrize("name", ["counter-a", None], ids=["configured name", "default name"])
def test_a_worker_restarted_under_its_name_resumes_its_claims_at_once(
    account, smtp_server, tmp_path, sqlite_url, workers, name
):
    """Under a configured name, or the default one (the machine's free slot, taken again after the
    crash: adapters/worker_slot.py)."""
    emails = distinct_copies(SAMPLES_DIR, 1)[:4]
    for data in emails:
        account.append("INBOX", data)
    env = worker_env(
        account,
        smtp_server,
        tmp_path / "data",
        sqlite_url,
        MAILFLOW_WORKER_HEARTBEAT_SECONDS="30",  # its heartbeat stays fresh: only the name can help
        MAILFLOW_LEASE_SECONDS="300",
        **FAST,
        **({"MAILFLOW_WORKER_NAME": name} if name else {}),
    )
    ledger = Ledger(sqlite_url)
    first, _log = workers.start(env)
    held = kill_holding_a_claim(first, ledger, name)
    killed = time.monotonic()

    _again, log = workers.start(env)
    assert wait_until(lambda: decided(ledger, held), 60), log_text(log)
    taken = time.monotonic() - killed
    print(f"restarted under its name: its claim decided {taken:.1f} s after the kill (lease 300 s)")
    assert taken < 25, "resumed at once, not after the heartbeat window (90 s) or the lease"
    assert wait_until(lambda: ledger.settled(len(emails)), 60), log_text(log)
    account.close()
    assert_folders_agree(account, ledger)
    ledger.close()


# 3. Another client expunges an email while we work


def test_an_email_expunged_by_another_client_between_search_and_fetch_is_counted_not_a_failure(
    account, tmp_path
):
    from mailflow.adapters.imap import ImapMailbox
    from mailflow.bootstrap import App

    class ExpungedMeanwhile(ImapMailbox):
        def list_uids(self) -> list[int]:
            uids = super().list_uids()
            other = account.client("INBOX")
            other.delete_messages([uids[0]])
            other.expunge()
            return uids

    emails = distinct_copies(SAMPLES_DIR, 1)[:2]
    for data in emails:
        account.append("INBOX", data)
    settings = account.settings(data_dir=tmp_path / "data")
    app = App(settings)
    try:
        with ExpungedMeanwhile.from_settings(settings) as mailbox:
            report = app.make_ingestor(mailbox).run_once()
        assert report.vanished == 1 and report.processed == 1
        ledger = Ledger(settings.effective_database_url)
        assert len(ledger.rows()) == 1
        account.close()
        assert_folders_agree(account, ledger)
        ledger.close()
    finally:
        app.close()
