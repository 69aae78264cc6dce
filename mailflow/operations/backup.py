"""``mailflow backup`` and ``mailflow restore``: the database and the blob store together, in one tar file.

Consistency: the database is copied first, as one snapshot (SQLite's online backup API, or pg_dump),
then the blob store. Blobs are content-addressed, written before the row that names them is committed
and never deleted, so the blobs copied afterwards hold every blob the snapshot names (and perhaps a few
newer ones, which are harmless). The backup checks that, and that every blob decrypts.

The archive: the database (``database.sqlite3`` or ``database.pgdump``), ``blobs/aa/bb/<name>`` as they
are on disk (encrypted: docs/encryption.md), ``blobs.sha256`` (each blob file's digest, so a restore
checks them without the keys), and ``manifest.json`` last (versions, the schema's revision, the event
log's head, digests). The secret keys of the data directory, the blob keys among them, are left out
unless asked for (``keys/``): a backup without them cannot be read by whoever steals it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

import mailflow
from mailflow.errors import MailflowError
from mailflow.operations import postgres_tools
from mailflow.settings import Settings
from mailflow.storage.blobs import BlobKeyError, FileBlobStore, blob_files, blob_store
from mailflow.storage.database import make_engine
from mailflow.storage.schema import revisions

FORMAT = 2  # 1: plaintext blobs named by their digest, no blobs.sha256
BLOB_LIST = "blobs.sha256"
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
POSTGRES_FILE = "database.pgdump"
# The tables whose rows name a blob by its SHA-256.
BLOB_REFERENCES = ("messages", "attachments", "labelled_examples")
CHUNK = 1024 * 1024


class BackupError(MailflowError):
    """A backup or restore could not be made, or the archive does not hold what its manifest says."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: dict[str, Any]


def database_kind(settings: Settings) -> str:
    return "sqlite" if settings.effective_database_url.startswith("sqlite") else "postgresql"


def secret_files(settings: Settings) -> list[Path]:
    return [
        settings.secret_key_file,
        settings.data_dir / "thread-secret-key",
        settings.effective_blob_keys_file,
    ]


def backup(settings: Settings, destination: Path, *, include_keys: bool = False) -> BackupResult:
    """Write the archive to ``destination`` (a new file; ``.tar.gz`` compresses)."""
    if destination.exists():
        raise BackupError(f"{destination} exists already; name a new file")
    destination.parent.mkdir(parents=True, exist_ok=True)
    kind = database_kind(settings)
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".mailflow-backup-") as staging:
        database = Path(staging) / (SQLITE_FILE if kind == "sqlite" else POSTGRES_FILE)
        if kind == "sqlite":
            _sqlite_snapshot(sqlite_path(settings.effective_database_url), database)
            described = _describe_database(f"sqlite:///{database}")
        else:
            postgres_tools.dump(settings.effective_database_url, database)
            # The live database, after the dump: it names at least the blobs the dump names.
            described = _describe_database(settings.effective_database_url)
        partial = destination.with_name(f".{destination.name}.partial")
        partial.touch(mode=0o600)  # personal data: readable by the owner only
        with tarfile.open(partial, "w:gz" if destination.name.endswith(("gz", ".tgz")) else "w") as archive:
            archive.add(database, database.name)
            store = blob_store(settings)
            blobs = _add_blobs(archive, store)
            names = blobs.pop("names")
            referenced = described.pop("referenced")
            missing = sorted(d for d in referenced if store.keyring.name(d) not in names and d not in names)
            if missing:
                partial.unlink()
                raise BackupError(f"{len(missing)} blobs the database names are missing, e.g. {missing[0]}")
            keys = _add_keys(archive, settings) if include_keys else []
            manifest = {
                "format": FORMAT,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "mailflow_version": mailflow.__version__,
                "database": {"kind": kind, "file": database.name, "sha256": _file_digest(database)}
                | described,
                "blobs": blobs,
                "keys": keys,
            }
            _add_bytes(archive, MANIFEST, json.dumps(manifest, indent=2).encode())
        os.replace(partial, destination)
    return BackupResult(destination, manifest)


def sqlite_path(url: str) -> Path:
    return Path(url.split("///", 1)[-1])


def _sqlite_snapshot(path: Path, target: Path) -> None:
    """A consistent copy while workers write: SQLite's online backup API, WAL included."""
    if not path.is_file():
        raise BackupError(f"no database at {path}: there is nothing to back up")
    try:
        source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy the database {path}: {exc}") from exc


def _describe_database(url: str) -> dict[str, Any]:
    engine = make_engine(url, read_only=True)
    try:
        return _describe(engine)
    finally:
        engine.dispose()


def _describe(engine: Engine) -> dict[str, Any]:
    state = revisions(engine)
    if state.current is None:
        raise BackupError("the database is empty: there is nothing to back up")
    with engine.connect() as connection:
        referenced: set[str] = set()
        for table in BLOB_REFERENCES:
            referenced.update(connection.execute(text(f"SELECT sha256 FROM {table}")).scalars())
        messages = connection.execute(text("SELECT count(*) FROM messages")).scalar_one()
        head = connection.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one_or_none()
    return {
        "revision": state.current,
        "code_revision": state.expected,
        "messages": messages,
        "event_log": {"entries": head.seq, "head_hash": head.hash} if head else None,
        "referenced": referenced,
    }


def _add_blobs(archive: tarfile.TarFile, store: FileBlobStore) -> dict[str, Any]:
    lines: list[str] = []
    names: set[str] = set()
    total = 0
    for path in store.files():
        try:
            store.verify_file(path)
        except BlobKeyError as exc:
            raise BackupError(f"blob {path} is damaged or unreadable: {exc}") from exc
        member = f"blobs/{path.relative_to(store.root)}"
        archive.add(path, member)
        lines.append(f"{_file_digest(path)}  {member}\n")
        names.add(path.name)
        total += path.stat().st_size
    listing = "".join(lines).encode()
    _add_bytes(archive, BLOB_LIST, listing)
    digest = hashlib.sha256(listing).hexdigest()
    return {"count": len(names), "bytes": total, "listing_sha256": digest, "names": names}


def _add_keys(archive: tarfile.TarFile, settings: Settings) -> list[str]:
    names = []
    for path in secret_files(settings):
        if path.is_file():
            archive.add(path, f"keys/{path.name}")
            names.append(path.name)
    return names


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(datetime.now(UTC).timestamp()), 0o600
    archive.addfile(info, io.BytesIO(data))


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def unpack(source: Path, staging: Path) -> dict[str, Any]:
    """Extract the archive into ``staging`` and check it against its manifest; the manifest."""
    try:
        with tarfile.open(source) as archive:
            _extract(archive, staging)
        manifest = json.loads((staging / MANIFEST).read_text())
    except (OSError, tarfile.TarError, ValueError) as exc:
        raise BackupError(f"{source} is not a readable mailflow backup: {exc}") from exc
    if manifest.get("format") not in (1, FORMAT):
        raise BackupError(f"{source}: backup format {manifest.get('format')!r}, this mailflow reads {FORMAT}")
    database = manifest["database"]
    if _file_digest(staging / database["file"]) != database["sha256"]:
        raise BackupError(f"{source}: the database file does not match its digest in the manifest")
    check = _check_plaintext_blobs if manifest["format"] == 1 else _check_blob_list
    if check(source, staging) != manifest["blobs"]["listing_sha256"]:
        raise BackupError(f"{source}: the blobs are not those the manifest lists")
    return manifest


def _check_blob_list(source: Path, staging: Path) -> str:
    """Each blob file against its digest in ``blobs.sha256``; that list's own digest."""
    listing = (staging / BLOB_LIST).read_bytes() if (staging / BLOB_LIST).is_file() else b""
    listed = {}
    for line in listing.decode().splitlines():
        digest, _, member = line.partition("  ")
        listed[member] = digest
    present = {f"blobs/{p.relative_to(staging / 'blobs')}": p for p in blob_files(staging / "blobs")}
    for member, path in present.items():
        if _file_digest(path) != listed.get(member):
            raise BackupError(f"{source}: blob {path.name} is damaged (or not listed in {BLOB_LIST})")
    if set(listed) != set(present):
        raise BackupError(f"{source}: the blobs are not those the manifest lists")
    return hashlib.sha256(listing).hexdigest()


def _check_plaintext_blobs(source: Path, staging: Path) -> str:
    """A format 1 backup: plaintext blobs, each named by its content's digest."""
    listing = hashlib.sha256()
    for path in blob_files(staging / "blobs"):
        digest = _file_digest(path)
        if digest != path.name:
            raise BackupError(f"{source}: blob {path.name} is damaged (its content hashes to {digest})")
        listing.update(f"{digest} {path.stat().st_size}\n".encode())
    return listing.hexdigest()


def _extract(archive: tarfile.TarFile, staging: Path) -> None:
    """Only plain files and directories below ``staging``: an archive is not trusted to name paths."""
    members = archive.getmembers()
    for member in members:
        target = (staging / member.name).resolve()
        if not (member.isfile() or member.isdir()) or not target.is_relative_to(staging.resolve()):
            raise BackupError(f"unexpected entry {member.name!r} in the archive")
    if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
        archive.extractall(staging, members, filter="data")
    else:
        archive.extractall(staging, members)


def move_blobs(staging: Path, root: Path) -> int:
    """Move the unpacked blobs into the store; content-addressed, so one already there is the same."""
    moved = 0
    for path in blob_files(staging):
        target = root / path.relative_to(staging)
        if target.exists() and target.stat().st_size == path.stat().st_size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
        moved += 1
    return moved
