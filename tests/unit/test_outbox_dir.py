"""The directory transport: atomic, idempotent, path-safe .eml files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mailflow.adapters.outbox_dir import DirectoryTransport, safe_file_name
from mailflow.errors import TransportError

MESSAGE = b"From: migratie@stad.gent\r\nTo: amina@example.org\r\nSubject: Re: x\r\n\r\nHello\r\n"


def test_writes_the_exact_bytes_under_the_message_id(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    transport = DirectoryTransport(outbox)
    transport.send("migratie@stad.gent", ["amina@example.org"], MESSAGE, "<mailflow.abc123@stad.gent>")
    target = outbox / "mailflow.abc123@stad.gent.eml"
    assert target.read_bytes() == MESSAGE
    assert [p.name for p in outbox.iterdir()] == [target.name]  # no temporary file left behind
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_sending_the_same_message_id_again_changes_nothing(tmp_path: Path) -> None:
    transport = DirectoryTransport(tmp_path)
    transport.send("a@b.c", ["d@e.f"], MESSAGE, "<one@stad.gent>")
    transport.send("a@b.c", ["d@e.f"], b"something else", "<one@stad.gent>")
    assert (tmp_path / "one@stad.gent.eml").read_bytes() == MESSAGE
    assert len(list(tmp_path.iterdir())) == 1


def test_was_delivered_tells_whether_the_file_exists(tmp_path: Path) -> None:
    transport = DirectoryTransport(tmp_path)
    assert transport.was_delivered("<one@stad.gent>") is False
    transport.send("a@b.c", ["d@e.f"], MESSAGE, "<one@stad.gent>")
    assert transport.was_delivered("<one@stad.gent>") is True


@pytest.mark.parametrize(
    "message_id", ["<../../etc/passwd>", "<a/b@c>", "<..>", "", "<x\r\ny@z>", "<" + "a" * 500 + ">"]
)
def test_unsafe_message_ids_stay_inside_the_directory(tmp_path: Path, message_id: str) -> None:
    outbox = tmp_path / "outbox"
    DirectoryTransport(outbox).send("a@b.c", ["d@e.f"], MESSAGE, message_id)
    written = list(outbox.iterdir())
    assert len(written) == 1
    assert written[0].parent == outbox
    assert not written[0].name.startswith(".")
    assert len(written[0].name) < 200
    assert list(tmp_path.iterdir()) == [outbox]


def test_ids_that_clean_to_the_same_name_get_different_files() -> None:
    assert safe_file_name("<a/b@c>") != safe_file_name("<a:b@c>")
    assert safe_file_name("<a_b@c>") != safe_file_name("<a/b@c>")


def test_unwritable_directory_is_a_temporary_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    with pytest.raises(TransportError) as caught:
        DirectoryTransport(blocker).send("a@b.c", ["d@e.f"], MESSAGE, "<one@stad.gent>")
    assert caught.value.permanent is False
