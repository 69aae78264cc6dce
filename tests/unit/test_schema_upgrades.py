"""Upgrades are deliberate: start-up creates an empty database's schema, but upgrades an existing one only
where auto_migrate allows (by default the embedded SQLite database); `mailflow db upgrade` does it."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import text

from mailflow.bootstrap import App
from mailflow.cli import main
from mailflow.settings import load_settings
from mailflow.storage.database import alembic_config, make_engine
from mailflow.storage.schema import SchemaOutOfDate, ensure_schema, revisions

OLD = "0008"


def _database_at(path: Path, revision: str) -> str:
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    config = alembic_config(url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()
    return url


def _revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        return revisions(engine).current
    finally:
        engine.dispose()


def test_an_empty_database_gets_its_schema_even_without_auto_migrate(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        assert revisions(engine).current is None
        ensure_schema(engine, auto_migrate=False)
        state = revisions(engine)
    finally:
        engine.dispose()
    assert state.up_to_date and state.current == state.expected


def test_an_old_database_stops_start_up_with_the_command_to_run(tmp_path: Path) -> None:
    url = _database_at(tmp_path / "db.sqlite3", OLD)
    engine = make_engine(url)
    try:
        expected = revisions(engine).expected
        with pytest.raises(SchemaOutOfDate) as refused:
            ensure_schema(engine, auto_migrate=False)
        assert str(refused.value) == (
            f"database at revision {OLD}, code expects {expected}: run mailflow db upgrade"
        )
        assert revisions(engine).current == OLD  # untouched

        ensure_schema(engine, auto_migrate=True)
        assert revisions(engine).current == expected
    finally:
        engine.dispose()


def test_a_database_from_a_newer_mailflow_is_never_touched(tmp_path: Path) -> None:
    url = _database_at(tmp_path / "db.sqlite3", "head")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        for auto in (False, True):
            with pytest.raises(SchemaOutOfDate, match="9999, which this mailflow does not know"):
                ensure_schema(engine, auto_migrate=auto)
    finally:
        engine.dispose()


def test_auto_migrate_defaults_on_for_the_embedded_database_only(tmp_path: Path) -> None:
    assert load_settings(data_dir=tmp_path).migrates_at_start
    url = f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}"
    assert not load_settings(data_dir=tmp_path, database_url=url).migrates_at_start
    assert load_settings(data_dir=tmp_path, database_url=url, auto_migrate=True).migrates_at_start
    assert not load_settings(data_dir=tmp_path, auto_migrate=False).migrates_at_start


def test_the_app_migrates_the_embedded_database_and_refuses_a_configured_one(tmp_path: Path) -> None:
    embedded = tmp_path / "data"
    embedded.mkdir()
    _database_at(embedded / "mailflow.sqlite3", OLD)
    app = App(load_settings(data_dir=embedded))
    try:
        app.engine  # noqa: B018
    finally:
        app.close()
    assert _revision(f"sqlite:///{embedded / 'mailflow.sqlite3'}") != OLD

    url = _database_at(tmp_path / "production.sqlite3", OLD)
    app = App(load_settings(data_dir=tmp_path / "other", database_url=url))
    try:
        with pytest.raises(SchemaOutOfDate, match="run mailflow db upgrade"):
            app.engine  # noqa: B018
    finally:
        app.close()
    assert _revision(url) == OLD


def test_db_current_and_db_upgrade_commands(tmp_path: Path) -> None:
    url = _database_at(tmp_path / "production.sqlite3", OLD)
    env = {"MAILFLOW_DATA_DIR": str(tmp_path / "data"), "MAILFLOW_DATABASE_URL": url}
    runner = CliRunner()

    worker = runner.invoke(main, ["poll-once"], env=env)
    assert worker.exit_code == 1 and f"database at revision {OLD}" in worker.output
    assert "run mailflow db upgrade" in worker.output

    current = runner.invoke(main, ["db", "current"], env=env)
    assert current.exit_code == 1 and f"database at revision {OLD}, code expects" in current.output

    upgraded = runner.invoke(main, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert f"database upgraded from {OLD} to" in upgraded.output

    current = runner.invoke(main, ["db", "current"], env=env)
    assert current.exit_code == 0 and "up to date" in current.output
    again = runner.invoke(main, ["db", "upgrade"], env=env)
    assert again.exit_code == 0 and "nothing to do" in again.output


def test_a_schema_another_worker_created_meanwhile_is_not_reported_as_an_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Workers started together on an empty database: one sees no schema, another creates it before
    the first one looks again. Nothing was upgraded, so nothing is announced as an upgrade."""
    url = _database_at(tmp_path / "db.sqlite3", "head")
    from mailflow.storage import schema

    real, looks = schema.revisions, []

    def first_look_finds_nothing(engine):  # type: ignore[no-untyped-def]
        found = real(engine)
        looks.append(found)
        return schema.Revisions(None, found.expected, True) if len(looks) == 1 else found

    monkeypatch.setattr(schema, "revisions", first_look_finds_nothing)
    engine = make_engine(url)
    try:
        with caplog.at_level("INFO", logger="mailflow.storage.schema"):
            ensure_schema(engine, auto_migrate=False)
    finally:
        engine.dispose()
    assert [r.levelname for r in caplog.records] == ["INFO"]
    assert "already at revision" in caplog.records[0].getMessage()
