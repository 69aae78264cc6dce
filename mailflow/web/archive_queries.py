"""What the archive pages read: filtered lists, one email with its history, a case."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session, selectinload

from mailflow.classification.taxonomy import DOCUMENT_KINDS
from mailflow.identifiers.lookup import LookupToken
from mailflow.storage.models import AttachmentRecord, Case, DecisionRecord, Event, Message
from mailflow.web import labels, search
from mailflow.web.labels import event_summary

PAGE_SIZE = 50
EXPORT_BATCH = 500
_CASE_REFERENCE = re.compile(r"[A-Z][A-Z0-9]*-\d{4}-\d{3,}")
_KINDS = {kind.replace("_", ""): kind for kind in DOCUMENT_KINDS}  # "annex 35", "boarding pass" as typed


def latest_decisions() -> Any:
    """message id → id of its newest decision (a person's decision supersedes the machine's)."""
    return (
        select(DecisionRecord.message_id, func.max(DecisionRecord.id).label("last"))
        .group_by(DecisionRecord.message_id)
        .subquery()
    )


def start_of(day: date, zone: str) -> datetime:
    """The moment a calendar day begins in ``zone`` (a Brussels day starts at 23:00 or 22:00 UTC)."""
    return datetime.combine(day, time(), ZoneInfo(zone)).astimezone(UTC)


def day_arg(args: Mapping[str, str], name: str) -> date | None:
    """A date from a filter's query string; None when absent or not a date."""
    try:
        return date.fromisoformat(args.get(name, "").strip())
    except ValueError:
        return None


@dataclass(frozen=True)
class ArchiveFilter:
    q: str = ""
    date_from: date | None = None
    date_to: date | None = None
    category: str = ""
    action: str = ""
    status: str = ""
    case: str = ""
    page: int = 1
    zone: str = "UTC"  # whose calendar days the dates are: the desk's
    # Turns a national register number typed into its token in the index (the blob keyring's).
    lookup: LookupToken | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_args(
        cls, args: Mapping[str, str], zone: str = "UTC", lookup: LookupToken | None = None
    ) -> ArchiveFilter:
        try:
            page = max(1, min(10_000, int(args.get("page", "1"))))
        except ValueError:
            page = 1
        return cls(
            q=args.get("q", "").strip()[:200],
            date_from=day_arg(args, "from"),
            date_to=day_arg(args, "to"),
            category=args.get("category", "").strip()[:60],
            action=args.get("action", "").strip()[:30],
            status=args.get("status", "").strip()[:20],
            case=args.get("case", "").strip()[:40],
            page=page,
            zone=zone,
            lookup=lookup,
        )

    def args(self, **changes: Any) -> dict[str, Any]:
        values = {
            "q": self.q,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "category": self.category,
            "action": self.action,
            "status": self.status,
            "case": self.case,
            "page": self.page,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v not in ("", None)}


@dataclass(frozen=True)
class Row:
    id: int
    received_at: datetime
    from_address: str | None
    subject: str | None
    status: str
    category: str | None
    action: str | None
    decided_by: str | None
    case_ref: str | None
    erased_at: datetime | None = None  # a tombstone: its content erased (mailflow.retention)
    erased_rule: str | None = None


def _filtered(query: Select[Any], f: ArchiveFilter, dialect: str, last: Any) -> Select[Any]:
    if f.q:
        condition = _found(dialect, f.q, f.lookup)
        if condition is not None:
            query = query.where(condition)
    if f.date_from:
        query = query.where(Message.received_at >= start_of(f.date_from, f.zone))
    if f.date_to:
        query = query.where(Message.received_at < start_of(f.date_to + timedelta(days=1), f.zone))
    if f.category:
        query = query.where(DecisionRecord.category == f.category)
    if f.action:
        query = query.where(DecisionRecord.action == f.action)
    if f.status:
        query = query.where(Message.status == f.status)
    if f.case:
        query = query.where(Case.reference == f.case.upper())
    return query


def _found(dialect: str, query: str, lookup: LookupToken | None = None) -> ColumnElement[bool] | None:
    """Emails whose words match, or whose case reference or a document's kind is what was typed:
    staff search by the reference they gave a resident, or for "passport" or "boarding pass"."""
    conditions = [c for c in (search.matching(dialect, query, lookup),) if c is not None]
    typed = query.strip()
    if _CASE_REFERENCE.fullmatch(typed.upper()):
        conditions.append(Case.reference == typed.upper())
    kind = _KINDS.get("".join(typed.lower().replace("_", " ").split()))
    if kind is not None:
        documents = select(AttachmentRecord.message_id).where(AttachmentRecord.kind == kind)
        conditions.append(Message.id.in_(documents))
    return or_(*conditions) if conditions else None


def _listing(session: Session, f: ArchiveFilter) -> Select[Any]:
    """The emails matching ``f``, newest first, with what a row of the list shows."""
    last = latest_decisions()
    base = (
        select(Message.id)
        .outerjoin(last, last.c.message_id == Message.id)
        .outerjoin(DecisionRecord, DecisionRecord.id == last.c.last)
        .outerjoin(Case, Case.id == Message.case_id)
    )
    return _filtered(base, f, session.get_bind().dialect.name, last)


def _rows(query: Select[Any]) -> Select[Any]:
    return query.add_columns(
        Message.received_at,
        Message.from_address,
        Message.subject,
        Message.status,
        DecisionRecord.category,
        DecisionRecord.action,
        DecisionRecord.decided_by,
        Case.reference,
        Message.erased_at,
        Message.erased_rule,
    ).order_by(Message.received_at.desc(), Message.id.desc())


def count_messages(session: Session, f: ArchiveFilter) -> int:
    return session.scalar(select(func.count()).select_from(_listing(session, f).subquery())) or 0


def list_messages(session: Session, f: ArchiveFilter) -> tuple[list[Row], int]:
    """One page of the emails matching ``f``, and how many match in all."""
    query = _rows(_listing(session, f)).limit(PAGE_SIZE).offset((f.page - 1) * PAGE_SIZE)
    return [Row(*row) for row in session.execute(query)], count_messages(session, f)


def all_messages(session: Session, f: ArchiveFilter) -> Iterator[Row]:
    """Every email matching ``f`` (its page ignored), read in batches: an export of the whole archive
    never holds it in memory."""
    query = _rows(_listing(session, f)).execution_options(yield_per=EXPORT_BATCH)
    for row in session.execute(query):
        yield Row(*row)


def load_message(session: Session, message_id: int) -> Message | None:
    return session.scalar(
        select(Message)
        .where(Message.id == message_id)
        .options(
            selectinload(Message.attachments),
            selectinload(Message.decisions),
            selectinload(Message.replies),
            selectinload(Message.case),
        )
    )


@dataclass(frozen=True)
class Step:
    at: datetime
    actor: str
    kind: str
    summary: str
    hash: str | None = None


def timeline(session: Session, row: Message) -> list[Step]:
    arrived = gettext("in the folder: %(folder)s", folder=labels.folder(row.mailbox))
    steps = [Step(row.received_at, "ingest", "received", arrived)]
    events = session.scalars(select(Event).where(Event.message_id == row.id).order_by(Event.seq, Event.id))
    steps += [Step(e.at, e.actor, e.kind, _summary(e), e.hash) for e in events]
    return steps


def _summary(entry: Event) -> str:
    if entry.erased_at is not None:
        return gettext("(its details were erased under the retention schedule or on request)")
    if entry.kind == "erased":
        rule = str((entry.detail or {}).get("rule", ""))
        return gettext("content deleted under rule %(rule)s", rule=labels.named(labels.RETENTION_RULES, rule))
    return event_summary(entry.kind, entry.detail or {})


def load_case(session: Session, reference: str) -> Case | None:
    return session.scalar(
        select(Case)
        .where(Case.reference == reference)
        .options(
            selectinload(Case.messages).selectinload(Message.attachments),
            selectinload(Case.messages).selectinload(Message.replies),
        )
    )


def facet_values(session: Session) -> dict[str, list[str]]:
    """The categories, actions and statuses that occur, for the filter menus."""
    return {
        "category": sorted(session.scalars(select(DecisionRecord.category).distinct())),
        "action": sorted(session.scalars(select(DecisionRecord.action).distinct())),
        "status": sorted(session.scalars(select(Message.status).distinct())),
    }
