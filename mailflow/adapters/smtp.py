"""Sending replies through an SMTP server, one connection per message.

Replies are few and far between, so a fresh connection per send is simpler and sturdier than keeping
one open across idle hours. The outcome is mapped to ``TransportError``: 5xx replies are permanent
(retrying the same message cannot help), everything else — 4xx, dropped connections, timeouts — is
worth another attempt later. Except one: a connection lost after the whole message was sent and before
the server's final reply to DATA (RFC 1047's window). The server may have accepted it, so that failure
is ``ambiguous``: never retried automatically, lest the resident get the reply twice.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from mailflow.adapters.tls import UNTRUSTED_HINT, client_context
from mailflow.errors import TOKEN_REFUSED_HINT, ConfigurationError, OAuth2Error, TokenRefused, TransportError
from mailflow.oauth2.sasl import smtp_authobject
from mailflow.settings import Settings

if TYPE_CHECKING:
    from mailflow.oauth2.sasl import Mechanism
    from mailflow.oauth2.tokens import TokenProvider

log = logging.getLogger(__name__)

Security = Literal["ssl", "starttls", "none"]
# Server replies often quote the recipient; error texts end up in the database and the logs.
_ADDRESS = re.compile(r"[^\s<>@,;:\"']+@[^\s<>@,;:\"']+")


class SmtpTransport:
    def __init__(
        self,
        host: str,
        port: int,
        security: Security = "starttls",
        user: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        token_provider: TokenProvider | None = None,
        oauth2_mechanism: Mechanism = "XOAUTH2",
    ) -> None:
        """With a ``token_provider``, ``user`` logs in with an OAuth2 token over ``oauth2_mechanism``."""
        if security not in ("ssl", "starttls", "none"):
            raise ConfigurationError(f"unknown SMTP security {security!r}")
        self.host = host
        self.port = port
        self.security = security
        self.user = user
        self._password = password
        self.timeout = timeout
        self._ssl_context = ssl_context
        self._local_hostname = local_hostname
        self._tokens = token_provider
        self._mechanism = oauth2_mechanism
        if token_provider is not None and not user:
            raise ConfigurationError("SMTP with OAuth2 needs the mailbox user (smtp_user or imap_user)")

    @classmethod
    def from_settings(
        cls, settings: Settings, *, token_provider: TokenProvider | None = None
    ) -> SmtpTransport:
        """``token_provider``: pass the IMAP one when the user is the same, so both share its token."""
        if not settings.smtp_host or settings.smtp_port is None:
            raise ConfigurationError("smtp_host is not set: replies go to the outbox directory instead")
        oauth2 = settings.smtp_auth == "oauth2"
        user = settings.smtp_user or (settings.imap_user if oauth2 else None)
        if oauth2 and not user:
            raise ConfigurationError("SMTP with OAuth2 needs smtp_user or imap_user")
        if oauth2 and token_provider is None and user:
            from mailflow.oauth2.factory import build_token_provider

            token_provider = build_token_provider(settings, user)
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_security,
            user,
            settings.smtp_password,
            settings.smtp_timeout,
            token_provider=token_provider if oauth2 else None,
            oauth2_mechanism=settings.oauth2_mechanism,
            ssl_context=client_context(settings.ca_file) if settings.ca_file else None,
        )

    def send(self, envelope_from: str, recipients: Sequence[str], message: bytes, message_id: str) -> None:
        """Hand ``message`` to the server; raise ``TransportError`` when it was not accepted."""
        try:
            client = self._connect()
        except smtplib.SMTPAuthenticationError as exc:
            # Wrong credentials are a configuration fault, not a fault of this message.
            raise TransportError(f"SMTP login failed: {_describe(exc)}", permanent=False) from exc
        except OAuth2Error as exc:  # no token, or the server refused it: retried like a wrong password
            raise TransportError(f"SMTP login to {self.host}:{self.port} failed: {exc}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            # Whatever the code, a refusal before MAIL FROM is about the server or our settings,
            # not about this message: worth trying again once that is fixed.
            raise TransportError(f"cannot connect to {self.host}:{self.port}: {_describe(exc)}") from exc
        try:
            refused = client.sendmail(envelope_from, list(recipients), message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            permanent = bool(codes) and all(500 <= code < 600 for code in codes)
            raise TransportError(f"recipient refused ({_codes(codes)})", permanent=permanent) from exc
        except smtplib.SMTPResponseException as exc:
            raise _response_error("sending", exc) from exc
        except (OSError, smtplib.SMTPException) as exc:
            if getattr(client, "message_sent", False):
                raise TransportError(
                    f"no answer after the whole message was sent; it may have been accepted: "
                    f"{_describe(exc)}",
                    ambiguous=True,
                ) from exc
            raise TransportError(f"sending failed: {_describe(exc)}") from exc
        finally:
            _close(client)
        if refused:
            # Some recipients took it: sending again would repeat it for them, so do not retry.
            codes = [code for code, _ in refused.values()]
            raise TransportError(f"some recipients refused ({_codes(codes)})", permanent=True)
        log.info("reply %s accepted by %s", message_id, self.host)

    def _context(self) -> ssl.SSLContext:
        # Loading the system's CA certificates takes tens of milliseconds: once per transport, not per send.
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _connect(self) -> smtplib.SMTP:
        client: smtplib.SMTP
        if self.security == "ssl":
            client = _TrackedSMTP_SSL(
                self.host,
                self.port,
                local_hostname=self._local_hostname,
                timeout=self.timeout,
                context=self._context(),
            )
        else:
            client = _TrackedSMTP(
                self.host, self.port, local_hostname=self._local_hostname, timeout=self.timeout
            )
        try:
            client.ehlo()
            if self.security == "starttls":
                client.starttls(context=self._context())
                client.ehlo()
            if self._tokens is not None:
                self._oauth2_login(client)
            elif self.user:
                client.login(self.user, self._password or "")
        except BaseException:
            _close(client)
            raise
        return client

    def _oauth2_login(self, client: smtplib.SMTP) -> None:
        assert self._tokens is not None and self.user
        offered = client.esmtp_features.get("auth", "").upper().split()
        if self._mechanism not in offered:
            raise TransportError(
                f"{self.host}:{self.port} does not offer AUTH {self._mechanism} "
                f"(it offers: {', '.join(offered) or 'no AUTH'}); is SMTP AUTH enabled for the mailbox?"
            )
        token = self._tokens.token()
        respond = smtp_authobject(self._mechanism, self.user, token, self.host, self.port)
        try:
            client.auth(self._mechanism, respond)
        except smtplib.SMTPAuthenticationError as exc:
            self._tokens.invalidate(token)  # the next attempt asks for a new one
            refused = TokenRefused(
                f"the SMTP server {self.host}:{self.port} refused the OAuth2 token ({self._mechanism}) for "
                f"{self._tokens.identity.describe()}: {_describe(exc).replace(token, '<token>')} — "
                f"{TOKEN_REFUSED_HINT}"
            )
            raise refused from exc


class _TracksData(smtplib.SMTP):
    """Knows whether the whole message went out (``message_sent``): from then on until the server's
    reply, a broken connection leaves its fate unknown. smtplib's own ``data()``, plus that flag."""

    message_sent = False

    def data(self, msg: bytes | str) -> tuple[int, bytes]:
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        payload = msg.encode("ascii") if isinstance(msg, str) else msg
        payload = re.sub(rb"(?:\r\n|\n|\r(?!\n))", b"\r\n", payload)  # CRLF line ends (RFC 5321)
        payload = re.sub(rb"(?m)^\.", b"..", payload)  # dot-stuffing (RFC 5321 4.5.2)
        if not payload.endswith(b"\r\n"):
            payload += b"\r\n"
        self.send(payload + b".\r\n")
        self.message_sent = True
        return self.getreply()


class _TrackedSMTP(_TracksData):
    pass


class _TrackedSMTP_SSL(_TracksData, smtplib.SMTP_SSL):
    pass


def _response_error(stage: str, exc: smtplib.SMTPResponseException) -> TransportError:
    return TransportError(f"{stage}: {_describe(exc)}", permanent=500 <= exc.smtp_code < 600)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
        return f"{exc.smtp_code} {_ADDRESS.sub('<address>', text)}"[:300]
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"{type(exc).__name__}: {exc.verify_message} ({UNTRUSTED_HINT})"
    return f"{type(exc).__name__}: {_ADDRESS.sub('<address>', str(exc))}"[:300]


def _codes(codes: Sequence[int]) -> str:
    return ", ".join(str(code) for code in codes) or "no code"


def _close(client: smtplib.SMTP) -> None:
    """QUIT politely; the message's fate is already decided, so a failure here changes nothing."""
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()
