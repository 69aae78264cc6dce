"""Reply composition: every template renders, headers are right, and nothing from the email escapes."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailflow.classification import taxonomy
from mailflow.errors import ConfigurationError
from mailflow.replies.compose import LANGUAGES, REPLY_ACTIONS, OutgoingReply, ReplyComposer

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
FIXED_NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
CASE = "MIG-2026-000123"
DOCUMENT_KINDS = sorted(taxonomy.DOCUMENT_KINDS)
PRODUCTS: dict[str, dict[str, Any]] = {
    "file": {"title": "Return after absence"},
    "request_documents": {"title": "Return after absence"},
    "book": {
        "title": "Lost residence card",
        "link": "https://stad.gent/afspraak/card-lost",
        "bring": ["Police report (annex 12)", "A recent passport photo"],
        "notes": ["Report the loss to the police first."],
    },
    "online": {"title": "Leaving Belgium", "link": "https://stad.gent/e-loket/vertrek"},
    "redirect_info": {"title": "Family reunification", "link": "https://stad.gent/afspraak/infopunt"},
    "redirect_other": {"title": "Civil Affairs (Belgian eID)", "link": "https://stad.gent/eid"},
}
SIGNATURE = {"nl": "Loket Migratie", "fr": "Guichet Migration", "en": "Migration Counter"}
BASE_HEADERS = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "auto-submitted",
    "x-auto-response-suppress",
    "x-loop",
    "content-language",
    "mime-version",
    "content-type",
}
THREAD_HEADERS = {"in-reply-to", "references"}


@pytest.fixture(scope="module")
def composer() -> ReplyComposer:
    return ReplyComposer(
        TEMPLATES,
        from_address="Loket Migratie Gent <migratie@stad.gent>",
        message_id_domain="stad.gent",
        clock=lambda: FIXED_NOW,
    )


def compose(composer: ReplyComposer, **overrides: Any) -> OutgoingReply:
    action = overrides.get("action", "book")
    values: dict[str, Any] = {
        "action": action,
        "language": "en",
        "to_address": "amina@example.org",
        "to_name": "Amina El Idrissi",
        "original_subject": "My residence card",
        "original_message_id": "<abc123@mail.example.org>",
        "original_references": [],
        "case_ref": CASE if action in ("file", "request_documents") else None,
        "product": PRODUCTS.get(action, {}),
        "missing_documents": ["passport_stamp"] if action == "request_documents" else [],
        "idempotency_key": "reply:INBOX:0123abcd",
    }
    values.update(overrides)
    return composer.compose(**values)


def parse(reply: OutgoingReply) -> EmailMessage:
    return message_from_bytes(reply.data, policy=policy.default)  # type: ignore[return-value]


def parts(reply: OutgoingReply) -> tuple[str, str]:
    message = parse(reply)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content().replace("\r\n", "\n"), html.get_content().replace("\r\n", "\n")


def header_names(data: bytes) -> list[str]:
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0].lower() for line in head.split("\r\n") if not line[:1].isspace()]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("action", REPLY_ACTIONS)
def test_every_action_renders_in_every_language(composer: ReplyComposer, action: str, language: str) -> None:
    reply = compose(composer, action=action, language=language)
    message = parse(reply)

    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert sorted(header_names(reply.data)) == sorted(BASE_HEADERS | THREAD_HEADERS)
    assert message["Content-Language"] == language
    assert reply.language == language
    text, html = parts(reply)
    for body in (text, html):
        assert SIGNATURE[language] in body
        assert "Amina El Idrissi" in body
        assert PRODUCTS[action]["title"] in body
        if "link" in PRODUCTS[action]:
            assert PRODUCTS[action]["link"] in body
        if action in ("file", "request_documents"):
            assert CASE in body
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert f'<html lang="{language}">' in html
    assert "{{" not in text + html and "{%" not in text + html


@pytest.mark.parametrize("language", LANGUAGES)
def test_templates_differ_per_language(composer: ReplyComposer, language: str) -> None:
    others = [lang for lang in LANGUAGES if lang != language]
    text, _ = parts(compose(composer, action="book", language=language))
    for other in others:
        assert SIGNATURE[other] not in text


def test_book_reply_lists_what_to_bring_and_notes(composer: ReplyComposer) -> None:
    text, html = parts(compose(composer, action="book", language="nl"))
    assert "Breng dit mee naar uw afspraak:\n- Police report (annex 12)\n- A recent passport photo" in text
    assert "Goed om te weten:\n- Report the loss to the police first." in text
    assert '<a href="https://stad.gent/afspraak/card-lost"' in html
    assert "<li>A recent passport photo</li>" in html


def test_other_language_gets_english_with_a_dutch_line_on_top(composer: ReplyComposer) -> None:
    reply = compose(composer, action="online", language="tr")
    text, html = parts(reply)
    assert reply.language == "en"
    assert parse(reply)["Content-Language"] == "en, nl"
    first_line = text.splitlines()[0]
    assert "Engels" in first_line  # Dutch, saying the reply is in English
    assert "You can do this online" in text
    assert '<p lang="nl"' in html


@pytest.mark.parametrize(("given", "expected"), [("nl-BE", "nl"), ("FR_be", "fr"), ("EN", "en"), ("", "nl")])
def test_language_tags_are_reduced_to_their_primary_language(
    composer: ReplyComposer, given: str, expected: str
) -> None:
    assert compose(composer, language=given).language == expected


def test_threading_headers(composer: ReplyComposer) -> None:
    reply = compose(
        composer,
        original_message_id="<child@mail.example.org>",
        original_references=["<root@mail.example.org> <ours@stad.gent>"],
    )
    message = parse(reply)
    assert reply.in_reply_to == "<child@mail.example.org>"
    assert message["In-Reply-To"] == "<child@mail.example.org>"
    assert message["References"].split() == [
        "<root@mail.example.org>",
        "<ours@stad.gent>",
        "<child@mail.example.org>",
    ]


def test_message_id_without_brackets_is_wrapped_and_a_broken_one_dropped(composer: ReplyComposer) -> None:
    assert compose(composer, original_message_id="bare@example.org").in_reply_to == "<bare@example.org>"
    reply = compose(composer, original_message_id="<has space@example.org>")
    assert reply.in_reply_to is None
    assert set(header_names(reply.data)) == BASE_HEADERS


def test_long_references_keep_the_root_and_the_latest(composer: ReplyComposer) -> None:
    chain = [f"<m{i}@example.org>" for i in range(40)]
    refs = parse(compose(composer, original_references=chain))["References"].split()
    assert len(refs) == 20
    assert refs[0] == "<m0@example.org>"
    assert refs[-2:] == ["<m39@example.org>", "<abc123@mail.example.org>"]


def test_message_id_is_deterministic_per_idempotency_key(composer: ReplyComposer) -> None:
    first = compose(composer, idempotency_key="reply:INBOX:aaa")
    again = compose(composer, idempotency_key="reply:INBOX:aaa")
    other = compose(composer, idempotency_key="reply:INBOX:bbb")
    assert first.message_id == again.message_id
    assert first.data == again.data
    assert other.message_id != first.message_id
    assert re.fullmatch(r"<mailflow\.[0-9a-f]{32}@stad\.gent>", first.message_id)
    assert parse(first)["Message-ID"] == first.message_id


def test_loop_prevention_headers(composer: ReplyComposer) -> None:
    message = parse(compose(composer))
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["X-Loop"] == "migratie@stad.gent"
    assert message["Precedence"] is None  # RFC 3834 §3.1.8 discourages it
    assert message["From"].addresses[0].addr_spec == "migratie@stad.gent"
    assert message["From"].addresses[0].display_name == "Loket Migratie Gent"
    assert message["To"] == "amina@example.org"
    assert message["Date"].datetime == FIXED_NOW


def test_subject_carries_case_reference_once_and_drops_reply_markers(composer: ReplyComposer) -> None:
    reply = compose(
        composer, action="file", original_subject=f"RE: Antw: Re: [{CASE}] Terugkeer na 4 maanden"
    )
    assert reply.subject == f"Re: [{CASE}] Terugkeer na 4 maanden"
    assert parse(reply)["Subject"] == reply.subject
    assert compose(composer, original_subject="Kaart kwijt").subject == "Re: Kaart kwijt"


def test_empty_subject_gets_a_fallback_in_the_reply_language(composer: ReplyComposer) -> None:
    assert compose(composer, language="fr", original_subject="  ").subject == (
        "Re: Votre e-mail au Guichet Migration"
    )


def test_long_subject_is_truncated_at_a_word(composer: ReplyComposer) -> None:
    reply = compose(composer, original_subject="verlenging " * 60)
    assert reply.subject.endswith("verlenging…")
    assert len(reply.subject) <= len("Re: ") + 120
    assert all(len(line) <= 78 for line in reply.data.split(b"\r\n\r\n")[0].split(b"\r\n"))


def test_long_numbers_in_the_subject_are_masked(composer: ReplyComposer) -> None:
    reply = compose(composer, action="file", original_subject="Rijksregisternummer 85.07.30-033.61 terug")
    assert reply.subject == f"Re: [{CASE}] Rijksregisternummer *** terug"
    assert b"033" not in reply.data


def test_non_ascii_subject_is_encoded(composer: ReplyComposer) -> None:
    reply = compose(composer, original_subject="Carte de séjour perdue – 紛失")
    assert parse(reply)["Subject"] == "Re: Carte de séjour perdue – 紛失"
    assert reply.data.split(b"\r\n\r\n")[0].isascii()


INJECTIONS = [
    "x\r\nBcc: evil@example.net",
    "x\nBcc: evil@example.net",
    "x\rBcc: evil@example.net",
    "=?utf-8?q?x=0D=0ABcc:_evil@example.net?=",
    "=?utf-8?b?eA0KQmNjOiBldmlsQGV4YW1wbGUubmV0?=",
    "x\u2028Bcc: evil@example.net",
    "x\x85Bcc: evil@example.net\x00",
    "=?utf-8?q?=3D=3Futf-8=3Fq=3Fx=3D0D=3D0ABcc:_evil@example.net=3F=3D?=",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_subject_cannot_inject_headers(composer: ReplyComposer, payload: str) -> None:
    reply = compose(composer, original_subject=payload)
    message = parse(reply)
    assert sorted(header_names(reply.data)) == sorted(BASE_HEADERS | THREAD_HEADERS)
    assert message["Bcc"] is None
    assert "\r" not in message["Subject"] and "\n" not in message["Subject"]
    assert "Bcc: evil@example.net" in reply.subject  # kept as harmless text on the one line


@pytest.mark.parametrize("payload", INJECTIONS)
def test_display_name_cannot_inject_headers_or_lines(composer: ReplyComposer, payload: str) -> None:
    reply = compose(composer, to_name=payload)
    message = parse(reply)
    assert sorted(header_names(reply.data)) == sorted(BASE_HEADERS | THREAD_HEADERS)
    assert message["Bcc"] is None
    text, html = parts(reply)
    assert "evil@example.net" not in text + html
    assert text.splitlines()[0] == "Hello,"


@pytest.mark.parametrize(
    "address", ["amina@example.org\r\nBcc: evil@example.net", "Amina <amina@example.org>", "a b@c.d", "x@"]
)
def test_unusable_recipient_address_is_refused(composer: ReplyComposer, address: str) -> None:
    with pytest.raises(ValueError):
        compose(composer, to_address=address)


def test_recipient_address_in_angle_brackets_and_idn_domain(composer: ReplyComposer) -> None:
    assert compose(composer, to_address="<amina@example.org>").to == "amina@example.org"
    assert compose(composer, to_address="amina@bücher.example").to == "amina@xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("name", "greeting"),
    [
        ("Amina El Idrissi", "Dear Amina El Idrissi,"),
        ('"O\'Brien, Seán"', "Dear O'Brien, Seán,"),
        ("Buy cheap pills at www.example.net", "Hello,"),
        ("amina@example.org", "Hello,"),
        ("Call +32 470 12 34 56", "Hello,"),
        ("", "Hello,"),
    ],
)
def test_greeting_uses_only_a_plausible_name(composer: ReplyComposer, name: str, greeting: str) -> None:
    text, _ = parts(compose(composer, to_name=name))
    assert text.splitlines()[0] == greeting


def test_html_part_escapes_product_strings(composer: ReplyComposer) -> None:
    product = {
        "title": "<script>alert(1)</script>",
        "link": "https://stad.gent/afspraak?a=1&b=2",
        "bring": ["Passport & photo"],
        "notes": ['Say "hi" <b>loudly</b>'],
    }
    text, html = parts(compose(composer, action="book", product=product))
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Passport &amp; photo" in html
    assert "&lt;b&gt;loudly&lt;/b&gt;" in html
    assert 'href="https://stad.gent/afspraak?a=1&amp;b=2"' in html
    assert "<script>alert(1)</script>" in text  # plain text is not HTML: no escaping there


@pytest.mark.parametrize(
    "link", ['https://x.example/"onmouseover="alert(1)', "javascript:alert(1)", "ftp://x"]
)
def test_unsafe_links_are_refused(composer: ReplyComposer, link: str) -> None:
    with pytest.raises(ValueError):
        compose(composer, action="online", product={"title": "x", "link": link})


@pytest.mark.parametrize("language", LANGUAGES)
def test_request_documents_lists_the_missing_kinds_by_name(composer: ReplyComposer, language: str) -> None:
    names = tomllib.loads((TEMPLATES / "replies" / "documents.toml").read_text("utf-8"))[language]
    one, _ = parts(
        compose(composer, action="request_documents", language=language, missing_documents=["annex35"])
    )
    several, html = parts(
        compose(
            composer,
            action="request_documents",
            language=language,
            missing_documents=["passport_stamp", "boarding_pass", "annex18"],
        )
    )
    assert f"- {names['annex35']}\n" in one
    for kind in ("passport_stamp", "boarding_pass", "annex18"):
        assert f"- {names[kind]}\n" in several
        assert f"<li>{names[kind]}</li>" in html.replace("&#39;", "'")
    assert one != several
    assert "passport_stamp" not in several


def test_documents_file_names_every_taxonomy_kind_in_every_language() -> None:
    data = tomllib.loads((TEMPLATES / "replies" / "documents.toml").read_text("utf-8"))
    for language in LANGUAGES:
        assert set(data[language]) == set(DOCUMENT_KINDS)
        assert all(name.strip() for name in data[language].values())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"action": "ignore", "product": {}}, "does not reply"),
        ({"action": "triage", "product": {}}, "does not reply"),
        ({"action": "file", "case_ref": None}, "case reference"),
        ({"action": "request_documents", "missing_documents": []}, "missing documents"),
        ({"action": "request_documents", "missing_documents": ["not_a_kind"]}, "unknown document kind"),
        ({"action": "book", "product": {"title": "Card"}}, "link"),
        ({"action": "file", "case_ref": "MIG 1\r\nBcc: x"}, "case reference"),
    ],
)
def test_inputs_that_cannot_make_a_sensible_reply_are_refused(
    composer: ReplyComposer, overrides: Mapping[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        compose(composer, **overrides)


def test_text_part_has_no_personal_data_beyond_name_and_case(composer: ReplyComposer) -> None:
    reply = compose(
        composer,
        action="file",
        original_subject="Terugkeer, mijn nummer is 85073003361",
        to_address="amina.secret@example.org",
    )
    text, html = parts(reply)
    for body in (text, html):
        assert "85073003361" not in body
        assert "amina.secret" not in body
        assert "Terugkeer" not in body


def test_missing_templates_stop_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        ReplyComposer(tmp_path, from_address="migratie@stad.gent", message_id_domain="stad.gent")


def test_a_template_that_is_missing_for_one_language_stops_start_up(tmp_path: Path) -> None:
    replies = tmp_path / "replies"
    replies.mkdir()
    for source in (TEMPLATES / "replies").iterdir():
        if source.name != "online.fr.html.j2":
            (replies / source.name).write_bytes(source.read_bytes())
    with pytest.raises(ConfigurationError, match=r"online\.fr\.html\.j2"):
        ReplyComposer(tmp_path, from_address="migratie@stad.gent", message_id_domain="stad.gent")


def test_bad_from_address_or_domain_stop_start_up() -> None:
    with pytest.raises(ConfigurationError):
        ReplyComposer(TEMPLATES, from_address="not an address", message_id_domain="stad.gent")
    with pytest.raises(ConfigurationError):
        ReplyComposer(TEMPLATES, from_address="migratie@stad.gent", message_id_domain="bad domain\r\n")


def test_header_check_rejects_an_injected_or_broken_header_block(composer: ReplyComposer) -> None:
    from mailflow.replies.mime import UnsafeHeaderError, verify_header_block

    data = compose(composer).data
    expected = header_names(data)
    verify_header_block(data, expected)
    head, body = data.split(b"\r\n\r\n", 1)
    for bad_head in (
        head.replace(b"\r\nTo:", b"\r\nBcc: evil@example.net\r\nTo:"),
        head.replace(b"\r\nTo:", b"\nTo:"),
        head.replace(b"\r\nTo:", b"\r\n\tTo:"),
        head.replace(b"Subject: ", b"Subject: \xc3\xa9"),
        head.replace(b"\r\nTo:", b"\r\nTo "),
    ):
        with pytest.raises(UnsafeHeaderError):
            verify_header_block(bad_head + b"\r\n\r\n" + body, expected)
