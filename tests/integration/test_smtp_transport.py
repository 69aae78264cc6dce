"""SmtpTransport against a real aiosmtpd server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from mailflow.adapters.smtp import SmtpTransport
from mailflow.errors import TransportError
from mailflow.replies.compose import ReplyComposer
from tests.fixtures.smtp import RecordingHandler, SmtpServer, free_port

pytestmark = pytest.mark.integration

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
MESSAGE = (
    b"From: migratie@stad.gent\r\nTo: amina@example.org\r\nSubject: Re: x\r\n"
    b"Message-ID: <m1@stad.gent>\r\n\r\nHello\r\n.starts with a dot\r\n"
)


def transport_for(server: SmtpServer, **options: object) -> SmtpTransport:
    return SmtpTransport(server.host, server.port, "none", timeout=10, **options)  # type: ignore[arg-type]


def test_send_delivers_the_exact_bytes(smtp_server: SmtpServer) -> None:
    transport_for(smtp_server).send("migratie@stad.gent", ["amina@example.org"], MESSAGE, "<m1@stad.gent>")
    [received] = smtp_server.wait_for(1)
    assert received.envelope_from == "migratie@stad.gent"
    assert received.recipients == ["amina@example.org"]
    assert received.data == MESSAGE


def test_a_composed_reply_arrives_intact(smtp_server: SmtpServer) -> None:
    composer = ReplyComposer(
        TEMPLATES,
        from_address="Loket Migratie Gent <migratie@stad.gent>",
        message_id_domain="stad.gent",
        clock=lambda: datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
    )
    reply = composer.compose(
        action="book",
        language="fr",
        to_address="amina@example.org",
        to_name="Amina",
        original_subject="Carte perdue",
        original_message_id="<abc@example.org>",
        original_references=[],
        case_ref=None,
        product={"title": "Carte perdue", "link": "https://stad.gent/afspraak/x"},
        missing_documents=[],
        idempotency_key="reply:INBOX:1",
    )
    transport_for(smtp_server).send(composer.envelope_from, [reply.to], reply.data, reply.message_id)
    [received] = smtp_server.wait_for(1)
    assert received.data == reply.data
    assert received.message["Subject"] == "Re: Carte perdue"
    assert received.message["Message-ID"] == reply.message_id


@pytest.mark.parametrize(
    ("refusal", "permanent"), [("451 4.3.0 try again later", False), ("550 5.7.1 no", True)]
)
def test_refusal_of_the_message(smtp_server: SmtpServer, refusal: str, permanent: bool) -> None:
    smtp_server.handler.refuse_with = refusal
    with pytest.raises(TransportError) as caught:
        transport_for(smtp_server).send(
            "migratie@stad.gent", ["amina@example.org"], MESSAGE, "<m1@stad.gent>"
        )
    assert caught.value.permanent is permanent
    assert refusal.split()[0] in str(caught.value)
    assert smtp_server.received == []


def test_stopped_server_is_a_temporary_failure(smtp_server: SmtpServer) -> None:
    smtp_server.stop()
    with pytest.raises(TransportError) as caught:
        transport_for(smtp_server).send(
            "migratie@stad.gent", ["amina@example.org"], MESSAGE, "<m1@stad.gent>"
        )
    assert caught.value.permanent is False


class RefusingRecipients(RecordingHandler):
    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        return self.reply


@pytest.mark.parametrize(
    ("reply", "permanent"),
    [("550 5.1.1 <amina@example.org>: no such user", True), ("450 4.2.0 greylisted", False)],
)
def test_refused_recipient(reply: str, permanent: bool) -> None:
    port = free_port()
    controller = Controller(RefusingRecipients(reply), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        transport = SmtpTransport("127.0.0.1", port, "none", timeout=10)
        with pytest.raises(TransportError) as caught:
            transport.send("migratie@stad.gent", ["amina@example.org"], MESSAGE, "<m1@stad.gent>")
    finally:
        controller.stop()
    assert caught.value.permanent is permanent
    assert "amina@example.org" not in str(caught.value)  # error texts are stored and logged


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_against_a_plain_server_is_a_temporary_failure(smtp_server: SmtpServer, security: str) -> None:
    transport = SmtpTransport(smtp_server.host, smtp_server.port, security, timeout=5)  # type: ignore[arg-type]
    with pytest.raises(TransportError) as caught:
        transport.send("migratie@stad.gent", ["amina@example.org"], MESSAGE, "<m1@stad.gent>")
    assert caught.value.permanent is False
    assert smtp_server.received == []


def test_from_settings_uses_the_smtp_settings() -> None:
    from mailflow.settings import Settings

    settings = Settings(smtp_host="mail.example.org", smtp_security="ssl", smtp_user="u", smtp_timeout=7)
    transport = SmtpTransport.from_settings(settings)
    assert (transport.host, transport.port, transport.security, transport.user, transport.timeout) == (
        "mail.example.org",
        465,
        "ssl",
        "u",
        7,
    )
