"""Changes to desk accounts: each writes its event, a new password ends sessions, one admin always stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from mailflow.audit import verify_chain
from mailflow.storage.database import make_engine, make_session_factory, migrate
from mailflow.storage.desk_models import User
from mailflow.storage.models import Event
from mailflow.web.accounts import (
    MIN_PASSWORD,
    BadPassword,
    BadUsername,
    LastAdmin,
    LoginOutcome,
    NoSuchUser,
    Throttle,
    UsernameTaken,
    add_user,
    authenticate,
    list_accounts,
    set_disabled,
    set_password,
    set_role,
    unlock,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
THROTTLE = Throttle(max_failures=3, window=timedelta(minutes=15))


@pytest.fixture
def sessions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        for name, role in (("ada", "admin"), ("sam", "staff"), ("audrey", "auditor")):
            add_user(session, name, role, PASSWORD, actor="setup", now=NOW)
    yield factory
    engine.dispose()


def user(sessions, name: str) -> User:
    with sessions() as session:
        return session.scalars(select(User).where(User.username == name)).one()


def events(sessions, *, after_setup: bool = True) -> list[tuple[str, str, dict]]:
    with sessions() as session:
        rows = session.scalars(select(Event).order_by(Event.seq)).all()
    listed = [(e.actor, e.kind, e.detail) for e in rows]
    return [e for e in listed if e[0] != "setup"] if after_setup else listed


def log_in(sessions, name: str, password: str, at: datetime = NOW) -> LoginOutcome:
    with sessions.begin() as session:
        outcome, _ = authenticate(session, name, password, remote_addr="10.0.0.1", now=at, throttle=THROTTLE)
    return outcome


def test_adding_an_account_is_logged_without_its_password(sessions):
    with sessions.begin() as session:
        add_user(session, "Nina", "staff", "a long password", actor="ada", now=NOW)
    assert events(sessions) == [("ada", "user_added", {"user": "nina", "role": "staff"})]
    assert log_in(sessions, "nina", "a long password") is LoginOutcome.OK
    with sessions.begin() as session:
        with pytest.raises(UsernameTaken):
            add_user(session, "nina", "staff", "a long password", actor="ada", now=NOW)
        with pytest.raises(BadUsername):
            add_user(session, "N", "staff", "a long password", actor="ada", now=NOW)
        with pytest.raises(BadPassword):
            add_user(session, "nico", "staff", "x" * (MIN_PASSWORD - 1), actor="ada", now=NOW)


def test_a_new_password_replaces_the_old_bumps_the_session_version_and_is_logged(sessions):
    before = user(sessions, "sam")
    with sessions.begin() as session:
        set_password(session, "sam", "a brand new password", actor="ada", now=NOW)
    after = user(sessions, "sam")
    assert after.session_version == before.session_version + 1  # sessions made before it stop working
    assert after.password_hash != before.password_hash and after.password_hash.startswith("$argon2")
    assert log_in(sessions, "sam", PASSWORD) is LoginOutcome.REFUSED
    assert log_in(sessions, "sam", "a brand new password") is LoginOutcome.OK
    assert events(sessions) == [("ada", "user_password_set", {"user": "sam"})]


def test_a_too_short_password_changes_nothing(sessions):
    before = user(sessions, "sam")
    with pytest.raises(BadPassword), sessions.begin() as session:
        set_password(session, "sam", "short", actor="ada", now=NOW)
    after = user(sessions, "sam")
    assert (after.password_hash, after.session_version) == (before.password_hash, before.session_version)
    assert events(sessions) == []


def test_disabling_ends_sessions_and_refuses_logins_until_enabled(sessions):
    version = user(sessions, "sam").session_version
    with sessions.begin() as session:
        set_disabled(session, "sam", True, actor="ada", now=NOW)
        set_disabled(session, "sam", True, actor="ada", now=NOW)  # no change, so no second entry
    assert user(sessions, "sam").session_version == version + 1
    assert log_in(sessions, "sam", PASSWORD) is LoginOutcome.REFUSED
    with sessions.begin() as session:
        set_disabled(session, "sam", False, actor="ada", now=NOW)
    assert log_in(sessions, "sam", PASSWORD) is LoginOutcome.OK
    assert events(sessions) == [
        ("ada", "user_disabled", {"user": "sam"}),
        ("ada", "user_enabled", {"user": "sam"}),
    ]


def test_the_last_active_admin_can_be_neither_disabled_nor_demoted(sessions):
    with pytest.raises(LastAdmin, match="ada is the last active administrator"), sessions.begin() as session:
        set_disabled(session, "ada", True, actor="ada", now=NOW)
    with pytest.raises(LastAdmin), sessions.begin() as session:
        set_role(session, "ada", "staff", actor="ada", now=NOW)
    still = user(sessions, "ada")
    assert (still.role, still.disabled) == ("admin", False)
    assert events(sessions) == []


def test_a_disabled_admin_does_not_count_as_the_one_that_stays(sessions):
    with sessions.begin() as session:
        add_user(session, "bob", "admin", PASSWORD, actor="ada", now=NOW)
        set_disabled(session, "bob", True, actor="ada", now=NOW)
    with pytest.raises(LastAdmin), sessions.begin() as session:
        set_disabled(session, "ada", True, actor="ada", now=NOW)


def test_with_a_second_admin_an_admin_may_step_down(sessions):
    with sessions.begin() as session:
        set_role(session, "sam", "admin", actor="ada", now=NOW)
        set_role(session, "ada", "staff", actor="ada", now=NOW)
    assert user(sessions, "ada").role == "staff"
    with pytest.raises(LastAdmin), sessions.begin() as session:
        set_disabled(session, "sam", True, actor="sam", now=NOW)
    # Staff and auditors are no administrators: disabling them needs no guard.
    with sessions.begin() as session:
        set_disabled(session, "ada", True, actor="sam", now=NOW)
        set_disabled(session, "audrey", True, actor="sam", now=NOW)
    assert events(sessions) == [
        ("ada", "user_role_changed", {"user": "sam", "role": "admin", "was": "staff"}),
        ("ada", "user_role_changed", {"user": "ada", "role": "staff", "was": "admin"}),
        ("sam", "user_disabled", {"user": "ada"}),
        ("sam", "user_disabled", {"user": "audrey"}),
    ]


def test_locked_accounts_are_listed_as_such_and_unlock_is_logged(sessions):
    for _ in range(THROTTLE.max_failures):
        assert log_in(sessions, "sam", "wrong password") is LoginOutcome.REFUSED
    assert log_in(sessions, "sam", PASSWORD) is LoginOutcome.THROTTLED
    with sessions() as session:
        states = {a.username: a.state for a in list_accounts(session, now=NOW, throttle=THROTTLE)}
    assert states == {"ada": "active", "audrey": "active", "sam": "locked"}
    with sessions.begin() as session:
        unlock(session, "sam", actor="ada", now=NOW + timedelta(seconds=1))
    assert log_in(sessions, "sam", PASSWORD, NOW + timedelta(seconds=2)) is LoginOutcome.OK
    with sessions() as session:
        listed = {a.username: a for a in list_accounts(session, now=NOW, throttle=THROTTLE)}
    assert listed["sam"].state == "active" and listed["sam"].last_login == NOW + timedelta(seconds=2)
    assert listed["ada"].last_login is None
    assert events(sessions) == [("ada", "user_unlocked", {"user": "sam"})]


def test_an_unknown_account_is_named_and_nothing_is_logged(sessions):
    with pytest.raises(NoSuchUser, match="no user 'nobody'"), sessions.begin() as session:
        set_disabled(session, "nobody", True, actor="ada", now=NOW)
    assert events(sessions) == []


def test_account_events_are_links_of_the_hash_chain(sessions):
    with sessions.begin() as session:
        set_password(session, "audrey", "another long password", actor="ada", now=NOW)
        unlock(session, "audrey", actor="ada", now=NOW)
    result = verify_chain(sessions)
    assert result.ok and result.checked == len(events(sessions, after_setup=False)) == 5
