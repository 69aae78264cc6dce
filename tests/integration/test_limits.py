"""Hostile emails through a real Dovecot and the real ``mailflow`` command: each ends in quarantine with
its reason (or is processed without the excess), none is fetched whole when too large, and the email
after them is still processed."""

from __future__ import annotations

import sqlite3

import pytest

from mailflow.adapters.imap import ImapMailbox
from mailflow.settings import load_settings
from mailflow.storage.blobs import blob_store
from tests.fixtures.hostile import deep_multipart, large, many_attachments, many_cc, plain
from tests.integration.worker_harness import run_mailflow, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def ledger(database) -> dict[str, tuple[str, str | None, int, str, str | None]]:
    """Message-ID → (status, error, size, sha256, folder)."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT message_id, status, error, size, sha256, folder FROM messages")
        return {row[0]: row[1:] for row in rows}


def test_hostile_emails_end_in_quarantine_with_their_reason_and_the_next_is_processed(
    dovecot, smtp_server, tmp_path
):
    huge = large(40, "huge")  # 40 MB: over the 36 MiB default, never downloaded
    hostile = [
        huge,
        deep_multipart(1000, b"deep"),
        many_cc(30_000, b"cc"),  # a header block of 1.3 MB
        many_attachments(2000, "many"),
        plain("next"),
    ]
    for data in hostile:
        dovecot.append("INBOX", data)
    data_dir = tmp_path / "data"
    env = worker_env(dovecot, smtp_server, data_dir)
    output = run_mailflow(env, "poll-once", timeout=600)

    rows = ledger(data_dir / "mailflow.sqlite3")
    assert len(rows) == 5, output.stdout + output.stderr
    status, error, size, sha256, folder = rows["<huge@example.org>"]
    assert (status, folder) == ("quarantined", "Quarantine")
    assert error == f"oversize: {size / 1e6:.1f} MB, over the limit of 37.7 MB; not downloaded"
    assert size >= len(huge) > 40_000_000  # as the server counts it (CRLF line ends)
    stored = blob_store(load_settings(data_dir=data_dir)).get(sha256)
    assert len(stored) < 4096  # only its header block was fetched
    assert rows["<deep@example.org>"][:2] == (
        "quarantined",
        "too_deep: parts nested more than 20 levels deep",
    )
    assert rows["<cc@example.org>"][:2] == (
        "quarantined",
        "header_too_large: header block over the limit of 256 KB",
    )
    assert rows["<many@example.org>"][0] in ("processed", "triage")
    assert rows["<next@example.org>"][0] in ("processed", "triage")

    assert dovecot.folder_count("INBOX") == 0
    assert dovecot.folder_count("Quarantine") == 3
    assert huge.replace(b"\n", b"\r\n") in dovecot.bodies("Quarantine")  # moved whole on the server

    with sqlite3.connect(data_dir / "mailflow.sqlite3") as connection:
        (many_id,) = connection.execute(
            "SELECT id FROM messages WHERE message_id = '<many@example.org>'"
        ).fetchone()
        (attachments,) = connection.execute(
            "SELECT count(*) FROM attachments WHERE message_id = ?", (many_id,)
        ).fetchone()
        (detail,) = connection.execute(
            "SELECT detail FROM events WHERE message_id = ? AND kind = 'parts_left_out'", (many_id,)
        ).fetchone()
    assert attachments == 50 and '"count": 1950' in detail

    listed = run_mailflow(env, "quarantine", "list").stdout
    assert "oversize" in listed and "too_deep" in listed and "header_too_large" in listed


def test_imap_tells_sizes_and_headers_without_fetching_the_body(dovecot):
    first = dovecot.append("INBOX", plain("one"))
    second = dovecot.append("INBOX", large(2, "two"))
    with ImapMailbox(dovecot.host, dovecot.user, dovecot.password, port=dovecot.port, security="none") as box:
        box.uidvalidity()
        sizes = box.sizes([first, second, 9999])
        assert sizes == {
            first: len(plain("one").replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")),
            second: sizes[second],
        }
        assert 2_000_000 < sizes[second] < 2_200_000
        headers = dict(box.fetch_headers([first, second, 9999], 4096))
        assert set(headers) == {first, second}
        assert (
            headers[second].startswith(b"From: Amina") and b"Message-ID: <two@example.org>" in headers[second]
        )
        assert len(headers[second]) < 1000 and headers[second].endswith(b"\r\n\r\n")
        assert len(dict(box.fetch_headers([second], 20))[second]) == 20


def test_a_35_mb_email_under_the_limit_is_read_and_the_next_one_too(dovecot, smtp_server, tmp_path):
    """The worker's peak memory with it is a figure of ``make bench-memory``, not a test threshold."""
    from benchmarks.memory import large_email, run_worker, small_email

    dovecot.append("INBOX", large_email(35))
    dovecot.append("INBOX", small_email().replace(b"small-after-large", b"small-again"))
    _, _, _, output = run_worker(worker_env(dovecot, smtp_server, tmp_path / "data"))
    assert "processed 2" in output, output
    assert dovecot.folder_count("INBOX") == 0
