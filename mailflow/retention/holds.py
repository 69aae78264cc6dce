"""Legal holds: a case under a hold keeps all its emails through retention and erasure requests.

Set and lifted by an admin (``mailflow retention hold|release``), each change an event in the chain.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.audit import lock_chain
from mailflow.errors import MailflowError
from mailflow.storage.models import Case, Event

HOLD_SET, HOLD_LIFTED = "legal_hold_set", "legal_hold_lifted"


class NoSuchCase(MailflowError):
    pass


def _case(session: Session, reference: str) -> Case:
    lock_chain(session)
    case = session.scalar(select(Case).where(Case.reference == reference).with_for_update())
    if case is None:
        raise NoSuchCase(f"no case {reference}")
    return case


def set_legal_hold(session: Session, reference: str, *, actor: str, reason: str, now: datetime) -> bool:
    """Put the case under a legal hold; False when it was under one already (the reason stays)."""
    case = _case(session, reference)
    if case.legal_hold_at is not None:
        return False
    case.legal_hold_at, case.legal_hold_by, case.legal_hold_reason = now, actor, reason[:300]
    session.add(
        Event(
            message_id=None,
            at=now,
            actor=actor,
            kind=HOLD_SET,
            detail={"case": reference, "reason": reason[:300]},
        )
    )
    return True


def lift_legal_hold(session: Session, reference: str, *, actor: str, reason: str, now: datetime) -> bool:
    """End the case's legal hold; False when it had none."""
    case = _case(session, reference)
    if case.legal_hold_at is None:
        return False
    case.legal_hold_at = case.legal_hold_by = case.legal_hold_reason = None
    session.add(
        Event(
            message_id=None,
            at=now,
            actor=actor,
            kind=HOLD_LIFTED,
            detail={"case": reference, "reason": reason[:300]},
        )
    )
    return True
