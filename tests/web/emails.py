"""Emails for the web desk's tests, made here so each test says what it relies on."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

AUTHSERV = "mx.stad.gent"

HOSTILE_HTML = """<html><head>
<style>body { background: url("http://remote.invalid/css-bg.png"); }
@import url("http://remote.invalid/style.css");</style>
<link rel="stylesheet" href="http://remote.invalid/linked.css">
<script>document.title = "SCRIPT-RAN"; console.log("SCRIPT-RAN"); alert("SCRIPT-RAN");</script>
</head><body onload="console.log('ONLOAD-RAN'); alert('ONLOAD-RAN')">
<p style="background-image:url('http://remote.invalid/inline-bg.png')">Goedendag, ik wil mijn verblijfskaart
vernieuwen. Ik kreeg een uitnodigingsbrief van de stad.</p>
<img src="http://remote.invalid/tracker.gif" alt="tracker" onerror="console.log('ONERROR-RAN')">
<img src="https://remote.invalid/pixel.png" width="1" height="1">
<a href="javascript:alert('LINK-RAN')" id="jslink">klik hier</a>
<iframe src="http://remote.invalid/frame.html"></iframe>
<svg onload="console.log('SVG-RAN')"><image href="http://remote.invalid/svg.png"/></svg>
<form action="http://remote.invalid/post"><input name="x" autofocus onfocus="console.log('FOCUS-RAN')"></form>
<video poster="http://remote.invalid/poster.png"></video>
<table background="http://remote.invalid/table-bg.png"><tr><td>Met vriendelijke groeten</td></tr></table>
</body></html>"""


def email(
    *,
    sender: str,
    subject: str,
    text: str,
    dmarc: str = "pass",
    html: str | None = None,
    attachments: list[tuple[str, str, bytes]] | None = None,
    when: datetime | None = None,
) -> bytes:
    message = EmailMessage()
    message["Authentication-Results"] = f"{AUTHSERV}; dmarc={dmarc} header.from={sender.split('@')[1]}"
    message["From"] = sender
    message["To"] = "migratie@stad.gent"
    message["Subject"] = subject
    message["Date"] = format_datetime(when or datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, mime, data in attachments or []:
        maintype, subtype = mime.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def renewal_request(
    sender: str = "amina.el@example.org", dmarc: str = "fail", name: str = "Amina El Amrani"
) -> bytes:
    """A clear card renewal request whose sender failed DMARC: the machine leaves it to a person."""
    return email(
        sender=sender,
        subject="Vernieuwing verblijfskaart",
        dmarc=dmarc,
        text=(
            "Goedendag,\n\nMijn verblijfskaart vervalt volgende maand en ik heb een uitnodigingsbrief "
            "gekregen om ze te vernieuwen. Ik wil graag mijn verblijfskaart laten vernieuwen.\n\n"
            f"Met vriendelijke groeten,\n{name}\n"
        ),
    )


def information_question(sender: str = "jonas.peeters@example.net") -> bytes:
    """A question for the information centre from an authenticated sender: handled automatically."""
    return email(
        sender=sender,
        subject="Vraag over gezinshereniging",
        text=(
            "Beste,\n\nWelke documenten heb ik nodig voor gezinshereniging met mijn echtgenote? "
            "Wat zijn de voorwaarden en hoe verloopt de procedure?\n\nDank u,\nJonas Peeters\n"
        ),
    )


def hostile_html(sender: str = "mallory@example.com") -> bytes:
    return email(
        sender=sender,
        subject="Verblijfskaart vernieuwen (html)",
        dmarc="fail",
        text="Goedendag, ik wil mijn verblijfskaart vernieuwen. Ik kreeg een uitnodigingsbrief.",
        html=HOSTILE_HTML,
    )
