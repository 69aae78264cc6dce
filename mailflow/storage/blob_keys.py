"""The keys the blob store encrypts with (docs/encryption.md).

A keyring holds one naming key, which never changes (blob file names and lookup tokens are HMACs under
it), and one or more data keys (AES-256-GCM); the last data key is the current one, the earlier ones
only decrypt. Written as tokens, one a line in the key file or separated by spaces or commas in
``MAILFLOW_BLOB_KEYS``::

    naming:<32 bytes, base64url>
    key:<32 bytes, base64url>
    key:<32 bytes, base64url>      <- current

A data key is known in a blob's header by its id: the first 4 bytes of a hash of the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from mailflow.errors import ConfigurationError

KEY_BYTES = 32
_HEADER = "# mailflow blob keys: the last key line is the current key; never remove a key a blob still uses\n"
_SEPARATORS = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class DataKey:
    id: bytes  # 4 bytes, in every blob's header
    secret: bytes = b""

    @classmethod
    def of(cls, secret: bytes) -> DataKey:
        return cls(hashlib.sha256(b"mailflow blob key id\0" + secret).digest()[:4], secret)


@dataclass(frozen=True)
class BlobKeyring:
    naming: bytes
    keys: tuple[DataKey, ...]  # oldest first; the last is current

    def __post_init__(self) -> None:
        if len(self.naming) != KEY_BYTES or not self.keys:
            raise ConfigurationError("blob keys: need one naming key and at least one data key")
        if len({key.id for key in self.keys}) != len(self.keys):
            raise ConfigurationError("blob keys: the same data key is listed twice")

    @property
    def current(self) -> DataKey:
        return self.keys[-1]

    def key(self, key_id: bytes) -> DataKey | None:
        return next((key for key in self.keys if key.id == key_id), None)

    def name(self, sha256: str) -> str:
        """The file name of the blob whose plaintext has this digest: known only to the key holder."""
        return hmac.new(self.naming, b"blob\0" + bytes.fromhex(sha256), hashlib.sha256).hexdigest()

    def lookup_token(self, purpose: str, value: str) -> str:
        """A keyed token for finding ``value`` without storing it (e.g. a national register number)."""
        mac = hmac.new(self.naming, f"{purpose}\0{value}".encode(), hashlib.sha256)
        return mac.hexdigest()[:20]

    def with_new_key(self) -> BlobKeyring:
        return BlobKeyring(self.naming, (*self.keys, DataKey.of(secrets.token_bytes(KEY_BYTES))))

    def render(self) -> str:
        lines = [f"naming:{_encode(self.naming)}", *(f"key:{_encode(key.secret)}" for key in self.keys)]
        return _HEADER + "\n".join(lines) + "\n"


def new_keyring() -> BlobKeyring:
    return BlobKeyring(secrets.token_bytes(KEY_BYTES), (DataKey.of(secrets.token_bytes(KEY_BYTES)),))


def parse_keyring(text: str, origin: str) -> BlobKeyring:
    naming, keys = None, []
    for line in text.splitlines():
        for token in _SEPARATORS.split(line.split("#", 1)[0].strip()):
            if not token:
                continue
            kind, _, value = token.partition(":")
            secret = _decode(value, origin)
            if kind == "naming" and naming is None:
                naming = secret
            elif kind == "key":
                keys.append(DataKey.of(secret))
            else:
                raise ConfigurationError(f"{origin}: expected one naming: and then key: tokens")
    if naming is None:
        raise ConfigurationError(f"{origin}: no naming: key")
    return BlobKeyring(naming, tuple(keys))


def load_keyring(configured: str | None, path: Path) -> BlobKeyring:
    """The configured keys, else the key file; a key file is made, once, when there is none."""
    if configured:
        return parse_keyring(configured, "MAILFLOW_BLOB_KEYS")
    try:
        return parse_keyring(path.read_text(), str(path))
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    keyring = new_keyring()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker made it first
        return parse_keyring(path.read_text(), str(path))
    with os.fdopen(fd, "w") as handle:
        handle.write(keyring.render())
        handle.flush()
        os.fsync(handle.fileno())
    return keyring


def rotate_key_file(path: Path) -> BlobKeyring:
    """Add a new current data key to the key file; the earlier keys stay, to decrypt older blobs."""
    keyring = parse_keyring(path.read_text(), str(path)).with_new_key()
    temporary = path.with_name(f".{path.name}.new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(keyring.render())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return keyring


def _encode(secret: bytes) -> str:
    return base64.urlsafe_b64encode(secret).decode().rstrip("=")


def _decode(value: str, origin: str) -> bytes:
    try:
        secret = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError as exc:
        raise ConfigurationError(f"{origin}: a key is not base64url") from exc
    if len(secret) != KEY_BYTES:
        raise ConfigurationError(f"{origin}: every key must be {KEY_BYTES} bytes")
    return secret
