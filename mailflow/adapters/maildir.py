"""The ``Mailbox`` port on a local Maildir: the embedded default when no IMAP server is configured.

Maildir has no UIDs, so each folder keeps ``mailflow-uidlist`` (in the spirit of dovecot-uidlist): a
first line ``V<uidvalidity> N<next uid>``, then one ``<uid> <key>`` line per message, where the key
is the file name without its ``:2,<flags>`` info. The list is rewritten atomically under an flock,
so several processes may share the Maildir. Folders follow Maildir++: ``Processed`` lives in
``<root>/.Processed`` and ``Archive/2024`` in ``<root>/.Archive.2024``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import logging
import os
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Self

from mailflow.errors import MailboxError
from mailflow.stages.limits import header_part

if TYPE_CHECKING:
    from types import TracebackType

    from mailflow.ports import Fingerprint
    from mailflow.settings import Settings

log = logging.getLogger(__name__)

UIDLIST = "mailflow-uidlist"
LOCKFILE = "mailflow-uidlist.lock"
_unique = itertools.count()


@dataclass
class _UidList:
    validity: int
    next_uid: int
    keys: dict[int, str] = field(default_factory=dict)  # uid -> key, ascending


class MaildirMailbox:
    """One folder of a Maildir++ tree as a ``Mailbox``; folder names use ``/`` as separator."""

    def __init__(
        self, root: Path, *, folder: str = "INBOX", name: str | None = None, poll_interval: float = 0.5
    ) -> None:
        self.root = Path(root)
        self.folder = folder
        self._name = name or f"maildir:{folder}"
        self.poll_interval = poll_interval
        self._dir = self._folder_dir(folder)
        try:
            _create_folder(self.root, is_root=True)
            _create_folder(self._dir, is_root=self._dir == self.root)
            # What this instance has seen, so mail arriving between two waits still counts as new.
            self._known = set(_scan(self._dir))
        except OSError as exc:
            raise MailboxError(f"cannot open Maildir {self.root}: {exc}") from exc

    @classmethod
    def from_settings(cls, settings: Settings) -> MaildirMailbox:
        return cls(settings.maildir_path, folder=settings.imap_folder, name=settings.mailbox_name)

    @property
    def name(self) -> str:
        return self._name

    def uidvalidity(self) -> int:
        return self._sync(self._dir)[0].validity

    def list_uids(self) -> list[int]:
        uidlist, files = self._sync(self._dir)
        self._known = set(files)
        return list(uidlist.keys)

    def fetch(self, uids: Sequence[int]) -> Iterator[tuple[int, bytes]]:
        uidlist, files = self._sync(self._dir)
        for uid in dict.fromkeys(uids):
            key = uidlist.keys.get(uid)
            if key is None:
                continue
            try:
                # Reading leaves the file where it is: a message in new/ stays unread.
                data = _read(files[key], self._dir, key)
            except OSError as exc:
                raise MailboxError(f"cannot read uid {uid} of {self._name}: {exc}") from exc
            if data is not None:
                yield uid, data

    def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        uidlist, files = self._sync(self._dir)
        found: dict[int, int] = {}
        for uid in dict.fromkeys(uids):
            key = uidlist.keys.get(uid)
            with contextlib.suppress(OSError, KeyError):
                found[uid] = files[key].stat().st_size if key is not None else -1
        return {uid: size for uid, size in found.items() if size >= 0}

    def fetch_headers(self, uids: Sequence[int], max_bytes: int) -> Iterator[tuple[int, bytes]]:
        uidlist, files = self._sync(self._dir)
        for uid in dict.fromkeys(uids):
            key = uidlist.keys.get(uid)
            if key is None or key not in files:
                continue
            try:
                with open(files[key], "rb") as handle:
                    head = handle.read(max_bytes + 4)
            except OSError:
                continue  # gone meanwhile
            yield uid, header_part(head, max_bytes)

    def move(self, uids: Sequence[int], folder: str) -> None:
        target = self._folder_dir(folder)
        if target == self._dir or not uids:
            return
        try:
            _create_folder(target, is_root=target == self.root)
            with _locked(self._dir):
                uidlist, files = _sync_locked(self._dir)
                for uid in uids:
                    key = uidlist.keys.get(uid)
                    if key is not None and _rename_into(files[key], self._dir, key, target):
                        del uidlist.keys[uid]
                _write(self._dir, uidlist)
        except OSError as exc:
            raise MailboxError(
                f"cannot move {len(uids)} messages of {self._name} to {folder}: {exc}"
            ) from exc
        log.debug("moved %d messages of %s to %s", len(uids), self._name, folder)

    def refile(self, email: Fingerprint, target: str, look_in: Sequence[str]) -> str | None:
        destination = self._folder_dir(target)
        try:
            for name in look_in:
                folder_dir = self._folder_dir(name)
                if not (folder_dir / "cur").is_dir():
                    continue
                with _locked(folder_dir):
                    uidlist, files = _sync_locked(folder_dir)
                    key = next(
                        (k for k in uidlist.keys.values() if _holds(files[k], folder_dir, k, email)), None
                    )
                    if key is None:
                        continue
                    if folder_dir != destination:
                        _create_folder(destination, is_root=destination == self.root)
                        if not _rename_into(files[key], folder_dir, key, destination):
                            continue  # deleted meanwhile
                        uidlist.keys = {uid: k for uid, k in uidlist.keys.items() if k != key}
                        _write(folder_dir, uidlist)
                    return name
        except OSError as exc:
            raise MailboxError(f"cannot refile a message of {self.root} to {target}: {exc}") from exc
        return None

    def delete(self, email: Fingerprint, folder: str) -> bool:
        folder_dir = self._folder_dir(folder)
        if folder_dir == self._dir:
            raise MailboxError(f"refusing to delete from the watched folder {folder}")
        if not (folder_dir / "cur").is_dir():
            return False
        try:
            with _locked(folder_dir):
                uidlist, files = _sync_locked(folder_dir)
                key = next((k for k in uidlist.keys.values() if _holds(files[k], folder_dir, k, email)), None)
                if key is None:
                    return False
                with contextlib.suppress(FileNotFoundError):
                    (_scan(folder_dir).get(key) or files[key]).unlink()
                uidlist.keys = {uid: k for uid, k in uidlist.keys.items() if k != key}
                _write(folder_dir, uidlist)
        except OSError as exc:
            raise MailboxError(f"cannot delete a message of {self.root} from {folder}: {exc}") from exc
        return True

    def wait_for_new_mail(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            try:
                current = set(_scan(self._dir))
            except OSError as exc:
                raise MailboxError(f"cannot watch {self._name}: {exc}") from exc
            arrived = current - self._known
            self._known = current
            if arrived:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(self.poll_interval, remaining))

    def close(self) -> None:
        """Nothing to release: every operation opens and closes its own files."""

    # Beyond the port

    def append(self, folder: str, data: bytes, flags: str = "") -> int:
        """Deliver a message the Maildir way (tmp/, then new/ or, with flags like "S", cur/)."""
        target = self._folder_dir(folder)
        try:
            _create_folder(target, is_root=target == self.root)
            key = _new_key()
            temporary = target / "tmp" / key
            with open(temporary, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            final = target / "cur" / f"{key}:2,{''.join(sorted(flags))}" if flags else target / "new" / key
            os.rename(temporary, final)
            uidlist, _files = self._sync(target)
        except OSError as exc:
            raise MailboxError(f"cannot append to {folder} in {self.root}: {exc}") from exc
        return next(uid for uid, known in uidlist.keys.items() if known == key)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # Internals

    def _folder_dir(self, folder: str) -> Path:
        parts = [part for part in folder.split("/") if part]
        if not parts or (len(parts) == 1 and parts[0].upper() == "INBOX"):
            return self.root
        return self.root / ("." + ".".join(parts))

    def _sync(self, folder_dir: Path) -> tuple[_UidList, dict[str, Path]]:
        try:
            with _locked(folder_dir):
                return _sync_locked(folder_dir)
        except OSError as exc:
            raise MailboxError(f"cannot read Maildir folder {folder_dir}: {exc}") from exc


def _sync_locked(folder_dir: Path) -> tuple[_UidList, dict[str, Path]]:
    """Bring the UID list in line with the files: forget gone keys, number new ones in arrival order."""
    uidlist = _read_uidlist(folder_dir / UIDLIST)
    files = _scan(folder_dir)
    keys = {uid: key for uid, key in uidlist.keys.items() if key in files}
    changed = len(keys) != len(uidlist.keys)
    numbered = set(keys.values())
    for key in sorted((key for key in files if key not in numbered), key=lambda k: (_mtime(files[k]), k)):
        keys[uidlist.next_uid] = key
        uidlist.next_uid += 1
        changed = True
    uidlist.keys = dict(sorted(keys.items()))
    if changed or not (folder_dir / UIDLIST).exists():
        _write(folder_dir, uidlist)
    return uidlist, files


def _read_uidlist(path: Path) -> _UidList:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return _UidList(_new_validity(), 1)
    try:
        validity, next_uid = (int(word[1:]) for word in lines[0].split())
        keys = {int(uid): key for uid, key in (line.split(" ", 1) for line in lines[1:] if line)}
    except (ValueError, IndexError):
        # The old UIDs cannot be trusted any more; a new UIDVALIDITY tells consumers so.
        log.warning("unreadable %s; starting a new UIDVALIDITY", path)
        return _UidList(_new_validity(), 1)
    return _UidList(validity, max(next_uid, max(keys, default=0) + 1), keys)


def _write(folder_dir: Path, uidlist: _UidList) -> None:
    lines = [f"V{uidlist.validity} N{uidlist.next_uid}"]
    lines += [f"{uid} {key}" for uid, key in uidlist.keys.items()]
    temporary = folder_dir / f"{UIDLIST}.tmp"  # only ever written under the lock
    with open(temporary, "w") as handle:
        handle.write("\n".join(lines) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, folder_dir / UIDLIST)


@contextlib.contextmanager
def _locked(folder_dir: Path) -> Iterator[None]:
    descriptor = os.open(folder_dir / LOCKFILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # also releases the lock


def _scan(folder_dir: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for sub in ("new", "cur"):
        with contextlib.suppress(FileNotFoundError), os.scandir(folder_dir / sub) as entries:
            for entry in entries:
                if not entry.name.startswith("."):
                    found[entry.name.split(":", 1)[0]] = Path(entry.path)
    return found


def _read(path: Path, folder_dir: Path, key: str) -> bytes | None:
    # A mail client may have moved the file from new/ to cur/ (or changed its flags) meanwhile.
    for _attempt in range(3):
        try:
            return path.read_bytes()
        except FileNotFoundError:
            found = _scan(folder_dir).get(key)
            if found is None:
                return None
            path = found
    return None


def _holds(path: Path, folder_dir: Path, key: str, email: Fingerprint) -> bool:
    # The size rules out nearly every other message without reading it.
    with contextlib.suppress(FileNotFoundError):  # renamed by a mail client: _read finds it again
        if path.stat().st_size != email.size:
            return False
    data = _read(path, folder_dir, key)
    return data is not None and hashlib.sha256(data).hexdigest() == email.sha256


def _rename_into(path: Path, folder_dir: Path, key: str, target: Path) -> bool:
    for _attempt in range(3):
        # Files in cur/ carry an info suffix; one from new/ gets an empty one, so it stays unread.
        name = path.name if ":" in path.name else f"{path.name}:2,"
        try:
            os.rename(path, target / "cur" / name)
            return True
        except FileNotFoundError:
            found = _scan(folder_dir).get(key)
            if found is None:
                return False
            path = found
    return False


def _create_folder(folder_dir: Path, *, is_root: bool) -> None:
    for sub in ("tmp", "new", "cur"):
        (folder_dir / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    if not is_root:
        (folder_dir / "maildirfolder").touch(exist_ok=True)


def _new_key() -> str:
    now = time.time()
    host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
    return f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}Q{next(_unique)}.{host}"


def _new_validity() -> int:
    return int(time.time()) & 0xFFFF_FFFF or 1


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
