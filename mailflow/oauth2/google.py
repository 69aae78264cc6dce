"""Tokens for Google Workspace mailboxes, through google-auth.

Either a service account with domain-wide delegation (its JSON key file; the token is issued for the
mailbox user), or an OAuth client's refresh token (client id and secret, from a one-time consent).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

from mailflow.errors import ConfigurationError, OAuth2Error
from mailflow.oauth2.expiry import CredentialExpiry
from mailflow.oauth2.generic import refused
from mailflow.oauth2.tokens import ASSUMED_LIFETIME, AccessToken, OAuth2Identity

DEFAULT_SCOPE = "https://mail.google.com/"
TOKEN_URL = "https://oauth2.googleapis.com/token"


class GoogleTokenSource:
    def __init__(
        self,
        user: str,
        *,
        service_account_file: Path | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        refresh_token: str | None = None,
        scope: str = DEFAULT_SCOPE,
        token_url: str = TOKEN_URL,
        verify: bool | str = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._verify = verify
        self._lock = threading.Lock()
        if service_account_file is not None:
            from google.oauth2 import service_account

            info = _read_key(service_account_file)
            try:
                self._credentials: Any = service_account.Credentials.from_service_account_info(
                    info, scopes=[scope], subject=user
                )
            except ValueError as exc:
                raise ConfigurationError(f"{service_account_file} is no service account key: {exc}") from exc
            client = str(info.get("client_id") or info.get("client_email"))
            self.identity = OAuth2Identity(
                "google", client, scope, user=user, tenant=f"service account {info.get('client_email')}"
            )
        elif refresh_token and client_id:
            from google.oauth2 import credentials

            self._credentials = credentials.Credentials(
                None,
                refresh_token=refresh_token,
                token_uri=token_url,
                client_id=client_id,
                client_secret=client_secret,
                scopes=[scope],
            )
            self.identity = OAuth2Identity("google", client_id, scope, user=user)
        else:
            raise ConfigurationError(
                "Google OAuth2 needs a service account file, or a client id with a refresh token"
            )

    def fetch(self) -> AccessToken:
        import google.auth.exceptions
        import requests
        from google.auth.transport.requests import Request

        with self._lock:
            session = requests.Session()
            session.verify = self._verify
            obtained = self._clock()
            try:
                self._credentials.refresh(Request(session))
            except google.auth.exceptions.RefreshError as exc:
                raise _refusal(self.identity, exc) from None
            except google.auth.exceptions.TransportError as exc:
                where = self.identity.describe()
                raise OAuth2Error(f"cannot reach Google's token service for {where}: {exc}") from None
            finally:
                session.close()
            expiry = self._credentials.expiry  # naive UTC, as google-auth keeps it
            expires_at = expiry.replace(tzinfo=UTC).timestamp() if expiry else obtained + ASSUMED_LIFETIME
            return AccessToken(self._credentials.token, expires_at, obtained)

    def known_expiries(self) -> Sequence[CredentialExpiry]:
        return ()


def _refusal(identity: OAuth2Identity, exc: Exception) -> OAuth2Error:
    # google-auth raises RefreshError(message, response_data); the data holds the OAuth2 error.
    data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
    if data.get("error"):
        return refused(identity, str(data["error"]), data.get("error_description"))
    return refused(identity, "refused", str(exc.args[0]) if exc.args else "")


def _read_key(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the service account key {path}: {exc}") from exc
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ConfigurationError(f"{path} is not a service account key (its type is not service_account)")
    return info
