"""``mailflow check``'s look at the blob keys: present, well formed, and able to open a stored blob.

Read only: a missing key file is reported, not made (the worker makes it at its first email).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mailflow.errors import MailflowError
from mailflow.operations.results import FAIL, OK, WARN, Result
from mailflow.settings import Settings
from mailflow.storage.blob_keys import BlobKeyring, parse_keyring
from mailflow.storage.blobs import FileBlobStore, blob_files

NAME = "blob keys"


def check_blob_keys(settings: Settings) -> list[Result]:
    path = settings.effective_blob_keys_file
    stored = next(blob_files(settings.blobs_dir), None)
    try:
        if settings.blob_keys:
            keyring, origin = parse_keyring(settings.blob_keys, "MAILFLOW_BLOB_KEYS"), "MAILFLOW_BLOB_KEYS"
        elif path.is_file():
            keyring, origin = parse_keyring(path.read_text(), str(path)), str(path)
        elif stored is None:
            return [Result(NAME, OK, f"{path} will be made at the first email")]
        elif hashlib.sha256(stored.read_bytes()).hexdigest() == stored.name:
            return [
                Result(
                    NAME,
                    WARN,
                    f"blobs from before encryption are stored in plaintext; {path} will be made at first use",
                    "run `mailflow blobs reencrypt` (it makes the key file)",
                )
            ]
        else:
            return [
                Result(
                    NAME,
                    FAIL,
                    f"blobs are stored but there is no {path}: a new key would not open them",
                    "restore the data directory's blob-keys from the backup made --with-keys, or set "
                    "MAILFLOW_BLOB_KEYS (docs/encryption.md)",
                )
            ]
    except (MailflowError, OSError) as exc:
        return [Result(NAME, FAIL, str(exc), "correct the keys (docs/encryption.md)")]
    summary = f"{len(keyring.keys)} keys from {origin}, current {keyring.current.id.hex()}"
    return [Result(NAME, OK, summary)] if stored is None else [_sample(keyring, settings, stored, summary)]


def _sample(keyring: BlobKeyring, settings: Settings, stored: Path, summary: str) -> Result:
    store = FileBlobStore(settings.blobs_dir, keyring)
    try:
        store.verify_file(stored)
    except (MailflowError, OSError) as exc:
        return Result(
            NAME,
            FAIL,
            f"{summary}; a stored blob does not open: {exc}",
            "configure the keys it was stored with",
        )
    if not stored.read_bytes().startswith(b"MFB"):
        return Result(
            NAME,
            WARN,
            f"{summary}; blobs from before encryption are stored in plaintext",
            "run `mailflow blobs reencrypt`",
        )
    return Result(NAME, OK, f"{summary}; a stored blob opens")
