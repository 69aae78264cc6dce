"""The triage queue and the page where a person decides one email."""

from __future__ import annotations

import logging
from itertools import groupby

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from mailflow.classification.catalogue import Catalogue
from mailflow.domain import Action, Analysis, Status
from mailflow.storage.models import Message
from mailflow.web import labels, leases, pending
from mailflow.web.archive import page_data
from mailflow.web.context import desk
from mailflow.web.decisions import (
    STAFF_ACTIONS,
    DecisionRefused,
    Part,
    case_placeholder,
    check_decision,
    decide_item,
    hand_draft,
    person_decision,
    preview,
    send_now,
    suggestion,
)
from mailflow.web.forms import DecideForm, ReleaseForm
from mailflow.web.security import CHANGERS, roles_required
from mailflow.web.triage_queries import AGES, QueueFilter, counts, next_after, waiting

bp = Blueprint("triage", __name__)
log = logging.getLogger(__name__)
AUTO = "auto"  # the action the catalogue gives the chosen category
SPLIT_ROWS = 3  # request rows offered for a split (more when the machine found more)
# The category menu's groups, by the channel the catalogue gives each product.
_GROUPS = (
    (lazy_gettext("Handled by email"), (Action.FILE, Action.REQUEST_DOCUMENTS)),
    (lazy_gettext("Needs an appointment"), (Action.BOOK,)),
    (lazy_gettext("Online procedure"), (Action.ONLINE,)),
    (lazy_gettext("Questions for the Information Centre"), (Action.REDIRECT_INFO,)),
    (lazy_gettext("Other"), (Action.REDIRECT_OTHER, Action.IGNORE, Action.TRIAGE)),
)


def category_choices(catalogue: Catalogue) -> list[SelectChoice]:
    """Every category by its staff name, grouped by how the counter handles it."""
    choices = []
    for title, actions in _GROUPS:
        members = [c for c, product in catalogue.products.items() if product.action in actions]
        named = sorted((labels.category(c), c) for c in members)
        choices += [SelectChoice(c, label, optgroup=str(title)) for label, c in named]
    return choices


def _optgroup(choice: SelectChoice) -> str | None:
    return choice.optgroup


def action_choices() -> list[SelectChoice]:
    return [
        SelectChoice(AUTO, gettext("as the category says")),
        *(SelectChoice(a.value, labels.action(a)) for a in STAFF_ACTIONS),
    ]


def found(analysis: Analysis) -> dict[str, object]:
    """What the machine read in the email, in the clerk's words."""
    decision = analysis.decision
    return {
        "requests": [labels.category(c) for c in decision.intents] if len(decision.intents) > 1 else [],
        "documents": [labels.kind(d.kind) for d in analysis.extraction.documents],
        "why": labels.explain((decision.reasons or ("",))[-1]),
    }


def _analysis(message_id: int) -> Analysis:
    d = desk()
    with d.archive() as db:
        row = db.get(Message, message_id)
        if row is None:
            abort(404)
        sha256 = row.sha256
    return d.analysis(sha256)


@bp.route("/")
@bp.route("/triage")
@roles_required(*CHANGERS)
def queue():
    d = desk()
    now = d.clock()
    with d.archive() as db:
        items = waiting(db)
    f = QueueFilter.from_args(request.args)
    shown = [i for i in items if f.keeps(i, now)]
    return render_template(
        "queue.html",
        items=shown,
        counts=counts(items, now),
        f=f,
        ages=list(AGES),
        age_names={
            "1h": gettext("1 hour"),
            "1d": gettext("1 day"),
            "3d": gettext("3 days"),
            "7d": gettext("7 days"),
        },
        now=now,
        holders=leases.active(d.archive, now=now),
    )


@bp.route("/triage/<int:message_id>")
@roles_required(*CHANGERS)
def item(message_id: int):
    d = desk()
    data = page_data(message_id)
    row = data["row"]
    held = None
    if row.status == "triage":  # type: ignore[attr-defined]
        held = leases.take(d.sessions, message_id, current_user.username, now=d.clock(), lease=d.lease)
    analysis = _analysis(message_id)
    category, action = suggestion(d.app, analysis)
    try:
        suggested = person_decision(d.app, analysis, Part(category, action), "", ())
        text, draft = preview(d.app, analysis, suggested), hand_draft(d.app, analysis, suggested)
    except (DecisionRefused, ValueError):
        text = draft = ""
    d.log(current_user.username, "viewed", message_id, what="email", where="triage")
    form = DecideForm()
    form.category.choices = category_choices(d.app.catalogue)
    form.action.choices = action_choices()
    # The action follows the chosen category unless the person picks one: a suggested "book" must not
    # stick to a category chosen instead.
    form.category.data, form.action.data = category, AUTO
    form.reply_text.data = draft
    requests = list(analysis.decision.intents or ())
    split_rows = [*requests, *[""] * max(0, SPLIT_ROWS - len(requests))][: max(SPLIT_ROWS, len(requests))]
    return render_template(
        "triage_item.html",
        **data,
        analysis=analysis,
        suggested=(category, action),
        preview_text=text,
        case_placeholder=case_placeholder(d.app),
        form=form,
        release_form=ReleaseForm(),
        held=held,
        mine=held is not None and held.username == current_user.username,
        unverified=unverified(analysis),
        split_rows=split_rows,
        split_menu=[(group, list(members)) for group, members in groupby(form.category.choices, _optgroup)],
        found=found(analysis),
    )


@bp.route("/triage/<int:message_id>/preview")
@roles_required(*CHANGERS)
def reply_preview(message_id: int):
    d = desk()
    analysis = _analysis(message_id)
    try:
        part = Part(request.args.get("category", ""), _action(request.args.get("action", "")))
        decision = person_decision(d.app, analysis, part, current_user.username, ())
        if request.args.get("draft"):  # the text a hand-written reply starts from
            return {"action": decision.action.value, "text": hand_draft(d.app, analysis, decision)}
        text = preview(d.app, analysis, decision) or gettext(
            "(no reply: %(action)s)", action=labels.action(decision.action)
        )
        return {"action": decision.action.value, "text": text}
    except DecisionRefused as exc:
        return {"action": "", "text": f"({exc})"}
    except (ValueError, KeyError):
        return {"action": "", "text": gettext("(no reply can be written for this category with this action)")}


def unverified(analysis: Analysis) -> bool:
    """The sender's domain failed DMARC: the email may not come from whom it claims."""
    return analysis.screening.sender_verdict == "fail"


def _action(value: str) -> Action | None:
    """The chosen action; ``auto`` (or nothing) is the category's channel from the catalogue."""
    return None if value in ("", AUTO) else Action(value)


def _parts(form: DecideForm) -> list[Part]:
    outcome = form.outcome.data
    if outcome == "spam":
        return [Part("spam", Action.IGNORE)]
    if outcome == "split":
        chosen = zip(request.form.getlist("part_category"), request.form.getlist("part_action"), strict=False)
        parts = [Part(category, _action(action)) for category, action in chosen if category]
        if len(parts) < 2:
            raise DecisionRefused(gettext("A split needs two or more requests."))
        return parts
    if outcome in {"accept", "choose", "hand"}:
        return [Part(form.category.data or "", _action(form.action.data or ""))]
    raise DecisionRefused(gettext("Unknown decision."))


@bp.route("/triage/<int:message_id>/decide", methods=["POST"])
@roles_required(*CHANGERS)
def decide(message_id: int):
    d = desk()
    form = DecideForm()
    if not form.validate_on_submit():
        abort(400)
    with d.archive() as db:
        before = waiting(db)
    try:
        parts = _parts(form)
        if form.outcome.data == "accept":
            analysis = _analysis(message_id)
            if unverified(analysis) and not form.sender_checked.data:
                raise DecisionRefused(
                    gettext("The sender is not verified: confirm that you checked it before accepting.")
                )
            category, action = suggestion(d.app, analysis)
            parts = [Part(category, action)]
        hand = form.reply_text.data or "" if form.outcome.data == "hand" else ""
        if d.settings.desk_undo_seconds > 0:
            check_decision(d.app, message_id, current_user.username, parts, hand)
            pending.hold(d.app, message_id, current_user.username, parts, hand, now=d.clock())
        else:
            status = decide_item(d.app, message_id, current_user.username, parts, hand)
            send_now(d.app)
            flash(
                gettext(
                    "Email %(number)s decided (%(status)s).",
                    number=message_id,
                    status=labels.named(labels.STATUSES, status.value),
                ),
                "ok",
            )
    except DecisionRefused as exc:
        flash(gettext("Not done: %(why)s", why=exc), "error")
        return redirect(url_for("triage.item", message_id=message_id))
    except ValueError:  # what deeper code refused, in its own (English, technical) words: not for the clerk
        log.info("message %s: decision refused by the reply or its action", message_id, exc_info=True)
        flash(gettext("Not done: this category and this action do not go together."), "error")
        return redirect(url_for("triage.item", message_id=message_id))
    following = next_after(before, message_id)
    if following is None:
        return redirect(url_for("triage.queue"))
    return redirect(url_for("triage.item", message_id=following))


@bp.route("/triage/<int:message_id>/undo", methods=["POST"])
@roles_required(*CHANGERS)
def undo(message_id: int):
    if not ReleaseForm().validate_on_submit():
        abort(400)
    d = desk()
    if pending.undo(d.app, message_id, current_user.username, now=d.clock()):
        flash(gettext("Undone: nothing was done with email %(number)s.", number=message_id), "ok")
    elif _status(message_id) == Status.TRIAGE:  # the window passed, and applying it failed
        flash(
            gettext(
                "The decision on email %(number)s could not be applied: it waits in the queue again.",
                number=message_id,
            ),
            "error",
        )
    else:
        flash(
            gettext("Too late to undo: the decision on email %(number)s was applied.", number=message_id),
            "error",
        )
    return redirect(url_for("triage.item", message_id=message_id))


def _status(message_id: int) -> str | None:
    with desk().archive() as db:
        row = db.get(Message, message_id)
        return row.status if row is not None else None


@bp.route("/triage/<int:message_id>/release", methods=["POST"])
@roles_required(*CHANGERS)
def release(message_id: int):
    if not ReleaseForm().validate_on_submit():
        abort(400)
    d = desk()
    with d.sessions.begin() as db:
        leases.release(db, message_id, current_user.username)
    return redirect(url_for("triage.queue"))
