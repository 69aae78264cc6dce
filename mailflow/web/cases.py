"""What staff do to a case: write a note, close it, reopen it.

Each change and its event in the chained log are one transaction. The event names the case and the
note's number, never the note's text: that stays in ``case_notes``, where it can be read with the
case (and, unlike the chained log, corrected or erased if it ever must be).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from flask import Blueprint, abort, flash, redirect, url_for
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.wrappers import Response

from mailflow.identifiers import mask
from mailflow.storage.desk_models import CaseNote
from mailflow.storage.models import Case, Event
from mailflow.web.context import desk
from mailflow.web.forms import NOTE_MAX, NOTE_SENT_MAX, CaseStateForm, NoteForm
from mailflow.web.security import CHANGERS, roles_required

bp = Blueprint("cases", __name__)
# Control characters other than tab and line feed: invisible, and some confuse terminals and exports.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
Change = Callable[[sessionmaker[Session], str, str, str, datetime], bool]


class CaseRefused(Exception):
    """The change cannot be made; ``args[0]`` says why: closed, open (already), empty, long (note)."""


def clean_note(text: str | None) -> str:
    """A note as kept: plain text with plain line ends, without control characters or outer blanks."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text).strip()


def notes_of(session: Session, case_id: int) -> list[CaseNote]:
    return list(session.scalars(select(CaseNote).where(CaseNote.case_id == case_id).order_by(CaseNote.id)))


def _locked(session: Session, reference: str) -> Case | None:
    return session.scalar(select(Case).where(Case.reference == reference).with_for_update())


def _note(session: Session, case: Case, who: str, text: str, now: datetime) -> int | None:
    text = mask(clean_note(text))  # identifiers belong in the raw email only, not in a note
    if not text:
        return None
    if len(text) > NOTE_MAX:
        raise CaseRefused("long")
    note = CaseNote(case_id=case.id, author=who, written_at=now, text=text)
    session.add(note)
    session.flush()
    return note.id


def _event(session: Session, who: str, kind: str, now: datetime, **detail: object) -> None:
    detail = {k: v for k, v in detail.items() if v is not None}
    session.add(Event(message_id=None, at=now, actor=who, kind=kind, detail=detail))


def add_note(sessions: sessionmaker[Session], reference: str, who: str, text: str, now: datetime) -> bool:
    """Write a note on the case; False when there is no such case. CaseRefused for an empty note."""
    with sessions.begin() as session:
        case = _locked(session, reference)
        if case is None:
            return False
        note = _note(session, case, who, text, now)
        if note is None:
            raise CaseRefused("empty")
        _event(session, who, "case_note", now, case=reference, note=note)
    return True


def close_case(sessions: sessionmaker[Session], reference: str, who: str, text: str, now: datetime) -> bool:
    """Close the case, with the note if one is given; CaseRefused when it is closed already."""
    with sessions.begin() as session:
        case = _locked(session, reference)
        if case is None:
            return False
        if case.is_closed:
            raise CaseRefused("closed")
        note = _note(session, case, who, text, now)
        case.close(who, now)
        _event(session, who, "case_closed", now, case=reference, case_status=case.status, note=note)
    return True


def reopen_case(sessions: sessionmaker[Session], reference: str, who: str, text: str, now: datetime) -> bool:
    """Open a closed case again, with the note if one is given; CaseRefused when it is open."""
    with sessions.begin() as session:
        case = _locked(session, reference)
        if case is None:
            return False
        if not case.is_closed:
            raise CaseRefused("open")
        note = _note(session, case, who, text, now)
        case.reopen()
        _event(session, who, "case_reopened", now, case=reference, case_status=case.status, note=note)
    return True


def _refusal(why: str, reference: str) -> str:
    if why == "closed":
        return gettext("Not done: case %(case)s is closed already.", case=reference)
    if why == "open":
        return gettext("Not done: case %(case)s is open already.", case=reference)
    if why == "long":
        return gettext("Not done: a note has at most %(max)s characters.", max=NOTE_MAX)
    return gettext("Not done: a note needs some text.")


def _done(reference: str, change: Change, form: NoteForm | CaseStateForm, message: str) -> Response:
    """Apply ``change`` as the submitted ``form`` says and go back to the case page, saying how it went."""
    back = redirect(url_for("archive.case", reference=reference))
    if not form.validate_on_submit():  # the CSRF token was checked before: only the text can be wrong
        too_long = len(form.text.data or "") > NOTE_SENT_MAX
        flash(_refusal("long" if too_long else "empty", reference), "error")
        return back
    d = desk()
    try:
        found = change(d.sessions, reference, current_user.username, form.text.data or "", d.clock())
    except CaseRefused as exc:
        flash(_refusal(exc.args[0], reference), "error")
        return back
    if not found:
        abort(404)
    flash(message, "ok")
    return back


@bp.route("/cases/<reference>/notes", methods=["POST"])
@roles_required(*CHANGERS)
def note(reference: str):
    return _done(reference, add_note, NoteForm(), gettext("Note added."))


@bp.route("/cases/<reference>/close", methods=["POST"])
@roles_required(*CHANGERS)
def close(reference: str):
    return _done(reference, close_case, CaseStateForm(), gettext("Case %(case)s closed.", case=reference))


@bp.route("/cases/<reference>/reopen", methods=["POST"])
@roles_required(*CHANGERS)
def reopen(reference: str):
    return _done(reference, reopen_case, CaseStateForm(), gettext("Case %(case)s reopened.", case=reference))
