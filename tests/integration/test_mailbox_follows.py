"""The mailbox follows the desk: after a person's decision or a successful retry, the worker's next
cycle moves the email into the folder of its new outcome. A real Dovecot and SMTP server, the real
``mailflow`` command for the worker, and the desk's own code, which holds no IMAP credentials."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from mailflow.bootstrap import App
from mailflow.settings import Settings
from mailflow.storage.models import Event, Message
from mailflow.web import leases, pending
from mailflow.web.decisions import Part, suggestion
from tests.integration.worker_harness import FOLDERS, run_mailflow, worker_env
from tests.web import emails

pytestmark = pytest.mark.integration


def settings_of(env: dict[str, str], *, imap: bool) -> Settings:
    """The worker's settings, read from its environment; the desk's are the same without IMAP."""
    values = {key.removeprefix("MAILFLOW_").lower(): value for key, value in env.items()}
    values = {key: value for key, value in values.items() if key in Settings.model_fields}
    if not imap:
        values = {key: value for key, value in values.items() if not key.startswith("imap_")}
    return Settings(**values, desk_undo_seconds=0)


@pytest.fixture
def env(dovecot, smtp_server, tmp_path, database_url) -> dict[str, str]:
    return worker_env(dovecot, smtp_server, tmp_path / "data", database_url)


@pytest.fixture
def desk(env) -> Iterator[App]:
    app = App(settings_of(env, imap=False))
    yield app
    app.close()


def as_served(raw: bytes) -> bytes:
    """The bytes as the IMAP server hands them out: CRLF line ends."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def where(dovecot, raw: bytes) -> list[str]:
    """Every folder that holds these exact bytes, once per copy."""
    return [folder for folder in ("INBOX", *FOLDERS) for body in dovecot.bodies(folder) if body == raw]


def ledger_row(app: App, raw: bytes) -> tuple[int, str, str | None]:
    """The email's row id, status and the folder the ledger last filed it in."""
    with app.sessions() as session:
        row = session.execute(
            select(Message.id, Message.status, Message.folder).where(
                Message.sha256 == hashlib.sha256(raw).hexdigest()
            )
        ).one()
    return row.id, row.status, row.folder


def moves(app: App, pk: int) -> list[dict[str, str]]:
    with app.sessions() as session:
        query = select(Event.detail).where(Event.message_id == pk, Event.kind == "moved").order_by(Event.id)
        return list(session.scalars(query))


def broken(raw: bytes):
    raise RuntimeError("a bug in a stage")


def test_a_staff_decision_moves_the_email_out_of_triage(dovecot, env, desk):
    raw = as_served(emails.renewal_request())  # its sender failed DMARC: the machine leaves it to a person
    dovecot.append("INBOX", raw)
    run_mailflow(env, "poll-once")
    assert where(dovecot, raw) == ["Triage"]

    pk, _status, _folder = ledger_row(desk, raw)
    category, action = suggestion(desk, desk.analyser.analyse(raw))
    now = desk.clock()
    leases.take(desk.sessions, pk, "sam", now=now, lease=timedelta(minutes=10))
    pending.hold(desk, pk, "sam", [Part(category, action)], "", now=now)  # an undo window of 0
    assert pending.apply_due(desk, now=now) == 1
    assert ledger_row(desk, raw) == (pk, "processed", "Triage")
    assert where(dovecot, raw) == ["Triage"]  # the desk changed the ledger only

    run_mailflow(env, "poll-once")

    assert where(dovecot, raw) == ["Processed"]
    assert ledger_row(desk, raw) == (pk, "processed", "Processed")
    run_mailflow(env, "poll-once")  # nothing left to move, and nothing moves twice
    assert where(dovecot, raw) == ["Processed"]
    assert moves(desk, pk) == [{"folder": "Triage"}, {"folder": "Processed", "from": "Triage"}]


def test_a_quarantined_email_retried_successfully_leaves_quarantine(dovecot, smtp_server, env, desk):
    raw = as_served(emails.information_question())  # answered automatically once the pipeline works
    dovecot.append("INBOX", raw)
    worker = App(settings_of(env, imap=True))
    mailbox = worker.open_mailbox()
    try:
        ingestor = worker.make_ingestor(mailbox)
        ingestor.processor.analyse = broken  # a worker cycle with a bug in a stage
        ingestor.run_once()
    finally:
        mailbox.close()
        worker.close()
    assert where(dovecot, raw) == ["Quarantine"]
    pk, status, folder = ledger_row(desk, raw)
    assert (status, folder) == ("quarantined", "Quarantine")

    run_mailflow(env, "quarantine", "retry")  # the bug is fixed
    assert ledger_row(desk, raw) == (pk, "processed", "Quarantine")
    assert len(smtp_server.received) == 1  # its answer

    run_mailflow(env, "poll-once")

    assert where(dovecot, raw) == ["Processed"]
    assert ledger_row(desk, raw) == (pk, "processed", "Processed")
    run_mailflow(env, "poll-once")
    assert where(dovecot, raw) == ["Processed"]
    assert moves(desk, pk) == [{"folder": "Quarantine"}, {"folder": "Processed", "from": "Quarantine"}]
    assert len(smtp_server.received) == 1
