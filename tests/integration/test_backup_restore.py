"""Backup and restore: processed emails, their blobs and the event log survive a backup, a wiped data
directory and a restore, unchanged; a damaged archive and a non-empty target are refused."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console
from sqlalchemy import select

from mailflow.audit import verify_chain
from mailflow.bootstrap import App
from mailflow.cli import main
from mailflow.demo import run_demo, sample_mailbox
from mailflow.operations.backup import BackupError, backup
from mailflow.operations.restore import restore
from mailflow.settings import Settings, load_settings
from mailflow.storage.blobs import BlobMissingError, blob_store
from mailflow.storage.models import AttachmentRecord, Event, Message

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 19, 13, 0, tzinfo=UTC)
# Text-only emails and three with a scan or photo to read, so that attachments have blobs too.
CHOSEN = ("07-", "10-", "13-", "33-", "12-", "16-", "22-")


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A data directory after the pipeline took a few sample emails (the demo's feed)."""
    root = tmp_path_factory.mktemp("processed")
    source = root / "samples"
    source.mkdir()
    for path in sample_mailbox().glob("*.eml"):
        if path.name.startswith(CHOSEN):
            shutil.copy(path, source)
    settings = load_settings(data_dir=root / "data", imap_host=None, smtp_host=None)
    report = run_demo(settings, source, Console(file=io.StringIO()), now=NOW)
    assert report.processed == len(CHOSEN)
    return settings


def _snapshot(settings: Settings) -> dict[str, object]:
    """What must come back: the archive's rows, the blob store's files, the event log's head."""
    app = App(settings)
    try:
        with app.sessions() as session:
            messages = session.execute(select(Message.id, Message.sha256, Message.status)).all()
            attachments = session.execute(select(AttachmentRecord.id, AttachmentRecord.sha256)).all()
            events = session.scalar(select(Event.id).order_by(Event.id.desc()).limit(1))
        chain = verify_chain(app.sessions)
    finally:
        app.close()
    blobs = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in settings.blobs_dir.glob("??/??/*")
    }
    return {
        "messages": sorted(messages),
        "attachments": sorted(attachments),
        "last_event": events,
        "chain": (chain.ok, chain.checked, chain.head_hash),
        "blobs": blobs,
    }


def test_a_backup_restored_into_a_wiped_data_directory_holds_everything(
    processed: Settings, tmp_path: Path
) -> None:
    before = _snapshot(processed)
    assert before["attachments"] and before["chain"][0]
    referenced = {sha for _, sha, _ in before["messages"]} | {sha for _, sha in before["attachments"]}
    names = blob_store(processed).keyring.name  # the files are named by a keyed hash of the digest
    assert {names(sha256) for sha256 in referenced} <= set(before["blobs"])

    archive = tmp_path / "mailflow.tar.gz"
    manifest = backup(processed, archive).manifest
    assert manifest["database"]["messages"] == len(CHOSEN)
    assert manifest["database"]["event_log"]["head_hash"] == before["chain"][2]
    assert manifest["blobs"]["count"] == len(before["blobs"])
    with tarfile.open(archive) as opened:
        names = opened.getnames()
    assert not [name for name in names if "key" in name]  # no secrets unless asked for
    assert (processed.data_dir / "thread-secret-key").exists()

    # Another machine: a fresh data directory, the same settings otherwise.
    target = processed.model_copy(update={"data_dir": tmp_path / "restored"})
    result = restore(target, archive)
    assert result.schema.up_to_date and result.blobs_moved == len(before["blobs"])
    assert _snapshot(target) == before

    # The command line says the same.
    verified = CliRunner().invoke(main, ["audit", "verify"], env={"MAILFLOW_DATA_DIR": str(target.data_dir)})
    assert verified.exit_code == 0 and f"event log intact: {before['chain'][1]} entries" in verified.output

    # A second restore would replace what is there now: refused unless forced.
    with pytest.raises(BackupError, match="not empty"):
        restore(target, archive)
    restore(target, archive, force=True)
    assert _snapshot(target) == before
    assert list(target.data_dir.glob("mailflow.sqlite3.before-restore-*"))


def test_the_keys_travel_only_when_asked_for(processed: Settings, tmp_path: Path) -> None:
    archive = tmp_path / "with-keys.tar"
    result = CliRunner().invoke(
        main, ["backup", "--with-keys", str(archive)], env={"MAILFLOW_DATA_DIR": str(processed.data_dir)}
    )
    assert result.exit_code == 0, result.output
    with tarfile.open(archive) as opened:
        manifest = json.loads(opened.extractfile("manifest.json").read())
    assert manifest["keys"] == ["thread-secret-key", "blob-keys"]

    target = processed.model_copy(update={"data_dir": tmp_path / "restored"})
    restored = CliRunner().invoke(
        main, ["restore", str(archive)], env={"MAILFLOW_DATA_DIR": str(target.data_dir)}
    )
    assert restored.exit_code == 0, restored.output
    for key in ("thread-secret-key", "blob-keys"):
        assert (target.data_dir / key).read_bytes() == (processed.data_dir / key).read_bytes()
    # With the keys, the restored emails read as they were written.
    sha256 = _first_email(processed)
    assert blob_store(target).get(sha256) == blob_store(processed).get(sha256)


def test_without_the_keys_a_backup_does_not_give_the_emails_away(processed: Settings, tmp_path: Path) -> None:
    archive = tmp_path / "mailflow.tar"
    backup(processed, archive)
    sha256 = _first_email(processed)
    plaintext = blob_store(processed).get(sha256)
    with tarfile.open(archive) as opened:
        stored = b"".join(
            opened.extractfile(m).read() for m in opened.getmembers() if m.name.startswith("blobs/")
        )
    assert plaintext[:200] not in stored and sha256 not in stored.decode("latin-1")

    target = processed.model_copy(update={"data_dir": tmp_path / "restored"})
    restore(target, archive)
    with pytest.raises(BlobMissingError, match="naming key"):
        blob_store(target).get(sha256)  # keys made afresh in the new data directory do not find them
    shutil.copy(processed.effective_blob_keys_file, target.effective_blob_keys_file)
    assert blob_store(target).get(sha256) == plaintext


def _first_email(settings: Settings) -> str:
    app = App(settings)
    try:
        with app.sessions() as session:
            return session.scalars(select(Message.sha256).order_by(Message.id)).first()
    finally:
        app.close()


def test_a_damaged_archive_is_refused_before_anything_is_replaced(
    processed: Settings, tmp_path: Path
) -> None:
    archive = tmp_path / "mailflow.tar"
    backup(processed, archive)
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(archive) as source, tarfile.open(damaged, "w") as copy:
        flipped = False
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else b""
            if member.name.startswith("blobs/") and not flipped:
                data, flipped = bytes([data[0] ^ 1]) + data[1:], True
            copy.addfile(member, io.BytesIO(data) if member.isfile() else None)

    target = processed.model_copy(update={"data_dir": tmp_path / "restored"})
    with pytest.raises(BackupError, match="is damaged"):
        restore(target, damaged)
    assert not (target.data_dir / "mailflow.sqlite3").exists()
    assert not list(target.data_dir.glob("blobs/*"))


def test_an_archive_naming_paths_outside_is_refused(processed: Settings, tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as archive:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"hi"))
    target = processed.model_copy(update={"data_dir": tmp_path / "restored"})
    with pytest.raises(BackupError, match="unexpected entry"):
        restore(target, evil)
    assert not (target.data_dir / "outside.txt").exists()


def test_a_postgresql_backup_restores_into_another_database(postgres_server, tmp_path: Path) -> None:
    """pg_dump and pg_restore with the blob store: the archive, its documents and its log come back."""
    source = tmp_path / "samples"
    source.mkdir()
    for path in sample_mailbox().glob("*.eml"):
        if path.name.startswith(CHOSEN[:4]):
            shutil.copy(path, source)
    databases = [postgres_server.create_database(), postgres_server.create_database()]
    try:
        settings = load_settings(
            data_dir=tmp_path / "data",
            imap_host=None,
            smtp_host=None,
            database_url=postgres_server.url(databases[0]),
        )
        assert run_demo(settings, source, Console(file=io.StringIO()), now=NOW).processed == 4
        before = _snapshot(settings)
        assert before["chain"][0] and before["messages"]

        archive = tmp_path / "postgres.tar.gz"
        manifest = backup(settings, archive).manifest
        assert manifest["database"]["event_log"]["head_hash"] == before["chain"][2]

        target = settings.model_copy(
            update={"data_dir": tmp_path / "restored", "database_url": postgres_server.url(databases[1])}
        )
        restore(target, archive)
        assert _snapshot(target) == before
        with pytest.raises(BackupError, match="not empty"):
            restore(target, archive)
    finally:
        for name in databases:
            postgres_server.drop_database(name)
