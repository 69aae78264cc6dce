"""The blob store encrypts at rest: files unreadable without the keys, a wrong key refused clearly,
rotation and re-encryption, plaintext blobs from before still readable and then encrypted."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from mailflow.cli import main
from mailflow.demo import run_demo, sample_mailbox
from mailflow.errors import ConfigurationError
from mailflow.operations.check_blobs import check_blob_keys
from mailflow.settings import load_settings
from mailflow.storage.blob_keys import BlobKeyring, load_keyring, new_keyring, parse_keyring
from mailflow.storage.blobs import BlobKeyError, FileBlobStore, blob_store

EMAIL = (
    b"From: Anna <anna@example.org>\r\nSubject: verblijfskaart\r\n\r\n"
    b"Mijn rijksregisternummer is 85.07.30-033.28 en mijn pincode 4711.\r\n"
)
KNOWN = (b"anna@example.org", b"verblijfskaart", b"85.07.30-033.28", b"4711")


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _legacy_put(root: Path, data: bytes) -> str:
    """A blob as mailflow stored it before encryption: plaintext, named by its digest."""
    digest = hashlib.sha256(data).hexdigest()
    path = root / digest[:2] / digest[2:4] / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def test_the_files_hold_neither_the_email_nor_its_digest(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path, new_keyring())
    big = os.urandom(36 * 1024 * 1024)  # the largest attachments fit
    digests = [store.put(EMAIL), store.put(big)]
    assert store.get(digests[0]) == EMAIL and store.get(digests[1]) == big
    assert digests[0] == hashlib.sha256(EMAIL).hexdigest()
    [small] = [p for p in _files(tmp_path) if p.stat().st_size < 1024]
    content = small.read_bytes()
    for known in KNOWN:
        assert known not in content
    assert big[:4096] not in b"".join(p.read_bytes() for p in _files(tmp_path))
    names = {p.name for p in _files(tmp_path)}
    assert not names & set(digests)  # the names do not tell which known file is stored
    assert store.put(EMAIL) == digests[0] and len(_files(tmp_path)) == 2  # stored once


def test_a_blob_written_in_pieces_is_one_aes_gcm_message(tmp_path: Path) -> None:
    """Written a megabyte at a time, the file is still header, nonce, then what one ``AESGCM.encrypt``
    gives: blobs of earlier versions and of this one are the same format."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    keyring = new_keyring()
    store = FileBlobStore(tmp_path, keyring)
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = store.path(store.put(data))
    content = path.read_bytes()
    header, nonce = content[:8], content[8:20]
    assert header == b"MFB\x01" + keyring.current.id
    expected = AESGCM(keyring.current.secret).encrypt(nonce, data, header + path.name.encode())
    assert content[20:] == expected


def test_a_wrong_key_fails_clearly_and_a_moved_file_does_not_decrypt(tmp_path: Path) -> None:
    keyring = new_keyring()
    digest = FileBlobStore(tmp_path, keyring).put(EMAIL)
    other_data_key = BlobKeyring(keyring.naming, new_keyring().keys)
    with pytest.raises(BlobKeyError, match="not among the configured blob keys"):
        FileBlobStore(tmp_path, other_data_key).get(digest)
    wrong_secret = BlobKeyring(keyring.naming, (type(keyring.current)(keyring.current.id, os.urandom(32)),))
    with pytest.raises(BlobKeyError, match="does not decrypt"):
        FileBlobStore(tmp_path, wrong_secret).get(digest)
    # Another email's file put in this one's place is refused, not served.
    store = FileBlobStore(tmp_path, keyring)
    other = store.put(b"another email")
    store.path(digest).write_bytes(store.path(other).read_bytes())
    with pytest.raises(BlobKeyError, match="does not decrypt"):
        store.get(digest)


def test_rotation_keeps_old_blobs_readable_and_reencrypt_moves_them(tmp_path: Path) -> None:
    key_file = tmp_path / "blob-keys"
    first = load_keyring(None, key_file)
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    old = FileBlobStore(tmp_path / "blobs", first).put(EMAIL)

    runner = CliRunner()
    env = {"MAILFLOW_DATA_DIR": str(tmp_path)}
    rotated = runner.invoke(main, ["keys", "rotate"], env=env)
    assert rotated.exit_code == 0, rotated.output
    second = load_keyring(None, key_file)
    assert second.naming == first.naming and second.keys[0] == first.current
    assert second.current != first.current and second.current.id.hex() in rotated.output
    store = FileBlobStore(tmp_path / "blobs", second)
    assert store.get(old) == EMAIL  # under key A, read with B current
    new = store.put(b"after the rotation")
    assert store.path(new).read_bytes()[4:8] == second.current.id

    legacy = _legacy_put(tmp_path / "blobs", b"plaintext from an older mailflow")
    assert store.exists(legacy) and store.get(legacy) == b"plaintext from an older mailflow"

    result = runner.invoke(main, ["blobs", "reencrypt"], env=env)
    assert result.exit_code == 0, result.output
    assert "1 re-encrypted, 1 plaintext encrypted, 1 already current, 0 failed" in result.output
    for path in _files(tmp_path / "blobs"):
        assert path.read_bytes()[4:8] == second.current.id
    assert not (tmp_path / "blobs" / legacy[:2] / legacy[2:4] / legacy).exists()
    assert store.get(old) == EMAIL and store.get(legacy) == b"plaintext from an older mailflow"
    only_new = BlobKeyring(second.naming, (second.current,))  # key A can now be retired
    assert FileBlobStore(tmp_path / "blobs", only_new).get(old) == EMAIL


def test_reencrypt_reports_blobs_it_cannot_read(tmp_path: Path) -> None:
    digest = FileBlobStore(tmp_path, new_keyring()).put(EMAIL)
    report = FileBlobStore(tmp_path, new_keyring()).reencrypt()
    assert (report.reencrypted, len(report.failed)) == (0, 1)
    assert digest not in report.failed[0] and "not among the configured" in report.failed[0]


def test_keys_from_the_environment(tmp_path: Path) -> None:
    keyring = new_keyring().with_new_key()
    one_line = " ".join(keyring.render().splitlines()[1:])
    assert parse_keyring(one_line, "env") == keyring
    assert load_keyring(one_line, tmp_path / "unused") == keyring and not (tmp_path / "unused").exists()
    with pytest.raises(ConfigurationError, match="32 bytes"):
        parse_keyring("naming:AAAA key:AAAA", "env")
    result = CliRunner().invoke(
        main, ["keys", "rotate"], env={"MAILFLOW_DATA_DIR": str(tmp_path), "MAILFLOW_BLOB_KEYS": one_line}
    )
    assert result.exit_code != 0 and "MAILFLOW_BLOB_KEYS" in result.output
    printed = CliRunner().invoke(main, ["keys", "generate"]).output.strip()
    assert parse_keyring(f"{one_line} {printed}", "env").current.secret != keyring.current.secret


def test_check_reports_the_keys_without_making_them(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, imap_host=None, smtp_host=None)
    [result] = check_blob_keys(settings)
    assert result.level == "OK" and "will be made" in result.detail
    assert not settings.effective_blob_keys_file.exists()

    legacy = _legacy_put(settings.blobs_dir, EMAIL)  # a data directory of an older mailflow
    [result] = check_blob_keys(settings)
    assert result.level == "WARN" and "reencrypt" in result.fix
    assert not settings.effective_blob_keys_file.exists()

    store = FileBlobStore(settings.blobs_dir, load_keyring(None, settings.effective_blob_keys_file))
    [result] = check_blob_keys(settings)
    assert result.level == "WARN" and "reencrypt" in result.fix
    store.reencrypt()
    assert store.get(legacy) == EMAIL
    [result] = check_blob_keys(settings)
    assert result.level == "OK" and "a stored blob opens" in result.detail
    settings.effective_blob_keys_file.write_text(new_keyring().render())
    [result] = check_blob_keys(settings)
    assert result.level == "FAIL" and "does not open" in result.detail
    settings.effective_blob_keys_file.unlink()  # encrypted blobs, and the keys lost
    [result] = check_blob_keys(settings)
    assert result.level == "FAIL" and "no " in result.detail and "--with-keys" in result.fix


def test_the_demo_makes_its_key_and_stores_its_emails_encrypted(tmp_path: Path) -> None:
    source = tmp_path / "samples"
    source.mkdir()
    for path in sorted(sample_mailbox().glob("*.eml"), key=lambda p: p.stat().st_size)[:2]:
        shutil.copy(path, source)
    settings = load_settings(data_dir=tmp_path / "data", imap_host=None, smtp_host=None)
    report = run_demo(
        settings, source, Console(file=io.StringIO()), now=datetime(2026, 3, 19, 13, tzinfo=UTC)
    )
    assert report.processed == 2
    key_file = settings.effective_blob_keys_file
    assert key_file == settings.data_dir / "blob-keys" and oct(key_file.stat().st_mode & 0o777) == "0o600"
    store = blob_store(settings)
    for path in source.glob("*.eml"):
        raw = path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        assert store.get(digest) == raw
        assert (
            store.path(digest).read_bytes()[:4] == b"MFB\x01"
            and raw[:100] not in store.path(digest).read_bytes()
        )
