"""A person's decision on a triage item: re-analyse the stored email, act on the decision, record who.

Everything a decision changes is one transaction: the actor's work (documents, case, queued reply),
the decision record, the labelled example and the events naming the person. The outbox sends the
reply afterwards, as it does for the worker's own decisions. A hand-written reply is sent as typed,
with the case reference in place of the draft's placeholder and without the automatic-reply notice.
The email itself leaves the mailbox's Triage folder on the worker's next cycle, which reads its new
status from the ledger (``mailflow.storage.refiles``): the desk needs no IMAP credentials.
"""

from __future__ import annotations

import copy
import logging
import sys
from dataclasses import dataclass, is_dataclass, replace
from datetime import timedelta
from email import message_from_bytes, policy
from typing import Any

from flask_babel import gettext
from sqlalchemy import select

from mailflow.bootstrap import App
from mailflow.domain import Action, Analysis, Decision, Status
from mailflow.stages.act import CASE_ACTIONS, compose_reply
from mailflow.storage.desk_models import LabelledExample
from mailflow.storage.models import Case, DecisionRecord, Event, Message, Reply
from mailflow.web import leases
from mailflow.web.hand_reply import hand_written

log = logging.getLogger(__name__)
STAFF_ACTIONS = tuple(a for a in Action if a is not Action.TRIAGE)


class DecisionRefused(Exception):
    """The decision cannot be made as asked; the message says why, for the person."""


@dataclass(frozen=True)
class Part:
    category: str
    action: Action | None = None  # None: the product's channel from the catalogue


def channel(app: App, category: str, documents: list[str]) -> tuple[Action, tuple[str, ...]]:
    """The catalogue's action for a category, asking for documents when none required is attached."""
    product = app.catalogue.product(category)
    required = set(product.required_documents)
    if product.action is Action.FILE and required and not required & set(documents):
        return Action.REQUEST_DOCUMENTS, product.required_documents
    return product.action, ()


# A reply with these actions points to the product's page: a product without one cannot have it.
LINKED_ACTIONS = frozenset({Action.BOOK, Action.ONLINE, Action.REDIRECT_INFO})


def person_decision(app: App, analysis: Analysis, part: Part, by: str, intents: tuple[str, ...]) -> Decision:
    if part.category not in app.catalogue.products:
        raise DecisionRefused(gettext("Unknown category."))
    kinds = [d.kind for d in analysis.extraction.documents]
    action, missing = channel(app, part.category, kinds)
    if part.action is not None:
        action = part.action
        product = app.catalogue.product(part.category)
        if action in LINKED_ACTIONS and product.product_id is None and product.link is None:
            raise DecisionRefused(
                gettext(
                    "This category has no link for that reply: choose another action, or the category's own."
                )
            )
        missing = (
            app.catalogue.product(part.category).required_documents
            if action is Action.REQUEST_DOCUMENTS
            else ()
        )
    if action is Action.REQUEST_DOCUMENTS and not app.catalogue.product(part.category).required_documents:
        raise DecisionRefused(gettext("This category asks for no documents: choose another action."))
    if action is Action.TRIAGE:
        raise DecisionRefused(
            gettext("This category has no automatic action: choose one, or write the reply.")
        )
    return Decision(
        category=part.category,
        action=action,
        confidence=1.0,
        language=analysis.decision.language,
        intents=intents,
        missing_documents=tuple(missing),
        reasons=(f"decided by {by}",),
    )


def suggestion(app: App, analysis: Analysis) -> tuple[str, Action | None]:
    """The machine's best guess made actionable: its category, and that category's channel."""
    kinds = [d.kind for d in analysis.extraction.documents]
    action, _ = channel(app, analysis.decision.category, kinds)
    return analysis.decision.category, None if action is Action.TRIAGE else action


def writable(app: App, analysis: Analysis, decision: Decision) -> tuple[str, str]:
    """The reply's subject and text; DecisionRefused, in words, when this decision cannot have one."""
    try:
        return _rendered(app, analysis, decision, automatic=False)
    except ValueError as exc:
        raise DecisionRefused(
            gettext("No reply can be written for this category with this action: choose another action.")
        ) from exc


def preview(app: App, analysis: Analysis, decision: Decision) -> str:
    """The text of the reply this decision would send ('' when it sends none)."""
    if not decision.action.replies:
        return ""
    subject, content = _rendered(app, analysis, decision, automatic=True)
    return f"{gettext('Subject:')} {subject}\n\n{content}"


def hand_draft(app: App, analysis: Analysis, decision: Decision) -> str:
    """The text a person starts a hand-written reply from: the reply for this decision, without the
    automatic-reply notice; ``case_placeholder`` stands where the case reference will be."""
    if not decision.action.replies:
        return ""
    return _rendered(app, analysis, decision, automatic=False)[1]


def case_placeholder(app: App) -> str:
    """Stands for the case reference in a draft; replaced by the real one when the reply is sent."""
    return f"{app.settings.case_prefix}-NEW"


def _rendered(app: App, analysis: Analysis, decision: Decision, *, automatic: bool) -> tuple[str, str]:
    reply = compose_reply(
        app.composer,
        analysis.message,
        decision,
        case_ref=case_placeholder(app) if decision.action in CASE_ACTIONS else None,
        product=app.product_context(decision.category, decision.language),
        idempotency_key="preview",
        automatic=automatic,
    )
    parsed = message_from_bytes(reply.data, policy=policy.default)
    body = parsed.get_body(("plain",))  # type: ignore[attr-defined]
    return reply.subject, body.get_content().replace("\r\n", "\n") if body else ""


def _with_case(app: App, text: str, case: Case | None) -> str:
    """The hand-written text with the real case reference where the draft had its placeholder."""
    placeholder = case_placeholder(app)
    if placeholder not in text:
        return text
    if case is None:
        raise DecisionRefused(
            gettext(
                "This reply opens no case: remove %(placeholder)s from the text.", placeholder=placeholder
            )
        )
    return text.replace(placeholder, case.reference)


@dataclass
class _PartRow:
    """Stands in for the email when acting on its second and later requests: each gets its own reply."""

    id: int
    mailbox: str
    sha256: str
    case_id: int | None = None


def person_actor(app: App, username: str) -> Any:
    """The worker's actor, without the limits meant for automatic replies.

    "One automatic reply per sender per period" (RFC 3834) is about replies nobody looked at; a
    person's decision, and each request of a split, gets its reply. Suppressed addresses stay so.
    """
    actor = copy.copy(app.actor)
    actor.name = username  # the case this opens or reopens, the reply it queues: the person's doing
    limits = getattr(actor, "limits", None)
    if limits is not None and is_dataclass(limits):
        actor.limits = replace(limits, sender_period=timedelta(0), hourly_cap=sys.maxsize)
    return actor


def _only_request(analysis: Analysis) -> Analysis:
    # The documents were stored with the first request; the others only open cases and reply.
    return replace(
        analysis,
        message=replace(analysis.message, attachments=()),
        extraction=replace(analysis.extraction, documents=()),
    )


def check_decision(app: App, message_id: int, username: str, parts: list[Part], hand_text: str = "") -> None:
    """DecisionRefused now for what ``decide_item`` would refuse in the decision itself (an unknown
    category or action, a hand-written text for an action without a reply), before it waits."""
    if not parts:
        raise DecisionRefused(gettext("Nothing was decided."))
    with app.sessions() as session:
        row = session.get(Message, message_id)
        if row is None:
            raise DecisionRefused(gettext("No such email."))
        sha256 = row.sha256
    analysis = app.analyser.analyse(app.blobs.get(sha256))
    decisions = [person_decision(app, analysis, part, username, ()) for part in parts]
    if hand_text.strip() and not decisions[0].action.replies:
        raise DecisionRefused(gettext("This action sends no reply to write."))
    for decision in decisions:  # what the reply's templates refuse is refused now, not after the wait
        if decision.action.replies:
            writable(app, analysis, decision)
    placeholder = case_placeholder(app)
    if placeholder in hand_text and decisions[0].action not in CASE_ACTIONS:
        raise DecisionRefused(
            gettext(
                "This reply opens no case: remove %(placeholder)s from the text.", placeholder=placeholder
            )
        )


def decide_item(app: App, message_id: int, username: str, parts: list[Part], hand_text: str = "") -> Status:
    """Act on a triage item as ``username`` decided; DecisionRefused when it is not theirs to decide."""
    if not parts:
        raise DecisionRefused(gettext("Nothing was decided."))
    with app.sessions.begin() as session:
        row = session.get(Message, message_id)
        if row is None:
            raise DecisionRefused(gettext("No such email."))
        sha256 = row.sha256
    analysis = app.analyser.analyse(app.blobs.get(sha256))
    intents = tuple(p.category for p in parts) if len(parts) > 1 else ()
    decisions = [person_decision(app, analysis, part, username, intents) for part in parts]
    if hand_text.strip() and not decisions[0].action.replies:
        raise DecisionRefused(gettext("This action sends no reply to write."))
    now = app.clock()
    actor = person_actor(app, username)
    with app.sessions.begin() as session:
        row = session.scalars(select(Message).where(Message.id == message_id).with_for_update()).one()
        if row.status != Status.TRIAGE:
            raise DecisionRefused(gettext("This email was decided already."))
        if not leases.holds(session, message_id, username, now=now):
            raise DecisionRefused(gettext("Your hold on this email ran out, or someone else has it."))
        machine = session.scalar(
            select(DecisionRecord)
            .where(DecisionRecord.message_id == message_id)
            .order_by(DecisionRecord.id.desc())
        )
        for index, decision in enumerate(decisions):
            target: Any = row if index == 0 else _PartRow(row.id, row.mailbox, f"{row.sha256}:{index + 1}")
            outcome = actor.act(
                session,
                target,
                replace(analysis if index == 0 else _only_request(analysis), decision=decision),
            )
            if index and row.case_id is None and target.case_id is not None:
                row.case_id = target.case_id
            if index == 0 and hand_text.strip():
                if outcome.reply_id is None:  # e.g. the address is suppressed after hard bounces
                    raise DecisionRefused(gettext("No reply may go to this address; nothing was done."))
                reply = session.get_one(Reply, outcome.reply_id)
                case = session.get(Case, row.case_id) if row.case_id is not None else None
                reply.data = hand_written(reply.data, _with_case(app, hand_text, case))
            session.add(_record(row.id, decision, username, now, analysis.screening.sender_verdict))
        first = decisions[0]
        session.add(
            LabelledExample(
                message_id=row.id,
                sha256=row.sha256,
                category=first.category,
                action=first.action.value,
                intents=list(intents),
                language=first.language,
                labelled_by=username,
                labelled_at=now,
                machine_category=machine.category if machine else None,
                machine_action=machine.action if machine else None,
            )
        )
        session.add(
            Event(
                message_id=row.id,
                at=now,
                actor=username,
                kind="staff_decided",
                detail={
                    "parts": [{"category": d.category, "action": d.action.value} for d in decisions],
                    "hand_reply": bool(hand_text.strip()),
                    "machine": {"category": machine.category, "action": machine.action} if machine else None,
                },
            )
        )
        status = Status.IGNORED if all(d.action is Action.IGNORE for d in decisions) else Status.PROCESSED
        row.status = status
        leases.release(session, message_id, username)
    log.info("message %s decided by a person: %s", message_id, status.value)
    return status


def _record(message_id: int, decision: Decision, by: str, now: Any, verdict: str) -> DecisionRecord:
    return DecisionRecord(
        message_id=message_id,
        decided_at=now,
        decided_by=by,
        category=decision.category,
        action=decision.action.value,
        confidence=decision.confidence,
        language=decision.language,
        intents=list(decision.intents),
        reasons=list(decision.reasons),
        missing_documents=list(decision.missing_documents),
        sender_verdict=verdict,
    )


def send_now(app: App) -> None:
    """Hand the queued replies to the transport now; what fails is retried by the worker."""
    try:
        app.outbox.deliver_due()
    except Exception:
        log.exception("sending after a desk decision failed; the worker's outbox will retry")
