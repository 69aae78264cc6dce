"""``mailflow check``'s look at the mail servers: log in, look around, change nothing, send nothing."""

from __future__ import annotations

import contextlib
import email.utils
import imaplib
import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import date, datetime

from imapclient import IMAPClient

from mailflow.adapters.imap_protocol import hierarchy_delimiter, silence_protocol_trace, text
from mailflow.adapters.tls import UNTRUSTED_HINT, client_context
from mailflow.domain import Status
from mailflow.errors import ConfigurationError, MailboxLoginError, OAuth2Error
from mailflow.oauth2.expiry import CredentialExpiry, expiry_warnings
from mailflow.operations.results import FAIL, OK, WARN, Result
from mailflow.settings import Settings

TIMEOUT = 15.0
TRANSPORT = {"ssl": "TLS", "starttls": "STARTTLS", "none": "no TLS"}
LOOPBACK = ("127.0.0.1", "::1", "localhost")
IMAP_ADDRESS_FIX = (
    "check MAILFLOW_IMAP_HOST, MAILFLOW_IMAP_PORT and MAILFLOW_IMAP_SECURITY (ssl on 993, starttls on 143), "
    "that the server runs, and that no firewall blocks this machine"
)
SMTP_ADDRESS_FIX = (
    "check MAILFLOW_SMTP_HOST, MAILFLOW_SMTP_PORT and MAILFLOW_SMTP_SECURITY (starttls on 587, ssl on 465), "
    "that the server runs, and that no firewall blocks this machine"
)


OAUTH2_FIX = (
    "check MAILFLOW_OAUTH2_PROVIDER, MAILFLOW_OAUTH2_TENANT_ID, MAILFLOW_OAUTH2_CLIENT_ID, the client "
    "secret (or certificate) and MAILFLOW_OAUTH2_SCOPE, and that the app registration may use this "
    "mailbox (Exchange: an application access policy; Google: domain-wide delegation)"
)
OAUTH2_RENEW_FIX = "renew the credential, then update its setting and its expiry date"


def _tls_fix(exc: BaseException, otherwise: str) -> str:
    return UNTRUSTED_HINT if isinstance(exc, ssl.SSLCertVerificationError) else otherwise


@dataclass
class ServerClocks:
    """What the mail checks saw of the servers' time, for the clock check."""

    newest_arrival: datetime | None = None  # INTERNALDATE of the newest email in the watched folder
    smtp_greeting: datetime | None = None  # the date in the SMTP server's greeting, when it gives one


def check_imap(settings: Settings, clocks: ServerClocks) -> list[Result]:
    if settings.uses_embedded_mailbox:
        return [
            Result("imap", OK, f"no IMAP server configured: the embedded Maildir {settings.maildir_path}")
        ]
    oauth2 = settings.imap_auth == "oauth2"
    if not settings.imap_user or (settings.imap_password is None and not oauth2):
        return [
            Result(
                "imap", FAIL, "no IMAP user or password", "set MAILFLOW_IMAP_USER and MAILFLOW_IMAP_PASSWORD"
            )
        ]
    where = f"{settings.imap_host}:{settings.imap_port}"
    security = settings.imap_security
    context = client_context(settings.ca_file) if security != "none" else None
    timeout = min(settings.imap_timeout, TIMEOUT)
    try:
        client = IMAPClient(
            settings.imap_host,
            settings.imap_port,
            ssl=security == "ssl",
            ssl_context=context,
            timeout=timeout,
        )
    except (OSError, imaplib.IMAP4.error) as exc:
        return [Result("imap", FAIL, f"cannot connect to {where}: {exc}", _tls_fix(exc, IMAP_ADDRESS_FIX))]
    client.normalise_times = False  # INTERNALDATEs with their zones, for the clock check
    silence_protocol_trace(client)
    try:
        return _look_around(client, settings, where, clocks)
    finally:
        with contextlib.suppress(Exception):
            client.logout()


def _look_around(client: IMAPClient, settings: Settings, where: str, clocks: ServerClocks) -> list[Result]:
    if settings.imap_security == "starttls":
        try:
            client.starttls(client_context(settings.ca_file))
        except (OSError, imaplib.IMAP4.error) as exc:
            return [
                Result(
                    "imap",
                    FAIL,
                    f"STARTTLS failed on {where}: {exc}",
                    _tls_fix(exc, "set MAILFLOW_IMAP_SECURITY to what the server offers (ssl or starttls)"),
                )
            ]
    oauth2 = settings.imap_auth == "oauth2"
    results: list[Result] = []
    try:
        if oauth2:
            results += _imap_oauth2_login(client, settings, where)
        else:
            client.login(settings.imap_user, settings.imap_password)
    except (OSError, imaplib.IMAP4.error) as exc:
        return [
            Result(
                "imap",
                FAIL,
                f"login as {settings.imap_user} on {where} refused: {exc}",
                "check MAILFLOW_IMAP_USER and MAILFLOW_IMAP_PASSWORD",
            )
        ]
    except (MailboxLoginError, ConfigurationError) as exc:
        return [Result("imap", FAIL, str(exc), OAUTH2_FIX)]
    how = f"{TRANSPORT[settings.imap_security]}{', OAuth2 ' + settings.oauth2_mechanism if oauth2 else ''}"
    results.insert(0, Result("imap", OK, f"logged in as {settings.imap_user} on {where} ({how})"))
    if settings.imap_security == "none" and settings.imap_host not in LOOPBACK and not oauth2:
        results.append(
            Result(
                "imap security",
                WARN,
                "the password travels unencrypted",
                "set MAILFLOW_IMAP_SECURITY=ssl (or starttls)",
            )
        )
    capabilities = {text(capability).upper() for capability in client.capabilities()}
    if not capabilities & {"MOVE", "UIDPLUS"}:
        results.append(
            Result(
                "imap capabilities",
                FAIL,
                "the server offers neither MOVE nor UIDPLUS",
                "use an IMAP server with MOVE (RFC 6851) or UIDPLUS: emails cannot be filed safely",
            )
        )
    elif "IDLE" not in capabilities:
        results.append(
            Result(
                "imap capabilities",
                WARN,
                "no IDLE: new mail is seen only at each poll",
                "lower MAILFLOW_POLL_INTERVAL if replies must be quicker",
            )
        )
    results.extend(_folders(client, settings, clocks))
    return results


def _folders(client: IMAPClient, settings: Settings, clocks: ServerClocks) -> list[Result]:
    delimiter = hierarchy_delimiter(client) or "/"
    existing = {text(name) for _flags, _delimiter, name in client.list_folders()}
    watched = settings.imap_folder
    if watched not in existing and not (
        watched.upper() == "INBOX" and "INBOX" in {n.upper() for n in existing}
    ):
        return [
            Result(
                "imap folders",
                FAIL,
                f"the watched folder {watched!r} does not exist",
                "set MAILFLOW_IMAP_FOLDER to an existing folder (usually INBOX)",
            )
        ]
    wanted = [status.folder for status in Status if status is not Status.RECEIVED]
    missing = [name for name in wanted if delimiter.join(name.split("/")) not in existing]
    results = []
    if missing:
        results.append(
            Result(
                "imap folders",
                WARN,
                f"{', '.join(missing)} missing (nothing was created)",
                "none needed: the worker creates each one when it first files an email there",
            )
        )
    else:
        results.append(Result("imap folders", OK, f"{watched} and {', '.join(wanted)} exist"))
    client.select_folder(watched, readonly=True)  # EXAMINE: flags and \Recent stay as they are
    uids = client.search("ALL")
    if uids:
        fetched = client.fetch([max(uids)], ["INTERNALDATE"])
        arrival = next(iter(fetched.values()), {}).get(b"INTERNALDATE")
        if isinstance(arrival, datetime) and arrival.tzinfo is not None:
            clocks.newest_arrival = arrival
    return results


def _imap_oauth2_login(client: IMAPClient, settings: Settings, where: str) -> list[Result]:
    """Log in with a token as the worker does; the credentials' expiry dates as warnings."""
    from mailflow.adapters.imap_login import login
    from mailflow.oauth2.factory import build_token_provider

    user = settings.imap_user or ""
    tokens = build_token_provider(settings, user)
    login(client, user, None, where=where, name=user, tokens=tokens, mechanism=settings.oauth2_mechanism)
    return _expiry_results(tokens.credential_expiries(), settings.oauth2_expiry_warning_days)


def _expiry_results(expiries: list[CredentialExpiry], warn_days: int) -> list[Result]:
    warnings = expiry_warnings(expiries, date.today(), warn_days)
    if warnings:
        return [Result("oauth2 credentials", WARN, warning, OAUTH2_RENEW_FIX) for warning in warnings]
    if expiries:
        soonest = expiries[0]
        return [Result("oauth2 credentials", OK, f"the {soonest.what} is valid until {soonest.expires}")]
    return [
        Result(
            "oauth2 credentials",
            WARN,
            "no expiry date known for the client secret or refresh token",
            "set MAILFLOW_OAUTH2_CLIENT_SECRET_EXPIRES (or _REFRESH_TOKEN_EXPIRES) to be warned in time",
        )
    ]


def check_smtp(settings: Settings, clocks: ServerClocks) -> list[Result]:
    """EHLO, STARTTLS and AUTH as the outbox would do them; then QUIT before any MAIL FROM."""
    if not settings.smtp_host:
        return [
            Result(
                "smtp",
                WARN,
                f"no SMTP server: replies are written to {settings.outbox_dir}, not sent",
                "set MAILFLOW_SMTP_HOST (and port, security, user, password) to send them",
            )
        ]
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    timeout = min(settings.smtp_timeout, TIMEOUT)
    context = client_context(settings.ca_file)
    client: smtplib.SMTP = (
        smtplib.SMTP_SSL(timeout=timeout, context=context)
        if settings.smtp_security == "ssl"
        else smtplib.SMTP(timeout=timeout)
    )
    try:
        try:
            # The constructor would connect too, but swallow the greeting (it may hold the server's clock);
            # TLS checks the certificate against _host, which only the constructor sets.
            client._host = settings.smtp_host  # type: ignore[attr-defined]
            _code, banner = client.connect(settings.smtp_host, settings.smtp_port)
        except (OSError, smtplib.SMTPException) as exc:
            return [
                Result("smtp", FAIL, f"cannot connect to {where}: {exc}", _tls_fix(exc, SMTP_ADDRESS_FIX))
            ]
        clocks.smtp_greeting = _date_in(banner.decode("utf-8", "replace"))
        return _converse(client, settings, where)
    finally:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            client.quit()
        client.close()


def _converse(client: smtplib.SMTP, settings: Settings, where: str) -> list[Result]:
    steps = ["EHLO"]
    try:
        code, _ = client.ehlo()
        if code != 250:
            return [Result("smtp", FAIL, f"{where} answered EHLO with {code}", SMTP_ADDRESS_FIX)]
        if settings.smtp_security == "starttls":
            if not client.has_extn("starttls"):
                return [
                    Result(
                        "smtp",
                        FAIL,
                        f"{where} offers no STARTTLS",
                        "set MAILFLOW_SMTP_SECURITY=ssl if the server speaks TLS at once (port 465)",
                    )
                ]
            client.starttls(context=client_context(settings.ca_file))
            client.ehlo()
            steps.append("STARTTLS")
        oauth2 = settings.smtp_auth == "oauth2"
        user = settings.smtp_user or (settings.imap_user if oauth2 else None)
        if user:
            if not client.has_extn("auth"):
                return [
                    Result(
                        "smtp",
                        FAIL,
                        f"{where} offers no AUTH",
                        "unset MAILFLOW_SMTP_USER if this machine "
                        "may relay without logging in, or use the server's submission port",
                    )
                ]
            if oauth2:
                _smtp_oauth2_login(client, settings, user)
                steps.append(f"AUTH {settings.oauth2_mechanism} as {user}")
            else:
                client.login(user, settings.smtp_password or "")
                steps.append(f"AUTH as {user}")
    except (OAuth2Error, ConfigurationError) as exc:
        return [Result("smtp", FAIL, f"no OAuth2 token for SMTP on {where}: {exc}", OAUTH2_FIX)]
    except smtplib.SMTPAuthenticationError as exc:
        if settings.smtp_auth == "oauth2":
            return [Result("smtp", FAIL, f"{where} refused the OAuth2 token ({exc.smtp_code})", OAUTH2_FIX)]
        return [
            Result(
                "smtp",
                FAIL,
                f"login as {settings.smtp_user} on {where} refused ({exc.smtp_code})",
                "check MAILFLOW_SMTP_USER and MAILFLOW_SMTP_PASSWORD",
            )
        ]
    except (OSError, smtplib.SMTPException) as exc:
        fix = _tls_fix(exc, SMTP_ADDRESS_FIX)
        return [Result("smtp", FAIL, f"{where} failed after {', '.join(steps)}: {exc}", fix)]
    results = [Result("smtp", OK, f"{where}: {', '.join(steps)} accepted; nothing sent")]
    if settings.smtp_security == "none" and settings.smtp_user and settings.smtp_host not in LOOPBACK:
        results.append(
            Result(
                "smtp security",
                WARN,
                "the password travels unencrypted",
                "set MAILFLOW_SMTP_SECURITY=starttls (or ssl)",
            )
        )
    if not settings.smtp_user:
        results.append(
            Result("smtp auth", OK, "no login configured: the server must accept this machine's mail")
        )
    return results


def _smtp_oauth2_login(client: smtplib.SMTP, settings: Settings, user: str) -> None:
    from mailflow.oauth2.factory import build_token_provider
    from mailflow.oauth2.sasl import smtp_authobject

    token = build_token_provider(settings, user).token()
    mechanism = settings.oauth2_mechanism
    respond = smtp_authobject(mechanism, user, token, settings.smtp_host or "", settings.smtp_port)
    client.auth(mechanism, respond, initial_response_ok=True)


_RFC2822_DATE = re.compile(r"(?:[A-Z][a-z]{2}, )?\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}")


def _date_in(banner: str) -> datetime | None:
    """Sendmail, Exim and Exchange put their clock in the greeting; Postfix does not."""
    found = _RFC2822_DATE.search(banner)
    if not found:
        return None
    with contextlib.suppress(TypeError, ValueError):
        return email.utils.parsedate_to_datetime(found.group(0))
    return None
