"""A quarantined email stays visible and is processed again once the cause is fixed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from mailflow.adapters.fakes import FakeMailbox
from mailflow.bootstrap import App
from mailflow.processing import reprocess_quarantined
from mailflow.settings import Settings
from mailflow.storage.models import Event, Message


def resident_email() -> bytes:
    message = EmailMessage()
    message["From"] = "Amina <amina@example.org>"
    message["To"] = "migratie@stad.gent"
    message["Subject"] = "Verblijfskaart verloren"
    message["Message-ID"] = "<lost@example.org>"
    message.set_content("Hallo,\nIk ben mijn verblijfskaart verloren, ik wil een nieuwe kaart.\nAmina")
    return message.as_bytes()


def broken(raw: bytes):
    raise RuntimeError("a bug in a stage")


def test_quarantined_email_is_reprocessed_after_the_fault_is_gone(tmp_path):
    # Reprocessing is under test, not the learned model: the rules decide (a lost card is booked).
    app = App(Settings(data_dir=tmp_path, use_model=False))
    mailbox = FakeMailbox()
    mailbox.append("INBOX", resident_email())
    real_analyse = app.analyser.analyse
    app.make_ingestor(mailbox).run_once()  # the first email goes through; then a stage breaks
    ingestor = app.make_ingestor(mailbox)
    ingestor.processor.analyse = broken
    mailbox.append("INBOX", resident_email().replace(b"<lost@", b"<lost2@"))
    ingestor.run_once()
    with app.sessions() as session:
        row = session.scalar(select(Message).where(Message.message_id == "<lost2@example.org>"))
        assert row.status == "quarantined" and "a bug in a stage" in row.error
        assert row.folder == "Quarantine"
    assert mailbox.folders.get("Quarantine")

    app.processor.analyse = real_analyse
    [(pk, status)] = reprocess_quarantined(app.processor, app.blobs)
    assert pk == row.id and status.value == "processed"
    with app.sessions() as session:
        again = session.get(Message, pk)
        assert again.status == "processed" and again.decisions[-1].category == "card_lost"
        assert again.folder == "Quarantine"  # where it is until the worker's next cycle

    report = app.make_ingestor(mailbox).run_once()
    assert report.refiled == 1 and mailbox.refiles == [("Quarantine", "Processed")]
    assert not mailbox.folders["Quarantine"]
    assert mailbox.messages("Processed")[-1] == resident_email().replace(b"<lost@", b"<lost2@")
    with app.sessions() as session:
        assert session.get(Message, pk).folder == "Processed"
    assert app.make_ingestor(mailbox).run_once().refiled == 0  # nothing moves twice
    assert len(mailbox.refiles) == 1
    app.close()


def quarantined_then_retried(tmp_path) -> tuple[App, FakeMailbox, int]:
    """An email quarantined by a broken stage, then processed again once it works: filed in Quarantine."""
    app = App(Settings(data_dir=tmp_path, use_model=False))
    mailbox = FakeMailbox()
    mailbox.append("INBOX", resident_email())
    ingestor = app.make_ingestor(mailbox)
    real_analyse = ingestor.processor.analyse
    ingestor.processor.analyse = broken
    ingestor.run_once()
    app.processor.analyse = real_analyse
    [(pk, _status)] = reprocess_quarantined(app.processor, app.blobs)
    return app, mailbox, pk


def test_a_retried_email_that_vanished_from_the_mailbox_is_recorded_lost(tmp_path):
    app, mailbox, pk = quarantined_then_retried(tmp_path)
    mailbox.folders["Quarantine"].clear()  # deleted by hand meanwhile

    assert app.make_ingestor(mailbox).run_once().refiled == 0
    assert app.make_ingestor(mailbox).run_once().refiled == 0
    with app.sessions() as session:
        assert session.get(Message, pk).folder is None
        lost = session.scalars(select(Event).where(Event.message_id == pk, Event.kind == "lost")).all()
    assert len(lost) == 1 and not mailbox.refiles
    app.close()


def test_a_refile_cut_short_before_the_ledger_heard_of_it_is_recorded_without_moving_again(tmp_path):
    app, mailbox, pk = quarantined_then_retried(tmp_path)
    mailbox.fail_next("refile", RuntimeError("worker killed"))
    with pytest.raises(RuntimeError):
        app.make_ingestor(mailbox).run_once()
    # What the dead worker did: the MOVE went through, its record did not.
    [data] = mailbox.messages("Quarantine")
    mailbox.folders["Quarantine"].clear()
    mailbox.append("Processed", data)
    app.clock = lambda: datetime.now(UTC) + timedelta(seconds=app.settings.lease_seconds + 1)
    app.__dict__.pop("ledger", None)  # its claim has run out; a new worker takes over

    app.make_ingestor(mailbox).run_once()

    assert mailbox.messages("Processed") == [data] and not mailbox.refiles
    with app.sessions() as session:
        assert session.get(Message, pk).folder == "Processed"
    app.close()
