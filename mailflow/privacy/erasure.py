"""A person's erasure request (GDPR art. 17): what ``find_subject`` finds about them, erased through the
retention ``Eraser`` in one transaction, or nothing at all.

Erased: their emails (and identical copies of them, kept as duplicates) and their cases: the case's
resident address and notes go, its reference stays as a tombstone. Kept: emails of *other* senders
filed in their case (someone else's data; the officer decides about those by hand), and someone else's
case one of their emails was filed in (only their email in it goes).

Refused, changing nothing, while a retention duty applies (docs/retention.md): a legal hold on one of
the cases the erasure touches, or one of their emails still waiting for a decision (not yet processed,
or in triage: a person decides it first, then it can be erased).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.domain import Status
from mailflow.privacy.subjects import Findings
from mailflow.retention.erase import Erased, Eraser, ErasureRefused, LegalHoldError
from mailflow.storage.models import Case, Event, Message

SUBJECT_ERASED = "subject_erased"  # the request itself in the log: the person by digest only
WAITING = (Status.RECEIVED, Status.TRIAGE)


@dataclass
class ErasurePlan:
    messages: list[int] = field(default_factory=list)  # their emails still kept, with copies
    cases: list[int] = field(default_factory=list)  # their cases, not yet erased
    references: list[str] = field(default_factory=list)  # of those cases
    kept: list[int] = field(default_factory=list)  # other senders' emails in their cases: not erased
    held: list[str] = field(default_factory=list)  # cases under a legal hold the erasure would touch
    waiting: list[int] = field(default_factory=list)  # their emails not yet decided

    @property
    def empty(self) -> bool:
        return not self.messages and not self.cases

    def refusal(self) -> ErasureRefused | None:
        """Why this cannot be erased now (``str()`` names the cases or emails), or None."""
        if self.held:
            return LegalHoldError("a legal hold applies to case", held=self.held)
        if self.waiting:
            return ErasureRefused(
                "emails still waiting for a decision (in triage)", held=map(str, self.waiting)
            )
        return None


def plan_erasure(session: Session, findings: Findings) -> ErasurePlan:
    """What erasing ``findings`` would remove and keep, and whether it is refused; changes nothing."""
    plan = ErasurePlan()
    own = [m for m in findings.messages if m.erased_at is None]
    ids = [m.id for m in own]
    copies = session.scalars(
        select(Message.id).where(Message.duplicate_of_id.in_(ids), Message.erased_at.is_(None))
    ).all()
    plan.messages = sorted(set(ids) | set(copies))
    cases = [c for c in findings.cases if c.erased_at is None]
    plan.cases = [c.id for c in cases]
    plan.references = [c.reference or str(c.id) for c in cases]
    plan.kept = [m.id for m in findings.withheld if m.erased_at is None]
    touched = set(plan.cases) | {m.case_id for m in own if m.case_id is not None}
    if touched:
        plan.held = sorted(
            c.reference or str(c.id)
            for c in session.scalars(
                select(Case).where(Case.id.in_(touched), Case.legal_hold_at.is_not(None))
            )
        )
    plan.waiting = sorted(
        session.scalars(select(Message.id).where(Message.id.in_(plan.messages), Message.status.in_(WAITING)))
    )
    return plan


def erase_subject(
    eraser: Eraser, plan: ErasurePlan, *, reason: str, actor: str, digests: list[str]
) -> Erased:
    """Erase what ``plan`` lists under the rule ``request``; ``ErasureRefused`` (``LegalHoldError``)
    when it is refused, before or (a hold set, an email back in triage meanwhile) during the erasure."""
    refused = plan.refusal()
    if refused is not None:
        raise refused

    def check_and_record(session: Session, erased: Erased) -> None:
        waiting = session.scalars(
            select(Message.id).where(Message.id.in_(plan.messages), Message.status.in_(WAITING))
        ).all()
        if waiting:
            raise ErasureRefused("emails still waiting for a decision (in triage)", held=map(str, waiting))
        session.add(
            Event(
                message_id=None,
                at=eraser.clock(),
                actor=actor,
                kind=SUBJECT_ERASED,
                detail={
                    "subject": digests,
                    "emails": erased.messages,
                    "cases": erased.cases,
                    "kept": plan.kept,
                    "reason": reason[:300],
                },
            )
        )

    return eraser.request(
        plan.messages, plan.cases, reason=reason, actor=actor, spare=set(plan.kept), within=check_and_record
    )
