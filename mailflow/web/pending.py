"""Decisions with an undo window: a person's decision waits a few seconds before anything is done.

Nothing of a decision — case, documents, reply, labelled example — exists until its window has
passed, so taking it back is simply forgetting it: no reply to recall, no case to close. The desk
applies due decisions before serving each request and from a background thread (``serve``);
applying one is ``decisions.decide_item``, with the same checks as an immediate decision. The person
keeps the item's lease meanwhile, so nobody else decides it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext
from sqlalchemy import delete, select

from mailflow.bootstrap import App
from mailflow.domain import Action, Status
from mailflow.storage.desk_models import PendingDecision
from mailflow.storage.models import Event, Message
from mailflow.web import leases
from mailflow.web.decisions import DecisionRefused, Part, decide_item, send_now

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Waiting:
    """A decision of the current person still within its window: shown with an undo button."""

    message_id: int
    parts: tuple[Part, ...]
    due_at: datetime


def hold(
    app: App, message_id: int, username: str, parts: Sequence[Part], hand_text: str, *, now: datetime
) -> None:
    """Queue the decision for ``app.settings.desk_undo_seconds``; DecisionRefused when it is not
    ``username``'s to decide (decided already, someone else's, or a decision already waiting)."""
    window = timedelta(seconds=app.settings.desk_undo_seconds)
    with app.sessions.begin() as session:
        row = session.scalars(select(Message).where(Message.id == message_id).with_for_update()).one_or_none()
        if row is None:
            raise DecisionRefused(gettext("No such email."))
        if row.status != Status.TRIAGE:
            raise DecisionRefused(gettext("This email was decided already."))
        if not leases.holds(session, message_id, username, now=now):
            raise DecisionRefused(gettext("Your hold on this email ran out, or someone else has it."))
        if session.get(PendingDecision, message_id) is not None:
            raise DecisionRefused(gettext("A decision on this email is waiting already."))
        session.add(
            PendingDecision(
                message_id=message_id,
                username=username,
                parts=[[part.category, part.action.value if part.action else None] for part in parts],
                hand_text=hand_text,
                decided_at=now,
                due_at=now + window,
            )
        )


def undo(app: App, message_id: int, username: str, *, now: datetime) -> bool:
    """Take back ``username``'s waiting decision on the email; False when there is none any more."""
    with app.sessions.begin() as session:
        taken = session.execute(
            delete(PendingDecision).where(
                PendingDecision.message_id == message_id,
                PendingDecision.username == username,
                PendingDecision.due_at > now,
            )
        )
        if taken.rowcount != 1:
            return False
        session.add(
            Event(message_id=message_id, at=now, actor=username, kind="staff_decision_undone", detail={})
        )
        return True


def apply_due(app: App, *, now: datetime) -> int:
    """Apply every decision whose window has passed; returns how many were applied."""
    with app.sessions() as session:
        due = session.scalars(select(PendingDecision).where(PendingDecision.due_at <= now)).all()
        session.expunge_all()
    applied = 0
    for pending in due:
        with app.sessions.begin() as session:
            # Whoever deletes it applies it: a second desk process finds nothing left to do.
            if (
                session.execute(
                    delete(PendingDecision).where(PendingDecision.message_id == pending.message_id)
                ).rowcount
                != 1
            ):
                continue
        try:
            decide_item(app, pending.message_id, pending.username, _parts(pending.parts), pending.hand_text)
            applied += 1
        except (DecisionRefused, ValueError) as exc:
            log.warning("message %s: waiting decision not applied: %s", pending.message_id, exc)
            with app.sessions.begin() as session:
                session.add(
                    Event(
                        message_id=pending.message_id,
                        at=now,
                        actor=pending.username,
                        kind="staff_decision_failed",
                        detail={"reason": str(exc)[:300]},
                    )
                )
    if applied:
        send_now(app)
    return applied


def waiting_for(app: App, username: str, *, now: datetime) -> list[Waiting]:
    with app.sessions() as session:
        rows = session.scalars(
            select(PendingDecision)
            .where(PendingDecision.username == username, PendingDecision.due_at > now)
            .order_by(PendingDecision.due_at)
        ).all()
        return [Waiting(row.message_id, _parts(row.parts), row.due_at) for row in rows]


def _parts(stored: Sequence[Sequence[str | None]]) -> tuple[Part, ...]:
    return tuple(Part(str(category), Action(action) if action else None) for category, action in stored)
