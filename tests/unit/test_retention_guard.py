"""The daily job runs in one worker only; entries from before the digest scheme can be erased too;
the commands print what is due per rule."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import select, text

from mailflow.audit import GENESIS, entry_hash, verify_chain
from mailflow.cli import main
from mailflow.retention.erase import erase_messages
from mailflow.retention.lease import claim_job, release_job
from mailflow.storage.database import alembic_config, make_engine, make_session_factory, migrate
from mailflow.storage.models import Event

NOW = datetime(2026, 3, 2, 3, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_of_two_workers_trying_at_once_exactly_one_runs_the_job(database_url):
    if database_url.startswith("sqlite"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engines = [make_engine(database_url) for _ in range(2)]
    migrate(engines[0])
    factories = [make_session_factory(engine) for engine in engines]
    try:
        for _round in range(5):  # a race lost once by luck would not show; five rounds, five fresh jobs
            name = f"retention-{_round}"
            start, won = threading.Barrier(2), []

            def worker(
                index: int, name: str = name, start: threading.Barrier = start, won: list = won
            ) -> None:
                start.wait()
                if claim_job(
                    factories[index], name, owner=f"w{index}", now=NOW, lease=2 * HOUR, min_gap=20 * HOUR
                ):
                    won.append(index)

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            assert len(won) == 1
        sessions = factories[0]
        # Running: nobody else, even past the daily gap, until the lease ends.
        assert not claim_job(sessions, "retention-0", owner="w9", now=NOW + HOUR, lease=2 * HOUR)
        release_job(sessions, "retention-0", owner="w0", now=NOW + HOUR)
        # Done for today: another worker's schedule an hour later does not run it again.
        assert not claim_job(
            sessions, "retention-0", owner="w1", now=NOW + HOUR, lease=2 * HOUR, min_gap=20 * HOUR
        )
        assert claim_job(
            sessions, "retention-0", owner="w1", now=NOW + 24 * HOUR, lease=2 * HOUR, min_gap=20 * HOUR
        )
        # A crashed worker's lease runs out and another takes over.
        assert claim_job(sessions, "retention-0", owner="w2", now=NOW + 27 * HOUR, lease=2 * HOUR)
    finally:
        for engine in engines:
            engine.dispose()


def test_entries_chained_before_the_digest_scheme_are_erased_and_still_verify(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    command.upgrade(alembic_config(url), "0010")
    engine = make_engine(url)
    at = "2026-03-02 09:00:00.000000"
    with engine.begin() as connection:  # what a worker of the previous release wrote
        connection.execute(
            text(
                "INSERT INTO messages (id, mailbox, uidvalidity, uid, sha256, size, received_at,"
                " from_address, subject, status, folder) VALUES (1, 'INBOX', 1, 1, :sha, 10, :at,"
                " 'amina@example.org', 'my passport', 'ignored', 'Ignored')"
            ),
            {"sha": "a" * 64, "at": at},
        )
        prev = GENESIS
        for seq, (kind, detail) in enumerate(
            [("stored", '{"sha256": "x"}'), ("classified", '{"category": "spam"}')], 1
        ):
            digest = entry_hash(
                prev, seq=seq, at=datetime(2026, 3, 2, 9, tzinfo=UTC), actor="ingest", kind=kind,
                message_id=1, detail=json.loads(detail),
            )  # fmt: skip
            connection.execute(
                text(
                    "INSERT INTO events (seq, prev_hash, hash, message_id, at, actor, kind, detail)"
                    " VALUES (:seq, :prev, :hash, 1, :at, 'ingest', :kind, :detail)"
                ),
                {"seq": seq, "prev": prev, "hash": digest, "at": at, "kind": kind, "detail": detail},
            )
            prev = digest
        connection.execute(text("UPDATE audit_head SET seq = 2, hash = :h"), {"h": prev})
    migrate(engine)
    sessions = make_session_factory(engine)
    assert verify_chain(sessions).ok
    with sessions.begin() as session:
        erase_messages(session, [1], reason="art. 17 request", actor="sam", now=NOW)
    result = verify_chain(sessions)
    assert result.ok and result.checked == 3 and result.erased == 2
    with sessions() as session:
        schemes = session.execute(select(Event.seq, Event.hash_scheme).order_by(Event.seq)).all()
    assert schemes == [(1, 1), (2, 1), (3, 2)]
    with engine.begin() as connection:
        connection.execute(text("DROP TRIGGER events_no_update"))
        connection.execute(text("UPDATE events SET kind = 'viewed' WHERE seq = 2"))
    result = verify_chain(sessions)
    assert not result.ok and result.broken_seq == 2 and "altered" in result.problem
    engine.dispose()


@pytest.fixture
def configured(tmp_path, monkeypatch):
    monkeypatch.setenv("MAILFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MAILFLOW_USE_MODEL", "false")
    return tmp_path


def test_the_commands_say_what_is_due_and_set_holds(configured):
    runner = CliRunner()
    result = runner.invoke(main, ["retention", "run", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would erase: nothing" in result.output
    result = runner.invoke(
        main, ["retention", "hold", "MIG-2026-000404", "--reason", "appeal", "--by", "admin"]
    )
    assert result.exit_code != 0 and "no case MIG-2026-000404" in result.output
    result = runner.invoke(main, ["retention", "run"])
    assert result.exit_code == 0, result.output
    assert "erased: nothing" in result.output and "deleted from the mailbox: 0" in result.output


@pytest.mark.parametrize("kind", ["maildir", "fake"])
def test_the_mailbox_deletes_one_email_from_a_filed_folder_never_from_the_inbox(tmp_path, kind):
    import hashlib

    from mailflow.adapters.fakes import FakeMailbox
    from mailflow.adapters.maildir import MaildirMailbox
    from mailflow.errors import MailboxError
    from mailflow.ports import Fingerprint

    mailbox = MaildirMailbox(tmp_path / "maildir") if kind == "maildir" else FakeMailbox()
    keep, erase = b"Subject: keep\n\nkeep\n", b"Subject: erase\n\nerase\n"
    for raw in (keep, erase):
        mailbox.append("INBOX", raw)
        mailbox.append("Processed", raw)
    fingerprint = Fingerprint(hashlib.sha256(erase).hexdigest(), len(erase), None)
    with pytest.raises(MailboxError, match="watched folder"):
        mailbox.delete(fingerprint, "INBOX")
    assert mailbox.delete(fingerprint, "Processed") is True
    assert mailbox.delete(fingerprint, "Processed") is False
    assert mailbox.delete(fingerprint, "Nowhere") is False
    assert len(mailbox.list_uids()) == 2  # the inbox untouched
    moved = mailbox.refile(
        Fingerprint(hashlib.sha256(keep).hexdigest(), len(keep), None), "Triage", ["Processed"]
    )
    assert moved == "Processed"  # the other email in that folder is still there


def test_erasure_on_each_database_keeps_the_chain_and_the_append_only_guard(database_url, tmp_path):
    from sqlalchemy.exc import DatabaseError

    from mailflow.adapters.fakes import FakeMailbox
    from mailflow.bootstrap import App
    from mailflow.retention.job import apply
    from mailflow.retention.schedule import Schedule
    from mailflow.settings import Settings
    from mailflow.web.search import index_pending
    from tests.retention_mail import ALL, Clock

    clock = Clock()
    app = App(Settings(data_dir=tmp_path / "data", database_url=database_url, use_model=False), clock=clock)
    try:
        mailbox = FakeMailbox()
        for raw in ALL:
            mailbox.append("INBOX", raw)
        app.make_ingestor(mailbox).run_once()
        index_pending(app.sessions, app.blobs)
        clock.advance(800)
        report = apply(app.sessions, app.blobs, Schedule.from_settings(app.settings), clock, mailbox=mailbox)
        assert dict(report.erased) == {"machine": 1, "processed": 1}
        assert verify_chain(app.sessions).ok
        assert index_pending(app.sessions, app.blobs) == 0  # erased emails are not indexed again
        with app.sessions() as session:
            erased = session.scalar(select(Event.id).where(Event.erased_at.is_not(None)).limit(1))
        for statement in (
            f"UPDATE events SET actor = 'x' WHERE id = {erased}",
            f"UPDATE events SET erased_at = NULL WHERE id = {erased}",
            f"DELETE FROM events WHERE id = {erased}",
        ):
            with pytest.raises(DatabaseError, match="append-only"), app.engine.begin() as connection:
                connection.execute(text(statement))
    finally:
        app.close()


def test_the_workers_daily_run_happens_once_a_day(tmp_path):
    from mailflow.adapters.fakes import FakeMailbox
    from mailflow.bootstrap import App
    from mailflow.retention.job import daily_retention
    from mailflow.settings import Settings
    from tests.retention_mail import SPAM, Clock

    clock = Clock()
    first = App(Settings(data_dir=tmp_path, use_model=False), clock=clock)
    second = App(Settings(data_dir=tmp_path, use_model=False), clock=clock)
    mailbox = FakeMailbox()
    first.open_mailbox = lambda: mailbox  # type: ignore[method-assign]
    second.open_mailbox = lambda: mailbox  # type: ignore[method-assign]
    try:
        mailbox.append("INBOX", SPAM)
        first.make_ingestor(mailbox).run_once()
        clock.advance(31)
        report = daily_retention(first)
        assert report is not None and dict(report.erased) == {"machine": 1} and report.mailbox_deleted == 1
        clock.advance(1 / 24)
        assert daily_retention(second) is None  # the other worker's schedule, an hour later
        clock.advance(1)
        assert daily_retention(second) is not None  # the next day
        with first.sessions() as session:
            runs = session.scalars(select(Event.actor).where(Event.kind == "retention_run")).all()
        assert runs == ["retention", "retention"]
    finally:
        first.close()
        second.close()
