"""Access tokens for OAuth2 mail logins: one cached token, renewed before it expires, shared by threads.

A ``TokenSource`` asks an identity provider for a new token (Microsoft, Google or a generic token
endpoint, see the sibling modules); the ``TokenProvider`` in front of it keeps the token until shortly
before it expires, so the worker's threads (the IDLE watcher, the poller, the outbox) share one token
and ask the provider only when needed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol

from mailflow.oauth2.expiry import CredentialExpiry, expiry_warnings

log = logging.getLogger(__name__)

# Used when a token endpoint does not say how long its token lasts (RFC 6749 only recommends it).
ASSUMED_LIFETIME = 3600.0


@dataclass(frozen=True)
class OAuth2Identity:
    """Who asks for tokens, for error messages and logs: never a secret, never a token."""

    provider: str
    client_id: str
    scope: str | None
    tenant: str | None = None
    user: str | None = None
    token_url: str | None = None

    def describe(self) -> str:
        parts = [f"provider {self.provider}"]
        if self.tenant:
            parts.append(f"tenant {self.tenant}")
        parts.append(f"client id {self.client_id}")
        parts.append(f"scope {self.scope or '(none)'}")
        if self.user:
            parts.append(f"mailbox user {self.user}")
        if self.token_url:
            parts.append(f"token endpoint {self.token_url}")
        return ", ".join(parts)


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    # Seconds since the epoch, as time.time() counts.
    expires_at: float
    obtained_at: float


class TokenSource(Protocol):
    """Asks the identity provider for a fresh token; raises ``OAuth2Error`` when it cannot."""

    identity: OAuth2Identity

    def fetch(self) -> AccessToken: ...

    def known_expiries(self) -> Sequence[CredentialExpiry]:
        """Expiry dates the provider told us about (e.g. a refresh token's), besides the configured ones."""
        ...


class TokenProvider:
    """A thread-safe cache of one access token, renewed ``margin`` seconds before it expires."""

    def __init__(
        self,
        source: TokenSource,
        *,
        margin: float = 300.0,
        expiries: Sequence[CredentialExpiry] = (),
        warn_days: int = 14,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._margin = margin
        self._expiries = tuple(expiries)
        self._warn_days = warn_days
        self._clock = clock
        self._lock = threading.Lock()
        self._current: AccessToken | None = None
        self._warned_on: date | None = None

    @property
    def identity(self) -> OAuth2Identity:
        return self._source.identity

    def token(self) -> str:
        """A token valid for a while yet; asks the source only when the cached one is (nearly) expired."""
        with self._lock:
            now = self._clock()
            if self._current is None or now >= self._renew_at(self._current):
                self._current = self._source.fetch()
                lifetime = self._current.expires_at - self._current.obtained_at
                log.info("new OAuth2 access token for %s, valid %.0f s", self.identity.describe(), lifetime)
                self._warn_of_expiries(now)
            return self._current.value

    def invalidate(self, value: str) -> None:
        """Forget ``value`` (the server refused it), so the next ``token()`` asks for a new one."""
        with self._lock:
            if self._current is not None and self._current.value == value:
                self._current = None

    def credential_expiries(self) -> list[CredentialExpiry]:
        """The configured expiry dates and those the provider reported, soonest first."""
        return sorted([*self._expiries, *self._source.known_expiries()], key=lambda item: item.expires)

    def _renew_at(self, token: AccessToken) -> float:
        # Short-lived tokens (minutes) would otherwise be renewed on every use.
        lifetime = token.expires_at - token.obtained_at
        return token.expires_at - min(self._margin, lifetime / 2)

    def _warn_of_expiries(self, now: float) -> None:
        today = datetime.fromtimestamp(now, UTC).date()
        if self._warned_on == today:  # once a day is enough to be noticed, and not a flood
            return
        self._warned_on = today
        for warning in expiry_warnings(self.credential_expiries(), today, self._warn_days):
            log.warning("%s (%s)", warning, self.identity.describe())
