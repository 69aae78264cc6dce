"""The archive as JSON lines: one object per ingested email, with its outcome, documents and replies."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from mailflow.storage.models import Message


def export_archive(
    sessions: sessionmaker[Session], *, since: datetime | None = None
) -> Iterator[dict[str, Any]]:
    query = (
        select(Message)
        .options(
            selectinload(Message.attachments),
            selectinload(Message.decisions),
            selectinload(Message.replies),
            selectinload(Message.case),
        )
        .order_by(Message.id)
    )
    if since is not None:
        query = query.where(Message.received_at >= since)
    with sessions() as session:
        last_id = 0
        while True:
            rows = session.scalars(query.where(Message.id > last_id).limit(500)).all()
            if not rows:
                return
            for row in rows:
                yield archive_entry(row)
            last_id = rows[-1].id
            session.expunge_all()  # keeps memory flat on a large archive


def archive_entry(row: Message) -> dict[str, Any]:
    decision = row.decisions[-1] if row.decisions else None
    return {
        "message_id": row.message_id,
        "mailbox": row.mailbox,
        "uidvalidity": row.uidvalidity,
        "uid": row.uid,
        "sha256": row.sha256,
        "received_at": row.received_at.isoformat(),
        "from": row.from_address,
        "subject": row.subject,
        "category": decision.category if decision else None,
        "action": decision.action if decision else None,
        "confidence": decision.confidence if decision else None,
        "language": decision.language if decision else None,
        "status": row.status,
        "folder": row.folder,
        "case_ref": row.case.reference if row.case else None,
        "documents": [
            {"filename": a.filename, "kind": a.kind, "sha256": a.sha256, "size": a.size}
            for a in row.attachments
        ],
        "replies": [
            {
                "message_id": r.rfc_message_id,
                "to": r.to_address,
                "subject": r.subject,
                "language": r.language,
                "status": r.status,
            }
            for r in row.replies
        ],
    }
