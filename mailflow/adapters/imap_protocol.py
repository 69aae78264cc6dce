"""Small pieces of IMAP protocol handling on top of imapclient, kept apart from the adapter's state."""

from __future__ import annotations

import contextlib
import hashlib
import imaplib
import socket
import time
from collections.abc import Sequence
from typing import Any

from imapclient import IMAPClient

from mailflow.ports import Fingerprint

# RFC 2177: servers may drop an IDLE after 30 minutes, so never idle longer than 29.
MAX_IDLE_SECONDS = 29 * 60


def idle(client: IMAPClient, timeout: float) -> bool:
    """IDLE for up to ``timeout`` seconds; True as soon as the server announces new mail."""
    deadline = time.monotonic() + timeout
    while True:
        client.idle()
        # Dovecot sends changes made before the IDLE right behind its "+ idling"; imaplib may have
        # buffered them already, where polling the socket cannot see them.
        if not has_buffered_input(client) and _await_mail(client, deadline):
            client.idle_done()
            return True
        # Time is up, data is buffered, or the connection woke us with nothing to read (perhaps
        # closed). Ending the IDLE reads what is pending, and raises if the connection is gone.
        _message, pending = client.idle_done()
        if announces_mail(pending):
            return True
        if time.monotonic() >= deadline:
            return False


def _await_mail(client: IMAPClient, deadline: float) -> bool:
    while (remaining := deadline - time.monotonic()) > 0:
        started = time.monotonic()
        responses = client.idle_check(timeout=remaining)
        if announces_mail(responses):
            return True
        if not responses and time.monotonic() - started < remaining - 0.05:
            return False
    return False


def has_buffered_input(client: IMAPClient) -> bool:
    """Whether server data waits in imaplib's read buffer (or on the socket) without blocking."""
    # imapclient offers no way to see imaplib's buffer; ``file`` is imaplib's buffered reader up
    # to Python 3.13. Without it we merely notice such changes when the IDLE ends.
    reader = getattr(getattr(client, "_imap", None), "file", None)
    peek = getattr(reader, "peek", None)
    if peek is None:
        return False
    sock = client.socket()
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return bool(peek(1))
    except OSError:  # nothing buffered and nothing on the (TLS) socket
        return False
    finally:
        sock.settimeout(timeout)


def announces_mail(responses: Sequence[Any]) -> bool:
    for response in responses:
        if response and response[0] == b"BYE":
            raise imaplib.IMAP4.abort(f"server closed the connection: {response}")
        if len(response) < 2 or not isinstance(response[0], int):
            continue
        # "* 0 RECENT" says nothing is new.
        if response[1] == b"EXISTS" or (response[1] == b"RECENT" and response[0] > 0):
            return True
    return False


def body_of(item: dict[bytes, Any] | None) -> bytes | None:
    if not item:
        return None
    for key, value in item.items():
        # imapclient keys the data b"BODY[]"; some servers echo it with an origin octet (b"BODY[]<0>").
        if isinstance(key, bytes) and key.startswith(b"BODY[]") and value is not None:
            return bytes(value)
    return None


def appended_uid(response: Any) -> int | None:
    # b"[APPENDUID <uidvalidity> <uid>] Append completed."
    message = text(response)
    if "APPENDUID" not in message:
        return None
    with contextlib.suppress(ValueError, IndexError):
        return int(message.split("APPENDUID", 1)[1].split("]", 1)[0].split()[1])
    return None


def find_uid(client: IMAPClient, folder: str, email: Fingerprint, batch_size: int) -> int | None:
    """Select ``folder`` and return the UID of ``email`` in it; None when it lacks it or does not exist."""
    try:
        client.select_folder(folder, readonly=False)
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error:  # NO: no such folder, so the email is not there
        return None
    for criteria in search_criteria(email):
        candidates = sorted(client.search(criteria))
        for start in range(0, len(candidates), batch_size):
            batch = candidates[start : start + batch_size]
            response = client.fetch(batch, [b"BODY.PEEK[]"])
            for uid in batch:
                body = body_of(response.get(uid))
                if body is not None and hashlib.sha256(body).hexdigest() == email.sha256:
                    return uid
    return None


def search_criteria(email: Fingerprint) -> list[list[Any]]:
    """UID SEARCHes for the candidates that may be ``email``, most precise first; the hash decides.

    Message-ID first (some servers, Exchange among them, report sizes that differ from the bytes
    fetched), then the exact size, for emails without a usable Message-ID or with a folded one.
    """
    searches: list[list[Any]] = []
    if email.message_id and email.message_id.isascii() and email.message_id.isprintable():
        searches.append(["NOT", "DELETED", "HEADER", "Message-ID", email.message_id])
    searches.append(["NOT", "DELETED", "LARGER", max(email.size - 1, 0), "SMALLER", email.size + 1])
    return searches


def hierarchy_delimiter(client: IMAPClient) -> str | None:
    # LIST "" "" answers with just the hierarchy delimiter (RFC 3501 6.3.8).
    for _flags, delimiter, _name in client.list_folders("", ""):
        return text(delimiter) if delimiter else None
    return None


def set_socket_options(client: IMAPClient, keepalive_after: int = 60) -> None:
    """No Nagle delay, and TCP keepalive: a connection whose server vanished without a word (a crashed
    host, a dropped NAT entry) fails within about ``keepalive_after`` + 30 s even inside an IDLE."""
    with contextlib.suppress(OSError, AttributeError):
        sock = client.socket()
        # Commands are small request/response pairs; Nagle would add ~40 ms to each.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in (("TCP_KEEPIDLE", keepalive_after), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
            if hasattr(socket, option):  # Linux; other systems keep their defaults
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def silence_protocol_trace(client: IMAPClient) -> None:
    """Stop imaplib tracing the protocol. IMAPClient sets imaplib's debug level to 5 so that its logger
    gets every line, and imaplib then formats each response, a whole email's repr included, into a
    string before the logger can decline it: a 35 MB email cost two more copies of itself (about 75 MB
    at the worker's peak). The trace would also carry emails into logs, which must never hold them."""
    imap = getattr(client, "_imap", None)
    if imap is not None:
        imap.debug = 0


def text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
