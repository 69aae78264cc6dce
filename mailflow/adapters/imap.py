"""The ``Mailbox`` port on a real IMAP server, through imapclient.

One instance holds one connection with the configured folder selected, opened lazily and reopened
after any failure. Waiting for mail uses IDLE and blocks the connection, so the worker gives it a
second instance of its own (``clone()``) while the first one processes.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import ssl
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Self, TypeVar

from imapclient import DELETED, IMAPClient

from mailflow.adapters.imap_login import login
from mailflow.adapters.imap_protocol import (
    MAX_IDLE_SECONDS,
    appended_uid,
    body_of,
    find_uid,
    hierarchy_delimiter,
    idle,
    set_socket_options,
    silence_protocol_trace,
    text,
)
from mailflow.adapters.tls import client_context, explain
from mailflow.errors import ConfigurationError, MailboxError, MailboxLoginError, MailboxMissingError

if TYPE_CHECKING:
    from types import TracebackType

    from mailflow.oauth2.sasl import Mechanism
    from mailflow.oauth2.tokens import TokenProvider
    from mailflow.ports import Fingerprint
    from mailflow.settings import Security, Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

# imaplib.IMAP4.abort (a dropped or confused connection) subclasses IMAP4.error (a NO or BAD reply),
# which imapclient's own exceptions subclass too; OSError covers sockets, timeouts and TLS.
_ERRORS = (OSError, imaplib.IMAP4.error)


class ImapMailbox:
    """One IMAP folder as a ``Mailbox``. Folder names passed in use ``/`` as hierarchy separator.

    Logs in with ``password``, or, given a ``token_provider``, with an OAuth2 token over SASL
    ``oauth2_mechanism`` (XOAUTH2 or OAUTHBEARER).
    """

    def __init__(
        self,
        host: str,
        user: str,
        password: str | None,
        *,
        port: int | None = None,
        folder: str = "INBOX",
        security: Security = "ssl",
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 60.0,
        batch_size: int = 50,
        name: str | None = None,
        ignore_capabilities: Collection[str] = (),
        token_provider: TokenProvider | None = None,
        oauth2_mechanism: Mechanism = "XOAUTH2",
    ) -> None:
        self._options: dict[str, Any] = {
            "token_provider": token_provider,
            "oauth2_mechanism": oauth2_mechanism,
            "port": port,
            "folder": folder,
            "security": security,
            "ssl_context": ssl_context,
            "timeout": timeout,
            "batch_size": batch_size,
            "name": name,
            "ignore_capabilities": ignore_capabilities,
        }
        self.host = host
        self.port = port if port is not None else (993 if security == "ssl" else 143)
        self.user = user
        self._password = password
        self._tokens = token_provider
        self._mechanism = oauth2_mechanism
        self.folder = folder
        self.security = security
        self._ssl_context = ssl_context
        self.timeout = timeout
        self.batch_size = max(1, batch_size)
        self._name = name or f"imap://{user}@{host}/{folder}"
        # Lets tests (and operators with a buggy server) take the fallback paths.
        self._ignored = frozenset(capability.upper() for capability in ignore_capabilities)
        self._client: IMAPClient | None = None
        self._capabilities: frozenset[str] = frozenset()
        self._delimiter: str | None = None
        self._known_folders: set[str] | None = None
        # UIDVALIDITY of the open session, and the one the caller's UIDs belong to.
        self._session_validity: int | None = None
        self._expected_validity: int | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        ssl_context: ssl.SSLContext | None = None,
        token_provider: TokenProvider | None = None,
    ) -> ImapMailbox:
        """``token_provider``: share one between the mailboxes of a worker, so they share its token."""
        oauth2 = settings.imap_auth == "oauth2"
        password_missing = not oauth2 and settings.imap_password is None
        if not settings.imap_host or settings.imap_user is None or password_missing:
            raise ConfigurationError("IMAP needs imap_host, imap_user and imap_password (or OAuth2)")
        if oauth2 and token_provider is None:
            from mailflow.oauth2.factory import build_token_provider

            token_provider = build_token_provider(settings, settings.imap_user)
        return cls(
            settings.imap_host,
            settings.imap_user,
            settings.imap_password,
            port=settings.imap_port,
            folder=settings.imap_folder,
            security=settings.imap_security,
            ssl_context=ssl_context or (client_context(settings.ca_file) if settings.ca_file else None),
            timeout=settings.imap_timeout,
            batch_size=settings.imap_batch_size,
            name=settings.mailbox_name,
            token_provider=token_provider if oauth2 else None,
            oauth2_mechanism=settings.oauth2_mechanism,
        )

    def clone(self) -> ImapMailbox:
        """A twin with its own connection, e.g. for IDLE while this one keeps working."""
        return ImapMailbox(self.host, self.user, self._password, **self._options)

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> frozenset[str]:
        """What the server offers after login, minus the ignored ones (connects when needed)."""
        self._connect()
        return self._capabilities

    # The Mailbox port

    def uidvalidity(self) -> int:
        # A fresh SELECT each time, so a UIDVALIDITY changed behind our back is seen. Servers drop
        # sessions whose folder changed UIDVALIDITY, hence one retry on a new connection.
        value = self._run("SELECT", self._select, retry=True)
        self._expected_validity = value
        return value

    def list_uids(self) -> list[int]:
        # ALL, never UNSEEN: mail somebody already read in another client must still be handled.
        return self._run(
            "UID SEARCH", lambda client: sorted(int(uid) for uid in client.search("ALL")), by_uid=True
        )

    def fetch(self, uids: Sequence[int]) -> Iterator[tuple[int, bytes]]:
        wanted = list(dict.fromkeys(int(uid) for uid in uids))
        for start in range(0, len(wanted), self.batch_size):
            batch = wanted[start : start + self.batch_size]
            # PEEK, so fetching does not set \Seen.
            response = self._run(
                "UID FETCH", lambda client, b=batch: client.fetch(b, [b"BODY.PEEK[]"]), by_uid=True
            )
            for uid in batch:
                body = body_of(response.get(uid))
                if body is not None:  # expunged meanwhile
                    yield uid, body

    def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        wanted = list(dict.fromkeys(int(uid) for uid in uids))
        found: dict[int, int] = {}
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            response = self._run(
                "UID FETCH RFC822.SIZE",
                lambda client, b=batch: client.fetch(b, [b"RFC822.SIZE"]),
                by_uid=True,
            )
            found.update(
                {uid: int(item[b"RFC822.SIZE"]) for uid, item in response.items() if b"RFC822.SIZE" in item}
            )
        return found

    def fetch_headers(self, uids: Sequence[int], max_bytes: int) -> Iterator[tuple[int, bytes]]:
        # A partial fetch: a hostile header block of megabytes is cut at max_bytes by the server.
        part = f"BODY.PEEK[HEADER]<0.{int(max_bytes)}>".encode()
        for uid in dict.fromkeys(int(uid) for uid in uids):
            response = self._run(
                "UID FETCH HEADER", lambda client, u=uid: client.fetch([u], [part]), by_uid=True
            )
            item = response.get(uid) or {}
            header = next(
                (v for k, v in item.items() if isinstance(k, bytes) and k.startswith(b"BODY[HEADER]")), None
            )
            if header is not None:
                yield uid, bytes(header)[:max_bytes]

    def move(self, uids: Sequence[int], folder: str) -> None:
        wanted = [int(uid) for uid in uids]
        if not wanted:
            return
        self._run("MOVE", lambda client: self._move(client, wanted, self._server_folder(folder)), by_uid=True)
        log.debug("moved %d messages of %s to %s", len(wanted), self._name, folder)

    def refile(self, email: Fingerprint, target: str, look_in: Sequence[str]) -> str | None:
        destination = self._server_folder(target)
        places = [(name, self._server_folder(name)) for name in look_in]

        def refile(client: IMAPClient) -> str | None:
            found = None
            for name, folder in places:
                uid = find_uid(client, folder, email, self.batch_size)
                if uid is not None:
                    if folder != destination:
                        self._move(client, [uid], destination)
                    found = name
                    break
            # Back to the watched folder; a failure above drops the connection instead.
            self._select(client)
            return found

        return self._run("refile", refile)

    def delete(self, email: Fingerprint, folder: str) -> bool:
        server_folder = self._server_folder(folder)
        if server_folder == self._server_folder(self.folder):
            raise MailboxError(f"refusing to delete from the watched folder {folder}")

        def delete(client: IMAPClient) -> bool:
            uid = find_uid(client, server_folder, email, self.batch_size)
            if uid is not None:
                if "UIDPLUS" not in self._capabilities:
                    # A plain EXPUNGE would also remove messages other clients flagged \Deleted.
                    raise MailboxError(f"{self.host} lacks UIDPLUS; cannot delete one message safely")
                client.add_flags([uid], [DELETED], silent=True)
                client.uid_expunge([uid])
            self._select(client)
            return uid is not None

        return self._run("delete", delete)

    def wait_for_new_mail(self, timeout: float) -> bool:
        if timeout <= 0:
            return False
        self._connect()
        if "IDLE" not in self._capabilities:
            time.sleep(timeout)
            return False
        return self._run("IDLE", lambda client: idle(client, min(timeout, MAX_IDLE_SECONDS)))

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.logout()
            except Exception:  # a connection that is already gone cannot be closed politely
                with contextlib.suppress(Exception):
                    client.shutdown()

    # Beyond the port

    def append(self, folder: str, data: bytes, flags: Sequence[bytes | str] = ()) -> int | None:
        """Store a message in ``folder`` (created when missing); its UID when the server says (UIDPLUS)."""

        def append(client: IMAPClient) -> Any:
            target = self._server_folder(folder)
            self._ensure_folder(client, target)
            return client.append(target, data, flags=tuple(flags))

        return appended_uid(self._run("APPEND", append))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # Internals

    def _connect(self) -> IMAPClient:
        if self._client is not None:
            return self._client
        where = f"{self.host}:{self.port}"
        use_tls = self.security != "none"
        context = self._ssl_context or (ssl.create_default_context() if use_tls else None)
        try:
            client = IMAPClient(
                self.host, self.port, ssl=self.security == "ssl", ssl_context=context, timeout=self.timeout
            )
        except _ERRORS as exc:
            raise MailboxError(f"cannot connect to IMAP server {where}: {explain(exc)}") from exc
        try:
            if self.security == "starttls":
                client.starttls(context)
            set_socket_options(client)
            silence_protocol_trace(client)
            login(
                client,
                self.user,
                self._password,
                where=where,
                name=self._name,
                tokens=self._tokens,
                mechanism=self._mechanism,
            )
            offered = {text(capability).upper() for capability in client.capabilities()}
            self._capabilities = frozenset(offered - self._ignored)
            self._delimiter = hierarchy_delimiter(client)
            self._select(client)
        except (*_ERRORS, MailboxLoginError, MailboxMissingError) as exc:
            with contextlib.suppress(Exception):
                client.shutdown()
            if isinstance(exc, MailboxLoginError | MailboxMissingError):
                raise
            raise MailboxError(f"cannot open {self._name} on {where}: {explain(exc)}") from exc
        self._client = client
        return client

    def _run(
        self, what: str, operation: Callable[[IMAPClient], T], *, by_uid: bool = False, retry: bool = False
    ) -> T:
        reused = self._client is not None
        client = self._connect()
        if self._expected_validity is None:
            self._expected_validity = self._session_validity
        if by_uid and self._session_validity != self._expected_validity:
            # After a reconnect the same UID may name another message: refuse until the caller
            # has asked uidvalidity() again and so knows its UIDs are stale.
            raise MailboxError(
                f"UIDVALIDITY of {self._name} changed from {self._expected_validity} "
                f"to {self._session_validity}"
            )
        try:
            return operation(client)
        except MailboxMissingError:
            self._drop()
            raise
        except _ERRORS as exc:
            # The session may be mid-command or gone; a new connection is the only clean state.
            self._drop()
            if retry and reused and isinstance(exc, OSError | imaplib.IMAP4.abort):
                log.info("connection to %s lost during %s; reconnecting", self._name, what)
                return self._run(what, operation)
            raise MailboxError(f"{what} failed on {self._name}: {exc}") from exc

    def _select(self, client: IMAPClient) -> int:
        try:
            response = client.select_folder(self.folder, readonly=False)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            # RFC 5530's NONEXISTENT; servers without response codes say so in words.
            reason = str(exc).lower()
            if "nonexistent" in reason or "doesn't exist" in reason or "does not exist" in reason:
                raise MailboxMissingError(f"the watched folder of {self._name} does not exist") from exc
            raise
        self._session_validity = int(response[b"UIDVALIDITY"])
        return self._session_validity

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.shutdown()

    def _server_folder(self, folder: str) -> str:
        parts = [part for part in folder.split("/") if part]
        if not parts:
            raise MailboxError(f"invalid folder name {folder!r}")
        if self._delimiter is None:
            self._connect()
        return (self._delimiter or "/").join(parts)

    def _ensure_folder(self, client: IMAPClient, target: str) -> None:
        if self._known_folders is None:
            self._known_folders = {name for _flags, _delim, name in client.list_folders()}
        if target in self._known_folders:
            return
        try:
            client.create_folder(target)
        except imaplib.IMAP4.error:
            if not client.folder_exists(target):  # else another process created it first
                raise
        with contextlib.suppress(imaplib.IMAP4.error):  # only so people see it in their mail client
            client.subscribe_folder(target)
        self._known_folders.add(target)

    def _move(self, client: IMAPClient, uids: list[int], target: str) -> None:
        self._ensure_folder(client, target)
        try:
            self._transfer_present(client, uids, target)
        except imaplib.IMAP4.error as exc:
            if "TRYCREATE" not in str(exc) or isinstance(exc, imaplib.IMAP4.abort):
                raise
            # Someone deleted the folder since we cached it.
            self._known_folders = None
            self._ensure_folder(client, target)
            self._transfer_present(client, uids, target)

    def _transfer_present(self, client: IMAPClient, uids: list[int], target: str) -> None:
        """Move the messages still here. One that vanished since we listed it (another worker of the same
        mailbox moved it, or a person deleted it) makes the server refuse the whole MOVE or COPY, e.g.
        Dovecot's ``NO [EXPUNGEISSUED]``: then move the ones left, and count the vanished as moved."""
        for _attempt in range(3):
            try:
                self._transfer(client, uids, target)
                return
            except imaplib.IMAP4.error as exc:
                if "TRYCREATE" in str(exc) or isinstance(exc, imaplib.IMAP4.abort):
                    raise
                present = self._still_here(client, uids)
                if len(present) == len(uids):
                    raise  # refused for another reason
                log.info(
                    "%d of %d messages of %s were gone already; moving the rest to %s",
                    len(uids) - len(present),
                    len(uids),
                    self._name,
                    target,
                )
                if not present:
                    return
                uids = present
        self._transfer(client, uids, target)

    def _still_here(self, client: IMAPClient, uids: list[int]) -> list[int]:
        client.noop()  # lets the server announce the expunges our session has not been told of
        wanted = set(uids)
        found = client.search([b"UID", ",".join(str(uid) for uid in sorted(wanted)).encode()])
        return sorted(wanted.intersection(int(uid) for uid in found))

    def _transfer(self, client: IMAPClient, uids: list[int], target: str) -> None:
        # A UID our session already knows is gone matches nothing: MOVE, COPY and UID EXPUNGE answer OK.
        # One expunged by another session since our last command makes them answer NO instead.
        if "MOVE" in self._capabilities:
            client.move(uids, target)
            return
        if "UIDPLUS" not in self._capabilities:
            # A plain EXPUNGE would also remove messages other clients flagged \Deleted.
            raise MailboxError(f"{self.host} supports neither MOVE nor UIDPLUS; cannot move messages safely")
        client.copy(uids, target)
        client.add_flags(uids, [DELETED], silent=True)
        client.uid_expunge(uids)
