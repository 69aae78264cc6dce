"""ImapMailbox against a real Dovecot."""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from mailflow.adapters.imap import ImapMailbox
from mailflow.errors import MailboxError
from mailflow.ports import Fingerprint
from mailflow.settings import Security
from tests.fixtures.dovecot import DovecotAccount, DovecotServer, new_account, running_dovecot

pytestmark = pytest.mark.integration


def message(n: int) -> bytes:
    return (
        f"From: resident{n}@example.org\r\nTo: migratie@stad.gent\r\n"
        f"Subject: Test {n}\r\nMessage-ID: <test-{n}@example.org>\r\n\r\nBody {n}\r\n"
    ).encode()


@pytest.fixture
def mailbox(dovecot: DovecotAccount) -> Iterator[ImapMailbox]:
    with ImapMailbox(
        dovecot.host, dovecot.user, dovecot.password, port=dovecot.port, security="none", timeout=10
    ) as box:
        yield box


@pytest.fixture(scope="module")
def tls_server() -> Iterator[DovecotServer]:
    with running_dovecot(tls=True) as server:
        yield server


@pytest.fixture
def tls_account(tls_server: DovecotServer) -> Iterator[DovecotAccount]:
    with new_account(tls_server) as account:
        yield account


def test_lists_every_message_including_read_ones(dovecot: DovecotAccount, mailbox: ImapMailbox) -> None:
    unread = dovecot.append("INBOX", message(1))
    read = dovecot.append("INBOX", message(2), flags=[b"\\Seen"])

    assert mailbox.list_uids() == [unread, read]


def test_fetch_returns_raw_bytes_without_setting_seen(dovecot: DovecotAccount, mailbox: ImapMailbox) -> None:
    first = dovecot.append("INBOX", message(1))
    second = dovecot.append("INBOX", message(2))

    fetched = dict(mailbox.fetch([second, first]))

    assert fetched == {first: message(1), second: message(2)}
    assert b"\\Seen" not in dovecot.flags("INBOX", first)
    assert b"\\Seen" not in dovecot.flags("INBOX", second)


def test_a_fetched_email_reaches_no_log_even_at_debug_level(
    dovecot: DovecotAccount, mailbox: ImapMailbox, caplog: pytest.LogCaptureFixture
) -> None:
    """imaplib's protocol trace would log every response, whole emails included, and would build
    those lines (two copies of each email) even when no logger wants them."""
    body = b"Rijksregisternummer 85.07.30-033.28, " + b"x" * 200_000
    uid = dovecot.append("INBOX", message(7).replace(b"Body 7", body))
    caplog.set_level(logging.DEBUG)

    [(_, raw)] = list(mailbox.fetch([uid]))

    assert body in raw
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "85.07.30" not in logged and "xxxxxxxx" not in logged


def test_fetch_batches_keep_order_and_skip_vanished_uids(dovecot: DovecotAccount) -> None:
    uids = [dovecot.append("INBOX", message(n)) for n in range(5)]
    with ImapMailbox(
        dovecot.host, dovecot.user, dovecot.password, port=dovecot.port, security="none", batch_size=2
    ) as box:
        fetched = list(box.fetch([*uids, 999]))

    assert [uid for uid, _ in fetched] == uids
    assert [body for _, body in fetched] == [message(n) for n in range(5)]


def test_move_creates_the_folder_and_removes_from_inbox(
    dovecot: DovecotAccount, mailbox: ImapMailbox
) -> None:
    keep = dovecot.append("INBOX", message(1))
    moved = dovecot.append("INBOX", message(2))

    mailbox.move([moved], "Mailflow/Processed")

    # Dovecot's Maildir++ hierarchy delimiter is "."
    assert "Mailflow.Processed" in dovecot.folders()
    assert dovecot.bodies("Mailflow.Processed") == [message(2)]
    assert dovecot.uids("INBOX") == [keep]
    assert mailbox.list_uids() == [keep]


def test_moving_a_vanished_uid_is_a_no_op(dovecot: DovecotAccount, mailbox: ImapMailbox) -> None:
    uid = dovecot.append("INBOX", message(1))
    mailbox.move([uid], "Processed")

    mailbox.move([uid], "Processed")

    assert dovecot.folder_count("Processed") == 1


@pytest.mark.parametrize("without", [(), ("MOVE",)], ids=["move", "copy and expunge"])
def test_messages_another_worker_moved_meanwhile_are_skipped_and_the_rest_moved(
    dovecot: DovecotAccount, without: tuple[str, ...]
) -> None:
    uids = [dovecot.append("INBOX", message(n)) for n in range(4)]
    options = {"port": dovecot.port, "security": "none", "timeout": 10, "ignore_capabilities": without}
    with (
        ImapMailbox(dovecot.host, dovecot.user, dovecot.password, **options) as ours,
        ImapMailbox(dovecot.host, dovecot.user, dovecot.password, **options) as theirs,
    ):
        assert ours.list_uids() == theirs.list_uids() == uids  # both sessions know all four
        theirs.move(uids[:2], "Processed")

        # Dovecot refuses the whole MOVE of a set holding an expunged UID ("NO [EXPUNGEISSUED]").
        ours.move(uids[1:], "Processed")

        assert ours.list_uids() == []
    assert dovecot.bodies("Processed") == [message(n) for n in range(4)]
    assert dovecot.folder_count("INBOX") == 0


def test_move_into_an_existing_folder(dovecot: DovecotAccount, mailbox: ImapMailbox) -> None:
    dovecot.create("Triage")
    dovecot.append("Triage", message(0))
    uid = dovecot.append("INBOX", message(1))

    mailbox.move([uid], "Triage")

    assert dovecot.folder_count("Triage") == 2
    assert dovecot.folder_count("INBOX") == 0


def test_move_without_move_capability_expunges_only_that_uid(dovecot: DovecotAccount) -> None:
    # Someone flagged this message \Deleted in their mail client; a plain EXPUNGE would destroy it.
    flagged = dovecot.append("INBOX", message(0), flags=[b"\\Deleted"])
    uid = dovecot.append("INBOX", message(1))
    with ImapMailbox(
        dovecot.host,
        dovecot.user,
        dovecot.password,
        port=dovecot.port,
        security="none",
        ignore_capabilities={"MOVE"},
    ) as box:
        assert "MOVE" not in box.capabilities
        box.move([uid], "Processed")

    assert dovecot.bodies("Processed") == [message(1)]
    assert dovecot.uids("INBOX") == [flagged]


def test_move_recreates_a_folder_deleted_behind_its_back(
    dovecot: DovecotAccount, mailbox: ImapMailbox
) -> None:
    first = dovecot.append("INBOX", message(1))
    second = dovecot.append("INBOX", message(2))
    mailbox.move([first], "Processed")
    dovecot.client().delete_folder("Processed")

    mailbox.move([second], "Processed")

    assert dovecot.bodies("Processed") == [message(2)]


def fingerprint(data: bytes, message_id: str | None) -> Fingerprint:
    return Fingerprint(hashlib.sha256(data).hexdigest(), len(data), message_id)


def test_refile_moves_the_email_with_those_bytes_and_keeps_watching_the_inbox(
    dovecot: DovecotAccount, mailbox: ImapMailbox
) -> None:
    waiting = dovecot.append("INBOX", message(9))
    dovecot.append("Triage", message(1))
    lookalike = message(2).replace(b"Body 2", b"Body 2, edited")  # same Message-ID, other bytes
    dovecot.append("Triage", lookalike)
    dovecot.append("Triage", message(2))

    found = mailbox.refile(
        fingerprint(message(2), "<test-2@example.org>"), "Processed", ["Triage", "Processed"]
    )

    assert found == "Triage"
    assert dovecot.bodies("Triage") == [message(1), lookalike]
    assert dovecot.bodies("Processed") == [message(2)]
    assert mailbox.list_uids() == [waiting]
    assert dict(mailbox.fetch([waiting])) == {waiting: message(9)}


def test_refile_again_finds_it_in_the_target_and_moves_nothing(
    dovecot: DovecotAccount, mailbox: ImapMailbox
) -> None:
    dovecot.append("Quarantine", message(1))
    email = fingerprint(message(1), "<test-1@example.org>")
    mailbox.refile(email, "Processed", ["Quarantine", "Processed"])

    assert mailbox.refile(email, "Processed", ["Quarantine", "Processed"]) == "Processed"
    assert dovecot.bodies("Processed") == [message(1)]
    assert dovecot.folder_count("Quarantine") == 0


def test_refile_finds_an_email_without_message_id_by_its_size(
    dovecot: DovecotAccount, mailbox: ImapMailbox
) -> None:
    bare = b"From: someone@example.org\r\nSubject: no id\r\n\r\nBody\r\n"
    dovecot.append("Quarantine", message(1))
    dovecot.append("Quarantine", bare)

    # "Ignored" does not exist: it cannot hold the email, and the search goes on.
    assert (
        mailbox.refile(fingerprint(bare, None), "Triage", ["Ignored", "Quarantine", "Triage"]) == "Quarantine"
    )
    assert dovecot.bodies("Triage") == [bare]
    assert mailbox.refile(fingerprint(message(5), "<test-5@example.org>"), "Triage", ["Quarantine"]) is None


def test_refile_without_move_capability_leaves_a_copy_flagged_deleted_alone(dovecot: DovecotAccount) -> None:
    flagged = dovecot.append("Triage", message(1), flags=[b"\\Deleted"])  # someone's mail client's
    dovecot.append("Triage", message(1))
    with ImapMailbox(
        dovecot.host,
        dovecot.user,
        dovecot.password,
        port=dovecot.port,
        security="none",
        ignore_capabilities={"MOVE"},
    ) as box:
        assert (
            box.refile(fingerprint(message(1), "<test-1@example.org>"), "Processed", ["Triage"]) == "Triage"
        )

    assert dovecot.bodies("Processed") == [message(1)]
    assert dovecot.uids("Triage") == [flagged]


def test_idle_wakes_up_when_mail_arrives(dovecot: DovecotAccount, mailbox: ImapMailbox) -> None:
    watcher = mailbox.clone()
    watcher.uidvalidity()
    timer = threading.Timer(0.5, dovecot.append, ("INBOX", message(1)))
    started = time.monotonic()
    timer.start()
    try:
        assert watcher.wait_for_new_mail(15) is True
    finally:
        timer.join()
        watcher.close()

    assert time.monotonic() - started < 3
    assert len(mailbox.list_uids()) == 1


def test_idle_reports_mail_that_arrived_between_two_waits(
    dovecot: DovecotAccount, mailbox: ImapMailbox
) -> None:
    with mailbox.clone() as watcher:
        assert watcher.wait_for_new_mail(0.3) is False
        dovecot.append("INBOX", message(1))
        started = time.monotonic()
        assert watcher.wait_for_new_mail(15) is True
    assert time.monotonic() - started < 3


def test_idle_times_out_and_ignores_mail_leaving(dovecot: DovecotAccount, mailbox: ImapMailbox) -> None:
    uid = dovecot.append("INBOX", message(1))
    with mailbox.clone() as watcher:
        watcher.uidvalidity()
        mailbox.move([uid], "Processed")
        started = time.monotonic()
        assert watcher.wait_for_new_mail(1.0) is False
        assert time.monotonic() - started >= 0.9
        # The connection is still usable after IDLE.
        assert watcher.list_uids() == []


def test_without_idle_waiting_sleeps(dovecot: DovecotAccount) -> None:
    with ImapMailbox(
        dovecot.host,
        dovecot.user,
        dovecot.password,
        port=dovecot.port,
        security="none",
        ignore_capabilities={"IDLE"},
    ) as box:
        started = time.monotonic()
        assert box.wait_for_new_mail(0.4) is False
        assert time.monotonic() - started >= 0.4


def test_uidvalidity_change_is_observed(dovecot: DovecotAccount, mailbox: ImapMailbox) -> None:
    dovecot.append("INBOX", message(1))
    before = mailbox.uidvalidity()
    assert mailbox.list_uids()

    after = dovecot.change_uidvalidity("INBOX")

    assert after != before
    assert mailbox.uidvalidity() == after
    assert len(mailbox.list_uids()) == 1


def test_uid_operations_refuse_after_a_silent_uidvalidity_change(
    dovecot: DovecotAccount, mailbox: ImapMailbox
) -> None:
    uid = dovecot.append("INBOX", message(1))
    mailbox.uidvalidity()
    dovecot.change_uidvalidity("INBOX")

    # The server dropped the session; the UIDs the caller holds belong to the old UIDVALIDITY.
    with pytest.raises(MailboxError):
        mailbox.list_uids()
    with pytest.raises(MailboxError, match="UIDVALIDITY"):
        mailbox.move([uid], "Processed")
    assert dovecot.folder_count("INBOX") == 1

    mailbox.uidvalidity()
    mailbox.move([uid], "Processed")
    assert dovecot.folder_count("Processed") == 1


def test_reconnects_after_the_connection_is_killed(dovecot: DovecotAccount, mailbox: ImapMailbox) -> None:
    uid = dovecot.append("INBOX", message(1))
    assert mailbox.list_uids() == [uid]

    dovecot.server.doveadm("kick", dovecot.user)

    # The kick lands asynchronously: the next command, or one soon after, finds the connection gone.
    deadline = time.monotonic() + 10
    while True:
        try:
            mailbox.list_uids()
        except MailboxError:
            break
        assert time.monotonic() < deadline, "the killed connection kept answering"
        time.sleep(0.05)
    assert mailbox.list_uids() == [uid]


def test_append_returns_the_uid(dovecot: DovecotAccount, mailbox: ImapMailbox) -> None:
    uid = mailbox.append("Drafts/Seed", message(3))

    assert dovecot.uids("Drafts.Seed") == [uid]


def test_from_settings(dovecot: DovecotAccount) -> None:
    settings = dovecot.settings(imap_folder="INBOX")
    dovecot.append("INBOX", message(1))

    with ImapMailbox.from_settings(settings) as box:
        assert box.name == settings.mailbox_name == f"imap://{dovecot.user}@127.0.0.1/INBOX"
        assert len(box.list_uids()) == 1


def test_wrong_password_is_a_mailbox_error(dovecot: DovecotAccount) -> None:
    box = ImapMailbox(dovecot.host, dovecot.user, "wrong", port=dovecot.port, security="none")
    with pytest.raises(MailboxError):
        box.uidvalidity()


def test_unreachable_server_is_a_mailbox_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        box = ImapMailbox("127.0.0.1", "u", "p", port=port, security="none", timeout=2)
        with pytest.raises(MailboxError):
            box.list_uids()


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_connections_verify_the_certificate(tls_account: DovecotAccount, security: Security) -> None:
    server = tls_account.server
    port = server.tls_port if security == "ssl" else server.port
    uid = tls_account.append("INBOX", message(1))
    with ImapMailbox(
        server.host,
        tls_account.user,
        tls_account.password,
        port=port,
        security=security,
        ssl_context=server.ssl_context(),
        timeout=10,
    ) as box:
        assert dict(box.fetch(box.list_uids())) == {uid: message(1)}

    # The default context trusts only real CAs, so the self-signed certificate is refused.
    untrusting = ImapMailbox(
        server.host,
        tls_account.user,
        tls_account.password,
        port=port,
        security=security,
        timeout=10,
    )
    with pytest.raises(MailboxError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.list_uids()
