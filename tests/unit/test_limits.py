"""Each limit before work: checked cheaply on the raw bytes, applied while parsing, or in the parse worker."""

from __future__ import annotations

import time

import pytest

from mailflow.errors import UnreadableMessage
from mailflow.refusals import fetch_batches
from mailflow.stages.limits import (
    ENCRYPTED,
    HEADER_TOO_LARGE,
    OVERSIZE,
    TOO_COSTLY,
    TOO_DEEP,
    UNREADABLE,
    Limits,
    MessageRefused,
    check_before_parsing,
    header_block_size,
    header_part,
    mime_depth,
)
from mailflow.stages.parse import parse
from mailflow.stages.parse_sandbox import ParseSandbox
from tests.fixtures.hostile import (
    deep_forward,
    deep_multipart,
    encrypted,
    large,
    many_attachments,
    many_cc,
    plain,
)


def refused(raw: bytes, limits: Limits | None = None) -> str:
    with pytest.raises(MessageRefused) as caught:
        parse(raw, limits or Limits())
    return caught.value.code


def test_header_block_size_stops_at_the_blank_line_or_the_limit():
    assert header_block_size(b"A: b\r\nC: d\r\n\r\nbody", 100) == len(b"A: b\r\nC: d\r\n")
    assert header_block_size(b"A: b\nC: d\n\nbody", 100) == len(b"A: b\nC: d\n")
    assert header_block_size(b"A: b\n" * 1000, 100) == 101  # no end in sight: over the limit
    assert header_part(b"A: b\r\n\r\nbody", 100) == b"A: b\r\n\r\n"
    assert header_part(b"A: " + b"x" * 500, 100) == (b"A: " + b"x" * 500)[:100]


def test_header_block_over_the_limit_is_refused_before_parsing():
    raw = many_cc(30_000)  # about 1.3 MB of Cc: 12 s when the standard parser reads its addresses
    started = time.monotonic()
    assert refused(raw) == HEADER_TOO_LARGE
    assert time.monotonic() - started < 1
    parse(many_cc(100))  # a few addresses are fine


def test_nesting_depth_is_read_from_the_raw_bytes():
    assert mime_depth(plain(), 20) == 0
    assert mime_depth(deep_multipart(3), 20) == 4
    assert mime_depth(deep_forward(3), 20) == 4
    assert mime_depth(many_attachments(30), 20) == 1  # siblings are not depth
    assert mime_depth(deep_multipart(1000), 20) == 21  # stops counting past the limit


@pytest.mark.parametrize("make", [deep_multipart, deep_forward])
def test_deeply_nested_email_is_refused_not_a_recursion_error(make):
    assert refused(make(1000)) == TOO_DEEP
    assert refused(make(25)) == TOO_DEEP
    assert parse(make(10), Limits()).text  # ten levels are read


def test_recursion_error_of_the_parser_becomes_too_deep_even_without_limits():
    with pytest.raises(MessageRefused) as caught:
        parse(deep_multipart(1000))
    assert caught.value.code == TOO_DEEP


def test_message_over_the_size_limit_is_refused():
    assert refused(large(0.2), Limits(message_bytes=100_000)) == OVERSIZE
    with pytest.raises(MessageRefused):
        check_before_parsing(b"x" * 2000, Limits(message_bytes=1024))


def test_encrypted_mail_is_refused_and_signed_mail_is_read():
    assert refused(encrypted()) == ENCRYPTED
    smime = plain().replace(
        b"Content-Type: text/plain", b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data"
    )
    assert refused(smime) == ENCRYPTED
    signed = plain().replace(
        b"Content-Type: text/plain", b"Content-Type: application/pkcs7-mime; smime-type=signed-data"
    )
    parse(signed, Limits())


def test_attachments_beyond_the_count_are_left_out_with_a_note():
    message = parse(many_attachments(2000), Limits(attachments=50))
    assert len(message.attachments) == 50
    assert [a.filename for a in message.attachments[:2]] == ["d0.bin", "d1.bin"]
    assert message.dropped == ("1950 attachment(s) left out: over the limit of 50 attachments or 500 parts",)
    assert "Goeiedag" in message.text


def test_attachments_beyond_the_bytes_are_left_out_with_a_note():
    message = parse(many_attachments(10, size=1000), Limits(attachment_bytes=3500))
    assert len(message.attachments) == 3
    assert message.dropped == ("7 attachment(s) left out: over the limit of 0.0 MB in all",)  # 3500 bytes
    assert not parse(many_attachments(3, size=1000), Limits()).dropped


def test_unreadable_bytes_stay_unreadable():
    for raw in (b"", b"\x00\x01\x02" * 100):
        with pytest.raises(UnreadableMessage):
            parse(raw, Limits())


def test_fetch_batches_are_bounded_in_count_and_bytes():
    sizes = {1: 10, 2: 10, 3: 50, 4: 10, 5: 10}
    assert list(fetch_batches([1, 2, 3, 4, 5], sizes, 50, max_bytes=40)) == [[1, 2], [3], [4, 5]]
    assert list(fetch_batches([1, 2, 3], {}, 2, max_bytes=40)) == [[1, 2], [3]]


# The parse worker: the same result as parsing here, and each limit costs one email, not the worker.


@pytest.fixture(scope="module")
def sandbox():
    with ParseSandbox(Limits(), timeout=20, memory_mb=1024) as sandbox:
        yield sandbox


def test_the_parse_worker_returns_what_parsing_here_returns(sandbox):
    for raw in (plain(), many_attachments(3, size=5000), large(1)):
        assert sandbox.parse(raw) == parse(raw, Limits())
    first = sandbox.pid
    sandbox.parse(plain())
    assert sandbox.pid == first  # reused across emails


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (deep_multipart(1000), TOO_DEEP),
        (many_cc(30_000), HEADER_TOO_LARGE),
        (encrypted(), ENCRYPTED),
        (b"", UNREADABLE),
    ],
)
def test_the_parse_worker_refuses_with_the_reason_and_goes_on(sandbox, raw, code):
    with pytest.raises(MessageRefused) as caught:
        sandbox.parse(raw)
    assert caught.value.code == code
    assert sandbox.parse(plain()).subject == "Afspraak verblijfskaart"


def test_a_parse_over_its_time_is_killed_and_the_next_email_is_parsed():
    # The header limit lifted: 100 000 addresses (4.6 MB) take the parser over a second here.
    with ParseSandbox(Limits(header_bytes=10_000_000), timeout=0.3) as sandbox:
        sandbox.parse(plain())
        slow_child = sandbox.pid
        started = time.monotonic()
        with pytest.raises(MessageRefused) as caught:
            sandbox.parse(many_cc(100_000))
        assert caught.value.code == TOO_COSTLY, caught.value
        assert time.monotonic() - started < 10  # not the many seconds the parse would take
        assert sandbox.parse(plain()).subject == "Afspraak verblijfskaart"
        assert sandbox.pid != slow_child


LYING_CHILD = """#!/bin/sh
# Answers every email with an attachment of the size given, then nothing: a broken or subverted parser.
read header
head -c "$(echo "$header" | sed 's/[^0-9]//g')" > /dev/null
echo '{"message": {}, "payloads": [SIZE]}'
sleep 5
"""


@pytest.mark.parametrize("size", ["10000000000", "-1", "1.5"])
def test_a_child_announcing_impossible_attachments_is_refused_without_allocating_them(tmp_path, size):
    fake = tmp_path / "python"
    fake.write_text(LYING_CHILD.replace("SIZE", size))
    fake.chmod(0o755)
    with ParseSandbox(Limits(), timeout=5, python=str(fake)) as sandbox:
        started = time.monotonic()
        with pytest.raises(MessageRefused) as caught:
            sandbox.parse(plain())
        assert caught.value.code == UNREADABLE and "garbage" in caught.value.detail
        assert time.monotonic() - started < 4  # refused at once, not after waiting for 10 GB
        assert sandbox.pid is None  # the child was killed


def test_a_30_mb_email_is_parsed_whole_within_300_mb():
    """Fed to the parser a megabyte at a time. Read by ``parsebytes`` (one string, through a StringIO of
    four bytes a character), it needed 400 MB of address space; now about 250."""
    with ParseSandbox(Limits(), timeout=30, memory_mb=300) as sandbox:
        parsed = sandbox.parse(large(30))
    assert [a.filename for a in parsed.attachments] == ["foto.raw"]
    assert len(parsed.attachments[0].payload) == 22_500_000


def test_a_parse_over_its_memory_is_stopped_and_the_next_email_is_parsed():
    # A 30 MB email needs about 160 MB of address space in the parse worker: more than its cap here.
    with ParseSandbox(Limits(), timeout=30, memory_mb=120) as sandbox:
        with pytest.raises(MessageRefused) as caught:
            sandbox.parse(large(30))
        assert caught.value.code in (TOO_COSTLY, UNREADABLE)
        assert sandbox.parse(plain()).subject == "Afspraak verblijfskaart"


def test_documents_beyond_the_email_reading_time_are_known_by_their_names_only():
    from dataclasses import replace

    from benchmarks.generate import pdf_with_text
    from mailflow.settings import Settings
    from mailflow.stages.attachments import make_attachment
    from mailflow.stages.documents import classify_attachment, default_rules
    from mailflow.stages.limits_config import with_reader_limits

    rules = default_rules()
    attachment = make_attachment(1, "bijlage35.pdf", "application/pdf", pdf_with_text("Hallo"))
    document = classify_attachment(attachment, rules, timeout=0)
    assert document.reasons[0] == "application/pdf: not read, the time for this email's documents was used up"
    assert document.kind == "annex35" and document.named_only  # by its file name, which never closes a case
    limited = with_reader_limits(rules, Settings(documents_time_per_email=5, pdf_max_pages=1, ocr_timeout=9))
    assert (limited.reader.email_seconds, limited.reader.max_pages, limited.reader.timeout_seconds) == (
        5,
        1,
        9,
    )
    assert with_reader_limits(rules, Settings()) == rules == replace(rules)


def test_a_forked_process_parses_with_its_own_worker(sandbox):
    import os

    sandbox.parse(plain())
    parent_child = sandbox.pid
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the forked process: its own parse worker, the parent's left alone
        try:
            ok = sandbox.parse(plain()).subject == "Afspraak verblijfskaart" and sandbox.pid != parent_child
            os.write(writer, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(reader, 2) == b"ok"
    assert sandbox.pid == parent_child and sandbox.parse(plain()).subject == "Afspraak verblijfskaart"
