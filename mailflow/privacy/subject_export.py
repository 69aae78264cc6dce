"""A person's data as they can read it: ``index.html``, ``data.json`` and the original files.

Written to a new directory, or to a zip file when the target's name ends in ``.zip``. The page is
self-contained (no script, no link out, every value escaped) and its labels are English or Dutch.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape

from mailflow.privacy.subject_page import LABELS, PAGE
from mailflow.privacy.subjects import Findings
from mailflow.storage.models import AttachmentRecord, Event, Message, Reply

WITHHELD_REASON = "another sender's email filed in this person's case: review by hand (GDPR art. 15(4))"
_UNSAFE = re.compile(r"[^\w.\-]+", re.ASCII)


class ExportError(Exception):
    pass


@dataclass
class Written:
    target: Path
    files: int
    emails: int
    withheld: int
    missing: list[str] = field(default_factory=list)  # originals not found in the blob store


def safe_name(name: str, fallback: str) -> str:
    cleaned = _UNSAFE.sub("_", name).strip("._")[:80]
    return cleaned or fallback


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def event_data(e: Event) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "at": _when(e.at),
        "actor": e.actor,
        "kind": e.kind,
        "email": e.message_id,
        "detail": e.detail or {},
    }


def _attachment(m: Message, a: AttachmentRecord) -> dict[str, Any]:
    return {
        "position": a.position,
        "filename": a.filename,
        "declared_type": a.declared_type,
        "content_type": a.sniffed_type,
        "document_kind": a.kind,
        "size": a.size,
        "sha256": a.sha256,
        "file": f"attachments/{m.id}-{a.position}-{safe_name(a.filename, 'document')}",
    }


def _reply(r: Reply) -> dict[str, Any]:
    return {
        "id": r.id,
        "to": r.to_address,
        "subject": r.subject,
        "language": r.language,
        "action": r.action,
        "status": r.status,
        "created_at": _when(r.created_at),
        "sent_at": _when(r.sent_at),
        "file": f"replies/reply-{r.id}.eml",
    }


def _email(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "received_at": _when(m.received_at),
        "from": m.from_address,
        "subject": m.subject,
        "status": m.status,
        "message_id": m.message_id,
        "case": m.case.reference if m.case else None,
        "sha256": m.sha256,
        "file": f"emails/email-{m.id}.eml",
        "attachments": [_attachment(m, a) for a in m.attachments],
        "decisions": [
            {
                "at": _when(d.decided_at),
                "by": d.decided_by,
                "category": d.category,
                "action": d.action,
                "confidence": d.confidence,
                "language": d.language,
                "reasons": d.reasons,
                "missing_documents": d.missing_documents,
                "sender_verdict": d.sender_verdict,
            }
            for d in m.decisions
        ],
        "replies": [_reply(r) for r in m.replies],
    }


def export_data(findings: Findings, *, generated_at: datetime) -> dict[str, Any]:
    """Everything found, as plain JSON-able data; the ``file`` fields name the files beside it."""
    notes: dict[int, list[dict[str, Any]]] = {}
    for n in findings.notes:
        notes.setdefault(n.case_id, []).append({"at": _when(n.written_at), "by": n.author, "text": n.text})
    return {
        "generated_at": generated_at.isoformat(),
        "subject": {
            "addresses": sorted(findings.subject.addresses),
            "national_numbers": sorted(findings.subject.nrns),
        },
        "emails": [_email(m) for m in findings.messages],
        "cases": [
            {
                "reference": c.reference,
                "category": c.category,
                "status": c.status,
                "resident_address": c.resident_address,
                "opened_at": _when(c.opened_at),
                "closed_at": _when(c.closed_at),
                "closed_by": c.closed_by,
                "missing_documents": c.missing_documents,
                "notes": notes.get(c.id, []),
            }
            for c in findings.cases
        ],
        "linked_cases": [
            {"reference": c.reference, "category": c.category, "status": c.status}
            for c in findings.linked_cases
        ],
        "withheld": [
            {
                "email": m.id,
                "received_at": _when(m.received_at),
                "case": m.case.reference if m.case else None,
                "reason": WITHHELD_REASON,
            }
            for m in findings.withheld
        ],
        "events": [event_data(e) for e in findings.events],
        "views": [
            {
                "at": _when(e.at),
                "who": e.actor,
                "kind": e.kind,
                "what": (e.detail or {}).get("what"),
                "email": e.message_id,
                "case": (e.detail or {}).get("case"),
            }
            for e in findings.views
        ],
        "never_answered_again": [
            {"address": s.address, "reason": s.reason, "since": _when(s.since)} for s in findings.suppressed
        ],
        "labelled_examples": [
            {
                "email": x.message_id,
                "category": x.category,
                "action": x.action,
                "by": x.labelled_by,
                "at": _when(x.labelled_at),
            }
            for x in findings.labelled
        ],
    }


def render_page(data: dict[str, Any], language: str = "en") -> str:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    return env.from_string(PAGE).render(d=data, t=LABELS.get(language, LABELS["en"]), lang=language)


def write_export(
    findings: Findings,
    target: Path,
    read: Callable[[str], bytes],
    *,
    generated_at: datetime,
    language: str = "en",
) -> Written:
    """Write the archive; refuses a target that exists (a directory that is not empty, or any file)."""
    data = export_data(findings, generated_at=generated_at)
    files: dict[str, bytes] = {}
    missing: list[str] = []

    def add(name: str, sha256: str | None, raw: bytes | None = None) -> None:
        try:
            files[name] = raw if raw is not None else read(sha256 or "")
        except (OSError, ValueError):
            missing.append(name)

    for m, email in zip(findings.messages, data["emails"], strict=True):
        add(email["file"], m.sha256)
        for a, listed in zip(m.attachments, email["attachments"], strict=True):
            add(listed["file"], a.sha256)
        for r, listed in zip(m.replies, email["replies"], strict=True):
            add(listed["file"], None, r.data)
    data["missing_files"] = missing
    files["data.json"] = json.dumps(data, ensure_ascii=False, indent=2).encode()
    files["index.html"] = render_page(data, language).encode()
    _store(target, files)
    return Written(target, len(files), len(findings.messages), len(findings.withheld), missing)


def _store(target: Path, files: dict[str, bytes]) -> None:
    if target.suffix.lower() == ".zip":
        if target.exists():
            raise ExportError(f"{target} exists already")
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "x", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, content in files.items():
                archive.writestr(name, content)
        target.chmod(0o600)
        return
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ExportError(f"{target} exists and is not an empty directory")
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, content in files.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_bytes(content)
        path.chmod(0o600)
