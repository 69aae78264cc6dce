"""Replies through a real Dovecot and SMTP server: each action and language, threads, loops, injection."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from mailflow.bootstrap import App
from mailflow.settings import Settings
from mailflow.storage.models import Case, Event, Message
from mailflow.web import leases
from mailflow.web.cases import close_case
from mailflow.web.decisions import Part, decide_item
from tests.integration.resident_mail import REQUESTS, resident_email

pytestmark = pytest.mark.integration

OUR_HEADERS = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "auto-submitted",
    "x-auto-response-suppress",
    "x-loop",
    "content-language",
    "mime-version",
    "content-type",
}


def make_app(dovecot, smtp_server, data_dir, **extra) -> App:
    settings = Settings(
        **dovecot.settings_values(),
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_security="none",
        data_dir=data_dir,
        trusted_authserv_id="mx.stad.gent",
        # The replies are under test, not the learned model: the catalogue's rules decide, so
        # each request here gets the action it was written for, whatever model is installed.
        **{"use_model": False, **extra},
    )
    return App(settings)


@pytest.fixture
def app(dovecot, smtp_server, tmp_path, database_url) -> Iterator[App]:
    app = make_app(dovecot, smtp_server, tmp_path / "data", database_url=database_url)
    yield app
    app.close()


def header_names(data: bytes) -> list[str]:
    head = data.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0].lower() for line in head.split("\n") if line and not line[0].isspace()]


def test_a_reply_for_every_replying_action_in_each_language(app, dovecot, smtp_server):
    originals = {}
    for index, ((action, language), (subject, body, attach)) in enumerate(REQUESTS.items()):
        message_id = f"<request{index}@example.org>"
        originals[message_id] = (action, language, f"resident{index}@example.org")
        data = resident_email(
            f"resident{index}@example.org", subject, body, attach_boarding_pass=attach, message_id=message_id
        )
        dovecot.append("INBOX", data)

    app.worker().cycle()

    received = smtp_server.received
    assert len(received) == len(REQUESTS)
    for reply in received:
        message = reply.message
        action, language, sender = originals[message["In-Reply-To"]]
        assert reply.recipients == [sender]
        assert message["To"] == sender
        assert message["Content-Language"] == language
        assert message["Auto-Submitted"] == "auto-replied"
        assert message["X-Auto-Response-Suppress"] == "All"
        assert message["X-Loop"] == "migratie@stad.gent"
        assert message["References"].split()[-1] == message["In-Reply-To"]
        assert re.fullmatch(r"<mailflow\.[a-z0-9.-]+@stad\.gent>", message["Message-ID"])
        assert set(header_names(reply.data)) <= OUR_HEADERS
        text = message.get_body(preferencelist=("plain",)).get_content()
        html = message.get_body(preferencelist=("html",)).get_content()
        assert text.strip() and "<html" in html
        if action in ("file", "request_documents"):
            assert re.search(r"\[MIG-\d{4}-\d{6}\]", message["Subject"]), message["Subject"]
        if action == "book":
            assert "product=" in text


def test_follow_up_with_the_missing_document_completes_the_case(app, dovecot, smtp_server):
    subject, body, _ = REQUESTS[("request_documents", "en")]
    sender = "youssef@example.org"
    dovecot.append("INBOX", resident_email(sender, subject, body, message_id="<first@example.org>"))
    app.worker().cycle()
    [request] = smtp_server.received
    assert "boarding" in request.message.get_body(preferencelist=("plain",)).get_content().lower()
    case_ref = re.search(r"MIG-\d{4}-\d{6}", request.message["Subject"]).group(0)

    follow_up = resident_email(
        sender,
        request.message["Subject"],
        "Hello,\nHere is my boarding pass, as you asked.\nYoussef",
        attach_boarding_pass=True,
        message_id="<second@example.org>",
        in_reply_to=request.message["Message-ID"],
    )
    dovecot.append("INBOX", follow_up)
    app.worker().cycle()

    with app.sessions() as session:
        case = session.scalar(select(Case).where(Case.reference == case_ref))
        assert case.status == "complete"
        joined = session.scalar(select(Message).where(Message.message_id == "<second@example.org>"))
        assert joined.case_id == case.id and joined.status == "processed"
    # One automatic reply per sender per day: the follow-up is filed without another reply.
    assert len(smtp_server.received) == 1


def test_a_follow_up_to_a_closed_case_waits_for_a_person_and_filing_it_reopens_the_case(
    app, dovecot, smtp_server
):
    subject, body, _ = REQUESTS[("request_documents", "en")]
    sender = "youssef@example.org"
    dovecot.append("INBOX", resident_email(sender, subject, body, message_id="<first@example.org>"))
    app.worker().cycle()
    [request] = smtp_server.received
    case_ref = re.search(r"MIG-\d{4}-\d{6}", request.message["Subject"]).group(0)
    assert close_case(app.sessions, case_ref, "sam", "Return registered at the counter.", app.clock())

    follow_up = resident_email(
        sender,
        request.message["Subject"],
        "Hello,\nHere is my boarding pass after all.\nYoussef",
        attach_boarding_pass=True,
        message_id="<second@example.org>",
        in_reply_to=request.message["Message-ID"],
    )
    dovecot.append("INBOX", follow_up)
    app.worker().cycle()

    with app.sessions() as session:
        case = session.scalar(select(Case).where(Case.reference == case_ref))
        late = session.scalar(select(Message).where(Message.message_id == "<second@example.org>"))
        kinds = [e.kind for e in session.scalars(select(Event).where(Event.message_id == late.id))]
        decided = session.scalar(select(Event).where(Event.message_id == late.id, Event.kind == "decided"))
    # The machine neither files it in the closed case nor reopens it: a person is asked, and told why.
    assert case.status == "closed" and late.status == "triage" and late.case_id is None
    assert decided.detail["reasons"][-1] == f"case {case_ref} is closed"
    assert "case_joined" not in kinds and "case_reopened" not in kinds and "reply_queued" not in kinds

    # A person files it: the case opens again, and the log says who, and that this email reopened it.
    leases.take(app.sessions, late.id, "sam", now=app.clock(), lease=timedelta(minutes=5))
    decide_item(app, late.id, "sam", [Part("return_report")])
    with app.sessions() as session:
        case = session.scalar(select(Case).where(Case.reference == case_ref))
        events = session.scalars(
            select(Event).where(Event.message_id == late.id, Event.seq > decided.seq).order_by(Event.seq)
        ).all()
    assert case.status == "complete" and case.closed_at is None and case.closed_by is None
    reopening = [(e.kind, e.actor, e.detail) for e in events if e.kind.startswith("case_")]
    assert reopening == [
        ("case_reopened", "sam", {"case": case_ref, "case_status": "incomplete"}),  # her doing
        ("case_joined", "sam", {"case": case_ref, "case_status": "complete"}),
    ]
    assert "staff_decided" in [e.kind for e in events]


@pytest.mark.parametrize("spoof", ["other sender", "dmarc fail", "reference only in the subject"])
def test_a_follow_up_that_cannot_be_verified_does_not_complete_the_case(app, dovecot, smtp_server, spoof):
    subject, body, _ = REQUESTS[("request_documents", "en")]
    sender = "youssef@example.org"
    dovecot.append("INBOX", resident_email(sender, subject, body, message_id="<first@example.org>"))
    app.worker().cycle()
    [request] = smtp_server.received
    case_ref = re.search(r"MIG-\d{4}-\d{6}", request.message["Subject"]).group(0)

    follow_up = resident_email(
        "mallory@example.net" if spoof == "other sender" else sender,
        request.message["Subject"],
        "Hello,\nHere is my boarding pass, as you asked.",
        attach_boarding_pass=True,
        message_id="<second@example.org>",
        in_reply_to=None if spoof == "reference only in the subject" else request.message["Message-ID"],
        dmarc="fail" if spoof == "dmarc fail" else "pass",
    )
    dovecot.append("INBOX", follow_up)
    app.worker().cycle()

    with app.sessions() as session:
        case = session.scalar(select(Case).where(Case.reference == case_ref))
        assert case.status == "incomplete"
        other = session.scalar(select(Message).where(Message.message_id == "<second@example.org>"))
        assert other.case_id != case.id


def test_header_injection_in_subject_and_display_name_adds_no_header(app, dovecot, smtp_server):
    subject, body, _ = REQUESTS[("book", "en")]
    raw = resident_email("eve@example.org", subject, body, message_id="<inject@example.org>")
    raw = raw.replace(
        f"Subject: {subject}".encode(), b"Subject: =?utf-8?q?Lost_card=0D=0ABcc:_victim@example.com?="
    ).replace(
        b"From: Resident <eve@example.org>",
        b"From: =?utf-8?q?Eve=0D=0AX-Injected:_yes=0D=0ABcc:_victim@example.com?= <eve@example.org>",
    )
    assert b"=0D=0ABcc" in raw
    dovecot.append("INBOX", raw)
    app.worker().cycle()

    [reply] = smtp_server.received
    assert reply.recipients == ["eve@example.org"]
    names = header_names(reply.data)
    assert "bcc" not in names and "x-injected" not in names
    assert set(names) <= OUR_HEADERS
    parsed = message_from_bytes(reply.data, policy=policy.default)
    assert "\n" not in parsed["Subject"] and "\r" not in parsed["Subject"]


def deliver(reply_data: bytes, dovecot) -> None:
    """Hand a reply caught by the SMTP server to the mailbox it was addressed to."""
    dovecot.append("INBOX", reply_data)


def out_of_office(robot: str, answering: bytes, *, with_headers: bool) -> bytes:
    original = message_from_bytes(answering, policy=policy.default)
    body = "I am out of the office until Monday and will read your message when I am back."
    data = resident_email(
        robot,
        f"Automatic reply: {original['Subject']}",
        body,
        message_id=f"<ooo-{abs(hash(original['Message-ID']))}@example.org>",
        in_reply_to=original["Message-ID"],
    )
    if with_headers:
        data = b"Auto-Submitted: auto-replied\r\nX-Autoreply: yes\r\n" + data
    return data


@pytest.mark.parametrize("with_headers", [True, False], ids=["rfc3834 robot", "robot without headers"])
def test_an_out_of_office_robot_gets_at_most_one_reply(app, dovecot, smtp_server, with_headers):
    robot = "robot@example.org"
    subject, body, _ = REQUESTS[("book", "en")]
    dovecot.append("INBOX", resident_email(robot, subject, body, message_id="<start@example.org>"))
    for _ in range(4):  # the robot answers every email we send it
        before = len(smtp_server.received)
        app.worker().cycle()
        for reply in smtp_server.received[before:]:
            deliver(out_of_office(robot, reply.data, with_headers=with_headers), dovecot)
    assert len([r for r in smtp_server.received if r.recipients == [robot]]) == 1


def test_two_mailflows_answering_each_other_stop_after_one_reply(dovecot_server, smtp_server, tmp_path):
    from tests.fixtures.dovecot import DovecotAccount

    accounts = [DovecotAccount(dovecot_server, *dovecot_server.add_user()) for _ in range(2)]
    counter_a = "migratie@stad.gent"
    counter_b = "loket@other-city.example"
    apps = [
        make_app(accounts[0], smtp_server, tmp_path / "a", from_address=f"Counter A <{counter_a}>"),
        make_app(accounts[1], smtp_server, tmp_path / "b", from_address=f"Counter B <{counter_b}>"),
    ]
    try:
        subject, body, _ = REQUESTS[("book", "en")]
        # Counter B's address writes to counter A (say a colleague used the shared mailbox).
        accounts[0].append(
            "INBOX", resident_email(counter_b, subject, body, message_id="<start@other-city.example>")
        )
        mailbox_of = {counter_a: accounts[0], counter_b: accounts[1]}
        for _ in range(4):
            for app in apps:
                before = len(smtp_server.received)
                app.worker().cycle()
                for reply in smtp_server.received[before:]:
                    target = mailbox_of.get(reply.recipients[0])
                    if target is not None:
                        target.append("INBOX", reply.data)
        assert len(smtp_server.received) == 1
        assert smtp_server.received[0].recipients == [counter_b]
    finally:
        for app in apps:
            app.close()
        for account in accounts:
            account.close()
