"""Tokens from any OAuth2 token endpoint (RFC 6749): the client-credentials or the refresh-token grant."""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from mailflow.errors import OAuth2Error, TokenRequestRefused
from mailflow.oauth2.expiry import CredentialExpiry
from mailflow.oauth2.tokens import ASSUMED_LIFETIME, AccessToken, OAuth2Identity

log = logging.getLogger(__name__)


class GenericTokenSource:
    """Client credentials (no refresh token given) or a refresh token, sent in the form body."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | None = None,
        *,
        scope: str | None = None,
        refresh_token: str | None = None,
        user: str | None = None,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._refresh_token = refresh_token
        self._timeout = timeout
        self._ssl_context = ssl_context
        self._clock = clock
        self._refresh_expires_at: float | None = None
        self._lock = threading.Lock()
        self.identity = OAuth2Identity(
            "generic", client_id, scope, user=user, token_url=_without_secrets(token_url)
        )

    @property
    def grant(self) -> str:
        return "refresh_token" if self._refresh_token else "client_credentials"

    def fetch(self) -> AccessToken:
        with self._lock:
            form = {"grant_type": self.grant, "client_id": self._client_id}
            if self._client_secret:
                form["client_secret"] = self._client_secret
            if self._refresh_token:
                form["refresh_token"] = self._refresh_token
            if self._scope:
                form["scope"] = self._scope
            obtained = self._clock()
            body = post_form(
                self.token_url, form, self.identity, timeout=self._timeout, context=self._ssl_context
            )
            token = access_token_from(body, obtained, self.identity)
            if body.get("refresh_token") and body["refresh_token"] != self._refresh_token:
                # Some servers rotate refresh tokens: the new one is kept in memory; the configured one
                # stays valid on most servers, but a restart long after may need a newly issued one.
                log.info("the token endpoint issued a new refresh token for %s", self.identity.describe())
                self._refresh_token = body["refresh_token"]
            if isinstance(body.get("refresh_token_expires_in"), int | float):
                self._refresh_expires_at = obtained + float(body["refresh_token_expires_in"])
            return token

    def known_expiries(self) -> Sequence[CredentialExpiry]:
        if self._refresh_expires_at is None:
            return ()
        expires = datetime.fromtimestamp(self._refresh_expires_at, UTC).date()
        return (CredentialExpiry("refresh token", expires),)


def post_form(
    url: str,
    form: dict[str, str],
    identity: OAuth2Identity,
    *,
    timeout: float,
    context: ssl.SSLContext | None = None,
) -> dict[str, Any]:
    """POST ``form`` to a token endpoint; its JSON answer, or the OAuth2 error it gave as a clear error."""
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(form).encode("ascii"),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return _json(response.read(), identity)
    except urllib.error.HTTPError as exc:
        answer = _json_or_empty(exc.read())
        error = answer.get("error")
        if 400 <= exc.code < 500 and error:
            raise refused(identity, str(error), answer.get("error_description")) from None
        raise OAuth2Error(
            f"the token endpoint answered HTTP {exc.code} when asked for a token for {identity.describe()}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OAuth2Error(f"cannot reach the token endpoint for {identity.describe()}: {reason}") from None


def refused(identity: OAuth2Identity, error: str, description: Any = None) -> TokenRequestRefused:
    detail = f"{error}: {str(description)[:300]}" if description else error
    return TokenRequestRefused(f"the identity provider refused a token for {identity.describe()}: {detail}")


def access_token_from(body: dict[str, Any], obtained: float, identity: OAuth2Identity) -> AccessToken:
    value = body.get("access_token")
    if not isinstance(value, str) or not value:
        raise OAuth2Error(f"the token endpoint's answer holds no access_token ({identity.describe()})")
    lifetime = body.get("expires_in")
    try:
        seconds = float(lifetime) if lifetime is not None else ASSUMED_LIFETIME
    except (TypeError, ValueError):
        seconds = ASSUMED_LIFETIME
    return AccessToken(value, obtained + seconds, obtained)


def _json(data: bytes, identity: OAuth2Identity) -> dict[str, Any]:
    answer = _json_or_empty(data)
    if not answer:
        raise OAuth2Error(f"the token endpoint did not answer with a JSON object ({identity.describe()})")
    return answer


def _json_or_empty(data: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(data)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _without_secrets(url: str) -> str:
    """The URL as safe to log: no user info (client:secret@), no query."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
