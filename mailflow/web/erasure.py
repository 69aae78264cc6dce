"""The admin's erasure request page and legal holds on a case: what ``mailflow subject erase`` and
``mailflow retention hold|release`` do, in the desk.

The person is given by POST only (never in a URL). The first POST shows what would be erased (counts
and case references); the second, carrying a digest of what was shown, erases; when that changed in
between (an email arrived, another person was typed in), the page shows the new counts instead. Each
step is in the chained log with the person by digest only; the erasure writes the ``erased`` entries.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length

from mailflow.privacy.erasure import ErasurePlan, erase_subject, plan_erasure
from mailflow.privacy.readers import sandboxed_readers
from mailflow.privacy.subjects import NotAnIdentifier, Subject, find_subject
from mailflow.retention.erase import Eraser, ErasureRefused
from mailflow.retention.holds import NoSuchCase, lift_legal_hold, set_legal_hold
from mailflow.web.context import desk
from mailflow.web.security import roles_required

bp = Blueprint("erasure", __name__)
_SEPARATORS = re.compile(r"[\s,;]+")
REASON_MAX = 300


def _required() -> DataRequired:
    return DataRequired(message=lazy_gettext("Fill this in."))


class ErasureForm(FlaskForm):
    who = StringField(
        lazy_gettext("Email addresses or national register numbers of the person"),
        validators=[_required(), Length(max=1000)],
    )
    reason = StringField(
        lazy_gettext("The request (date, number)"), validators=[_required(), Length(max=REASON_MAX)]
    )
    seen = HiddenField()  # what the admin confirmed (``seen``)


class HoldForm(FlaskForm):
    reason = StringField(lazy_gettext("Reason"), validators=[_required(), Length(max=REASON_MAX)])


def seen(plan: ErasurePlan, digests: list[str]) -> str:
    """What the confirmation page showed: the person and exactly which emails and cases."""
    shown = json.dumps([digests, plan.messages, plan.cases]).encode()
    return hashlib.sha256(shown).hexdigest()[:24]


def refusal_text(plan: ErasurePlan) -> str | None:
    if plan.held:
        return gettext(
            "Not possible: case %(cases)s is under a legal hold. Lift the hold on the case page first.",
            cases=", ".join(plan.held),
        )
    if plan.waiting:
        return gettext(
            "Not possible yet: emails %(emails)s wait in triage. Decide them first.",
            emails=", ".join(map(str, plan.waiting)),
        )
    return None


@bp.route("/admin/erasure", methods=["GET", "POST"])
@roles_required("admin")
def erasure():
    d = desk()
    form = ErasureForm()
    if not form.validate_on_submit():
        return render_template("erasure.html", form=form, plan=None, refused=None)
    try:
        person = Subject.parse([part for part in _SEPARATORS.split(form.who.data or "") if part])
    except NotAnIdentifier:
        form.who.errors = [gettext("Give an email address or a valid national register number.")]
        return render_template("erasure.html", form=form, plan=None, refused=None)
    key = current_app.config["SECRET_KEY"]
    with d.sessions() as db, sandboxed_readers(d.app.parse_sandbox) as readers:
        findings = find_subject(
            db,
            person,
            key=key,
            read=d.app.blobs.get,
            text_of=readers.email_text,
            pdf_text_of=readers.pdf_text,
        )
        plan = plan_erasure(db, findings)
    digests, refused = person.digests(key), refusal_text(plan)
    if refused or plan.empty or form.seen.data != seen(plan, digests):
        d.log(current_user.username, "viewed", None, what="erasure", subject=digests)
        form.seen.data = seen(plan, digests)
        return render_template("erasure.html", form=form, plan=plan, refused=refused)
    eraser = Eraser(d.sessions, d.app.blobs, d.clock)
    try:
        erased = erase_subject(
            eraser, plan, reason=form.reason.data or "", actor=current_user.username, digests=digests
        )
    except ErasureRefused:  # a hold set, or an email back in triage, since the page was shown
        flash(gettext("Nothing was erased: the situation changed. Look again."), "error")
        return redirect(url_for("erasure.erasure"))
    flash(
        gettext(
            "Erased: %(emails)s emails and %(cases)s cases. The copies in the mailbox folders are deleted"
            " at the next retention run.",
            emails=len(erased.messages),
            cases=len(erased.cases),
        ),
        "ok",
    )
    return redirect(url_for("erasure.erasure"))


def _change_hold(reference: str, change: Callable[..., bool], done: str, already: str) -> Response:
    back = redirect(url_for("archive.case", reference=reference))
    form = HoldForm()
    if not form.validate_on_submit():
        flash(gettext("Not done: give a reason."), "error")
        return back
    d = desk()
    try:
        with d.sessions.begin() as db:
            changed = change(
                db, reference, actor=current_user.username, reason=form.reason.data or "", now=d.clock()
            )
    except NoSuchCase:
        abort(404)
    flash(done if changed else already, "ok" if changed else "error")
    return back


@bp.route("/cases/<reference>/hold", methods=["POST"])
@roles_required("admin")
def hold(reference: str):
    return _change_hold(
        reference,
        set_legal_hold,
        gettext("Case %(case)s is now under a legal hold: nothing of it is erased.", case=reference),
        gettext("Case %(case)s was under a legal hold already.", case=reference),
    )


@bp.route("/cases/<reference>/hold/lift", methods=["POST"])
@roles_required("admin")
def lift_hold(reference: str):
    return _change_hold(
        reference,
        lift_legal_hold,
        gettext("The legal hold on case %(case)s is lifted.", case=reference),
        gettext("Case %(case)s had no legal hold.", case=reference),
    )
