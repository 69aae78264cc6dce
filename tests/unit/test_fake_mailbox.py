"""The in-memory FakeMailbox follows the same UID rules as the real adapters."""

from __future__ import annotations

import threading

import pytest

from mailflow.adapters.fakes import FakeMailbox
from mailflow.errors import MailboxError
from mailflow.ports import Mailbox


def test_is_a_mailbox_with_imap_uid_rules() -> None:
    fake = FakeMailbox()
    _typed: Mailbox = fake  # structural check for type checkers
    first = fake.append("INBOX", b"one")
    second = fake.append("INBOX", b"two")

    fake.move([first], "Processed")
    fake.move([first], "Processed")  # gone: a no-op
    third = fake.append("INBOX", b"three")

    assert fake.list_uids() == [second, third]
    assert third > second > first
    assert dict(fake.fetch([first, second, third])) == {second: b"two", third: b"three"}
    assert fake.messages("Processed") == [b"one"]
    assert fake.moves == [(first, "Processed")]
    assert fake.name == "fake:INBOX"


def test_change_uidvalidity_renumbers() -> None:
    fake = FakeMailbox()
    fake.append("INBOX", b"a")
    fake.append("INBOX", b"b")
    before = fake.uidvalidity()

    after = fake.change_uidvalidity()

    assert after == fake.uidvalidity() != before
    assert fake.list_uids() == [3, 4]
    assert fake.messages("INBOX") == [b"a", b"b"]


def test_fail_next_raises_once() -> None:
    fake = FakeMailbox()
    uid = fake.append("INBOX", b"a")
    fake.fail_next("move")

    with pytest.raises(MailboxError):
        fake.move([uid], "Processed")
    fake.move([uid], "Processed")

    assert fake.messages("Processed") == [b"a"]


def test_wait_wakes_on_append_and_times_out_otherwise() -> None:
    fake = FakeMailbox()
    assert fake.wait_for_new_mail(0.05) is False

    timer = threading.Timer(0.05, fake.append, ("INBOX", b"a"))
    timer.start()
    try:
        assert fake.wait_for_new_mail(5) is True
    finally:
        timer.join()
    fake.append("Processed", b"elsewhere")
    assert fake.wait_for_new_mail(0.05) is False
