"""Record what the pipeline found and decided about an email, in the same transaction as ``act``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from mailflow.domain import Analysis, Status
from mailflow.storage.models import DecisionRecord, Event, Message

PIPELINE = "pipeline"


def record_decision(session: Session, row: Message, analysis: Analysis, *, now: datetime) -> None:
    decision, classification = analysis.decision, analysis.classification
    session.add(
        DecisionRecord(
            message_id=row.id,
            decided_at=now,
            decided_by=PIPELINE,
            category=decision.category,
            action=decision.action.value,
            confidence=round(decision.confidence, 4),
            language=decision.language,
            intents=list(decision.intents),
            reasons=list(decision.reasons),
            missing_documents=list(decision.missing_documents),
            sender_verdict=analysis.screening.sender_verdict,
        )
    )
    session.add_all(
        [
            Event(
                message_id=row.id,
                at=now,
                actor="screen",
                kind="screened",
                detail={
                    "machine": analysis.screening.machine_category,
                    "sender": analysis.screening.sender_verdict,
                    "reasons": list(analysis.screening.reasons),
                },
            ),
            Event(
                message_id=row.id,
                at=now,
                actor="classify",
                kind="classified",
                detail={
                    "category": classification.category,
                    "confidence": round(classification.confidence, 4),
                    "language": analysis.extraction.language,
                    "documents": [d.kind for d in analysis.extraction.documents],
                    # Which identifiers were found and whether they hold: never their values.
                    "identifiers": [[i.kind, i.valid] for i in analysis.extraction.identifiers],
                    "reasons": list(classification.reasons),
                },
            ),
            Event(
                message_id=row.id,
                at=now,
                actor="decide",
                kind="decided",
                detail={"action": decision.action.value, "reasons": list(decision.reasons)},
            ),
        ]
    )
    if analysis.message.dropped:  # processed without the parts over the limits: staff must know
        session.add(
            Event(
                message_id=row.id,
                at=now,
                actor="record",
                kind="parts_left_out",
                detail={
                    "count": left_out_count(analysis.message.dropped),
                    "notes": list(analysis.message.dropped),
                },
            )
        )
    _settle(row, decision.status)


def left_out_count(notes: tuple[str, ...]) -> int:
    """How many attachments the notes of ``ParsedMessage.dropped`` say were left out."""
    return sum(int(note.split(" ", 1)[0]) for note in notes if note.split(" ", 1)[0].isdigit())


def record_quarantine(session: Session, row: Message, reason: str, *, now: datetime) -> None:
    """An email the pipeline could not handle: kept, visible to staff, and re-processable."""
    row.error = reason[:2000]
    session.add(
        Event(message_id=row.id, at=now, actor=PIPELINE, kind="quarantined", detail={"reason": reason[:300]})
    )
    _settle(row, Status.QUARANTINED)


def _settle(row: Message, status: Status) -> None:
    # ``folder`` is where the email is, set when it is moved; ``status`` says where it belongs. The worker
    # keeps its lease until it has moved the email, so that no other worker moves it at the same time.
    row.status = status
