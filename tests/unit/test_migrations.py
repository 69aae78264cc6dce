"""The migrations build exactly the schema the models describe, on SQLite and on PostgreSQL, and
undo themselves; several workers starting at once on an empty database create the schema once."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

import mailflow.storage.desk_models  # noqa: F401  (its tables join the metadata)
from mailflow.storage.database import alembic_config, make_engine, migrate
from mailflow.storage.models import Base

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_migrations_match_the_models(database_url):
    engine = make_engine(database_url)
    try:
        migrate(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"include_object": _modelled})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def _modelled(item, name, kind, reflected, compare_to) -> bool:
    """The full-text index is made by hand in a migration: SQLite's virtual table, PostgreSQL's table."""
    return not (kind == "table" and name and name.startswith(("message_fts", "message_search")))


def test_every_migration_is_undone_and_done_again(database_url):
    engine = make_engine(database_url)
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    try:
        migrate(engine)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
        migrate(engine)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head()
            assert connection.execute(text("SELECT seq FROM audit_head")).scalar() == 0
    finally:
        engine.dispose()


def test_workers_starting_together_on_an_empty_database_create_the_schema_once(database_url):
    """Each worker migrates at start: the first creates the schema, the others wait and find it done."""
    engines = [make_engine(database_url) for _ in range(4)]
    start, errors = threading.Barrier(len(engines)), []

    def start_worker(engine) -> None:
        start.wait()
        try:
            migrate(engine)
        except Exception as exc:  # the assertion below lists them
            errors.append(exc)

    threads = [threading.Thread(target=start_worker, args=(engine,), daemon=True) for engine in engines]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        assert not any(thread.is_alive() for thread in threads), "a worker is still waiting (deadlock?)"
        assert errors == []
        with engines[0].connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [
                _head()
            ]
    finally:
        for engine in engines:
            engine.dispose()


def _head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


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
