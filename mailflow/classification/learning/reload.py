"""Noticing that another model has been installed, so a running worker can swap it in."""

from __future__ import annotations

import os
from pathlib import Path

from mailflow.classification.learning.artefact import MANIFEST_FILE

Stamp = tuple[int, int, int] | None


class ModelWatch:
    """Tells when the model directory's manifest changed since the last look.

    The manifest is written last and replaced atomically, so a changed manifest means a complete new
    model; a stat per look is cheap enough to do before every poll. Every worker sharing the model
    directory picks up the model one of them trained.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._stamp = self._read()

    def _read(self) -> Stamp:
        try:
            status = os.stat(self.directory / MANIFEST_FILE)
        except OSError:
            return None
        return (status.st_mtime_ns, status.st_size, status.st_ino)

    def changed(self) -> bool:
        stamp = self._read()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        return True
