"""After the pipeline took an email naming a national register number and a PIN code, no database
column holds them in full (only the encrypted raw email does), and a search by the number still finds it."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

from alembic import command
from sqlalchemy import MetaData, select, text

from mailflow.adapters.fakes import FakeMailbox
from mailflow.bootstrap import App
from mailflow.settings import Settings
from mailflow.storage.database import alembic_config, make_engine, migrate
from mailflow.storage.models import Message
from mailflow.web import search

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NRN = "85.07.30-033.28"
SECRETS = (NRN, "85073003328", "850730 033 28", "pincode 8264", "PUK 31415926")


def resident_email() -> bytes:
    message = EmailMessage()
    message["From"] = "Amina <amina@example.org>"
    message["To"] = "migratie@stad.gent"
    message["Subject"] = f"Verblijfskaart verloren RRN {NRN} pincode 8264"
    message["Message-ID"] = "<nrn@example.org>"
    message.set_content(
        f"Hallo,\nIk ben mijn verblijfskaart verloren. Mijn rijksregisternummer is {NRN}, mijn "
        "pincode 8264 en PUK 31415926.\nAmina"
    )
    message.add_attachment(
        b"scan", maintype="application", subtype="octet-stream", filename="850730 033 28.txt"
    )
    return message.as_bytes()


def every_stored_value(app: App) -> str:
    """Every value of every table (the search index included), as one text."""
    metadata = MetaData()
    metadata.reflect(app.engine)
    values: list[str] = []
    with app.engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                for value in row:
                    values.append(value.decode("latin-1") if isinstance(value, bytes) else str(value))
        values += [" ".join(map(str, row)) for row in connection.execute(text("SELECT * FROM message_fts"))]
    return "\n".join(values)


def test_identifiers_are_stored_masked_and_found_by_their_token(tmp_path) -> None:
    app = App(Settings(data_dir=tmp_path, use_model=False))
    mailbox = FakeMailbox()
    mailbox.append("INBOX", resident_email())
    app.make_ingestor(mailbox).run_once()
    lookup = app.blobs.keyring.lookup_token
    assert search.index_pending(app.sessions, app.blobs, lookup=lookup) == 1

    with app.sessions() as session:
        row = session.scalar(select(Message))
        assert row.status in ("processed", "triage"), row.error
        assert row.subject == "Verblijfskaart verloren RRN **.**.**-***.28 pincode ****"
        assert [a.filename for a in row.attachments] == ["****** *** 28.txt"]
        raw = app.blobs.get(row.sha256)
    assert NRN.encode() in raw  # the raw email, encrypted on disk, keeps the truth
    stored = every_stored_value(app)
    assert "verblijfskaart" in stored.lower() and "**.**.**-***.28" in stored  # the columns were read
    for secret in SECRETS:
        assert secret not in stored

    with app.sessions() as session:
        for typed in (NRN, "85073003328", f"amina {NRN}"):
            found = session.scalars(select(Message.id).where(search.matching("sqlite", typed, lookup))).all()
            assert found == [row.id], typed
        other = "85.07.30-034.27"
        assert not session.scalars(select(Message.id).where(search.matching("sqlite", other, lookup))).all()
    app.close()


def test_the_migration_masks_what_was_stored_before_and_empties_the_index(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0010")
            connection.execute(
                text(
                    "INSERT INTO messages (id, mailbox, uidvalidity, uid, sha256, size, received_at, status,"
                    " subject) VALUES (1, 'INBOX', 1, 1, :sha, 10, :at, 'processed', :subject)"
                ),
                {"sha": "a" * 64, "at": NOW, "subject": f"RRN {NRN} pincode 8264"},
            )
            connection.execute(
                text("INSERT INTO message_fts (rowid, subject, sender, body) VALUES (1, :s, '', :s)"),
                {"s": f"RRN {NRN}"},
            )
        migrate(engine)
        with engine.connect() as connection:
            subject = connection.execute(text("SELECT subject FROM messages")).scalar_one()
            indexed = connection.execute(text("SELECT count(*) FROM message_fts")).scalar_one()
    finally:
        engine.dispose()
    assert (subject, indexed) == ("RRN **.**.**-***.28 pincode ****", 0)
