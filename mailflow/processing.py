"""Analyse one stored email and commit its outcome, or quarantine it: shared by ingest and reprocessing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from mailflow.domain import Analysis, Status
from mailflow.errors import UnreadableMessage
from mailflow.ports import BlobStore
from mailflow.stages.act import Actor
from mailflow.stages.limits import OVERSIZE, MessageRefused
from mailflow.stages.record import record_decision, record_quarantine
from mailflow.storage.models import Event, Message

log = logging.getLogger(__name__)


class Processor:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        analyse: Callable[[bytes], Analysis],
        actor: Actor,
        clock: Callable[[], datetime],
    ) -> None:
        self.sessions = sessions
        self.analyse = analyse
        self.actor = actor
        self.clock = clock

    def process(self, message_pk: int, raw: bytes) -> Status:
        try:
            analysis = self.analyse(raw)
        except MessageRefused as exc:  # over a limit: its reason starts with the code the desk explains
            return self._quarantine(message_pk, exc.reason)
        except UnreadableMessage as exc:
            return self._quarantine(message_pk, f"unreadable: {exc}")
        except Exception as exc:  # any bug in a stage must cost one email, never the worker
            log.exception("message %s: analysis failed", message_pk)
            return self._quarantine(message_pk, f"analysis failed: {type(exc).__name__}: {exc}")
        try:
            with self.sessions.begin() as session:
                row = session.get_one(Message, message_pk, with_for_update=True)
                if row.status != Status.RECEIVED:
                    # Another worker took it over (our heartbeat looked stopped) and settled it first:
                    # one outcome, one reply.
                    log.warning("message %s: settled by another worker meanwhile; outcome dropped", row.id)
                    return Status(row.status)
                # What was found and decided first, then what was done: the timeline reads in that order.
                record_decision(session, row, analysis, now=self.clock())
                self.actor.act(session, row, analysis)
        except Exception as exc:
            log.exception("message %s: acting on the decision failed", message_pk)
            return self._quarantine(message_pk, f"action failed: {type(exc).__name__}: {exc}")
        decision = analysis.decision
        log.info(
            "message %s: %s → %s (%.2f)",
            message_pk,
            decision.category,
            decision.action.value,
            decision.confidence,
        )
        return decision.status

    def quarantine(self, message_pk: int, reason: str) -> Status:
        """Quarantine an email without analysing it (refused before work: oversize, poison)."""
        return self._quarantine(message_pk, reason)

    def _quarantine(self, message_pk: int, reason: str) -> Status:
        with self.sessions.begin() as session:
            row = session.get_one(Message, message_pk, with_for_update=True)
            if row.status != Status.RECEIVED:
                log.warning("message %s: settled by another worker meanwhile; not quarantined", row.id)
                return Status(row.status)
            record_quarantine(session, row, reason, now=self.clock())
        log.warning("message %s quarantined", message_pk)
        return Status.QUARANTINED


def reprocess_quarantined(
    processor: Processor, blobs: BlobStore, *, only: list[int] | None = None, actor: str = "cli"
) -> list[tuple[int, Status]]:
    """Run the pipeline again on quarantined emails (after a fix); returns where each one ended.

    Only the ledger changes: the worker's next cycle moves each email out of Quarantine.
    """
    with processor.sessions() as session:
        query = select(Message.id, Message.sha256).where(
            Message.status == Status.QUARANTINED,
            Message.erased_at.is_(None),  # erased on request: gone
        )
        # An email too large to download was never fetched: only its header block is stored, which must
        # not be analysed as if it were the email. Moved back to the inbox, it is a new arrival.
        never_fetched = Message.error.startswith(f"{OVERSIZE}:")
        skipped = session.scalars(query.with_only_columns(Message.id).where(never_fetched)).all()
        for pk in skipped if only is None else set(skipped) & set(only):
            log.warning(
                "message %s: too large, never downloaded; not retried (move it back to the inbox)", pk
            )
        query = query.where(or_(Message.error.is_(None), ~never_fetched))
        if only:
            query = query.where(Message.id.in_(only))
        rows = session.execute(query.order_by(Message.id)).all()
    results = []
    for pk, sha256 in rows:
        with processor.sessions.begin() as session:
            session.get_one(Message, pk).status = Status.RECEIVED
            session.add(Event(message_id=pk, at=processor.clock(), actor=actor, kind="reprocess", detail={}))
        results.append((pk, processor.process(pk, blobs.get(sha256))))
    return results
