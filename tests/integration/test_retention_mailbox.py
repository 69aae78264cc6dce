"""Retention against a real Dovecot: erased emails leave the folders they were filed into; what is still
in the inbox, unprocessed, is never touched; the event chain still verifies."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from mailflow.adapters.imap import ImapMailbox
from mailflow.audit import verify_chain
from mailflow.bootstrap import App
from mailflow.errors import MailboxError
from mailflow.ports import Fingerprint
from mailflow.retention.job import apply
from mailflow.retention.schedule import Schedule
from mailflow.storage.models import Message
from mailflow.web.search import index_pending
from tests.retention_mail import ALL, LOST_CARD, SPAM, UNCLEAR, Clock, email

pytestmark = pytest.mark.integration


def crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_retention_deletes_erased_emails_from_the_imap_folders(dovecot, tmp_path):
    clock = Clock()
    app = App(dovecot.settings(data_dir=tmp_path, use_model=False), clock=clock)
    try:
        for raw in ALL:
            dovecot.append("INBOX", raw)
        mailbox = app.open_mailbox()
        try:
            app.make_ingestor(mailbox).run_once()
        finally:
            mailbox.close()
        index_pending(app.sessions, app.blobs)
        assert crlf(SPAM) in dovecot.bodies("Ignored") and crlf(LOST_CARD) in dovecot.bodies("Processed")
        late = email("Late <late@example.org>", "kaart", "Mijn kaart is verloren.", "<late@example.org>")
        dovecot.append("INBOX", late)  # arrives after the last poll: unprocessed

        clock.advance(800)
        mailbox = app.open_mailbox()
        try:
            report = apply(
                app.sessions, app.blobs, Schedule.from_settings(app.settings), clock, mailbox=mailbox
            )
        finally:
            mailbox.close()
        assert dict(report.erased) == {"machine": 1, "processed": 1}
        assert report.mailbox_deleted == 2 and report.mailbox_missing == 0
        assert dovecot.bodies("Ignored") == []
        assert crlf(LOST_CARD) not in dovecot.bodies("Processed") and len(dovecot.bodies("Processed")) == 1
        assert dovecot.bodies("Triage") == [crlf(UNCLEAR)]
        assert dovecot.bodies("INBOX") == [crlf(late)]
        with app.sessions() as session:
            spam = session.scalar(
                select(Message).where(Message.sha256 == hashlib.sha256(crlf(SPAM)).hexdigest())
            )
            assert spam.erased_rule == "machine" and spam.folder is None and spam.subject is None
        assert not app.blobs.exists(spam.sha256)
        assert verify_chain(app.sessions).ok
    finally:
        app.close()


def test_the_imap_adapter_never_deletes_from_the_inbox(dovecot):
    raw = email("A <a@example.org>", "x", "y", "<inbox@example.org>")
    dovecot.append("INBOX", raw)
    dovecot.create("Processed")
    dovecot.append("Processed", raw)
    served = crlf(raw)
    fingerprint = Fingerprint(hashlib.sha256(served).hexdigest(), len(served), None)
    with ImapMailbox.from_settings(dovecot.settings()) as mailbox:
        with pytest.raises(MailboxError, match="watched folder"):
            mailbox.delete(fingerprint, "INBOX")
        assert mailbox.delete(fingerprint, "Processed") is True
        assert mailbox.delete(fingerprint, "Processed") is False  # gone already
        assert mailbox.delete(fingerprint, "Nowhere") is False
        assert mailbox.list_uids()  # the watched folder is selected again, its email untouched
    assert dovecot.bodies("INBOX") == [served] and dovecot.bodies("Processed") == []
