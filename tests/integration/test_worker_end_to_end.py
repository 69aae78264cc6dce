"""The whole worker, through its command line, against a real Dovecot and a real SMTP server."""

from __future__ import annotations

import os
from collections import Counter
from email import message_from_bytes, policy

import pytest

from mailflow.settings import load_settings
from mailflow.storage.blobs import blob_store
from tests.integration.worker_harness import (
    CORPUS_DIR,
    FOLDERS,
    REPLYING_ACTIONS,
    SAMPLES_DIR,
    eml_files,
    export,
    run_mailflow,
    worker_env,
)

pytestmark = pytest.mark.integration


def corpus_or_skip():
    files = eml_files(CORPUS_DIR)
    if not files:
        if os.environ.get("CI"):
            pytest.fail(f"the shared corpus is missing at {CORPUS_DIR}")
        pytest.skip(f"no shared corpus at {CORPUS_DIR}")
    return files


# The shared corpus tests the pipeline, on one database; the samples test the ledger, on both.
@pytest.mark.parametrize(
    "source, database_url",
    [("corpus", "sqlite"), ("samples", "sqlite"), ("samples", "postgres")],
    indirect=["database_url"],
)
def test_poll_once_empties_the_inbox_and_answers_each_email_once(
    dovecot, smtp_server, tmp_path, source, database_url
):
    files = corpus_or_skip() if source == "corpus" else eml_files(SAMPLES_DIR)
    assert files, "no emails to append"
    for path in files:
        dovecot.append("INBOX", path.read_bytes())
    env = worker_env(dovecot, smtp_server, tmp_path / "data", database_url)

    run_mailflow(env, "poll-once")

    assert dovecot.folder_count("INBOX") == 0
    counts = {folder: dovecot.folder_count(folder) for folder in FOLDERS}
    assert sum(counts.values()) == len(files), counts

    entries = export(env)
    assert len(entries) == len(files)
    assert len({e["message_id"] for e in entries}) == len(files)
    assert Counter(e["folder"] for e in entries) == Counter({f: n for f, n in counts.items() if n})
    assert all(e["status"] in {"processed", "triage", "ignored", "quarantined"} for e in entries)

    received = smtp_server.received
    replies_by_original = Counter(r.message["In-Reply-To"] for r in received)
    for entry in entries:
        expected = 1 if entry["action"] in REPLYING_ACTIONS and entry["status"] == "processed" else 0
        assert replies_by_original[entry["message_id"]] == expected, entry
        assert len(entry["replies"]) == expected, entry
        if entry["action"] == "ignore":
            assert not entry["replies"]
    for reply in received:
        message = reply.message
        assert message["Auto-Submitted"] == "auto-replied"
        assert message["In-Reply-To"]
        assert message["Message-ID"].endswith("@stad.gent>")
        assert reply.recipients == [message["To"].addresses[0].addr_spec]
    assert len(received) == sum(1 for e in entries if e["replies"])

    # Nothing is left to do: a second run sends nothing and changes nothing.
    run_mailflow(env, "poll-once")
    assert len(smtp_server.received) == len(received)
    assert export(env) == entries


def test_mail_read_in_another_client_is_still_processed(dovecot, smtp_server, tmp_path):
    data = eml_files(SAMPLES_DIR)[0].read_bytes()
    dovecot.append("INBOX", data, flags=[b"\\Seen"])
    env = worker_env(dovecot, smtp_server, tmp_path / "data")
    run_mailflow(env, "poll-once")
    assert dovecot.folder_count("INBOX") == 0
    assert len(export(env)) == 1


def test_stored_copy_is_byte_identical(dovecot, smtp_server, tmp_path):
    path = eml_files(SAMPLES_DIR)[0]
    dovecot.append("INBOX", path.read_bytes())
    env = worker_env(dovecot, smtp_server, tmp_path / "data")
    run_mailflow(env, "poll-once")
    [entry] = export(env)
    sha = entry["sha256"]
    stored = blob_store(load_settings(data_dir=tmp_path / "data")).get(sha)
    [moved] = dovecot.bodies(entry["folder"])
    assert stored == moved
    assert message_from_bytes(stored, policy=policy.default)["Message-ID"] == entry["message_id"]


def test_uidvalidity_change_does_not_duplicate(dovecot, smtp_server, tmp_path, database_url):
    files = eml_files(SAMPLES_DIR)[:4]
    for path in files:
        dovecot.append("INBOX", path.read_bytes())
    env = worker_env(dovecot, smtp_server, tmp_path / "data", database_url)
    run_mailflow(env, "poll-once")
    sent = len(smtp_server.received)
    # The same emails come back to the inbox (e.g. a restore), and the server renumbers the folder.
    for folder in FOLDERS:
        for body in dovecot.bodies(folder) if dovecot.folder_count(folder) else []:
            dovecot.append("INBOX", body)
    dovecot.change_uidvalidity("INBOX")
    run_mailflow(env, "poll-once")
    entries = export(env)
    assert len(entries) == len(files)
    assert len(smtp_server.received) == sent
    assert dovecot.folder_count("INBOX") == 0
