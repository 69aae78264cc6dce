"""A desk over a real database, blob store and embedded mailbox, filled through the real pipeline."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from mailflow.bootstrap import App
from mailflow.settings import Settings, load_settings
from mailflow.storage.models import Message
from mailflow.web import create_app
from mailflow.web.accounts import add_user
from mailflow.web.search import index_pending
from tests.web import emails

PASSWORD = "correct horse battery"
ACCOUNTS = {"sam": "staff", "sara": "staff", "audrey": "auditor", "ada": "admin"}
_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class World:
    app: App
    clock: Clock
    ids: dict[str, int]

    @property
    def settings(self) -> Settings:
        return self.app.settings


def desk_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "trusted_authserv_id": emails.AUTHSERV,
        "imap_host": None,
        "smtp_host": None,
        "web_secure_cookies": False,
        "secret_key": "test-secret-key-of-enough-length",
        "desk_undo_seconds": 0,  # decisions at once; the undo window has its own tests
        # Most tests read the English texts; the Dutch desk has its own tests (test_dutch_desk.py).
        "desk_language": "en",
    }
    values.update(overrides)
    return load_settings(**values)


def build_world(settings: Settings, mails: dict[str, bytes], clock: Clock | None = None) -> World:
    clock = clock or Clock()
    app = App(settings, clock=clock)
    mailbox = app.open_mailbox()
    try:
        for raw in mails.values():
            mailbox.append(settings.imap_folder, raw)  # type: ignore[attr-defined]
        app.make_ingestor(mailbox).run_once()
    finally:
        mailbox.close()
    with app.sessions.begin() as session:
        for name, role in ACCOUNTS.items():
            add_user(session, name, role, PASSWORD, actor="setup", now=clock())
    while index_pending(app.sessions, app.blobs):
        pass
    with app.sessions() as session:
        by_hash = {sha: pk for sha, pk in session.execute(select(Message.sha256, Message.id))}
    ids = {label: by_hash[hashlib.sha256(raw).hexdigest()] for label, raw in mails.items()}
    return World(app, clock, ids)


def standard_mails() -> dict[str, bytes]:
    return {
        "renewal": emails.renewal_request(),
        "second": emails.renewal_request(sender="yusuf.k@example.org", name="Yusuf Kaya"),
        "question": emails.information_question(),
        "hostile": emails.hostile_html(),
    }


@pytest.fixture
def world(tmp_path) -> Iterator[World]:
    built = build_world(desk_settings(tmp_path / "data"), standard_mails())
    try:
        yield built
    finally:
        built.app.close()


@pytest.fixture
def web(world) -> Flask:
    return create_app(world.app, TESTING=True)


def csrf_token(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(client: FlaskClient, username: str, password: str = PASSWORD):
    token = csrf_token(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


@pytest.fixture
def as_user(web):
    def make(username: str) -> FlaskClient:
        client = web.test_client()
        response = login(client, username)
        assert response.status_code == 302, response.text
        return client

    return make
