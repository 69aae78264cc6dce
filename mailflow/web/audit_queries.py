"""What the audit page reads: the event log filtered by person, action, date and email, page by page."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from mailflow.storage.models import Event
from mailflow.web.archive_queries import day_arg, start_of

PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    kind: str = ""
    message_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    page: int = 1
    zone: str = "UTC"  # whose calendar days the dates are: the desk's

    @classmethod
    def from_args(cls, args: Mapping[str, str], zone: str = "UTC") -> AuditFilter:
        def number(name: str, default: int | None) -> int | None:
            try:
                return max(1, min(10**12, int(args.get(name, "").strip())))
            except ValueError:
                return default

        return cls(
            actor=args.get("actor", "").strip()[:100],
            kind=args.get("kind", "").strip()[:60],
            message_id=number("email", None),
            date_from=day_arg(args, "from"),
            date_to=day_arg(args, "to"),
            page=number("page", 1) or 1,
            zone=zone,
        )

    def args(self, **changes: Any) -> dict[str, Any]:
        values = {
            "actor": self.actor,
            "kind": self.kind,
            "email": self.message_id or "",
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "page": self.page,
        }
        values.update(changes)
        return {key: value for key, value in values.items() if value not in ("", None)}

    def query(self) -> Select[tuple[Event]]:
        query = select(Event)
        if self.actor:
            query = query.where(Event.actor == self.actor)
        if self.kind:
            query = query.where(Event.kind == self.kind)
        if self.message_id is not None:
            query = query.where(Event.message_id == self.message_id)
        if self.date_from:
            query = query.where(Event.at >= start_of(self.date_from, self.zone))
        if self.date_to:
            query = query.where(Event.at < start_of(self.date_to + timedelta(days=1), self.zone))
        return query


def page_of(session: Session, f: AuditFilter) -> tuple[list[Event], int]:
    """The filter's entries on its page, newest first, and how many match in all."""
    total = session.scalar(select(func.count()).select_from(f.query().subquery())) or 0
    query = f.query().order_by(Event.seq.desc()).limit(PAGE_SIZE).offset((f.page - 1) * PAGE_SIZE)
    return list(session.scalars(query)), total


def all_of(session: Session, f: AuditFilter, batch: int = 1000) -> Iterator[Event]:
    """Every entry the filter matches, oldest first, read in batches (for the export)."""
    after = -1
    while True:
        rows = list(session.scalars(f.query().where(Event.seq > after).order_by(Event.seq).limit(batch)))
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def choices(session: Session) -> dict[str, list[str]]:
    """The people and actions that occur, for the filter's lists."""
    return {
        "actors": list(session.scalars(select(Event.actor).distinct().order_by(Event.actor))),
        "kinds": list(session.scalars(select(Event.kind).distinct().order_by(Event.kind))),
    }
