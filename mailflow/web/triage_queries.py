"""The triage queue: emails waiting for a person, oldest first, with why they wait."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.domain import Status
from mailflow.storage.models import DecisionRecord, Message
from mailflow.web.archive_queries import latest_decisions
from mailflow.web.labels import waiting_reason

# Why the machine left it to a person, from the reason its decide stage gave last.
AGES = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "3d": timedelta(days=3), "7d": timedelta(days=7)}


@dataclass(frozen=True)
class Item:
    id: int
    received_at: datetime
    from_address: str | None
    subject: str | None
    category: str
    language: str
    confidence: float
    intents: tuple[str, ...]
    reason: str

    def age(self, now: datetime) -> timedelta:
        return now - self.received_at


@dataclass(frozen=True)
class QueueFilter:
    category: str = ""
    language: str = ""
    reason: str = ""
    older_than: str = ""  # a key of AGES

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> QueueFilter:
        older = args.get("older_than", "")
        return cls(
            category=args.get("category", "")[:60],
            language=args.get("language", "")[:10],
            reason=args.get("reason", "")[:40],
            older_than=older if older in AGES else "",
        )

    def keeps(self, item: Item, now: datetime) -> bool:
        return (
            (not self.category or item.category == self.category)
            and (not self.language or item.language == self.language)
            and (not self.reason or item.reason == self.reason)
            and (not self.older_than or item.age(now) >= AGES[self.older_than])
        )


def waiting(session: Session) -> list[Item]:
    last = latest_decisions()
    rows = session.execute(
        select(
            Message.id,
            Message.received_at,
            Message.from_address,
            Message.subject,
            DecisionRecord.category,
            DecisionRecord.language,
            DecisionRecord.confidence,
            DecisionRecord.intents,
            DecisionRecord.reasons,
        )
        .join(last, last.c.message_id == Message.id)
        .join(DecisionRecord, DecisionRecord.id == last.c.last)
        .where(Message.status == Status.TRIAGE)
        .order_by(Message.received_at, Message.id)
    ).all()
    return [
        Item(pk, at, sender, subject, cat, lang, conf, tuple(intents or ()), waiting_reason(reasons))
        for pk, at, sender, subject, cat, lang, conf, intents, reasons in rows
    ]


@dataclass(frozen=True)
class Counts:
    total: int
    by_reason: Counter[str]
    by_category: Counter[str]
    by_language: Counter[str]
    oldest: timedelta | None


def counts(items: list[Item], now: datetime) -> Counts:
    return Counts(
        total=len(items),
        by_reason=Counter(i.reason for i in items),
        by_category=Counter(i.category for i in items),
        by_language=Counter(i.language for i in items),
        oldest=items[0].age(now) if items else None,
    )


def next_after(items: list[Item], current: int) -> int | None:
    """The item to open after ``current``: the next one in the queue, else from the top."""
    ids = [i.id for i in items]
    if current in ids:
        position = ids.index(current)
        ids = ids[position + 1 :] + ids[:position]
    return ids[0] if ids else None
