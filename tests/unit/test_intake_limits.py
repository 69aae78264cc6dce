"""Refused before work: an email too large is never fetched, an email the worker died on thrice is poison."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from mailflow.adapters.fakes import FakeMailbox
from mailflow.adapters.maildir import MaildirMailbox
from mailflow.bootstrap import App
from mailflow.processing import reprocess_quarantined
from mailflow.settings import Settings
from mailflow.storage.models import Event, Message
from tests.fixtures.hostile import deep_multipart, large, many_attachments, plain


def row_of(app: App, message_id: str) -> Message:
    with app.sessions() as session:
        row = session.scalar(select(Message).where(Message.message_id == message_id))
        session.expunge(row)
        return row


def test_an_email_over_the_size_limit_is_quarantined_from_its_size_alone(tmp_path):
    app = App(Settings(data_dir=tmp_path, use_model=False, max_message_bytes=100_000))
    mailbox = FakeMailbox()
    big = large(0.2, "big")
    big_uid = mailbox.append("INBOX", big)
    small_uid = mailbox.append("INBOX", plain())
    report = app.make_ingestor(mailbox).run_once()

    assert big_uid not in mailbox.fetched and small_uid in mailbox.fetched
    assert report.by_status["quarantined"] == 1 and report.processed == 2
    assert mailbox.messages("Quarantine") == [big]  # moved on the server, whole
    row = row_of(app, "<big@example.org>")
    assert row.status == "quarantined" and row.folder == "Quarantine"
    assert row.error.startswith("oversize: 0.2 MB, over the limit of 0.1 MB; not downloaded")
    assert row.size == len(big) and row.from_address == "amina@example.org" and row.subject == "Foto's"
    stored = app.blobs.get(row.sha256)
    assert stored.endswith(b"\n\n") and len(stored) < 1000 and b"Foto's" in stored  # its header block only
    assert row_of(app, "<plain@example.org>").status in ("processed", "triage")

    assert reprocess_quarantined(app.processor, app.blobs) == []  # its header is not the email
    assert row_of(app, "<big@example.org>").status == "quarantined"
    app.close()


def test_limits_of_the_parse_worker_quarantine_with_a_reason_and_the_queue_moves_on(tmp_path):
    app = App(Settings(data_dir=tmp_path, use_model=False, max_attachments=5))
    mailbox = FakeMailbox()
    mailbox.append("INBOX", deep_multipart(1000, b"deep"))
    mailbox.append("INBOX", many_attachments(40, "many"))
    mailbox.append("INBOX", plain())
    app.make_ingestor(mailbox).run_once()

    deep = row_of(app, "<deep@example.org>")
    assert deep.status == "quarantined" and deep.error.startswith("too_deep: ")
    many = row_of(app, "<many@example.org>")
    assert many.status == "triage"  # what was left out may be the document: a person looks
    with app.sessions() as session:
        decision = session.get(Message, many.id).decisions[-1]
        assert decision.reasons[-1] == "attachments left out over the limits"
        assert len(session.get(Message, many.id).attachments) == 5
        [left_out] = session.scalars(
            select(Event).where(Event.message_id == many.id, Event.kind == "parts_left_out")
        ).all()
        assert left_out.detail["count"] == 35
    assert row_of(app, "<plain@example.org>").status in ("processed", "triage")
    app.close()


class WorkerKilled(BaseException):
    """What SIGKILL looks like from inside: nothing after it runs (no quarantine, no outcome)."""


def test_an_email_the_worker_died_on_three_times_is_quarantined_as_poison(tmp_path):
    now = [datetime(2026, 3, 1, 9, 0, tzinfo=UTC)]
    settings = Settings(data_dir=tmp_path, use_model=False)
    mailbox = FakeMailbox()
    mailbox.append("INBOX", plain("poison", "Verblijfskaart"))
    mailbox.append("INBOX", plain("next"))

    def dies(raw: bytes):
        raise WorkerKilled

    for _attempt in range(3):  # three workers, each killed on the same email; the lease runs out between
        app = App(settings, clock=lambda: now[0])
        ingestor = app.make_ingestor(mailbox)
        ingestor.processor.analyse = dies
        with pytest.raises(WorkerKilled):
            ingestor.run_once()
        app.close()
        now[0] += timedelta(seconds=settings.lease_seconds + 1)

    app = App(settings, clock=lambda: now[0])
    ingestor = app.make_ingestor(mailbox)
    analysed: list[bytes] = []
    real = ingestor.processor.analyse
    ingestor.processor.analyse = lambda raw: analysed.append(raw) or real(raw)
    ingestor.run_once()
    poison = row_of(app, "<poison@example.org>")
    assert poison.status == "quarantined" and poison.folder == "Quarantine"
    assert poison.error == "poison: processing was cut short 3 times (the worker died on it)"
    assert analysed == [plain("next")]  # the poison was not tried a fourth time; the next one was processed
    assert row_of(app, "<next@example.org>").status in ("processed", "triage")

    # Retried by hand once the cause is fixed: the count starts afresh.
    [(pk, status)] = reprocess_quarantined(app.processor, app.blobs)
    assert pk == poison.id and status.value in ("processed", "triage")
    app.close()


def test_two_deaths_are_not_poison(tmp_path):
    now = [datetime(2026, 3, 1, 9, 0, tzinfo=UTC)]
    settings = Settings(data_dir=tmp_path, use_model=False)
    mailbox = FakeMailbox()
    mailbox.append("INBOX", plain("twice"))

    def dies(raw: bytes):
        raise WorkerKilled

    for _attempt in range(2):
        app = App(settings, clock=lambda: now[0])
        ingestor = app.make_ingestor(mailbox)
        ingestor.processor.analyse = dies
        with pytest.raises(WorkerKilled):
            ingestor.run_once()
        app.close()
        now[0] += timedelta(seconds=settings.lease_seconds + 1)
    app = App(settings, clock=lambda: now[0])
    app.make_ingestor(mailbox).run_once()
    assert row_of(app, "<twice@example.org>").status in ("processed", "triage")
    app.close()


@pytest.mark.parametrize("kind", ["fake", "maildir"])
def test_mailboxes_tell_sizes_and_headers_without_the_body(tmp_path, kind):
    mailbox = FakeMailbox() if kind == "fake" else MaildirMailbox(tmp_path / "maildir")
    first = mailbox.append("INBOX", plain("one"))
    second = mailbox.append("INBOX", large(0.1, "two"))
    assert mailbox.sizes([first, second, 999]) == {first: len(plain("one")), second: len(large(0.1, "two"))}
    headers = dict(mailbox.fetch_headers([first, second, 999], 4096))
    assert set(headers) == {first, second}
    assert headers[first].startswith(b"From: Jonas") and headers[first].endswith(b"\n\n")
    assert b"Hallo" not in headers[first] and len(headers[second]) < 1000
    assert dict(mailbox.fetch_headers([first], 10))[first] == plain("one")[:10]
    mailbox.close()
