"""``mailflow check`` against a good configuration and broken ones, run as an operator runs it."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from alembic import command

from mailflow.bootstrap import App
from mailflow.settings import Settings
from mailflow.storage.database import alembic_config, make_engine
from tests.fixtures.smtp import free_port
from tests.integration.worker_harness import FOLDERS, SAMPLES_DIR, eml_files, mailflow_command, worker_env

pytestmark = pytest.mark.integration

TESSDATA = Path("/usr/share/tesseract-ocr/5/tessdata")


def check(env: dict[str, str]) -> tuple[int, dict[str, str]]:
    """Exit status and each check's line, by the check's name."""
    done = subprocess.run(mailflow_command("check"), env=env, capture_output=True, text=True, timeout=300)
    lines: dict[str, str] = {}
    for line in done.stdout.splitlines():
        level, _, rest = line.partition("  ")
        name = rest.split(":", 1)[0].strip()
        lines[name] = f"{level.strip()} {rest.strip()}"
    return done.returncode, lines


def migrated_data_dir(path: Path, **settings: object) -> Path:
    app = App(Settings(data_dir=path, **settings))  # type: ignore[arg-type]
    try:
        app.engine  # noqa: B018 - creates and migrates the database
    finally:
        app.close()
    return path


def test_a_good_configuration_passes_every_check(dovecot, smtp_server, tmp_path):
    for folder in FOLDERS:
        dovecot.create(folder)
    dovecot.append("INBOX", eml_files(SAMPLES_DIR)[0].read_bytes())
    env = worker_env(dovecot, smtp_server, migrated_data_dir(tmp_path / "data"))

    status, lines = check(env)

    assert status == 0, lines
    assert all(line.startswith("OK ") for line in lines.values()), lines
    for name in (
        "settings",
        "data directory",
        "blob store",
        "blob keys",
        "database",
        "imap",
        "imap folders",
        "smtp",
        "tesseract",
        "catalogue",
        "model",
        "clock",
    ):
        assert name in lines, lines
    assert "schema at the newest revision" in lines["database"]
    assert "nothing sent" in lines["smtp"]
    assert "the newest email's arrival on the IMAP server" in lines["clock"]
    assert smtp_server.received == []
    assert dovecot.folder_count("INBOX") == 1  # looked at, not touched


def test_a_broken_configuration_names_each_fault_with_its_fix(dovecot, smtp_server, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    database = data_dir / "mailflow.sqlite3"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as connection:  # a database an older mailflow made and nobody migrated since
        config = alembic_config(f"sqlite:///{database}")
        config.attributes["connection"] = connection
        command.upgrade(config, "0008")
    engine.dispose()
    tessdata = tmp_path / "tessdata"  # a Tesseract whose Dutch is missing
    tessdata.mkdir()
    for language in ("eng", "fra", "osd"):
        (tessdata / f"{language}.traineddata").symlink_to(TESSDATA / f"{language}.traineddata")
    env = worker_env(
        dovecot,
        smtp_server,
        data_dir,
        MAILFLOW_IMAP_PASSWORD="not-the-password",
        MAILFLOW_SMTP_PORT=str(free_port()),
        TESSDATA_PREFIX=str(tessdata),
    )

    status, lines = check(env)

    assert status == 1
    assert lines["imap"].startswith(f"FAIL imap: login as {dovecot.user} on ")
    assert "fix: check MAILFLOW_IMAP_USER and MAILFLOW_IMAP_PASSWORD" in lines["imap"]
    assert lines["smtp"].startswith("FAIL smtp: cannot connect to 127.0.0.1:")
    assert (
        "Connection refused" in lines["smtp"]
        and "fix: check MAILFLOW_SMTP_HOST, MAILFLOW_SMTP_PORT" in lines["smtp"]
    )
    assert "is at schema revision 0008, this mailflow needs 0015" in lines["database"]
    assert (
        lines["database"].startswith("FAIL")
        and "fix: back up the database, then migrate it" in lines["database"]
    )
    assert lines["tesseract"].startswith("FAIL tesseract: language(s) nld of nld+fra+eng not installed")
    assert "fix: apt-get install tesseract-ocr-nld" in lines["tesseract"]
    # Nothing changed: still at 0008, and no folder was created.
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [("0008",)]
    assert dovecot.folders() == ["INBOX"]


def test_a_missing_database_is_not_created(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {**worker_env_without_servers(), "MAILFLOW_DATA_DIR": str(data_dir)}
    status, lines = check(env)
    assert status == 1
    assert lines["database"].startswith(f"FAIL database: no database at {data_dir / 'mailflow.sqlite3'}")
    assert not (data_dir / "mailflow.sqlite3").exists()
    assert lines["imap"].startswith("OK imap: no IMAP server configured")
    assert lines["smtp"].startswith("WARN smtp: no SMTP server: replies are written to")


def test_missing_outcome_folders_are_a_warning_and_stay_missing(dovecot, tmp_path):
    from mailflow.operations.check_mail import ServerClocks, check_imap

    results = check_imap(dovecot.settings(data_dir=tmp_path), ServerClocks())
    folders = next(result for result in results if result.name == "imap folders")
    assert folders.level == "WARN"
    assert "Processed, Triage, Ignored, Quarantine missing" in folders.detail
    assert dovecot.folders() == ["INBOX"]


def worker_env_without_servers() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}


@pytest.fixture(autouse=True)
def _tesseract_or_skip():
    if shutil.which("tesseract") is None:
        pytest.skip(
            "tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-nld tesseract-ocr-fra)"
        )


def test_a_database_newer_than_this_mailflow_says_so(tmp_path):
    from mailflow.operations.check import check_database

    data_dir = migrated_data_dir(tmp_path / "data")
    with sqlite3.connect(data_dir / "mailflow.sqlite3") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0099'")
    [result] = check_database(Settings(data_dir=data_dir), [])
    assert result.level == "FAIL"
    assert "at schema revision 0099, newer than this mailflow knows (0015)" in result.detail
    assert result.fix == "upgrade mailflow to the version that migrated it"
