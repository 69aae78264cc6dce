"""The web desk: a triage queue for staff, a read-only archive for auditors (``mailflow web``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, render_template, request
from flask_babel import gettext, lazy_gettext
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from mailflow.bootstrap import App
from mailflow.storage.database import make_engine, make_session_factory
from mailflow.web import i18n, operations, security
from mailflow.web import labels as labels_
from mailflow.web.context import EXTENSION, Desk
from mailflow.web.forms import LanguageForm, LogoutForm, ReleaseForm
from mailflow.web.i18n import StaffLabels
from mailflow.web.proxies import TrustedProxies

STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(app: App, **config: Any) -> Flask:
    """The Flask application over a wired ``App``; ``config`` overrides Flask settings (tests)."""
    settings = app.settings
    app.engine  # noqa: B018 - migrates the schema before the first request
    archive_engine = make_engine(settings.effective_database_url, read_only=True, ca_file=settings.ca_file)
    web = Flask(
        __name__,
        template_folder=str(settings.templates_dir / "web"),
        static_folder=str(STATIC_DIR),
        static_url_path="/static",
    )
    web.config.update(
        SECRET_KEY=security.secret_key(settings.secret_key, settings.secret_key_file),
        SESSION_COOKIE_NAME="mailflow_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=settings.web_secure_cookies == "always",  # "auto": SchemeCookies decides
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.session_lifetime),
        SESSION_REFRESH_EACH_REQUEST=False,
        REMEMBER_COOKIE_DURATION=timedelta(seconds=0),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session, which expires itself
        MAX_CONTENT_LENGTH=1024 * 1024,
        TEMPLATES_AUTO_RELOAD=False,
    )
    web.config.update(config)
    web.session_interface = security.SchemeCookies(settings.web_secure_cookies)
    web.wsgi_app = TrustedProxies(web.wsgi_app, settings.web_trusted_proxies)  # type: ignore[method-assign]
    labels = StaffLabels.load(settings.classifiers_dir / "labels.toml")
    web.extensions[EXTENSION] = Desk(app, make_session_factory(archive_engine), labels)
    i18n.install(web, default_language=settings.desk_language, timezone=settings.desk_timezone)
    web.jinja_env.filters.update(
        category=labels_.category,
        kind=labels_.kind,
        action=labels_.action,
        actor=labels_.actor,
        folder=labels_.folder,
        percent=labels_.percent,
        explain=labels_.explain,
        chain_problem=labels_.chain_problem,
        status=lambda value: labels_.named(labels_.STATUSES, value),
        case_status=lambda value: labels_.named(labels_.CASE_STATUSES, value),
        reply_status=lambda value: labels_.named(labels_.REPLY_STATUSES, value),
        role=lambda value: labels_.named(labels_.ROLES, value),
        event=lambda value: labels_.named(labels_.EVENTS, value),
        waiting_reason=lambda value: labels_.named(labels_.WAITING_REASONS, value),
        retention_rule=lambda value: labels_.named(labels_.RETENTION_RULES, value),
    )
    CSRFProtect(web)
    login_manager = LoginManager(web)
    security.install(web, login_manager, hsts_seconds=settings.web_hsts_seconds)

    from mailflow.web import (
        admin,
        admin_accounts,
        archive,
        auth,
        cases,
        dashboard,
        erasure,
        pending,
        triage,
        who_viewed,
    )

    for blueprint in (auth.bp, triage.bp, archive.bp, cases.bp, dashboard.bp, admin.bp, admin_accounts.bp):
        web.register_blueprint(blueprint)
    web.register_blueprint(who_viewed.bp)
    web.register_blueprint(erasure.bp)
    web.register_blueprint(operations.bp)

    @web.before_request
    def apply_due_decisions() -> None:
        # Health checks and scrapes must not do the desk's work, nor fail when it fails.
        if request.endpoint != "static" and request.blueprint != operations.bp.name:
            pending.apply_due(app, now=app.clock())

    @web.context_processor
    def globals_() -> dict[str, Any]:
        signed_in = current_user.is_authenticated
        return {
            "logout_form": LogoutForm(formdata=None) if signed_in else None,
            "waiting": pending.waiting_for(app, current_user.username, now=app.clock()) if signed_in else [],
            "undo_form": ReleaseForm(formdata=None) if signed_in else None,
            "now": app.clock(),
            "language_form": LanguageForm(formdata=None),  # for its token: never reads a posted form
            "desk_language": i18n.desk_language(),
        }

    @web.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        message = gettext("The form expired. Reload the page.")
        return render_template("error.html", code=400, message=message), 400

    web.register_error_handler(HTTPException, _error_page)
    web.teardown_appcontext(lambda _exc: None)
    return web


# Every error a person can meet, in the desk's layout and language (Werkzeug's own pages are English).
ERRORS = {
    400: lazy_gettext("The desk could not read what was sent. Go back and try again."),
    401: lazy_gettext("Log in first."),
    403: lazy_gettext("You may not do this."),
    404: lazy_gettext("Not found."),
    405: lazy_gettext("This address cannot be used this way."),
    413: lazy_gettext("What was sent is too large."),
    429: lazy_gettext("Too many attempts. Wait a few minutes and try again."),
    500: lazy_gettext(
        "Something went wrong on our side; nothing was changed. Try again, or tell an administrator."
    ),
}


def _error_page(error: HTTPException):
    code = error.code or 500
    message = ERRORS.get(code) or ERRORS[500 if code >= 500 else 400]
    return render_template("error.html", code=code, message=message), code
