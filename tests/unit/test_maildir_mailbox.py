"""MaildirMailbox on a temporary Maildir, including two processes sharing it."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from mailflow.adapters.maildir import UIDLIST, MaildirMailbox
from mailflow.errors import MailboxError
from mailflow.ports import Fingerprint
from mailflow.settings import Settings


def message(n: int) -> bytes:
    return f"From: resident{n}@example.org\r\nSubject: Test {n}\r\n\r\nBody {n}\r\n".encode()


@pytest.fixture
def box(tmp_path: Path) -> MaildirMailbox:
    return MaildirMailbox(tmp_path / "maildir")


def test_creates_the_maildir_and_names_itself(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    box = MaildirMailbox.from_settings(settings)

    assert box.name == settings.mailbox_name == "maildir:INBOX"
    for sub in ("tmp", "new", "cur"):
        assert (settings.maildir_path / sub).is_dir()
    assert box.list_uids() == []


def test_uids_increase_in_arrival_order_and_fetch_returns_the_bytes(box: MaildirMailbox) -> None:
    uids = [box.append("INBOX", message(n)) for n in range(3)]

    assert uids == [1, 2, 3]
    assert box.list_uids() == uids
    assert list(box.fetch([3, 1])) == [(3, message(2)), (1, message(0))]


def test_read_messages_are_listed_and_fetch_does_not_mark_read(box: MaildirMailbox) -> None:
    unread = box.append("INBOX", message(1))
    read = box.append("INBOX", message(2), flags="S")

    assert box.list_uids() == [unread, read]
    dict(box.fetch([unread, read]))
    assert len(os.listdir(box.root / "new")) == 1  # still unread, untouched
    assert [name.endswith(":2,S") for name in os.listdir(box.root / "cur")] == [True]


def test_uids_and_uidvalidity_survive_a_new_instance(box: MaildirMailbox) -> None:
    first = box.append("INBOX", message(1))
    validity = box.uidvalidity()

    again = MaildirMailbox(box.root)
    second = again.append("INBOX", message(2))

    assert again.uidvalidity() == validity
    assert again.list_uids() == [first, second]
    assert (box.root / UIDLIST).read_text().startswith(f"V{validity} N3\n")


def test_a_mail_client_moving_a_file_to_cur_keeps_its_uid(box: MaildirMailbox) -> None:
    uid = box.append("INBOX", message(1))
    [name] = os.listdir(box.root / "new")
    os.rename(box.root / "new" / name, box.root / "cur" / f"{name}:2,S")

    assert box.list_uids() == [uid]
    assert dict(box.fetch([uid])) == {uid: message(1)}


def test_move_files_into_a_maildirplus_subfolder(box: MaildirMailbox) -> None:
    keep = box.append("INBOX", message(1))
    moved = box.append("INBOX", message(2))

    box.move([moved], "Archive/Processed")

    folder = box.root / ".Archive.Processed"
    assert (folder / "maildirfolder").exists()
    [name] = os.listdir(folder / "cur")
    assert name.endswith(":2,")  # moved out of new/ but still unread
    assert (folder / "cur" / name).read_bytes() == message(2)
    assert box.list_uids() == [keep]
    processed = MaildirMailbox(box.root, folder="Archive/Processed")
    assert list(processed.fetch(processed.list_uids())) == [(1, message(2))]


def test_moving_a_vanished_uid_is_a_no_op(box: MaildirMailbox) -> None:
    uid = box.append("INBOX", message(1))
    box.move([uid], "Processed")

    box.move([uid], "Processed")
    box.move([999], "Processed")

    assert len(os.listdir(box.root / ".Processed" / "cur")) == 1


def test_uids_are_never_reused(box: MaildirMailbox) -> None:
    first = box.append("INBOX", message(1))
    box.move([first], "Processed")

    second = box.append("INBOX", message(2))

    assert second > first
    assert box.list_uids() == [second]
    assert list(box.fetch([first])) == []


def test_a_lost_uid_list_gives_a_new_uidvalidity(box: MaildirMailbox) -> None:
    box.append("INBOX", message(1))
    entries = (box.root / UIDLIST).read_text().splitlines()[1:]
    (box.root / UIDLIST).write_text("\n".join(["V5 N2", *entries]) + "\n")
    assert box.uidvalidity() == 5

    (box.root / UIDLIST).write_text("garbage\n")

    assert box.uidvalidity() not in (0, 5)
    assert box.list_uids() == [1]


def test_wait_returns_true_when_mail_arrives(box: MaildirMailbox) -> None:
    watcher = MaildirMailbox(box.root, poll_interval=0.05)
    timer = threading.Timer(0.2, box.append, ("INBOX", message(1)))
    started = time.monotonic()
    timer.start()
    try:
        assert watcher.wait_for_new_mail(5) is True
    finally:
        timer.join()
    assert time.monotonic() - started < 2


def test_wait_counts_mail_that_arrived_before_it_started(box: MaildirMailbox) -> None:
    watcher = MaildirMailbox(box.root, poll_interval=0.05)
    box.append("INBOX", message(1))

    assert watcher.wait_for_new_mail(0) is True
    assert watcher.wait_for_new_mail(0.2) is False


def test_wait_ignores_mail_leaving_and_times_out(box: MaildirMailbox) -> None:
    uid = box.append("INBOX", message(1))
    watcher = MaildirMailbox(box.root, poll_interval=0.05)
    box.move([uid], "Processed")

    started = time.monotonic()
    assert watcher.wait_for_new_mail(0.3) is False
    assert time.monotonic() - started >= 0.3


def test_an_unusable_root_is_a_mailbox_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    with pytest.raises(MailboxError):
        MaildirMailbox(blocker / "maildir")


def _worker(root: str, start: int, count: int, barrier: multiprocessing.synchronize.Barrier) -> None:
    box = MaildirMailbox(Path(root))
    barrier.wait()
    for n in range(start, start + count):
        box.append("INBOX", message(n))
        box.list_uids()
    # Both processes race to move everything.
    for uid in box.list_uids():
        box.move([uid], "Processed")


def test_two_processes_share_the_maildir(tmp_path: Path) -> None:
    root = tmp_path / "maildir"
    MaildirMailbox(root)
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    workers = [context.Process(target=_worker, args=(str(root), i * 100, 40, barrier)) for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0]

    inbox = MaildirMailbox(root)
    for uid in inbox.list_uids():  # whatever one process listed after the other's last move
        inbox.move([uid], "Processed")
    processed = MaildirMailbox(root, folder="Processed")
    bodies = sorted(body for _uid, body in processed.fetch(processed.list_uids()))
    assert bodies == sorted(message(n) for n in [*range(40), *range(100, 140)])
    lines = (root / UIDLIST).read_text().splitlines()
    assert lines[0].endswith(" N81")  # 80 distinct UIDs were handed out, none twice


def fingerprint(data: bytes, message_id: str | None = None) -> Fingerprint:
    return Fingerprint(hashlib.sha256(data).hexdigest(), len(data), message_id)


def test_refile_moves_the_email_with_those_bytes_between_folders(box: MaildirMailbox) -> None:
    box.append("Triage", message(1))
    box.append("Triage", message(2))
    box.append("Triage", message(3))

    assert box.refile(fingerprint(message(2)), "Processed", ["Triage", "Processed"]) == "Triage"

    triage = MaildirMailbox(box.root, folder="Triage")
    processed = MaildirMailbox(box.root, folder="Processed")
    assert [data for _uid, data in triage.fetch(triage.list_uids())] == [message(1), message(3)]
    assert [data for _uid, data in processed.fetch(processed.list_uids())] == [message(2)]


def test_refile_again_finds_it_in_the_target_and_moves_nothing(box: MaildirMailbox) -> None:
    box.append("Quarantine", message(1))
    box.refile(fingerprint(message(1)), "Processed", ["Quarantine", "Processed"])

    assert box.refile(fingerprint(message(1)), "Processed", ["Quarantine", "Processed"]) == "Processed"
    assert len(os.listdir(box.root / ".Processed" / "cur")) == 1


def test_refile_of_an_email_in_no_folder_is_none(box: MaildirMailbox) -> None:
    box.append("Triage", message(1))

    # A folder that never existed is simply not there to hold it.
    assert box.refile(fingerprint(message(2)), "Processed", ["Triage", "Ignored", "Processed"]) is None
    assert not (box.root / ".Ignored").exists()
    assert len(os.listdir(box.root / ".Triage" / "new")) == 1
