"""A quarantined email stays visible and is processed again once the cause is fixed."""

from __future__ import annotations

from email.message import EmailMessage

from sqlalchemy import select

from mailflow.adapters.fakes import FakeMailbox
from mailflow.bootstrap import App
from mailflow.processing import reprocess_quarantined
from mailflow.settings import Settings
from mailflow.storage.models import Message


def resident_email() -> bytes:
    message = EmailMessage()
    message["From"] = "Amina <amina@example.org>"
    message["To"] = "migratie@stad.gent"
    message["Subject"] = "Verblijfskaart verloren"
    message["Message-ID"] = "<lost@example.org>"
    message.set_content("Hallo,\nIk ben mijn verblijfskaart verloren, ik wil een nieuwe kaart.\nAmina")
    return message.as_bytes()


def test_quarantined_email_is_reprocessed_after_the_fault_is_gone(tmp_path):
    # Reprocessing is under test, not the learned model: the rules decide (a lost card is booked).
    app = App(Settings(data_dir=tmp_path, use_model=False))
    mailbox = FakeMailbox()
    mailbox.append("INBOX", resident_email())
    real_analyse = app.analyser.analyse

    def broken(raw: bytes):
        raise RuntimeError("a bug in a stage")

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
    app.close()
