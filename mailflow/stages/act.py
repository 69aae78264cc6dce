"""Act on a decision: store the documents, open or join a case, queue the reply.

Runs inside the transaction that also records the decision (``record``), so an email's outcome is
committed whole or not at all; sending the reply happens later, from the outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailflow.domain import Action, Analysis, Decision, ParsedMessage
from mailflow.identifiers import mask
from mailflow.ports import BlobStore
from mailflow.storage.models import (
    AttachmentRecord,
    AuditHead,
    Case,
    Event,
    Message,
    Reply,
    SuppressedAddress,
)

CASE_ACTIONS = (Action.FILE, Action.REQUEST_DOCUMENTS)


class ComposedReply(Protocol):
    to: str
    subject: str
    message_id: str
    language: str
    data: bytes


class Composer(Protocol):
    def compose(
        self,
        *,
        action: str,
        language: str,
        to_address: str,
        to_name: str,
        original_subject: str,
        original_message_id: str | None,
        original_references: Sequence[str],
        case_ref: str | None,
        product: Mapping[str, Any],
        missing_documents: Sequence[str],
        idempotency_key: str,
        automatic: bool = True,
    ) -> ComposedReply: ...


ProductContext = Callable[[str, str], Mapping[str, Any]]


def compose_reply(
    composer: Composer,
    message: ParsedMessage,
    decision: Decision,
    *,
    case_ref: str | None,
    product: Mapping[str, Any],
    idempotency_key: str,
    automatic: bool = True,
) -> ComposedReply:
    """The reply to ``message`` for ``decision``: always to its sender, in the decision's language."""
    return composer.compose(
        action=decision.action.value,
        language=decision.language,
        to_address=message.from_address,
        to_name=message.from_name,
        original_subject=message.subject,
        original_message_id=message.message_id,
        original_references=message.references,
        case_ref=case_ref,
        product=product,
        missing_documents=decision.missing_documents,
        idempotency_key=idempotency_key,
        automatic=automatic,
    )


@dataclass(frozen=True)
class ReplyLimits:
    """RFC 3834's "not too often": one automatic reply per sender per period, and a global hourly cap."""

    sender_period: timedelta = timedelta(hours=24)
    hourly_cap: int = 500


@dataclass(frozen=True)
class ActOutcome:
    case_ref: str | None
    case_joined: bool
    reply_id: int | None


class Actor:
    def __init__(
        self,
        *,
        blobs: BlobStore,
        composer: Composer,
        product_context: ProductContext,
        case_prefix: str,
        clock: Callable[[], datetime],
        limits: ReplyLimits = ReplyLimits(),
    ) -> None:
        self.blobs = blobs
        self.composer = composer
        self.product_context = product_context
        self.case_prefix = case_prefix
        self.clock = clock
        self.limits = limits
        # Whom the event log names for what this actor does: the pipeline, or the person deciding.
        self.name = "act"

    def act(self, session: Session, row: Message, analysis: Analysis) -> ActOutcome:
        self._store_documents(session, row, analysis)
        decision = analysis.decision
        case, joined = None, False
        if decision.action in CASE_ACTIONS:
            case = self._thread_case(session, analysis)
            joined = case is not None
            if case is None:
                case = self._open_case(session, row, analysis)
            else:
                self._complete_case(session, row, case, analysis)
            row.case_id = case.id
        if analysis.bounce is not None and analysis.bounce.hard:
            self._suppress_bounced(session, row, analysis.bounce.our_message_ids)
        reply_id = None
        if decision.action.replies:
            refusal = self._reply_refusal(session, analysis.message.from_address)
            if refusal is None:
                reply_id = self._queue_reply(session, row, analysis, case)
            else:
                session.add(
                    Event(
                        message_id=row.id,
                        at=self.clock(),
                        actor=self.name,
                        kind="reply_withheld",
                        detail={"reason": refusal},
                    )
                )
        return ActOutcome(case.reference if case else None, joined, reply_id)

    def _reply_refusal(self, session: Session, address: str) -> str | None:
        """Why no automatic reply may go to ``address`` now, or None."""
        # Serialise this check across workers: every outcome transaction takes the audit head's lock.
        session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update())
        if session.get(SuppressedAddress, address.lower()) is not None:
            return "address suppressed after a hard bounce"
        now = self.clock()
        recent = session.scalar(
            select(func.count(Reply.id)).where(
                Reply.to_address == address.lower(), Reply.created_at > now - self.limits.sender_period
            )
        )
        if recent:
            return "this sender already had an automatic reply within the period"
        last_hour = session.scalar(
            select(func.count(Reply.id)).where(Reply.created_at > now - timedelta(hours=1))
        )
        if (last_hour or 0) >= self.limits.hourly_cap:
            return "the hourly cap of automatic replies is reached"
        return None

    def _suppress_bounced(self, session: Session, row: Message, our_ids: tuple[str, ...]) -> None:
        if not our_ids:
            return
        now = self.clock()
        for reply in session.scalars(select(Reply).where(Reply.rfc_message_id.in_(our_ids))):
            address = reply.to_address.lower()
            if session.get(SuppressedAddress, address) is None:
                session.add(
                    SuppressedAddress(
                        address=address,
                        reason="hard bounce of our reply",
                        since=now,
                        source_message_id=row.id,
                    )
                )
            session.add(
                Event(
                    message_id=reply.message_id,
                    at=now,
                    actor=self.name,
                    kind="reply_bounced",
                    detail={"reply": reply.id, "bounce": row.id},
                )
            )

    def _store_documents(self, session: Session, row: Message, analysis: Analysis) -> None:
        # Stored when the email first went through: a person deciding a triage item acts on it again.
        if session.scalar(select(AttachmentRecord.id).where(AttachmentRecord.message_id == row.id).limit(1)):
            return
        attachments = analysis.message.attachments
        for position, (attachment, document) in enumerate(
            zip(attachments, analysis.extraction.documents, strict=True)
        ):
            self.blobs.put(attachment.payload)
            session.add(
                AttachmentRecord(
                    message_id=row.id,
                    position=position,
                    filename=mask(attachment.filename),  # the full name stays in the raw email only
                    storage_name=attachment.storage_name,
                    declared_type=attachment.declared_type,
                    sniffed_type=attachment.sniffed_type,
                    kind=document.kind,
                    sha256=attachment.sha256,
                    size=attachment.size,
                )
            )

    def _thread_case(self, session: Session, analysis: Analysis) -> Case | None:
        """The case this email answers in its thread (verified by the thread stage), if still on file.

        Locked: a person closing it in the desk meanwhile is either before this join (which then sees it
        closed) or after it, never overwritten by it."""
        if analysis.thread is None:
            return None
        reference = analysis.thread.case.reference
        return session.scalar(select(Case).where(Case.reference == reference).with_for_update())

    def _open_case(self, session: Session, row: Message, analysis: Analysis) -> Case:
        decision = analysis.decision
        now = self.clock()
        case = Case(
            category=decision.category,
            status="incomplete" if decision.missing_documents else "complete",
            resident_address=analysis.message.from_address,
            opened_at=now,
            missing_documents=list(decision.missing_documents),
        )
        session.add(case)
        session.flush()  # the reference is made from the database's id: unique across workers
        case.reference = f"{self.case_prefix}-{now.year}-{case.id:06d}"
        session.add(
            Event(
                message_id=row.id,
                at=now,
                actor=self.name,
                kind="case_opened",
                detail={"case": case.reference},
            )
        )
        return case

    def _complete_case(self, session: Session, row: Message, case: Case, analysis: Analysis) -> None:
        if case.is_closed:
            # Filed into a closed case: by a person in triage (the pipeline holds such emails for one),
            # or the case was closed while this email was being read. Either way the case has new
            # work, so it opens again, and the log says so and why (this email).
            case.reopen()
            session.add(
                Event(
                    message_id=row.id,
                    at=self.clock(),
                    actor=self.name,
                    kind="case_reopened",
                    detail={"case": case.reference, "case_status": case.status},
                )
            )
        if case.status == "incomplete" and not analysis.decision.missing_documents:
            case.status, case.missing_documents = "complete", []
        session.add(
            Event(
                message_id=row.id,
                at=self.clock(),
                actor=self.name,
                kind="case_joined",
                detail={"case": case.reference, "case_status": case.status},
            )
        )

    def _queue_reply(self, session: Session, row: Message, analysis: Analysis, case: Case | None) -> int:
        message, decision = analysis.message, analysis.decision
        key = f"reply:{row.mailbox}:{row.sha256}"
        reply = compose_reply(
            self.composer,
            message,
            decision,
            case_ref=case.reference if case else None,
            product=self.product_context(decision.category, decision.language),
            idempotency_key=key,
        )
        now = self.clock()
        record = Reply(
            message_id=row.id,
            idempotency_key=key,
            rfc_message_id=reply.message_id,
            to_address=reply.to,
            subject=reply.subject,
            language=reply.language,
            action=decision.action.value,
            data=reply.data,
            status="pending",
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
        session.add(record)
        session.flush()
        session.add(
            Event(
                message_id=row.id, at=now, actor=self.name, kind="reply_queued", detail={"reply": record.id}
            )
        )
        return record.id
