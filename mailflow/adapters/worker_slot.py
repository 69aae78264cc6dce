"""A worker's default name: its host and the lowest free slot there, held by a lock on a file.

A worker killed and started again on the same machine finds the slot its predecessor held free (the
kernel drops a dead process's locks), takes it, and so has the same name: it resumes the emails it
had claimed at once, instead of waiting until the dead worker's heartbeat is old. Two workers running
at the same time on one machine never hold the same slot. Each slot file keeps a random part made by
its first holder, which joins the name: workers with data directories of their own (containers that
share a host name) never share a name. ``MAILFLOW_WORKER_NAME`` overrides it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import uuid
import weakref
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

MAX_SLOTS = 64  # then a random name: a machine running more workers than this is not foreseen


class WorkerSlot:
    """A held slot; the lock lasts until ``release`` or the process's end."""

    def __init__(self, name: str, handle: IO[bytes]) -> None:
        self.name = name
        self._handle: IO[bytes] | None = handle
        # A forked child (the nightly retraining's jobs) shares the lock; one outliving a killed worker
        # would keep the slot from its successor. Its copy is closed, which leaves the parent's lock.
        me = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (slot := me()) is not None and slot._forget())

    def _forget(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None

    def release(self) -> None:
        self._forget()  # closing the file drops the lock


def take_slot(directory: Path, host: str | None = None) -> WorkerSlot | None:
    """The lowest slot no running process of this machine holds, or None when all are taken."""
    host = host or socket.gethostname()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("no worker slot (%s); this worker gets a name of its own", exc.strerror or exc)
        return None
    refused: OSError | None = None
    for number in range(MAX_SLOTS):
        try:
            descriptor = os.open(
                directory / f"slot-{number}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
        except OSError as exc:  # made by another user (a command run as root), a read-only directory
            refused = exc
            continue
        handle = os.fdopen(descriptor, "r+b")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return WorkerSlot(f"{host}:slot{number}:{_slot_id(handle)}", handle)
        except BlockingIOError:  # a running worker holds it
            handle.close()
        except OSError as exc:  # a file system without locks
            handle.close()
            refused = exc
    if refused is not None:
        log.warning(
            "no worker slot in %s (%s); this worker gets a name of its own, and a restarted worker "
            "resumes its claims only when its heartbeat is old",
            directory,
            refused.strerror or refused,
        )
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
