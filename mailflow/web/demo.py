"""``mailflow demo --serve``: the web desk over the demo's data, with demo accounts, beside the worker."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from mailflow.bootstrap import App
from mailflow.settings import Settings
from mailflow.storage.desk_models import User
from mailflow.web.accounts import add_user, set_password
from mailflow.web.search import index_pending
from mailflow.web.serve import serve

DEMO_ACCOUNTS = (("staff", "staff"), ("auditor", "auditor"), ("admin", "admin"))


def demo_accounts(app: App) -> list[tuple[str, str, str]]:
    """(name, role, password) of each demo account, with a fresh random password every run."""
    made = []
    with app.sessions.begin() as session:
        for name, role in DEMO_ACCOUNTS:
            password = secrets.token_urlsafe(9)
            if session.scalar(select(User).where(User.username == name)) is None:
                add_user(session, name, role, password, actor="demo", now=app.clock())
            else:
                set_password(session, name, password, actor="demo", now=app.clock())
            made.append((name, role, password))
    return made


def serve_demo(settings: Settings, *, announce=print) -> None:
    # Like the demo itself: never a real mailbox or SMTP server, whatever the environment says.
    settings = settings.model_copy(update={"imap_host": None, "smtp_host": None})
    app = App(settings)
    try:
        accounts = demo_accounts(app)
        while index_pending(app.sessions, app.blobs, lookup=app.blobs.keyring.lookup_token):
            pass
        address = f"http://{settings.web_host}:{settings.web_port}/"
        announce("")
        announce(f"Web desk: {address}")
        for name, role, password in accounts:
            announce(f"  {role:8} log in as {name!r} with password {password!r}")
        announce("The worker keeps polling the demo mailbox beside it. Ctrl-C stops both.")
        serve(app, settings.web_host, settings.web_port, with_worker=True, announce=announce)
    finally:
        app.close()
