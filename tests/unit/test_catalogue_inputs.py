"""Each row of the input catalogue (shared/research/reliability.md §1) read by the parse stage and the
rules after it: the email is read (or refused with its reason), never crashes, and what reaches the
desk, the ledger and a reply is clean. The same emails go through a real Dovecot in
tests/integration/test_catalogue_inputs.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from mailflow.domain import Action, Classification
from mailflow.ingest import peek_headers
from mailflow.replies.compose import reply_subject
from mailflow.stages.headers import usable_address
from mailflow.stages.held_parts import archives, calendar_method
from mailflow.stages.limits import Limits, MessageRefused
from mailflow.stages.parse import NAME_HOLDS_ADDRESS, parse
from mailflow.stages.tnef import TNEF_UNPARSED, unpack_tnef
from mailflow.storage.database import make_engine
from tests.fixtures.catalogue_inputs import BODY, rows, tnef_bytes
from tests.unit.test_decide import CATALOGUE, PASS, POLICY

EMAILS = {tag: data for _, tag, data in rows()}
READ = [tag for tag in EMAILS if tag not in ("smimeenc", "pgpenc")]


def parsed(tag: str):
    return parse(EMAILS[tag], Limits())


@pytest.mark.parametrize("tag", READ)
def test_every_row_is_read_without_an_exception_and_without_nul_or_line_breaks_in_its_headers(tag):
    message = parsed(tag)
    for value in (message.subject, message.from_name, message.from_address, message.message_id or ""):
        assert not set(value) & {"\r", "\n", "\x00"}, (tag, value)
    assert "\x00" not in message.text
    assert all("\x00" not in a.filename and "/" not in a.filename for a in message.attachments)


@pytest.mark.parametrize("tag", ["smimeenc", "pgpenc"])
def test_encrypted_mail_is_refused_as_encrypted(tag):
    with pytest.raises(MessageRefused) as refused:
        parsed(tag)
    assert refused.value.code == "encrypted"


def test_malformed_headers_keep_the_body_and_a_missing_from_leaves_no_sender():
    noblank = parsed("noblank")
    assert (noblank.subject, noblank.text) == ("Vraag", "Goeiedag, mijn verblijfskaart.")
    assert "MissingHeaderBodySeparatorDefect" in noblank.defects
    assert parsed("nofrom").from_address == "" and BODY.decode() in parsed("nofrom").text


def test_encoded_word_tricks_never_forge_the_sender_nor_break_a_header():
    words = parsed("words")
    assert words.from_address == "amina@example.org"  # the addr-spec, not the encoded name
    assert words.from_name == "boss@stad.gent" and NAME_HOLDS_ADDRESS in words.defects
    assert NAME_HOLDS_ADDRESS not in parsed("uft8").defects
    assert words.subject == "Afspraak Bcc: victim@example.net"  # one line: the CR/LF became a space
    reply = reply_subject(words.subject, None, "Uw e-mail")
    assert "\r" not in reply and "\n" not in reply
    # No decoding inside an addr-spec: the sender stays the odd address, never the decoded one.
    assert parsed("wordaddr").from_address == "=?utf-8?q?amina?=@example.org"
    assert not usable_address(parsed("wordaddr").from_address) and usable_address(words.from_address)
    assert not usable_address(parsed("nofrom").from_address)


@pytest.mark.parametrize(
    ("address", "usable"),
    [("o'neil+x@sub.example.be", True), ("a b@x.org", False), ("a@b@c", False), ("a@x.org\n", False)],
)
def test_usable_sender_addresses(address, usable):
    assert usable_address(address) is usable


@pytest.mark.parametrize("tag", ["uft8", "lying"])
def test_unknown_and_lying_charsets_are_read(tag):
    message = parsed(tag)
    assert message.text == "Goeiedag, één afspraak"
    assert any("not usable" in defect for defect in message.defects)


def test_eight_bit_header_bytes_are_decoded_in_the_parse_and_in_the_ledger():
    message = parsed("eightbit")
    assert message.subject == "Afspraak één" and message.from_name == "Amína Ö"
    assert peek_headers(EMAILS["eightbit"])[2] == "Afspraak één"
    assert peek_headers(EMAILS["nul"])[2] == "Afspraak kaart"


@pytest.mark.parametrize("tag", ["noboundary", "unclosed"])
def test_broken_boundaries_keep_the_text(tag):
    assert BODY.decode() in parsed(tag).text


def test_signed_mail_is_read_as_its_content():
    for tag in ("smimesigned", "pgpsigned"):
        assert parsed(tag).text == BODY.decode()


def test_tnef_is_unpacked_and_a_broken_one_kept_as_it_came():
    unpacked = parsed("tnef")
    assert [(a.filename, a.payload) for a in unpacked.attachments] == [
        ("verblijfskaart.txt", b"mijn verblijfskaart, kopie\r\n")
    ]
    assert TNEF_UNPARSED not in unpacked.defects
    broken = parsed("tnefbad")
    assert [a.filename for a in broken.attachments] == ["winmail.dat"]
    assert TNEF_UNPARSED in broken.defects
    assert unpack_tnef(b"") is None and unpack_tnef(tnef_bytes()[:20]) is None


def test_calendar_messages_are_known_by_their_method():
    assert calendar_method(parsed("calreply").attachments) == "REPLY"
    assert calendar_method(parsed("calcancel").attachments) == "CANCEL"
    assert calendar_method(parsed("calrequest").attachments) == "REQUEST"
    assert calendar_method(parsed("archive").attachments) is None


def test_archives_are_stored_not_opened_and_counted_by_their_content():
    archive = parsed("archive")
    assert [(a.filename, a.sniffed_type) for a in archive.attachments] == [
        ("documenten.zip", "application/zip")
    ]
    assert archives(archive.attachments) == 1
    assert archives(parsed("lies").attachments) == 1  # "paspoort.pdf" is a zip
    assert archives(parsed("heic").attachments) == 0


def test_calendar_and_archives_go_to_a_person_never_to_an_automatic_answer():
    from mailflow.stages.decide import decide

    def decided(**held):
        classification = Classification("card_lost", 0.95, reasons=("cue",))
        return decide(
            classification,
            language="nl",
            documents=[],
            screening=PASS,
            catalogue=CATALOGUE,
            policy=POLICY,
            **held,
        )

    assert decided().action is Action.BOOK
    cancel = decided(calendar_method="CANCEL")
    assert cancel.action is Action.TRIAGE
    assert cancel.reasons[-1] == "calendar message (METHOD:CANCEL): never answered automatically"
    nobody = decided(sender_usable=False)
    assert (nobody.action, nobody.reasons[-1]) == (
        Action.TRIAGE,
        "no_sender: no usable sender address to answer",
    )
    zipped = decided(archives=2)
    assert (zipped.action, zipped.reasons[-1]) == (
        Action.TRIAGE,
        "2 archive(s) attached: stored, never opened",
    )


def test_heic_photos_are_recognised_by_their_content():
    assert [a.sniffed_type for a in parsed("heic").attachments] == ["image/heic"]


def test_names_lose_bidi_controls_and_paths():
    bidi = parsed("bidi")
    assert [a.filename for a in bidi.attachments] == ["factuurfdp.exe", "\u0440aspoort.png"]
    assert bidi.attachments[0].sniffed_type == "application/x-msdownload"
    traversal = parsed("traversal")
    assert [a.filename for a in traversal.attachments] == ["passwd", "boot.ini", ""]
    assert all(a.storage_name.startswith(f"{i:02d}-") for i, a in enumerate(traversal.attachments, 1))


def test_content_type_lies_lose_to_the_sniffed_type_and_garbage_base64_is_kept_as_bytes():
    lies = parsed("lies")
    assert [(a.declared_type, a.sniffed_type) for a in lies.attachments] == [
        ("application/pdf", "application/zip"),
        ("image/jpeg", "application/x-msdownload"),
    ]
    garbage = parsed("garbage")
    assert [a.sniffed_type for a in garbage.attachments] == ["application/octet-stream"]
    assert any("Base64" in defect for defect in garbage.defects)


def test_missing_and_odd_message_ids():
    assert parsed("nomsgid").message_id is None
    assert parsed("emptymsgid").message_id is None
    assert parsed("outlook").message_id == "<[outlook-1]@microsoft.com>"


def test_dates_in_the_future_past_or_unreadable():
    assert parsed("future").date == datetime(2100, 1, 1, 9, tzinfo=UTC)
    assert parsed("past").date == datetime(1970, 1, 1, tzinfo=UTC)
    assert parsed("baddate").date is None


def test_an_extremely_long_line_is_read():
    assert len(parsed("longline").text) > 1_000_000


def test_nul_bytes_never_reach_the_database(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'nul.sqlite3'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (a TEXT, b TEXT)"))
        connection.execute(text("INSERT INTO t VALUES (:a, :b)"), {"a": "x\x00y", "b": "z"})
        connection.execute(
            text("INSERT INTO t VALUES (:a, :b)"), [{"a": "\x00", "b": "1"}, {"a": "2", "b": "3\x00"}]
        )
        rows = connection.execute(text("SELECT a, b FROM t ORDER BY rowid")).all()
    assert rows == [("xy", "z"), ("", "1"), ("2", "3")]
    engine.dispose()


def test_eight_bit_bytes_in_the_sender_and_message_id_reach_the_ledger_as_text() -> None:
    """Raw 8-bit header values arrive as surrogate escapes; stored as they are, the claim's INSERT fails and
    the email blocks every poll."""
    raw = (
        b"From: Ren\xe9 <ren\xe9@exampl\xe9.org>\r\nMessage-ID: <\xa6x@example.org>\r\n"
        b"Subject: Vraag\r\n\r\nHallo\r\n"
    )
    message_id, sender, subject = peek_headers(raw)
    for value in (message_id, sender, subject):
        assert value is not None
        value.encode("utf-8")  # no surrogates left
    assert message_id == "<\ufffdx@example.org>"
