"""Emails and a clock for the retention tests: a resident with an attachment, spam, a case, triage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

PASSPORT = b"%PDF-1.4 a scanned passport, page 1"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, days: float) -> None:
        self.now += timedelta(days=days)


def email(
    sender: str, subject: str, body: str, message_id: str, *, attachment: bytes | None = None, **headers: str
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "migratie@stad.gent"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    if attachment is not None:
        message.add_attachment(attachment, maintype="application", subtype="pdf", filename="paspoort.pdf")
    return message.as_bytes()


LOST_CARD = email(
    "Amina <amina@example.org>",
    "Verblijfskaart verloren",
    "Hallo,\nIk ben mijn verblijfskaart verloren, ik wil een nieuwe kaart.\nAmina",
    "<lost@example.org>",
    attachment=PASSPORT,
)
SPAM = email(
    "Win <promo@spam.example>", "WIN NOW", "Cheap pills", "<spam@spam.example>",
    X_Spam_Flag="YES", X_Spam_Status="Yes, score=12",
)  # fmt: skip
EXTENSION = email(
    "Jan <jan@example.org>",
    "Verlenging bijlage 35",
    "Goedendag,\nIk wil mijn bijlage 35 verlengen. In bijlage mijn paspoort en bijlage 35.\nJan",
    "<extension@example.org>",
    attachment=PASSPORT,
)
UNCLEAR = email("Jan <jan@example.org>", "vraag", "asdf qwer", "<unclear@example.org>")
ALL = (LOST_CARD, SPAM, EXTENSION, UNCLEAR)
