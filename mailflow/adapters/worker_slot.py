"""A worker's default name: its host and the lowest free slot there, held by a lock on a file.

A worker killed and started again on the same machine finds the slot its predecessor held free (the
kernel drops a dead process's locks), takes it, and so has the same name: it resumes the emails it
had claimed at once, instead of waiting until the dead worker's heartbeat is old. Two workers running
at the same time on one machine never hold the same slot. Each slot file keeps a random part made by
its first holder, which joins the name: workers with data directories of their own (containers that
share a host name) never share a name. ``MAILFLOW_WORKER_NAME`` overrides it.
"""

from __future__ import annotations

import fcntl
import os
import socket
import uuid
from pathlib import Path
from typing import IO

MAX_SLOTS = 64  # then a random name: a machine running more workers than this is not foreseen


class WorkerSlot:
    """A held slot; the lock lasts until ``release`` or the process's end."""

    def __init__(self, name: str, handle: IO[bytes]) -> None:
        self.name = name
        self._handle: IO[bytes] | None = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file drops the lock
            self._handle = None


def take_slot(directory: Path, host: str | None = None) -> WorkerSlot | None:
    """The lowest slot no running process of this machine holds, or None when all are taken."""
    host = host or socket.gethostname()
    directory.mkdir(parents=True, exist_ok=True)
    for number in range(MAX_SLOTS):
        path = directory / f"slot-{number}.lock"
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        handle = os.fdopen(descriptor, "r+b")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return WorkerSlot(f"{host}:slot{number}:{_slot_id(handle)}", handle)
    return None


def _slot_id(handle: IO[bytes]) -> str:
    """The slot file's random part, written by the first worker that held it."""
    handle.seek(0)
    stored = handle.read(64).decode("ascii", "replace").strip()
    if len(stored) == 8 and stored.isalnum():
        return stored
    made = uuid.uuid4().hex[:8]
    handle.seek(0)
    handle.truncate()
    handle.write(made.encode())
    handle.flush()
    return made
