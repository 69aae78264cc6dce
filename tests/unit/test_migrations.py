"""The migrations build exactly the schema the models describe."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

import mailflow.storage.desk_models  # noqa: F401  (its tables join the metadata)
from mailflow.storage.database import alembic_config, make_engine, migrate
from mailflow.storage.models import Base

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_migrations_match_the_models(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        migrate(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"include_object": _modelled})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def _modelled(item, name, kind, reflected, compare_to) -> bool:
    """The full-text index is SQLite's own virtual table, made by hand in a migration."""
    return not (kind == "table" and name and name.startswith("message_fts"))


def test_folders_written_ahead_of_a_move_are_restored_from_the_move_events(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    rows = {  # id: (status, folder as recorded, moved, folders of its move events)
        1: ("processed", "Processed", True, ["Quarantine"]),  # processed again after quarantine
        2: ("triage", "Triage", False, []),  # decided, not moved yet
        3: ("processed", "Triage", True, ["Triage"]),  # decided by a person afterwards
        4: ("ignored", "Ignored", True, ["Ignored"]),
    }
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0008")
            for pk, (status, folder, moved, folders) in rows.items():
                connection.execute(
                    text(
                        "INSERT INTO messages (id, mailbox, uidvalidity, uid, sha256, size, received_at,"
                        " status, folder, moved_at) VALUES (:pk, 'INBOX', 1, :pk, :sha, 10, :at, :status,"
                        " :folder, :moved_at)"
                    ),
                    {"pk": pk, "sha": str(pk) * 64, "at": NOW, "status": status, "folder": folder}
                    | {"moved_at": NOW if moved else None},
                )
                for moved_to in folders:
                    connection.execute(
                        text(
                            "INSERT INTO events (message_id, at, actor, kind, detail)"
                            " VALUES (:pk, :at, 'ingest', 'moved', :detail)"
                        ),
                        {"pk": pk, "at": NOW, "detail": json.dumps({"folder": moved_to})},
                    )
        migrate(engine)
        with engine.connect() as connection:
            folders = dict(connection.execute(text("SELECT id, folder FROM messages ORDER BY id")).all())
    finally:
        engine.dispose()
    assert folders == {1: "Quarantine", 2: None, 3: "Triage", 4: "Ignored"}
