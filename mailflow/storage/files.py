"""Writing a file so that a crash leaves either no file or the whole file, never a part."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomically(target: Path, data: bytes | Callable[[BinaryIO], None]) -> None:
    """Write beside ``target``, flush to disk, rename into place, then flush the directory entry.

    ``data`` is the bytes, or a function that writes them to the open file (piece by piece, so that a
    large file never needs a second copy in memory). The file is readable by its owner only (mkstemp's
    0600): emails and replies carry personal data.
    """
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    descriptor = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
