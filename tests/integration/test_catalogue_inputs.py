"""Every row of the input catalogue (shared/research/reliability.md §1) through a real Dovecot and the
real ``mailflow poll-once``: one email per row, then an ordinary one. Each row ends where the catalogue
says (read and filed or put before a person; encrypted mail quarantined; calendar messages, archives
and senders without a usable address never answered automatically), nothing stays in the inbox, the
ordinary email after them is processed, and the audit chain is intact.

Rows tried elsewhere: too deep, huge, many attachments and thousands of recipients in
tests/integration/test_limits.py; PDF and image bombs in tests/unit/test_limits.py; HTML in the desk's
XSS tests; a duplicated Message-ID in tests/unit/test_ledger.py."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from tests.fixtures.catalogue_inputs import rows
from tests.fixtures.hostile import plain
from tests.integration.worker_harness import run_mailflow, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

READ = {"processed", "triage"}
ENCRYPTED = "encrypted: "
# tag → (statuses allowed, start of the decision's last reason or of the quarantine reason; None: any)
EXPECTED: dict[str, tuple[set[str], str | None]] = {
    "noblank": (READ, None),
    "nofrom": ({"triage"}, "no_sender: "),
    "words": (READ, None),
    "wordaddr": ({"triage"}, "no_sender: "),
    "uft8": (READ, None),
    "lying": (READ, None),
    "eightbit": (READ, None),
    "noboundary": (READ, None),
    "unclosed": (READ, None),
    "archive": ({"triage"}, "1 archive(s) attached: stored, never opened"),
    "heic": (READ, None),
    "tnef": (READ, None),
    "tnefbad": (READ, None),
    "smimesigned": (READ, None),
    "pgpsigned": (READ, None),
    "smimeenc": ({"quarantined"}, ENCRYPTED),
    "pgpenc": ({"quarantined"}, ENCRYPTED),
    "calreply": ({"triage"}, "calendar message (METHOD:REPLY): never answered automatically"),
    "calcancel": ({"triage"}, "calendar message (METHOD:CANCEL): never answered automatically"),
    "calrequest": ({"triage"}, "calendar message (METHOD:REQUEST): never answered automatically"),
    "nul": (READ, None),
    "bidi": (READ, None),
    "traversal": (READ, None),
    "lies": ({"triage"}, "1 archive(s) attached: stored, never opened"),
    "garbage": (READ, None),
    "nomsgid": (READ, None),
    "emptymsgid": (READ, None),
    "outlook": (READ, None),
    "future": (READ, None),
    "past": (READ, None),
    "baddate": (READ, None),
    "longline": (READ, None),
    "html": (READ, None),
}


def test_every_row_of_the_input_catalogue_through_dovecot_and_the_next_email_is_processed(
    dovecot, smtp_server, tmp_path
):
    catalogue = rows()
    assert {tag for _, tag, _ in catalogue} == set(EXPECTED)
    uids = {tag: dovecot.append("INBOX", data) for _, tag, data in catalogue}
    uids["next"] = dovecot.append("INBOX", plain("next"))
    data_dir = tmp_path / "data"
    env = worker_env(dovecot, smtp_server, data_dir)
    started = time.monotonic()
    output = run_mailflow(env, "poll-once", timeout=300)
    elapsed = time.monotonic() - started

    with sqlite3.connect(data_dir / "mailflow.sqlite3") as connection:
        ledger = {
            uid: (pk, status, error, subject, folder)
            for pk, uid, status, error, subject, folder in connection.execute(
                "SELECT id, uid, status, error, subject, folder FROM messages"
            )
        }
        decided = {
            pk: json.loads(detail)["reasons"][-1]
            for pk, detail in connection.execute(
                "SELECT message_id, detail FROM events WHERE kind = 'decided'"
            )
        }
        names = {
            pk: [name for (name,) in connection.execute(
                "SELECT filename FROM attachments WHERE message_id = ? ORDER BY position", (pk,)
            )]
            for pk, *_ in ledger.values()
        }  # fmt: skip
    assert len(ledger) == len(uids), output.stdout + output.stderr
    by_tag = {tag: ledger[uid] for tag, uid in uids.items()}

    wrong = []
    for name, tag, _ in catalogue:
        pk, status, error, _, folder = by_tag[tag]
        statuses, reason = EXPECTED[tag]
        said = error if status == "quarantined" else decided.get(pk, "")
        if status not in statuses or (reason is not None and not said.startswith(reason)):
            wrong.append((name, status, said))
        elif folder != {"processed": "Processed", "triage": "Triage", "quarantined": "Quarantine"}[status]:
            wrong.append((name, status, folder))
    assert wrong == [], wrong
    assert by_tag["next"][1] in READ and by_tag["next"][1] != "quarantined"
    assert dovecot.folder_count("INBOX") == 0

    # What the ledger and the attachment list show: decoded, clean, never a path.
    assert by_tag["eightbit"][3] == "Afspraak één"
    assert by_tag["nul"][3] == "Afspraak kaart"
    assert by_tag["words"][3] == "Afspraak Bcc: victim@example.net"  # one line, shown as text
    assert names[by_tag["tnef"][0]] == ["verblijfskaart.txt"]
    assert names[by_tag["tnefbad"][0]] == ["winmail.dat"]
    assert names[by_tag["traversal"][0]] == ["passwd", "boot.ini", ""]
    assert names[by_tag["bidi"][0]] == ["factuurfdp.exe", "\u0440aspoort.png"]
    assert names[by_tag["nul"][0]] in (["kaart.txt"], ["kaart\ufffd.txt"])  # Dovecot replaces NUL in headers
    assert all(b"victim@example.net" not in sent.data for sent in smtp_server.received)

    run_mailflow(env, "audit", "verify")
    assert elapsed < 60, f"the catalogue took {elapsed:.0f} s"


def test_nul_bytes_reach_postgresql_as_nothing(postgres_url, tmp_path):
    """PostgreSQL refuses U+0000 in text (psycopg: "cannot contain NUL (0x00) bytes"): the email with NUL
    bytes is stored and read, and a NUL written anywhere through the engine is dropped, not an error."""
    from sqlalchemy import select, update

    from mailflow.adapters.fakes import FakeMailbox
    from mailflow.bootstrap import App
    from mailflow.settings import Settings
    from mailflow.storage.models import Message

    app = App(Settings(data_dir=tmp_path / "data", use_model=False, database_url=postgres_url))
    try:
        mailbox = FakeMailbox()
        mailbox.append("INBOX", dict((tag, data) for _, tag, data in rows())["nul"])
        mailbox.append("INBOX", plain("next"))
        app.make_ingestor(mailbox).run_once()
        with app.sessions.begin() as session:
            statuses = dict(session.execute(select(Message.message_id, Message.status)).all())
            session.execute(update(Message).values(subject="Afspraak\x00kaart\x00"))
        with app.sessions() as session:
            subjects = set(session.scalars(select(Message.subject)))
    finally:
        app.close()
    assert set(statuses.values()) <= READ and set(statuses) == {"<nul@example.org>", "<next@example.org>"}
    assert subjects == {"Afspraakkaart"}
