"""What mailflow holds about one person (a data subject): found by email address or national register
number, exported for an access request (GDPR art. 15) and handed to ``Eraser`` for an erasure request.

By address: emails sent from it, replies sent to it, and cases opened for it (with all their emails). By
national register number: emails whose subject or text holds it, written in any of the usual ways; this
reads every kept email (attachments' scanned text is not stored, so numbers only in a scan are missed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailflow.identifiers.finder import find_identifiers
from mailflow.identifiers.nrn import nrn_digits
from mailflow.ports import BlobStore
from mailflow.stages.limits import Limits
from mailflow.stages.parse import parse
from mailflow.storage.desk_models import CaseNote
from mailflow.storage.models import Case, Message, Reply


@dataclass
class Subject:
    messages: list[int] = field(default_factory=list)  # ledger ids, ascending
    cases: list[int] = field(default_factory=list)  # case ids; erase them with ``Eraser.case``


def find_by_address(session: Session, address: str) -> Subject:
    wanted = address.strip().lower()
    cases = session.scalars(
        select(Case.id).where(func.lower(Case.resident_address) == wanted, Case.erased_at.is_(None))
    ).all()
    pks = set(
        session.scalars(
            select(Message.id).where(func.lower(Message.from_address) == wanted, Message.erased_at.is_(None))
        )
    )
    pks |= set(session.scalars(select(Reply.message_id).where(func.lower(Reply.to_address) == wanted)))
    if cases:
        pks |= set(session.scalars(select(Message.id).where(Message.case_id.in_(cases))))
    return Subject(sorted(pks), sorted(cases))


def find_by_national_number(session: Session, blobs: BlobStore, number: str) -> Subject:
    """Emails holding the number (``85.07.30-033.61``, ``85073003361``…); ValueError when not 11 digits."""
    digits = nrn_digits(number)
    if digits is None:
        raise ValueError("a national register number has eleven digits")
    pks = [pk for pk, text in _kept_texts(session, blobs) if digits in _national_numbers(text)]
    cases = session.scalars(
        select(Message.case_id).where(Message.id.in_(pks), Message.case_id.is_not(None)).distinct()
    ).all()
    return Subject(pks, sorted(c for c in cases if c is not None))


def _national_numbers(text: str) -> set[str]:
    return {found.value for found in find_identifiers(text) if found.kind == "nrn"}


def _kept_texts(session: Session, blobs: BlobStore) -> Iterator[tuple[int, str]]:
    last = 0
    while True:
        page = session.execute(
            select(Message.id, Message.sha256)
            .where(Message.id > last, Message.erased_at.is_(None))
            .order_by(Message.id)
            .limit(200)
        ).all()
        if not page:
            return
        for pk, sha256 in page:
            try:
                message = parse(blobs.get(sha256), Limits())
            except Exception:  # unreadable or missing: nothing to find in it
                continue
            yield pk, f"{message.subject}\n{message.text}"
        last = page[-1][0]


def export(session: Session, blobs: BlobStore, subject: Subject, directory: Path) -> Path:
    """Write what is held (raw emails, attachments, decisions, replies, case notes) into ``directory``;
    returns its ``subject.json``. The directory holds personal data: hand it over, then delete it."""
    directory.mkdir(parents=True, exist_ok=True)
    emails: list[dict[str, Any]] = []
    for pk in subject.messages:
        row = session.get_one(Message, pk)
        for sha256, name in [
            (row.sha256, f"{pk}.eml"),
            *((a.sha256, f"{pk}-{a.storage_name}") for a in row.attachments),
        ]:
            if blobs.exists(sha256):
                (directory / name).write_bytes(blobs.get(sha256))
        emails.append(
            {
                "id": pk,
                "received_at": row.received_at.isoformat(),
                "from": row.from_address,
                "subject": row.subject,
                "status": row.status,
                "case": row.case.reference if row.case else None,
                "attachments": [a.filename for a in row.attachments],
                "decisions": [
                    {
                        "at": d.decided_at.isoformat(),
                        "by": d.decided_by,
                        "category": d.category,
                        "action": d.action,
                    }
                    for d in row.decisions
                ],
                "replies": [
                    {"at": r.created_at.isoformat(), "to": r.to_address, "status": r.status}
                    for r in row.replies
                ],
            }
        )
    cases = []
    for case_id in subject.cases:
        case = session.get_one(Case, case_id)
        notes = session.scalars(select(CaseNote).where(CaseNote.case_id == case_id).order_by(CaseNote.id))
        cases.append(
            {
                "reference": case.reference,
                "category": case.category,
                "status": case.status,
                "opened_at": case.opened_at.isoformat(),
                "resident_address": case.resident_address,
                "notes": [{"at": n.written_at.isoformat(), "by": n.author, "text": n.text} for n in notes],
            }
        )
    target = directory / "subject.json"
    target.write_text(json.dumps({"emails": emails, "cases": cases}, indent=2, ensure_ascii=False))
    return target
