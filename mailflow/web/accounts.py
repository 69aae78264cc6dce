"""Accounts of the web desk: argon2 password hashes, roles, and throttled password checks.

Every change to an account writes an event naming who did it (a desk user, or ``cli:<os user>``) in
the same transaction, so the hash-chained log holds all of them; never any password material.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailflow.settings import Settings
from mailflow.storage.desk_models import ROLES, LoginAttempt, User
from mailflow.storage.models import Event

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,49}")
MIN_PASSWORD = 10
_hasher = PasswordHasher()
# Checked against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class LoginOutcome(StrEnum):
    OK = "ok"
    REFUSED = "refused"
    THROTTLED = "throttled"


@dataclass(frozen=True)
class Throttle:
    max_failures: int = 5  # per account within the window
    window: timedelta = timedelta(minutes=15)
    max_failures_per_address: int = 20  # one address trying many accounts

    @classmethod
    def from_settings(cls, settings: Settings) -> Throttle:
        return cls(
            max_failures=settings.login_max_failures,
            window=timedelta(seconds=settings.login_window_seconds),
            max_failures_per_address=settings.login_max_failures_per_address,
        )


class AccountError(ValueError):
    """A change to an account that cannot be made; the message says why, for the command line."""


class BadUsername(AccountError):
    def __init__(self) -> None:
        super().__init__("a user name is 2-50 characters: lower-case letters, digits, '.', '_' or '-'")


class BadPassword(AccountError):
    def __init__(self) -> None:
        super().__init__(f"a password has at least {MIN_PASSWORD} characters")


class BadRole(AccountError):
    def __init__(self) -> None:
        super().__init__(f"role must be one of {', '.join(ROLES)}")


class UsernameTaken(AccountError):
    def __init__(self, username: str) -> None:
        super().__init__(f"user {username!r} exists already")
        self.username = username


class LastAdmin(AccountError):
    """The change would leave the desk without an active administrator, so no one could manage it."""

    def __init__(self, username: str) -> None:
        super().__init__(
            f"{username} is the last active administrator: make another account an administrator first"
        )
        self.username = username


class NoSuchUser(LookupError):
    def __init__(self, username: str) -> None:
        super().__init__(f"no user {username!r}")
        self.username = username


def check_username(name: str) -> str:
    name = name.strip().lower()
    if not USERNAME.fullmatch(name):
        raise BadUsername()
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise BadPassword()
    return password


def _record(session: Session, actor: str, kind: str, now: datetime, **detail: str) -> None:
    session.add(Event(message_id=None, at=now, actor=actor, kind=kind, detail=detail))


def add_user(session: Session, username: str, role: str, password: str, *, actor: str, now: datetime) -> User:
    """A new account; an AccountError for a bad name, role or password, or a name already taken."""
    username = check_username(username)
    if role not in ROLES:
        raise BadRole()
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UsernameTaken(username)
    user = User(
        username=username,
        role=role,
        password_hash=_hasher.hash(check_password(password)),
        created_at=now,
        disabled=False,
        session_version=1,
    )
    session.add(user)
    session.flush()
    _record(session, actor, "user_added", now, user=username, role=role)
    return user


@dataclass(frozen=True)
class Account:
    """One account as an administrator sees it."""

    username: str
    role: str
    disabled: bool
    created_at: datetime
    last_login: datetime | None
    locked: bool  # too many recent failed logins: refused until the window passes or an unlock

    @property
    def state(self) -> str:
        """active, disabled, or locked (out by failed logins)."""
        return "disabled" if self.disabled else "locked" if self.locked else "active"


def find_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NoSuchUser(username)
    return user


def set_password(session: Session, username: str, password: str, *, actor: str, now: datetime) -> User:
    """A new password; the account's open sessions end."""
    user = find_user(session, username)
    user.password_hash = _hasher.hash(check_password(password))
    user.session_version += 1
    _record(session, actor, "user_password_set", now, user=user.username)
    return user


def set_disabled(session: Session, username: str, disabled: bool, *, actor: str, now: datetime) -> User:
    """Disable (its open sessions end at once) or enable an account; the same state again changes nothing."""
    user = find_user(session, username)
    if user.disabled == disabled:
        return user
    if disabled:
        _keep_an_admin(session, user)
        user.session_version += 1
    user.disabled = disabled
    _record(session, actor, "user_disabled" if disabled else "user_enabled", now, user=user.username)
    return user


def set_role(session: Session, username: str, role: str, *, actor: str, now: datetime) -> User:
    user = find_user(session, username)
    if role not in ROLES:
        raise BadRole()
    if user.role == role:
        return user
    if role != "admin":
        _keep_an_admin(session, user)
    was, user.role = user.role, role
    _record(session, actor, "user_role_changed", now, user=user.username, role=role, was=was)
    return user


def unlock(session: Session, username: str, *, actor: str, now: datetime) -> User:
    """Let an account locked by failed logins log in again; the attempts stay on record."""
    user = find_user(session, username)
    user.unlocked_at = now
    _record(session, actor, "user_unlocked", now, user=user.username)
    return user


def _keep_an_admin(session: Session, leaving: User) -> None:
    """Refuse to take ``leaving`` out of the active administrators if it is the last of them."""
    if leaving.role != "admin" or leaving.disabled:
        return
    # Every active administrator's row locked, the leaving one too, always in the same order
    # (PostgreSQL; SQLite writes one transaction at a time anyway): two administrators disabling each
    # other at once cannot both pass this check, and wait for each other instead of deadlocking.
    admins = session.scalars(
        select(User.id)
        .where(User.role == "admin", User.disabled.is_(False))
        .order_by(User.id)
        .with_for_update()
    ).all()
    if not set(admins) - {leaving.id}:
        raise LastAdmin(leaving.username)


def list_accounts(session: Session, *, now: datetime, throttle: Throttle) -> list[Account]:
    """Every account, by name, with its last login and whether failed logins lock it now."""
    last_logins = dict(
        session.execute(
            select(LoginAttempt.username, func.max(LoginAttempt.at))
            .where(LoginAttempt.succeeded.is_(True))
            .group_by(LoginAttempt.username)
        ).all()
    )
    return [
        Account(
            username=user.username,
            role=user.role,
            disabled=user.disabled,
            created_at=user.created_at,
            last_login=last_logins.get(user.username),
            locked=_recent_failures(session, user.username, user, now, throttle) >= throttle.max_failures,
        )
        for user in session.scalars(select(User).order_by(User.username))
    ]


def _recent_failures(
    session: Session, name: str, user: User | None, now: datetime, throttle: Throttle
) -> int:
    """Failed logins of ``name`` within the throttle's window and after its last unlock."""
    recent = [
        LoginAttempt.username == name,
        LoginAttempt.at >= now - throttle.window,
        LoginAttempt.succeeded.is_(False),
    ]
    if user is not None and user.unlocked_at is not None:
        recent.append(LoginAttempt.at > user.unlocked_at)
    return session.scalar(select(func.count()).where(*recent)) or 0


def authenticate(
    session: Session, username: str, password: str, *, remote_addr: str, now: datetime, throttle: Throttle
) -> tuple[LoginOutcome, User | None]:
    """Check a login and record the attempt; too many recent failures refuse without checking."""
    name = username.strip().lower()[:100]
    user = session.scalar(select(User).where(User.username == name))
    by_address = session.scalar(
        select(func.count()).where(
            LoginAttempt.remote_addr == remote_addr,
            LoginAttempt.at >= now - throttle.window,
            LoginAttempt.succeeded.is_(False),
        )
    )
    by_name = _recent_failures(session, name, user, now, throttle)
    if by_name >= throttle.max_failures or (by_address or 0) >= throttle.max_failures_per_address:
        return LoginOutcome.THROTTLED, None
    ok = _verify(user.password_hash if user else _DUMMY_HASH, password) and user is not None
    ok = ok and not user.disabled  # type: ignore[union-attr]
    session.add(LoginAttempt(username=name, remote_addr=remote_addr[:64], at=now, succeeded=ok))
    if ok and user is not None and _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return (LoginOutcome.OK, user) if ok else (LoginOutcome.REFUSED, None)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
