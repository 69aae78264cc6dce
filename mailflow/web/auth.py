"""Logging in and out."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from mailflow.web.accounts import LoginOutcome, authenticate
from mailflow.web.context import desk
from mailflow.web.forms import LoginForm, LogoutForm
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
            found = DeskUser(user.id, user.username, user.role, user.session_version) if user else None
        if outcome is LoginOutcome.OK and found is not None:
            session.clear()  # a fresh session: nothing from before the login carries over
            login_user(found)
            session.permanent = True
            session["login_at"] = datetime.now(UTC).timestamp()
            d.log(found.username, "logged_in", None)
            return redirect(home_for(found.role))
        if outcome is LoginOutcome.THROTTLED:
            flash("Too many failed attempts. Wait a few minutes and try again.", "error")
            status = 429
        else:
            flash("Unknown user name or wrong password.", "error")
            status = 401
    return render_template("login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():
    if LogoutForm().validate_on_submit() and current_user.is_authenticated:
        desk().log(current_user.username, "logged_out", None)
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))
