"""The retention schedule: which rule applies to an email or a case, and when it falls due.

Rules, first match wins (days from the settings ``retention_*_days``; 0 keeps for ever):
  - a case's emails follow their case: kept while it is open, erased ``closed_case`` days after closing;
  - emails awaiting a person (triage, quarantine, unprocessed) are never erased by the schedule;
  - ``duplicate``: the same email received twice;  ``machine``: spam, bounces, auto-replies;
  - ``ignored``: anything else set aside;  ``processed``: answered without a case.
An email's age counts from its last decision (a person's decision in triage restarts it), else arrival.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mailflow.classification.taxonomy import MACHINE_CATEGORIES
from mailflow.domain import Status
from mailflow.settings import Settings

MACHINE, DUPLICATE, IGNORED, PROCESSED, CLOSED_CASE = (
    "machine",
    "duplicate",
    "ignored",
    "processed",
    "closed_case",
)
RULES = (MACHINE, DUPLICATE, IGNORED, PROCESSED, CLOSED_CASE)


@dataclass(frozen=True)
class Schedule:
    days: dict[str, int]  # rule -> days kept; 0: for ever

    @classmethod
    def from_settings(cls, settings: Settings) -> Schedule:
        return cls({rule: getattr(settings, f"retention_{rule}_days") for rule in RULES})

    def rule_for_email(self, status: str, category: str | None, duplicate: bool) -> str | None:
        """The rule for an email outside any case; None: the schedule never erases it."""
        if status == Status.IGNORED:
            if duplicate:
                return DUPLICATE
            return MACHINE if category in MACHINE_CATEGORIES else IGNORED
        if status == Status.PROCESSED:
            return DUPLICATE if duplicate else PROCESSED
        return None  # triage, quarantine, received: a person has not decided yet

    def due(self, rule: str, since: datetime, now: datetime) -> bool:
        days = self.days.get(rule, 0)
        return days > 0 and since <= now - timedelta(days=days)

    def earliest(self, now: datetime) -> datetime | None:
        """Nothing that arrived after this can be due under any rule."""
        kept = [days for days in self.days.values() if days > 0]
        return now - timedelta(days=min(kept)) if kept else None
