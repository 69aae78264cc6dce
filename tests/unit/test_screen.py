"""screen: machine mail from headers, and the DMARC verdict of the trusted server only."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest

from mailflow.domain import ParsedMessage
from mailflow.settings import PROJECT_ROOT
from mailflow.stages.parse import parse
from mailflow.stages.screen import BULK_RECIPIENTS, screen

CORPUS_DIR = PROJECT_ROOT.parent / "shared" / "corpus" / "dev"
TRUSTED = "mx.stad.gent"
MACHINE_HEADERS = (
    "auto-submitted",
    "x-autoreply",
    "x-autorespond",
    "precedence",
    "list-id",
    "list-unsubscribe",
)


def message(
    subject: str = "Vraag over mijn kaart", sender: str = "Jan <jan@example.com>", **headers: str
) -> ParsedMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "migratie@stad.gent"
    msg["Subject"] = subject
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content("Hallo")
    return parse(msg.as_bytes())


def category(msg: ParsedMessage, own: frozenset[str] = frozenset()) -> str | None:
    return screen(msg, trusted_authserv_id=TRUSTED, own_addresses=own).machine_category


def dsn(subject: str = "Delivery Status Notification (Failure)", **headers: str) -> ParsedMessage:
    report = MIMEMultipart("report", report_type="delivery-status")
    report.attach(MIMEText("Your message could not be delivered."))
    status = MIMEBase("message", "delivery-status")
    per_recipient = Message()
    per_recipient["Action"] = "failed"
    status.set_payload([Message(), per_recipient])
    report.attach(status)
    report["From"] = "Mail Delivery Subsystem <mailer-daemon@example.net>"
    report["Subject"] = subject
    for name, value in headers.items():
        report[name.replace("_", "-")] = value
    return parse(report.as_bytes())


def test_person_is_not_machine_mail() -> None:
    screening = screen(message(), trusted_authserv_id=TRUSTED)
    assert screening.machine_category is None and not screening.is_machine


def test_delivery_report_is_a_bounce_even_with_auto_submitted() -> None:
    msg = dsn(Auto_Submitted="auto-replied", Return_Path="<>")
    screening = screen(msg, trusted_authserv_id=TRUSTED)
    assert screening.machine_category == "bounce"
    assert any("delivery-status" in reason for reason in screening.reasons)


@pytest.mark.parametrize(
    ("subject", "sender", "headers"),
    [
        ("Failure Notice", "MAILER-DAEMON@mail.yahoo.com", {}),
        ("Non remis : Votre demande", "postmaster@orange.fr", {}),
        ("Undelivered Mail Returned to Sender", "Mail System <bounces@example.net>", {}),
        ("Onbestelbaar: Uw aanvraag", "Outlook <noreply@outlook.com>", {}),
        ("Mail delivery failed: returning message to sender", "a@example.net", {}),
        ("Hello", "someone@example.net", {"Return_Path": "<>"}),
    ],
)
def test_bounces(subject: str, sender: str, headers: dict[str, str]) -> None:
    assert category(message(subject, sender, **headers)) == "bounce"


@pytest.mark.parametrize(
    ("subject", "headers"),
    [
        ("Re: uw vraag", {"Auto_Submitted": "auto-replied"}),
        ("Ticket #1", {"Auto_Submitted": "auto-generated", "Precedence": "bulk"}),
        ("Travelling", {"X_Autoreply": "yes"}),
        ("Travelling", {"X_Autorespond": "on"}),
        ("Travelling", {"Precedence": "auto_reply"}),
        ("Automatisch antwoord: Uw aanvraag", {}),
        ("Réponse automatique : Votre demande", {}),
        ("Out of Office: Re: Your request", {}),
        ("Automatic reply: annex 35", {}),
        ("Afwezig: uw vraag", {"X_Auto_Response_Suppress": "All"}),
        # RFC 3834 asks auto-responders to send from <>: still an auto-reply, not a bounce.
        ("I am away", {"Auto_Submitted": "auto-replied", "Return_Path": "<>"}),
    ],
)
def test_auto_replies(subject: str, headers: dict[str, str]) -> None:
    assert category(message(subject, **headers)) == "auto_reply"


def test_auto_submitted_no_is_a_person() -> None:
    assert category(message(Auto_Submitted="no")) is None


def test_absence_subject_alone_is_a_resident_not_an_auto_reply() -> None:
    assert category(message("Absence de plus de 3 mois - retour")) is None
    assert category(message("Afwezig tot juni, moet ik iets melden?")) is None


@pytest.mark.parametrize(
    "headers",
    [
        {"Precedence": "bulk"},
        {"Precedence": "list"},
        {"Precedence": "junk"},
        {"List_Id": "<news.example.org>"},
        {"List_Unsubscribe": "<mailto:unsub@example.org>"},
        {"List_Post": "<mailto:list@example.org>"},
    ],
)
def test_bulk_mail_is_spam(headers: dict[str, str]) -> None:
    assert category(message("Nieuwsbrief maart", **headers)) == "spam"


def test_mail_to_many_recipients_is_bulk_a_few_in_copy_are_not() -> None:
    relatives = ", ".join(f"familie{n}@example.com" for n in range(3))
    assert category(message("Verlenging bijlage 35", Cc=relatives)) is None
    crowd = [f"bewoner{n}@example.org" for n in range(BULK_RECIPIENTS + 1)]
    half = len(crowd) // 2
    # Counted over To and Cc together: neither header alone is over the limit.
    msg = message("Verlenging bijlage 35", Cc=", ".join(crowd[:half]), Resent_To=", ".join(crowd[half:]))
    assert category(msg) is None  # Resent-To is not a recipient of this copy
    msg = message("Verlenging bijlage 35", Cc=", ".join(crowd[half:]))
    msg = replace(msg, headers=(*msg.headers, ("to", ", ".join(crowd[:half]))))
    assert category(msg) == "spam"
    assert any("recipients" in reason for reason in screen(msg, trusted_authserv_id=TRUSTED).reasons)


def test_our_own_mail_coming_back_is_machine_mail() -> None:
    own = frozenset({"Migratie@Stad.Gent"})
    msg = message("Uw aanvraag", "Migratie Gent <migratie@stad.gent>")
    assert category(msg, own) == "auto_reply"
    assert category(message(), own) is None


@pytest.mark.parametrize(
    ("results", "verdict"),
    [
        ([f"{TRUSTED}; dkim=pass; spf=pass; dmarc=pass header.from=example.com"], "pass"),
        ([f"{TRUSTED.upper()}; dmarc=fail (p=reject) header.from=example.com"], "fail"),
        ([f"{TRUSTED} 1; dmarc=none header.from=example.com"], "none"),
        ([f"{TRUSTED}; dmarc=temperror"], "none"),
        ([f"{TRUSTED}; spf=pass"], "none"),
        (["attacker.example; dmarc=pass header.from=stad.gent"], "none"),
        ([f"{TRUSTED}.evil.example; dmarc=pass"], "none"),
        ([f"{TRUSTED}; spf=pass (comment dmarc=pass) smtp.mailfrom=x"], "none"),
        # A forged header with our id must not hide the real fail.
        ([f"{TRUSTED}; dmarc=pass", f"{TRUSTED}; dmarc=fail"], "fail"),
        ([], "none"),
    ],
)
def test_sender_verdict_reads_only_the_trusted_server(results: list[str], verdict: str) -> None:
    msg = EmailMessage()
    msg["From"] = "a@example.com"
    for value in results:
        msg["Authentication-Results"] = value
    msg.set_content("x")
    screening = screen(parse(msg.as_bytes()), trusted_authserv_id=TRUSTED)
    assert screening.sender_verdict == verdict
    if verdict == "fail":
        assert f"dmarc=fail by {TRUSTED}" in screening.reasons


def test_without_a_trusted_authserv_id_nothing_is_trusted() -> None:
    msg = EmailMessage()
    msg["From"] = "a@example.com"
    msg["Authentication-Results"] = f"{TRUSTED}; dmarc=fail"
    msg.set_content("x")
    assert screen(parse(msg.as_bytes()), trusted_authserv_id=None).sender_verdict == "none"


def corpus() -> list[tuple[dict, ParsedMessage]]:
    labels = CORPUS_DIR / "labels.jsonl"
    if not labels.exists():
        if os.environ.get("CI"):
            pytest.fail(f"the shared corpus is missing at {CORPUS_DIR}")
        pytest.skip(f"no shared corpus at {CORPUS_DIR}")
    rows = [json.loads(line) for line in labels.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(row, parse(Path(CORPUS_DIR, row["file"]).read_bytes())) for row in rows]


def test_corpus_machine_headers_are_recognised_and_people_are_never_machines() -> None:
    checked = 0
    for row, msg in corpus():
        found = category(msg, frozenset({"migratie@stad.gent"}))
        has_marker = (
            any(msg.header(name) is not None for name in MACHINE_HEADERS)
            or msg.content_type == "multipart/report"
            or msg.return_path == ""
        )
        if has_marker:
            checked += 1
            assert found == row["category"], row["id"]
        if row["action"] != "ignore":
            assert found is None, row["id"]
        elif found is not None:
            assert found == row["category"], row["id"]
    assert checked >= 5


def test_our_x_loop_on_an_incoming_email_is_a_loop() -> None:
    from mailflow.stages.parse import parse
    from mailflow.stages.screen import screen

    raw = (
        b"From: Resident <r@example.org>\r\nTo: migratie@stad.gent\r\nSubject: Re: your request\r\n"
        b"X-Loop: migratie@stad.gent\r\nMessage-ID: <x@example.org>\r\n\r\nforwarded back\r\n"
    )
    result = screen(parse(raw), trusted_authserv_id=None, own_addresses=frozenset({"migratie@stad.gent"}))
    assert result.machine_category == "auto_reply"
    other = screen(parse(raw), trusted_authserv_id=None, own_addresses=frozenset({"loket@other.example"}))
    assert other.machine_category is None


@pytest.mark.parametrize("sender", ["noreply@bank.example", "no-reply@shop.example", "donotreply@x.example"])
def test_system_senders_are_never_answered(sender: str) -> None:
    from mailflow.stages.parse import parse
    from mailflow.stages.screen import screen

    raw = f"From: System <{sender}>\r\nTo: migratie@stad.gent\r\nSubject: Your card\r\n\r\nHello\r\n".encode()
    assert screen(parse(raw), trusted_authserv_id=None).machine_category == "spam"


@pytest.mark.parametrize(
    ("headers", "filter_name"),
    [
        ({"X-Spam-Flag": "YES"}, "SpamAssassin"),
        ({"X-Spam-Status": "Yes, score=8.1 required=5.0 tests=HTML_MESSAGE"}, "SpamAssassin"),
        ({"X-Rspamd-Action": "add header"}, "Rspamd"),
        ({"X-Rspamd-Action": "rewrite subject"}, "Rspamd"),
        ({"X-Spamd-Result": "default: True [16.20 / 15.00]; R_SPF_FAIL(1.00)"}, "Rspamd"),
        ({"X-MS-Exchange-Organization-SCL": "6"}, "Microsoft 365"),
        ({"X-Forefront-Antispam-Report": "CIP:203.0.113.9;CTRY:NL;LANG:en;SCL:9;SRV:;IPV:NLI;"}, "SCL 9"),
    ],
)
def test_the_receiving_servers_spam_verdict_is_honoured(headers: dict[str, str], filter_name: str) -> None:
    screening = screen(message(**headers), trusted_authserv_id=TRUSTED)
    assert screening.machine_category == "spam"
    assert any(filter_name in reason for reason in screening.reasons)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Spam-Flag": "NO"},
        {"X-Spam-Status": "No, score=-2.1 required=5.0"},
        {"X-Rspamd-Action": "no action"},
        {"X-Rspamd-Action": "greylist"},
        {"X-Spamd-Result": "default: False [1.20 / 15.00]"},
        {"X-MS-Exchange-Organization-SCL": "1"},
        {"X-MS-Exchange-Organization-SCL": "-1"},
        {"X-Forefront-Antispam-Report": "CIP:203.0.113.9;CTRY:BE;SCL:1;SFV:NSPM"},
    ],
)
def test_a_clean_spam_verdict_is_no_machine_mail(headers: dict[str, str]) -> None:
    assert screen(message(**headers), trusted_authserv_id=TRUSTED).machine_category is None


def test_spam_verdicts_can_be_switched_off():
    flagged = message(X_Spam_Flag="YES")
    assert screen(flagged, trusted_authserv_id=TRUSTED, spam_verdicts=False).machine_category is None


def test_only_the_topmost_spam_header_counts():
    msg = EmailMessage()
    msg["X-Spam-Status"] = "No, score=0.1 required=5.0"  # the counter's own server, added last
    msg["X-Spam-Status"] = "Yes, score=9.0 required=5.0"  # an earlier hop's verdict, further down
    msg["From"] = "Jan <jan@example.com>"
    msg["Subject"] = "Vraag"
    msg.set_content("Mijn kaart is verloren.")
    assert screen(parse(bytes(msg)), trusted_authserv_id=TRUSTED).machine_category is None
