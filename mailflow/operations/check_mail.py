"""``mailflow check``'s look at the mail servers: log in, look around, change nothing, send nothing."""

from __future__ import annotations

import contextlib
import email.utils
import imaplib
import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime

from imapclient import IMAPClient

from mailflow.adapters.imap_protocol import hierarchy_delimiter, text
from mailflow.adapters.tls import UNTRUSTED_HINT, client_context
from mailflow.domain import Status
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
    if not settings.imap_user or settings.imap_password is None:
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
    try:
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
    results = [
        Result(
            "imap", OK, f"logged in as {settings.imap_user} on {where} ({TRANSPORT[settings.imap_security]})"
        )
    ]
    if settings.imap_security == "none" and settings.imap_host not in LOOPBACK:
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
        if settings.smtp_user:
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
            client.login(settings.smtp_user, settings.smtp_password or "")
            steps.append(f"AUTH as {settings.smtp_user}")
    except smtplib.SMTPAuthenticationError as exc:
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


_RFC2822_DATE = re.compile(r"(?:[A-Z][a-z]{2}, )?\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}")


def _date_in(banner: str) -> datetime | None:
    """Sendmail, Exim and Exchange put their clock in the greeting; Postfix does not."""
    found = _RFC2822_DATE.search(banner)
    if not found:
        return None
    with contextlib.suppress(TypeError, ValueError):
        return email.utils.parsedate_to_datetime(found.group(0))
    return None
