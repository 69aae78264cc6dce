"""Logging in and out."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_login import current_user, login_user, logout_user

from mailflow.storage.desk_models import User
from mailflow.web.accounts import LoginOutcome, authenticate
from mailflow.web.context import desk
from mailflow.web.forms import LanguageForm, LoginForm, LogoutForm
from mailflow.web.i18n import LANGUAGES
from mailflow.web.security import DeskUser

bp = Blueprint("auth", __name__)


def home_for(role: str) -> str:
    return url_for("archive.index") if role == "auditor" else url_for("triage.queue")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(home_for(current_user.role))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        d = desk()
        with d.sessions.begin() as db:
            outcome, user = authenticate(
                db,
                form.username.data or "",
                form.password.data or "",
                remote_addr=request.remote_addr or "unknown",
                now=d.clock(),
                throttle=d.throttle,
            )
            found = (
                DeskUser(user.id, user.username, user.role, user.session_version, user.locale)
                if user
                else None
            )
        if outcome is LoginOutcome.OK and found is not None:
            chosen = session.get("locale")
            session.clear()  # a fresh session: nothing from before the login carries over
            if chosen and not found.locale:
                session["locale"] = chosen
            login_user(found)
            session.permanent = True
            session["login_at"] = datetime.now(UTC).timestamp()
            d.log(found.username, "logged_in", None)
            return redirect(home_for(found.role))
        if outcome is LoginOutcome.THROTTLED:
            flash(gettext("Too many failed attempts. Wait a few minutes and try again."), "error")
            status = 429
        else:
            flash(gettext("Unknown user name or wrong password."), "error")
            status = 401
    return render_template("login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():
    if LogoutForm().validate_on_submit() and current_user.is_authenticated:
        # The session lives in a signed cookie, which a copy would outlive: the account's session
        # version moves on instead, so every cookie issued to it before (on any device) stops working.
        with desk().sessions.begin() as db:
            user = db.get(User, current_user.id)
            if user is not None:
                user.session_version += 1
        desk().log(current_user.username, "logged_out", None)
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/language", methods=["POST"])
def language():
    """Switch the desk's language; a logged-in person keeps the choice for next time."""
    form = LanguageForm()
    chosen = form.language.data
    if form.validate_on_submit() and chosen in LANGUAGES:
        session["locale"] = chosen
        if current_user.is_authenticated:
            with desk().sessions.begin() as db:
                user = db.get(User, current_user.id)
                if user is not None:
                    user.locale = chosen
            current_user.locale = chosen
    return redirect(_same_site(request.form.get("next")) or url_for("auth.login"))


def _same_site(target: str | None) -> str | None:
    """Only a path of this desk: never an address elsewhere (open redirect).

    Browsers drop tabs and line breaks from addresses and read a backslash as a slash, so "/\t/evil"
    and "/\\evil" lead elsewhere too: anything but printable characters, or a scheme or host, is refused.
    """
    if not target or not target.isprintable() or any(c.isspace() or c == "\\" for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target
