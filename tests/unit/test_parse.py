"""parse: raw bytes → ParsedMessage, for well-formed, odd and hostile emails."""

from __future__ import annotations

import base64
import os
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest

from mailflow.errors import UnreadableMessage
from mailflow.settings import PROJECT_ROOT
from mailflow.stages.parse import FORWARD_MARKER, parse

CORPUS_DIR = PROJECT_ROOT.parent / "shared" / "corpus" / "dev"
PDF_BYTES = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
PNG_BYTES = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def corpus_files() -> list[Path]:
    files = sorted(CORPUS_DIR.glob("*.eml"))
    if not files:
        if os.environ.get("CI"):
            pytest.fail(f"the shared corpus is missing at {CORPUS_DIR}")
        pytest.skip(f"no shared corpus at {CORPUS_DIR}")
    return files


def simple(body: str = "Hallo, ik wil een afspraak.", **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.pop("From", "Amina Tazi <Amina.Tazi@Example.COM>")
    msg["To"] = "migratie@stad.gent"
    msg["Subject"] = headers.pop("Subject", "Afspraak")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def test_plain_message_fields() -> None:
    sent = datetime(2026, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    msg = simple(
        Date=format_datetime(sent),
        Message_ID="<abc.1@example.com>",
        In_Reply_To="<case-1@stad.gent>",
        References="<case-0@stad.gent> <case-1@stad.gent>",
        Return_Path="<Amina.Tazi@Example.COM>",
    )
    parsed = parse(msg.as_bytes())
    assert parsed.from_name == "Amina Tazi"
    assert parsed.from_address == "amina.tazi@example.com"
    assert parsed.return_path == "amina.tazi@example.com"
    assert parsed.subject == "Afspraak"
    assert parsed.date == sent and parsed.date.tzinfo is not None
    assert parsed.message_id == "<abc.1@example.com>"
    assert parsed.in_reply_to == "<case-1@stad.gent>"
    assert parsed.references == ("<case-0@stad.gent>", "<case-1@stad.gent>")
    assert parsed.content_type == "text/plain"
    assert parsed.text == "Hallo, ik wil een afspraak."
    assert parsed.html is None and parsed.attachments == ()
    assert parsed.header("SUBJECT") == "Afspraak"
    assert ("to", "migratie@stad.gent") in parsed.headers


def test_null_and_absent_return_path_and_bare_message_ids() -> None:
    assert parse(simple(Return_Path="<>").as_bytes()).return_path == ""
    parsed = parse(simple(Message_ID="abc@example.com", In_Reply_To="case-1@stad.gent").as_bytes())
    assert parsed.return_path is None
    assert parsed.message_id == "<abc@example.com>"
    assert parsed.in_reply_to == "<case-1@stad.gent>"


def test_encoded_words_and_raw_8bit_headers_are_decoded() -> None:
    raw = (
        "From: =?utf-8?q?Ma=C3=AEtre_Petit?= <l.petit@avocats.be>\r\n"
        "Subject: =?utf-8?q?Pr=C3=AAt?= =?utf-8?q?_accord=C3=A9?=\r\n"
        "X-Note: café – direct UTF-8\r\n"
        "Date: not a date\r\n\r\nBonjour\r\n"
    ).encode()
    parsed = parse(raw)
    assert parsed.from_name == "Maître Petit"
    assert parsed.subject == "Prêt accordé"
    assert parsed.header("x-note") == "café – direct UTF-8"
    assert parsed.date is None


def test_bad_header_values_never_raise() -> None:
    raw = (
        b'From: "broken <<<\r\nSubject: =?no-such-charset?q?caf=E9?=\r\n'
        b'Content-Type: text/plain; charset="x-unknown"\r\nX-Bin: \xff\xfe\x01\r\n\r\ncaf\xe9\r\n'
    )
    parsed = parse(raw)
    assert parsed.from_address == ""
    assert parsed.subject == "café"
    assert parsed.text == "café"
    assert any("charset" in defect for defect in parsed.defects)
    assert all("\x01" not in value for _, value in parsed.headers)


def test_a_garbled_header_line_does_not_hide_the_headers_below_it() -> None:
    raw = (
        b"Received: from mx by mx.stad.gent\r\nMIME-Versio\xbd: 1.0\r\nX-Odd: a\x00b\r\n"
        b"From: Jan <jan@example.com>\r\nSubject: kaart\r\n\r\nHallo\r\n"
    )
    parsed = parse(raw)
    assert parsed.from_address == "jan@example.com" and parsed.subject == "kaart"
    assert parsed.text == "Hallo"
    assert "1 malformed header line(s) dropped" in parsed.defects


def test_missing_content_type_is_plain_text() -> None:
    parsed = parse(b"From: a@example.com\r\nSubject: hi\r\n\r\nJust text\r\n")
    assert parsed.content_type == "text/plain"
    assert parsed.text == "Just text"


@pytest.mark.parametrize("cte", ["quoted-printable", "base64"])
def test_transfer_encodings_and_legacy_charsets(cte: str) -> None:
    msg = simple()
    msg.set_content("Bonjour, ma carte de séjour a été volée – que faire ?", charset="windows-1252", cte=cte)
    assert parse(msg.as_bytes()).text == "Bonjour, ma carte de séjour a été volée – que faire ?"


def test_html_only_mail_becomes_text_without_scripts_or_styles() -> None:
    msg = simple()
    msg.set_content(
        "<html><head><style>p{color:red}</style><script>alert('x')</script></head>"
        "<body><p>Beste,</p><p>Mijn kaart is <b>verlopen</b>.</p></body></html>",
        subtype="html",
    )
    parsed = parse(msg.as_bytes())
    assert "Mijn kaart is verlopen." in parsed.text
    assert "alert" not in parsed.text and "color" not in parsed.text
    assert parsed.html is not None and "<b>verlopen</b>" in parsed.html


def test_alternative_prefers_plain_and_keeps_html() -> None:
    msg = simple("Plain version")
    msg.add_alternative("<p>HTML version</p>", subtype="html")
    parsed = parse(msg.as_bytes())
    assert parsed.text == "Plain version"
    assert parsed.html is not None and "HTML version" in parsed.html


def test_attachments_get_clean_names_generated_storage_names_and_sniffed_types() -> None:
    msg = simple("Zie bijlage")
    msg.add_related("<p>Zie bijlage <img src='cid:logo'></p>", subtype="html")  # nested multipart
    msg.add_attachment(PDF_BYTES, maintype="image", subtype="jpeg", filename="../../etc/pas\u202egpj.exe")
    msg.add_attachment(PNG_BYTES, maintype="image", subtype="png", filename="logo.png", disposition="inline")
    msg.add_attachment(b"\x00\x01\x02binary", maintype="application", subtype="octet-stream")
    parsed = parse(msg.as_bytes())
    first, logo, unnamed = parsed.attachments
    assert first.filename == "pasgpj.exe"
    assert first.declared_type == "image/jpeg" and first.sniffed_type == "application/pdf"
    assert first.storage_name == f"01-{first.sha256[:16]}.pdf"
    assert first.payload == PDF_BYTES and first.size == len(PDF_BYTES)
    assert (
        logo.filename == "logo.png"
        and logo.sniffed_type == "image/png"
        and logo.storage_name.startswith("02-")
    )
    assert unnamed.filename == "" and unnamed.sniffed_type == "application/octet-stream"
    assert unnamed.storage_name.endswith(".bin")
    assert parsed.text == "Zie bijlage"


def test_rfc2231_filename_and_text_attachment() -> None:
    raw = (
        b"From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        b"--B\r\nContent-Type: text/plain\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''verkl%C3%A4rung%0A.txt\r\n\r\nTekst\r\n--B--\r\n"
    )
    (attachment,) = parse(raw).attachments
    assert attachment.filename == "verklärung.txt"
    assert attachment.sniffed_type == "text/plain" and attachment.storage_name.endswith(".txt")


def test_forwarded_rfc822_part_is_kept_as_marked_text_with_its_attachments() -> None:
    inner = simple(
        "Uw verblijfskaart vervalt. Maak een afspraak.",
        From="Stad Gent <noreply@stad.gent>",
        Subject="Uitnodiging",
    )
    inner.add_attachment(PDF_BYTES, maintype="application", subtype="pdf", filename="brief.pdf")
    outer = simple("Ik kreeg deze mail, wat moet ik doen?", Subject="Fwd: Uitnodiging")
    outer.add_attachment(inner)
    parsed = parse(outer.as_bytes())
    own, forwarded = parsed.text.split(FORWARD_MARKER)
    assert "wat moet ik doen" in own
    assert "Uw verblijfskaart vervalt" in forwarded and "noreply@stad.gent" in forwarded
    assert [a.filename for a in parsed.attachments] == ["brief.pdf"]


def test_multipart_without_boundary_is_read_as_text() -> None:
    raw = b"From: a@example.com\r\nContent-Type: multipart/mixed\r\n\r\nthe body\r\n"
    parsed = parse(raw)
    assert "the body" in parsed.text
    assert parsed.defects


@pytest.mark.parametrize(
    "raw",
    [b"", b"   \r\n", bytes(range(256)) * 8, PDF_BYTES, b"just some words\nwithout headers\n", PNG_BYTES],
)
def test_non_emails_are_unreadable(raw: bytes) -> None:
    with pytest.raises(UnreadableMessage):
        parse(raw)


def test_every_corpus_email_parses() -> None:
    for path in corpus_files():
        parsed = parse(path.read_bytes())
        assert parsed.from_address, path.name
        assert parsed.message_id and parsed.message_id.startswith("<"), path.name
        assert parsed.date is not None and parsed.date.tzinfo is not None, path.name
        assert parsed.text or parsed.attachments, path.name
        names = [a.storage_name for a in parsed.attachments]
        assert len(set(names)) == len(names), path.name
