"""Content-addressed files, encrypted: the raw bytes of every email and attachment (docs/encryption.md).

Callers name a blob by the SHA-256 of its plaintext. On disk it is ``aa/bb/<name>``, where the name is
an HMAC of that digest under the keyring's naming key (so the names do not tell which known file is
stored), and the content is ``MFB`` + version 1 + the data key's 4-byte id + a 12-byte nonce + the
AES-256-GCM ciphertext and tag. The header and the name are authenticated with it: a file moved to
another blob's name, or read with the wrong key, fails with ``BlobKeyError``, never as garbage.

Blobs from before encryption (plaintext, named by their digest) stay readable until
``mailflow blobs reencrypt`` encrypts them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mailflow.errors import MailflowError
from mailflow.storage.blob_keys import BlobKeyring, load_keyring
from mailflow.storage.files import write_atomically

if TYPE_CHECKING:
    from mailflow.settings import Settings

MAGIC = b"MFB"
VERSION = 1
HEADER_BYTES = len(MAGIC) + 1 + 4
NONCE_BYTES = 12
CHUNK_BYTES = 1 << 20  # encrypted piece by piece: a 40 MB email never has a 40 MB ciphertext in memory
_HEX = frozenset("0123456789abcdef")


class BlobKeyError(MailflowError):
    """A stored blob cannot be decrypted: its key is not configured, or the key or the file is wrong."""


class BlobMissingError(MailflowError, FileNotFoundError):
    """No file for this digest: never stored, removed, or the naming key is not the one it was stored with."""


@dataclass
class ReencryptReport:
    current: int = 0  # already under the current key
    reencrypted: int = 0  # moved from an older key to the current one
    encrypted: int = 0  # plaintext from before encryption, now encrypted
    failed: list[str] = field(default_factory=list)  # file names, with the reason


class FileBlobStore:
    def __init__(self, root: Path, keyring: BlobKeyring) -> None:
        self.root = root
        self.keyring = keyring

    def path(self, sha256: str) -> Path:
        """Where the blob is: its encrypted file, or a plaintext one from before encryption."""
        named = self._named(sha256)
        if named.exists():
            return named
        legacy = _fanned(self.root, sha256)
        return legacy if legacy.exists() else named

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self._named(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, self._sealer(data, target.name))
        return digest

    def get(self, sha256: str) -> bytes:
        named = self._named(sha256)
        try:
            return self._open(named.read_bytes(), named.name)
        except FileNotFoundError:
            pass
        try:
            return _fanned(self.root, sha256).read_bytes()  # plaintext, from before encryption
        except FileNotFoundError:
            pass
        try:  # ``mailflow blobs reencrypt`` may have encrypted the plaintext between the two reads
            return self._open(named.read_bytes(), named.name)
        except FileNotFoundError:
            raise BlobMissingError(
                f"blob {sha256[:12]}… is not in the store {self.root} (or the configured naming key is not "
                "the one it was stored with)"
            ) from None

    def exists(self, sha256: str) -> bool:
        return self._named(sha256).exists() or _fanned(self.root, sha256).exists()

    def delete(self, sha256: str) -> bool:
        """Remove the blob's file, encrypted or from before (retention, erasure); False when not there."""
        removed = False
        for path in (self._named(sha256), _fanned(self.root, sha256)):
            try:
                path.unlink()
                removed = True
            except FileNotFoundError:
                pass
        return removed

    def files(self) -> Iterator[Path]:
        """Every stored blob file (not a write in progress)."""
        return blob_files(self.root)

    def verify_file(self, path: Path) -> None:
        """Raise ``BlobKeyError`` unless the file decrypts (or, plaintext, hashes to its name)."""
        data = path.read_bytes()
        try:
            self._open(data, path.name)
        except BlobKeyError:
            if not self._is_legacy(path, data):
                raise

    def reencrypt(self) -> ReencryptReport:
        """Bring every blob under the current key; plaintext blobs are encrypted and their files removed."""
        report, current = ReencryptReport(), MAGIC + bytes([VERSION]) + self.keyring.current.id
        for path in list(self.files()):
            data = path.read_bytes()
            if data.startswith(current):
                report.current += 1
                continue
            try:
                plaintext = self._open(data, path.name)
            except BlobKeyError as exc:
                if self._is_legacy(path, data):
                    self._encrypt_legacy(path, data)
                    report.encrypted += 1
                else:
                    report.failed.append(str(exc))
                continue
            write_atomically(path, self._sealer(plaintext, path.name))
            report.reencrypted += 1
        return report

    def _encrypt_legacy(self, path: Path, data: bytes) -> None:
        target = self._named(path.name)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(target, self._sealer(data, target.name))
        path.unlink()

    def _named(self, sha256: str) -> Path:
        if len(sha256) != 64 or not _HEX.issuperset(sha256):
            raise ValueError("not a SHA-256 hex digest")
        return _fanned(self.root, self.keyring.name(sha256))

    def _sealer(self, data: bytes, name: str) -> Callable[[BinaryIO], None]:
        """Writes header, nonce, then AES-GCM's ciphertext and tag: the bytes ``AESGCM.encrypt`` gives."""
        key = self.keyring.current
        header = MAGIC + bytes([VERSION]) + key.id

        def write(handle: BinaryIO) -> None:
            nonce = os.urandom(NONCE_BYTES)
            encryptor = Cipher(algorithms.AES(key.secret), modes.GCM(nonce)).encryptor()
            encryptor.authenticate_additional_data(header + name.encode())
            handle.write(header + nonce)
            with memoryview(data) as view:
                for start in range(0, len(view), CHUNK_BYTES):
                    handle.write(encryptor.update(view[start : start + CHUNK_BYTES]))
            handle.write(encryptor.finalize())
            handle.write(encryptor.tag)

        return write

    def _open(self, data: bytes, name: str) -> bytes:
        header = data[:HEADER_BYTES]
        if not header.startswith(MAGIC) or len(data) < HEADER_BYTES + NONCE_BYTES + 16:
            raise BlobKeyError(f"blob file {name} is not an encrypted mailflow blob")
        if header[len(MAGIC)] != VERSION:
            raise BlobKeyError(f"blob file {name} has format version {header[len(MAGIC)]}, not {VERSION}")
        key = self.keyring.key(header[len(MAGIC) + 1 :])
        if key is None:
            raise BlobKeyError(
                f"blob file {name} is encrypted under key id {header[len(MAGIC) + 1 :].hex()}, "
                "which is not among the configured blob keys"
            )
        nonce = data[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
        try:
            sealed = memoryview(data)[HEADER_BYTES + NONCE_BYTES :]  # not a copy of the ciphertext
            return AESGCM(key.secret).decrypt(nonce, sealed, header + name.encode())
        except InvalidTag:
            raise BlobKeyError(
                f"blob file {name} does not decrypt under key id {key.id.hex()}: "
                "the wrong naming key, or a damaged or moved file"
            ) from None

    @staticmethod
    def _is_legacy(path: Path, data: bytes) -> bool:
        return hashlib.sha256(data).hexdigest() == path.name


def blob_store(settings: Settings) -> FileBlobStore:
    """The data directory's store, with the configured keys (a key file made at first use)."""
    keyring = load_keyring(settings.blob_keys, settings.effective_blob_keys_file)
    return FileBlobStore(settings.blobs_dir, keyring)


def blob_files(root: Path) -> Iterator[Path]:
    if root.is_dir():
        for path in sorted(root.glob("??/??/*")):
            if path.is_file() and not path.name.startswith("."):  # not a write in progress
                yield path


def _fanned(root: Path, name: str) -> Path:
    return root / name[:2] / name[2:4] / name
