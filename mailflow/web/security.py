"""Who may do what: roles, the auditor's read-only rule, session expiry, security headers."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from flask import Flask, Response, abort, current_app, has_request_context, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_babel import lazy_gettext
from flask_login import LoginManager, current_user, logout_user
from sqlalchemy import select

from mailflow.storage.desk_models import User
from mailflow.web.context import desk

F = TypeVar("F", bound=Callable[..., Any])
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Routes an auditor may POST to: they change nothing of the record. (The person look-up is a POST only
# to keep the address or number it is given out of URLs.)
AUDITOR_POSTS = frozenset({"auth.logout", "auth.login", "auth.language", "who_viewed.person"})
CHANGERS = ("staff", "admin")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)


class DeskUser:
    """The logged-in person, detached from any database session."""

    def __init__(
        self, user_id: int, username: str, role: str, version: int, locale: str | None = None
    ) -> None:
        self.id, self.username, self.role, self.version = user_id, username, role, version
        self.locale = locale  # the desk language this person chose, if any
        self.is_authenticated, self.is_active, self.is_anonymous = True, True, False

    def get_id(self) -> str:
        # The version makes a password change end the sessions made before it.
        return f"{self.id}:{self.version}"

    @property
    def may_change(self) -> bool:
        return self.role in CHANGERS


def secret_key(configured: str | None, path: Path) -> str:
    """The configured key, else the one kept in the data dir (made once, readable by its owner only)."""
    if configured:
        return configured
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


class SchemeCookies(SecureCookieSessionInterface):
    """The session cookie is Secure when the request came over HTTPS, or always, or never.

    "auto" lets a desk on http://127.0.0.1 (or behind a plain-HTTP proxy) keep its session, while the
    same desk behind a TLS proxy that says so (a trusted X-Forwarded-Proto) sends Secure cookies only.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def get_cookie_secure(self, app: Flask) -> bool:
        if self.mode == "auto":
            return has_request_context() and request.is_secure
        return self.mode == "always"


def roles_required(*roles: str) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def install(app: Flask, login_manager: LoginManager, *, hsts_seconds: int = 0) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("Log in to see this page.")
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(user_id: str) -> DeskUser | None:
        pk, _, version = user_id.partition(":")
        if not pk.isdigit() or not version.isdigit():
            return None
        with desk().archive() as db:
            user = db.scalar(select(User).where(User.id == int(pk)))
        if user is None or user.disabled or user.session_version != int(version):
            return None
        return DeskUser(user.id, user.username, user.role, user.session_version, user.locale)

    @app.before_request
    def expire_and_guard() -> None:
        if not current_user.is_authenticated:
            return
        started = session.get("login_at")
        lifetime = desk().settings.session_lifetime
        if not isinstance(started, (int, float)) or datetime.now(UTC).timestamp() - started > lifetime:
            logout_user()
            session.clear()
            return
        # An auditor changes nothing, whatever route a form or a hand-made request points at.
        if (
            current_user.role == "auditor"
            and request.method not in SAFE_METHODS
            and request.endpoint not in AUDITOR_POSTS
        ):
            abort(403)

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        # Same-origin: nothing to other sites, but the desk's own forms carry the Referer that the CSRF
        # check demands over HTTPS (with no-referrer, every login over HTTPS "expired").
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if hsts_seconds and request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", f"max-age={hsts_seconds}")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        # Pages and downloads hold personal data: never stored by a browser or a proxy. send_file says
        # "no-cache" (keep, but ask again), which is not enough, so this one is replaced.
        if request.endpoint != "static" and "no-store" not in response.headers.get("Cache-Control", ""):
            response.headers["Cache-Control"] = "no-store"
        return response
