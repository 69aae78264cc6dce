"""What every view needs: the wired application, the read-only archive sessions, the clock."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from threading import Lock
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session, sessionmaker

from mailflow.bootstrap import App
from mailflow.domain import Analysis
from mailflow.settings import Settings
from mailflow.storage.models import Event
from mailflow.web.accounts import Throttle
from mailflow.web.i18n import StaffLabels

EXTENSION = "mailflow.desk"
ANALYSES_KEPT = 64


@dataclass
class Desk:
    app: App
    # Everything an archive page shows is read through these: the connection itself refuses writes.
    archive: sessionmaker[Session]
    # What staff call categories and document kinds (classifiers/labels.toml).
    labels: StaffLabels
    # A triage page and its previews analyse the same email: the last few analyses are kept.
    _analyses: OrderedDict[str, Analysis] = field(default_factory=OrderedDict, repr=False)
    _lock: Lock = field(default_factory=Lock, repr=False)

    def analysis(self, sha256: str) -> Analysis:
        with self._lock:
            if sha256 in self._analyses:
                self._analyses.move_to_end(sha256)
                return self._analyses[sha256]
        result = self.app.analyser.analyse(self.app.blobs.get(sha256))
        with self._lock:
            self._analyses[sha256] = result
            while len(self._analyses) > ANALYSES_KEPT:
                self._analyses.popitem(last=False)
        return result

    @property
    def settings(self) -> Settings:
        return self.app.settings

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.app.sessions

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.app.clock

    @property
    def throttle(self) -> Throttle:
        return Throttle.from_settings(self.settings)

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.settings.triage_lease_seconds)

    def log(self, who: str, kind: str, message_id: int | None, **detail: Any) -> None:
        """Append one event of a person's doing to the chained log, in its own transaction."""
        with self.sessions.begin() as session:
            session.add(Event(message_id=message_id, at=self.clock(), actor=who, kind=kind, detail=detail))


def desk() -> Desk:
    return current_app.extensions[EXTENSION]
