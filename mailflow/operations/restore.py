"""``mailflow restore``: a backup (``mailflow.operations.backup``) back into the configured data directory and
database. The worker and the desk must be stopped meanwhile.

Into an empty target only, unless forced: a restore replaces the database as a whole, and an archive
written since the backup would be lost with it. A forced restore of SQLite keeps the replaced database
beside it (``mailflow.sqlite3.before-restore-<time>``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailflow.operations import postgres_tools
from mailflow.operations.backup import (
    BackupError,
    database_kind,
    move_blobs,
    secret_files,
    sqlite_path,
    unpack,
)
from mailflow.settings import Settings
from mailflow.storage.database import make_engine
from mailflow.storage.schema import Revisions, revisions


@dataclass(frozen=True)
class RestoreResult:
    manifest: dict[str, Any]
    blobs_moved: int
    keys_restored: list[str]
    schema: Revisions  # where the restored database stands against this code


def restore(settings: Settings, source: Path, *, force: bool = False) -> RestoreResult:
    kind = database_kind(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.data_dir, prefix=".mailflow-restore-") as directory:
        staging = Path(directory)
        manifest = unpack(source, staging)
        if manifest["database"]["kind"] != kind:
            raise BackupError(
                f"this is a {manifest['database']['kind']} backup and the configured database is {kind}: "
                f"restore it into a {manifest['database']['kind']} database"
            )
        if not force:
            _refuse_unless_empty(settings)
        database = staging / manifest["database"]["file"]
        if kind == "sqlite":
            _replace_sqlite(sqlite_path(settings.effective_database_url), database)
        else:
            postgres_tools.restore(settings.effective_database_url, database)
        moved = move_blobs(staging / "blobs", settings.blobs_dir)
        keys = _restore_keys(staging / "keys", settings, force=force)
    engine = make_engine(settings.effective_database_url, read_only=True)
    try:
        schema = revisions(engine)
    finally:
        engine.dispose()
    return RestoreResult(manifest, moved, keys, schema)


def _refuse_unless_empty(settings: Settings) -> None:
    if database_kind(settings) == "sqlite" and not sqlite_path(settings.effective_database_url).exists():
        return
    engine = make_engine(settings.effective_database_url, read_only=True)
    try:
        current = revisions(engine).current
    finally:
        engine.dispose()
    if current is not None:
        raise BackupError(
            "the configured database is not empty: restoring would replace it (and whatever was archived "
            "since the backup); use --force to replace it anyway"
        )


def _replace_sqlite(target: Path, snapshot: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        os.replace(target, target.with_name(f"{target.name}.before-restore-{stamp}"))
    # The old write-ahead log belongs to the replaced database: applied to the restored one, it would
    # corrupt it.
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.move(snapshot, target)
    os.chmod(target, 0o600)


def _restore_keys(keys: Path, settings: Settings, *, force: bool) -> list[str]:
    restored = []
    for target in secret_files(settings):
        source = keys / target.name
        if source.is_file() and (force or not target.exists()):
            shutil.move(source, target)
            os.chmod(target, 0o600)
            restored.append(target.name)
    return restored
