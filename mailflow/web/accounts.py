"""Accounts of the web desk: argon2 password hashes, roles, and throttled password checks."""

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
        )


def check_username(name: str) -> str:
    name = name.strip().lower()
    if not USERNAME.fullmatch(name):
        raise ValueError("a user name is 2-50 characters: lower-case letters, digits, '.', '_' or '-'")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
    return password


def add_user(session: Session, username: str, role: str, password: str, *, now: datetime) -> User:
    """A new account; ValueError for a bad name, role or password, or a name already taken."""
    username = check_username(username)
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ValueError(f"user {username!r} exists already")
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


class NoSuchUser(LookupError):
    def __init__(self, username: str) -> None:
        super().__init__(f"no user {username!r}")


def find_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NoSuchUser(username)
    return user


def set_password(session: Session, username: str, password: str) -> User:
    user = find_user(session, check_username(username))
    user.password_hash = _hasher.hash(check_password(password))
    user.session_version += 1
    return user


def set_disabled(session: Session, username: str, disabled: bool) -> User:
    """Disable (its open sessions end at once) or enable an account."""
    user = find_user(session, username)
    if disabled and not user.disabled:
        user.session_version += 1
    user.disabled = disabled
    return user


def unlock(session: Session, username: str, *, now: datetime) -> User:
    """Let an account locked by failed logins log in again; the attempts stay on record."""
    user = find_user(session, username)
    user.unlocked_at = now
    return user


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
