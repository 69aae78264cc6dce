"""An administrator manages accounts in the desk, and the command line does the same; both are logged."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from mailflow.audit import verify_chain
from mailflow.cli import main
from mailflow.storage.desk_models import User
from mailflow.storage.models import Event
from mailflow.web import create_app
from tests.web.conftest import PASSWORD, World, build_world, csrf_token, desk_settings, login

NEW_PASSWORD = "a brand new password"


@pytest.fixture
def accounts_world(tmp_path) -> Iterator[World]:
    built = build_world(desk_settings(tmp_path / "data"), {})  # accounts only: no email needed
    try:
        yield built
    finally:
        built.app.close()


@pytest.fixture
def desk_app(accounts_world) -> Flask:
    return create_app(accounts_world.app, TESTING=True)


def english_client(web: Flask, username: str, password: str = PASSWORD) -> FlaskClient:
    client = web.test_client()
    with client.session_transaction() as session:
        session["locale"] = "en"
    assert login(client, username, password).status_code == 302
    return client


def change(client: FlaskClient, username: str, what: str, **form: str):
    token = csrf_token(client.get("/admin").text)
    return client.post(f"/admin/accounts/{username}/{what}", data={"csrf_token": token, **form})


def account_events(world: World) -> list[tuple[str, str, dict]]:
    with world.app.sessions() as session:
        rows = session.scalars(select(Event).where(Event.kind.like("user_%"), Event.actor != "setup"))
        return [(e.actor, e.kind, e.detail) for e in rows]


def row_of(page: str, username: str) -> str:
    found = re.search(rf'<tr class="account" data-username="{re.escape(username)}".*?</tr>', page, re.S)
    assert found, username
    return found.group(0)


def test_the_accounts_list_shows_role_state_and_last_login_in_words(desk_app, accounts_world):
    for _ in range(accounts_world.settings.login_max_failures):
        login(desk_app.test_client(), "sara", "wrong password!")
    admin = english_client(desk_app, "ada")
    page = admin.get("/admin").text
    sara, ada, audrey = row_of(page, "sara"), row_of(page, "ada"), row_of(page, "audrey")
    assert 'data-state="locked"' in sara and "locked out by failed logins" in sara and "Unlock" in sara
    assert "administrator" in ada and "(you)" in ada and "never" not in ada  # logged in just now
    assert "auditor" in audrey and 'data-state="active"' in audrey and "never" in audrey
    assert "Unlock" not in audrey and "Disable" in audrey


def test_an_admin_disables_enables_unlocks_and_sets_a_password(desk_app, accounts_world):
    admin = english_client(desk_app, "ada")
    sam = english_client(desk_app, "sam")
    assert change(admin, "sam", "disable").status_code == 302
    assert "Account sam disabled" in admin.get("/admin").text
    assert sam.get("/triage").status_code == 302  # the open session ended
    assert login(desk_app.test_client(), "sam").status_code == 401
    assert 'data-state="disabled"' in row_of(admin.get("/admin").text, "sam")

    change(admin, "sam", "enable")
    mismatch = change(admin, "sam", "password", password=NEW_PASSWORD, confirm="something else")
    assert mismatch.status_code == 302
    assert "The two passwords differ." in admin.get("/admin").text
    short = change(admin, "sam", "password", password="short", confirm="short")
    assert short.status_code == 302 and "at least 10 characters" in admin.get("/admin").text
    sam = english_client(desk_app, "sam")
    change(admin, "sam", "password", password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert "New password set for sam" in admin.get("/admin").text
    assert sam.get("/triage").status_code == 302  # its session ended with the old password
    assert login(desk_app.test_client(), "sam").status_code == 401
    assert login(desk_app.test_client(), "sam", NEW_PASSWORD).status_code == 302

    change(admin, "sara", "unlock")
    change(admin, "sara", "role", role="auditor")
    assert account_events(accounts_world) == [
        ("ada", "user_disabled", {"user": "sam"}),
        ("ada", "user_enabled", {"user": "sam"}),
        ("ada", "user_password_set", {"user": "sam"}),
        ("ada", "user_unlocked", {"user": "sara"}),
        ("ada", "user_role_changed", {"user": "sara", "role": "auditor", "was": "staff"}),
    ]
    assert verify_chain(accounts_world.app.sessions).ok


def test_the_last_admin_cannot_disable_or_demote_themself(desk_app, accounts_world):
    admin = english_client(desk_app, "ada")
    for what, form in (("disable", {}), ("role", {"role": "staff"})):
        assert change(admin, "ada", what, **form).status_code == 302
        page = admin.get("/admin")
        assert page.status_code == 200  # still logged in, still an administrator
        assert "You are the last active administrator" in page.text
    assert account_events(accounts_world) == []
    # With a second administrator, stepping down is allowed.
    change(admin, "sara", "role", role="admin")
    change(admin, "ada", "role", role="staff")
    assert admin.get("/admin").status_code == 403
    with accounts_world.app.sessions() as session:
        assert session.scalar(select(User.role).where(User.username == "ada")) == "staff"


def test_an_admin_adds_an_account_and_a_taken_name_is_refused_in_words(desk_app, accounts_world):
    admin = english_client(desk_app, "ada")
    form = {"username": "nina", "role": "auditor", "password": "a long password"}
    token = csrf_token(admin.get("/admin").text)
    assert admin.post("/admin", data={"csrf_token": token, **form}).status_code == 302
    again = admin.post("/admin", data={"csrf_token": token, **form})
    assert "There is an account nina already." in again.text
    assert account_events(accounts_world) == [("ada", "user_added", {"user": "nina", "role": "auditor"})]


def test_staff_cannot_change_accounts(desk_app, accounts_world):
    staff = english_client(desk_app, "sam")
    token = csrf_token(staff.get("/archive").text)
    for what in ("disable", "enable", "unlock", "password", "role"):
        form = {"csrf_token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "role": "admin"}
        assert staff.post(f"/admin/accounts/sara/{what}", data=form).status_code == 403, what
    assert account_events(accounts_world) == []


def test_users_passwd_from_stdin_and_every_cli_change_is_logged(desk_app, accounts_world, monkeypatch):
    monkeypatch.setenv("USER", "operator")  # getpass.getuser() reads it first
    env = {"MAILFLOW_DATA_DIR": str(accounts_world.settings.data_dir), "MAILFLOW_SECRET_KEY": "k" * 32}

    def run(*args: str, stdin: str | None = None):
        return CliRunner().invoke(main, ["users", *args], env=env, input=stdin)

    sam = english_client(desk_app, "sam")
    result = run("passwd", "sam", "--stdin", stdin=f"{NEW_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert sam.get("/triage").status_code == 302  # the session_version moved on
    assert login(desk_app.test_client(), "sam", NEW_PASSWORD).status_code == 302
    with accounts_world.app.sessions() as session:
        assert session.scalar(select(User.session_version).where(User.username == "sam")) == 2

    short = run("passwd", "sam", "--stdin", stdin="short\n")
    assert short.exit_code != 0 and "at least 10 characters" in short.output
    unknown = run("passwd", "nobody", "--stdin", stdin=f"{NEW_PASSWORD}\n")
    assert unknown.exit_code != 0 and "no user 'nobody'" in unknown.output
    last = run("disable", "ada")
    assert last.exit_code != 0 and "last active administrator" in last.output

    for args in (("add", "nina", "--role", "staff", "--stdin"), ("disable", "nina"), ("enable", "nina")):
        assert run(*args, stdin=f"{PASSWORD}\n").exit_code == 0, args
    assert run("unlock", "sara").exit_code == 0
    assert account_events(accounts_world) == [
        ("cli:operator", "user_password_set", {"user": "sam"}),
        ("cli:operator", "user_added", {"user": "nina", "role": "staff"}),
        ("cli:operator", "user_disabled", {"user": "nina"}),
        ("cli:operator", "user_enabled", {"user": "nina"}),
        ("cli:operator", "user_unlocked", {"user": "sara"}),
    ]
    with accounts_world.app.sessions() as session:
        details = " ".join(str(e.detail) for e in session.scalars(select(Event)))
    assert NEW_PASSWORD not in details and PASSWORD not in details
    assert verify_chain(accounts_world.app.sessions).ok


def test_account_events_are_named_and_summed_up_in_words(desk_app):
    from flask import session

    from mailflow.web.labels import EVENTS, event_summary

    with desk_app.test_request_context():
        session["locale"] = "en"
        assert str(EVENTS["user_disabled"]) == "account disabled"
        assert str(EVENTS["user_password_set"]) == "new password set"
        assert {"user_enabled", "user_unlocked", "user_role_changed", "user_added"} <= set(EVENTS)
        changed = {"user": "sara", "role": "auditor", "was": "staff"}
        assert event_summary("user_role_changed", changed) == "account sara: staff → auditor"
        assert event_summary("user_added", {"user": "nina", "role": "admin"}) == "account nina, administrator"
        assert event_summary("user_unlocked", {"user": "sara"}) == "account sara"
