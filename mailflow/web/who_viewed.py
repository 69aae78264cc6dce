"""The auditor's "who viewed this": for one email, and for one person found by address or national number.

Read-only: what it writes is the log's own entry that someone looked (a person by digest, never by
address or number). The person is asked for by POST, so that an address or a number never stands in
an address bar, a browser's history or a proxy's access log.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, render_template
from flask_babel import gettext, lazy_gettext
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from mailflow.privacy.readers import sandboxed_readers
from mailflow.privacy.subjects import NotAnIdentifier, Subject, find_subject
from mailflow.storage.models import Event, Message
from mailflow.web.context import desk
from mailflow.web.labels import event_summary
from mailflow.web.security import roles_required

bp = Blueprint("who_viewed", __name__)
# Entries that say a person saw (or took away) something.
LOOKS = ("viewed", "exported", "searched")


class PersonForm(FlaskForm):
    who = StringField(
        lazy_gettext("Email address or national register number"),
        validators=[DataRequired(), Length(max=320)],
    )


def views_of_email(session: Session, message: Message) -> list[Event]:
    """Who opened the email or its parts, looked at its case, or exported it with a person's data."""
    reference = message.case.reference if message.case else None
    entries = list(
        session.scalars(select(Event).where(Event.message_id == message.id, Event.kind.in_(LOOKS)))
    )
    loose = session.scalars(select(Event).where(Event.message_id.is_(None), Event.kind.in_(LOOKS)))
    for e in loose:
        detail = e.detail or {}
        if (reference and detail.get("case") == reference) or message.id in (detail.get("emails") or []):
            entries.append(e)
    return sorted(entries, key=lambda e: (e.seq or 0, e.id), reverse=True)


def _rows(entries: list[Event]) -> list[tuple[Event, str]]:
    return [(e, event_summary(e.kind, e.detail or {})) for e in entries]


@bp.route("/audit/emails/<int:message_id>/views")
@roles_required("auditor", "admin")
def email(message_id: int):
    d = desk()
    with d.archive() as db:
        found = db.get(Message, message_id)
        if found is None:
            abort(404)
        rows = _rows(views_of_email(db, found))
        db.expunge_all()
    d.log(current_user.username, "viewed", message_id, what="who viewed")
    return render_template("who_viewed.html", message_id=message_id, rows=rows, form=None, findings=None)


@bp.route("/audit/person", methods=["GET", "POST"])
@roles_required("auditor", "admin")
def person():
    d = desk()
    form = PersonForm()
    context: dict[str, Any] = {"message_id": None, "rows": None, "findings": None, "form": form}
    if not form.validate_on_submit():
        return render_template("who_viewed.html", **context)
    try:
        subject = Subject.parse([form.who.data or ""])
    except NotAnIdentifier:
        form.who.errors = [gettext("Give an email address or a valid national register number.")]
        return render_template("who_viewed.html", **context)
    key = current_app.config["SECRET_KEY"]
    with d.archive() as db, sandboxed_readers(d.app.parse_sandbox) as readers:
        findings = find_subject(
            db,
            subject,
            key=key,
            read=d.app.blobs.get,
            text_of=readers.email_text,
            pdf_text_of=readers.pdf_text,
        )
        views = [e for e in findings.events if e.kind in LOOKS]
        context.update(
            findings=findings, rows=_rows(sorted(views, key=lambda e: (e.seq or 0, e.id), reverse=True))
        )
        page = render_template("who_viewed.html", **context)
    d.log(current_user.username, "viewed", None, what="person", subject=subject.digests(key))
    return page
