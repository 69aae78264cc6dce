"""An administrator's changes to accounts: disable, enable, unlock, a new password, another role.

Each change and its event (naming the administrator and the account, never a password) are written
in one transaction by ``mailflow.web.accounts``; the page lists the accounts (``admin.index``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import Blueprint, flash, redirect, url_for
from flask_babel import gettext
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from mailflow.storage.desk_models import User
from mailflow.web import accounts
from mailflow.web.accounts import MIN_PASSWORD, AccountError, NoSuchUser
from mailflow.web.context import desk
from mailflow.web.forms import AccountChangeForm, RoleForm, SetPasswordForm
from mailflow.web.labels import ROLES, named
from mailflow.web.security import roles_required

bp = Blueprint("accounts_admin", __name__)
Change = Callable[[Session, str, datetime], User]  # (session, actor, now) → the account changed


@bp.route("/admin/accounts/<username>/disable", methods=["POST"])
@roles_required("admin")
def disable(username: str) -> Response:
    return _change(
        AccountChangeForm(),
        username,
        lambda db, actor, now: accounts.set_disabled(db, username, True, actor=actor, now=now),
        lambda user: gettext(
            "Account %(user)s disabled: it can no longer log in, and its open sessions ended.",
            user=user.username,
        ),
    )


@bp.route("/admin/accounts/<username>/enable", methods=["POST"])
@roles_required("admin")
def enable(username: str) -> Response:
    return _change(
        AccountChangeForm(),
        username,
        lambda db, actor, now: accounts.set_disabled(db, username, False, actor=actor, now=now),
        lambda user: gettext("Account %(user)s enabled: it can log in again.", user=user.username),
    )


@bp.route("/admin/accounts/<username>/unlock", methods=["POST"])
@roles_required("admin")
def unlock(username: str) -> Response:
    return _change(
        AccountChangeForm(),
        username,
        lambda db, actor, now: accounts.unlock(db, username, actor=actor, now=now),
        lambda user: gettext(
            "Account %(user)s unlocked: the failed logins no longer keep it out.", user=user.username
        ),
    )


@bp.route("/admin/accounts/<username>/password", methods=["POST"])
@roles_required("admin")
def password(username: str) -> Response:
    form = SetPasswordForm()
    return _change(
        form,
        username,
        lambda db, actor, now: accounts.set_password(
            db, username, form.password.data or "", actor=actor, now=now
        ),
        lambda user: gettext("New password set for %(user)s; their open sessions ended.", user=user.username),
    )


@bp.route("/admin/accounts/<username>/role", methods=["POST"])
@roles_required("admin")
def role(username: str) -> Response:
    form = RoleForm()
    return _change(
        form,
        username,
        lambda db, actor, now: accounts.set_role(db, username, form.role.data or "", actor=actor, now=now),
        lambda user: gettext("%(user)s is now %(role)s.", user=user.username, role=named(ROLES, user.role)),
    )


def _change(form: FlaskForm, username: str, change: Change, done: Callable[[User], str]) -> Response:
    """Check the form, make the change (with its event), and say on the admin page how it went."""
    back = redirect(url_for("admin.index", _anchor="accounts"))
    if not form.validate_on_submit():
        flash_errors(form)
        return back
    d = desk()
    try:
        with d.sessions.begin() as db:
            said = done(change(db, current_user.username, d.clock()))
    except (AccountError, NoSuchUser) as exc:
        flash(refusal(exc, by=current_user.username), "error")
        return back
    flash(said, "ok")
    return back


def flash_errors(form: FlaskForm) -> None:
    for name, errors in form.errors.items():
        label = form[name].label.text if name in form else ""
        for error in errors:
            flash(f"{label}: {error}" if label else str(error), "error")


def refusal(exc: AccountError | NoSuchUser, *, by: str) -> str:
    """Why a change was refused, in the desk's language."""
    match exc:
        case accounts.LastAdmin() if exc.username == by:
            return gettext(
                "You are the last active administrator: the desk would have none. "
                "Make another account an administrator first."
            )
        case accounts.LastAdmin():
            return gettext(
                "%(user)s is the last active administrator: make another account an administrator first.",
                user=exc.username,
            )
        case accounts.BadUsername():
            return gettext("A user name has 2 to 50 characters: lower-case letters, digits, '.', '_' or '-'.")
        case accounts.BadPassword():
            return gettext("A password has at least %(count)s characters.", count=MIN_PASSWORD)
        case accounts.UsernameTaken():
            return gettext("There is an account %(user)s already.", user=exc.username)
        case accounts.BadRole():
            return gettext("There is no such role.")
        case NoSuchUser():
            return gettext("There is no account %(user)s.", user=exc.username)
    return gettext("The change was refused.")
