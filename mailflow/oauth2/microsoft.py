"""Tokens for Microsoft 365 (Exchange Online) with MSAL's client-credentials flow.

The app registration needs the ``IMAP.AccessAsApp`` and ``SMTP.SendAsApp`` application permissions,
and Exchange a service principal with access to the mailbox (see the README). The token is the app's,
not the user's: the mailbox is named in the SASL login.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from mailflow.errors import ConfigurationError, OAuth2Error
from mailflow.oauth2.expiry import CredentialExpiry
from mailflow.oauth2.generic import access_token_from, refused
from mailflow.oauth2.tokens import AccessToken, OAuth2Identity

AUTHORITY_HOST = "https://login.microsoftonline.com"
_CERTIFICATE_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_KEY_BLOCK = re.compile(r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.+?-----END \1PRIVATE KEY-----", re.DOTALL)
DEFAULT_SCOPE = "https://outlook.office365.com/.default"


class MicrosoftTokenSource:
    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        *,
        client_secret: str | None = None,
        certificate_file: Path | None = None,
        scope: str = DEFAULT_SCOPE,
        user: str | None = None,
        authority_host: str = AUTHORITY_HOST,
        timeout: float = 30.0,
        verify: bool | str = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if bool(client_secret) == bool(certificate_file):
            raise ConfigurationError("Microsoft OAuth2 needs a client secret or a certificate (one of them)")
        self._tenant_id = tenant_id
        self._client_id = client_id
        self._certificate_expires: date | None = None
        self._credential: str | dict[str, str]
        if client_secret:
            self._credential = client_secret
        else:
            self._credential, self._certificate_expires = certificate_credential(certificate_file)  # type: ignore[arg-type]
        self._scope = scope
        self._authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        # Only a local test authority turns this off: the real hosts are known to MSAL anyway.
        self._instance_discovery = authority_host == AUTHORITY_HOST
        self._timeout = timeout
        self._verify = verify
        self._clock = clock
        self._app: Any = None
        self._lock = threading.Lock()
        self.identity = OAuth2Identity("microsoft", client_id, scope, tenant=tenant_id, user=user)

    def fetch(self) -> AccessToken:
        with self._lock:
            obtained = self._clock()
            app = self._application()
            # The TokenProvider is the cache and asks only when it needs a new token (maybe because the
            # server refused the last one): MSAL's own cache would hand that one out again.
            for cached in list(app.token_cache.search(app.token_cache.CredentialType.ACCESS_TOKEN)):
                app.token_cache.remove_at(cached)
            result = app.acquire_token_for_client(scopes=[self._scope])
        if "access_token" not in result:
            raise refused(self.identity, str(result.get("error", "no token")), _first_line(result))
        return access_token_from(result, obtained, self.identity)

    def known_expiries(self) -> Sequence[CredentialExpiry]:
        # A certificate says when it expires; a client secret does not (set oauth2_client_secret_expires).
        if self._certificate_expires is None:
            return ()
        return (CredentialExpiry("client certificate", self._certificate_expires),)

    def _application(self) -> Any:
        # Built on first use: MSAL looks the tenant up over the network when it is created.
        if self._app is None:
            import msal

            try:
                self._app = msal.ConfidentialClientApplication(
                    self._client_id,
                    client_credential=self._credential,
                    authority=self._authority,
                    instance_discovery=self._instance_discovery,
                    timeout=self._timeout,
                    verify=self._verify,
                )
            except ValueError as exc:  # unknown tenant, malformed authority
                raise refused(self.identity, "invalid_tenant", str(exc).split(". ")[0]) from None
            except OSError as exc:  # requests' ConnectionError and timeouts are OSErrors
                where = self.identity.describe()
                raise OAuth2Error(f"cannot reach Microsoft's login service for {where}: {exc}") from None
        return self._app


def certificate_credential(path: Path) -> tuple[dict[str, str], date]:
    """MSAL's certificate credential from one PEM file holding the private key and the certificate,
    and the day the certificate expires."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        pem = path.read_text()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the OAuth2 certificate file {path}: {exc}") from exc
    key, certificate_block = _KEY_BLOCK.search(pem), _CERTIFICATE_BLOCK.search(pem)
    if key is None or certificate_block is None:
        raise ConfigurationError(f"{path} must hold the private key and the certificate, both PEM")
    certificate = x509.load_pem_x509_certificate(certificate_block.group(0).encode())
    credential = {
        "private_key": key.group(0),
        "thumbprint": certificate.fingerprint(hashes.SHA1()).hex(),  # what Entra ID names a certificate by
        # Sent to Entra ID (x5c): the certificate alone, never the key beside it.
        "public_certificate": certificate_block.group(0),
    }
    return credential, certificate.not_valid_after_utc.date()


def _first_line(result: dict[str, Any]) -> str:
    # Entra ID's descriptions run to several lines with trace ids: the first says what is wrong.
    return str(result.get("error_description", "")).splitlines()[0] if result.get("error_description") else ""
