"""Residents' emails written for the reply tests: one per replying action and language."""
# ruff: noqa: E501  (residents write long lines)

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

BOARDING_PASS = (
    "BOARDING PASS / CARTE D'EMBARQUEMENT\nROYAL AIR MAROC AT 840\nFROM CASABLANCA CMN TO BRUSSELS BRU\n"
    "PASSENGER: EL AMRANI/YOUSSEF\nGATE 12  SEAT 23A  BOARDING 10:25\nDATE 14 FEB 2026"
)

# (action, language) → (subject, body, attach a boarding pass)
REQUESTS: dict[tuple[str, str], tuple[str, str, bool]] = {
    ("file", "nl"): (
        "Terugkeer melden",
        "Goeiedag,\nIk ben teruggekeerd na zes maanden in Marokko en wil mijn terugkeer melden. In bijlage mijn instapkaart.\nMet vriendelijke groeten,\nYoussef",
        True,
    ),
    ("file", "fr"): (
        "Déclaration de retour",
        "Bonjour,\nJe suis rentré en Belgique après cinq mois à l'étranger et je souhaite déclarer mon retour. Vous trouverez ma carte d'embarquement en pièce jointe.\nCordialement,\nYoussef",
        True,
    ),
    ("file", "en"): (
        "Reporting my return",
        "Hello,\nI came back to Belgium after four months abroad and would like to report my return. Please find my boarding pass attached.\nKind regards,\nYoussef",
        True,
    ),
    ("request_documents", "nl"): (
        "Terugkeer melden",
        "Goeiedag,\nIk ben teruggekeerd na zes maanden in Marokko en wil mijn terugkeer melden.\nMet vriendelijke groeten,\nYoussef",
        False,
    ),
    ("request_documents", "fr"): (
        "Déclaration de retour",
        "Bonjour,\nJe suis rentré en Belgique après cinq mois à l'étranger et je souhaite déclarer mon retour.\nCordialement,\nYoussef",
        False,
    ),
    ("request_documents", "en"): (
        "Reporting my return",
        "Hello,\nI came back to Belgium after four months abroad and would like to report my return.\nKind regards,\nYoussef",
        False,
    ),
    ("book", "nl"): (
        "Verblijfskaart verloren",
        "Hallo,\nIk ben mijn verblijfskaart verloren en wil een nieuwe kaart aanvragen.\nGroeten,\nAmina",
        False,
    ),
    ("book", "fr"): (
        "Carte de séjour perdue",
        "Bonjour,\nJ'ai perdu ma carte de séjour et je voudrais demander une nouvelle carte.\nMerci,\nAmina",
        False,
    ),
    ("book", "en"): (
        "Lost residence card",
        "Hello,\nI lost my residence card and need to apply for a new card.\nThanks,\nAmina",
        False,
    ),
    ("online", "nl"): (
        "Definitief vertrek",
        "Beste,\nIk verlaat België definitief en verhuis naar Spanje. Ik wil mijn definitief vertrek melden.\nGroeten,\nLucas",
        False,
    ),
    ("online", "fr"): (
        "Départ définitif",
        "Bonjour,\nJe quitte définitivement la Belgique pour m'installer en Espagne. Je souhaite déclarer mon départ définitif.\nCordialement,\nLucas",
        False,
    ),
    ("online", "en"): (
        "Leaving Belgium for good",
        "Hello,\nI am leaving Belgium for good and moving to Spain. I want to report my permanent departure.\nRegards,\nLucas",
        False,
    ),
    ("redirect_info", "nl"): (
        "Vraag gezinshereniging",
        "Goeiedag,\nWelke voorwaarden gelden voor gezinshereniging? Ik wil mijn echtgenote uit Marokko laten overkomen. Welke documenten heb ik nodig?\nDank u,\nKarim",
        False,
    ),
    ("redirect_info", "fr"): (
        "Question regroupement familial",
        "Bonjour,\nQuelles sont les conditions du regroupement familial ? Je voudrais faire venir mon épouse du Maroc. Quels documents faut-il ?\nMerci,\nKarim",
        False,
    ),
    ("redirect_info", "en"): (
        "Question about family reunification",
        "Hello,\nWhat are the conditions for family reunification? I would like my wife to join me from Morocco. Which documents do I need?\nThank you,\nKarim",
        False,
    ),
    ("redirect_other", "nl"): (
        "Belgische identiteitskaart",
        "Hallo,\nIk ben Belg en mijn Belgische identiteitskaart (eID) is vervallen. Ik wil een nieuwe eID aanvragen.\nGroeten,\nPieter",
        False,
    ),
    ("redirect_other", "fr"): (
        "Carte d'identité belge",
        "Bonjour,\nJe suis belge et ma carte d'identité belge (eID) a expiré. Je voudrais une nouvelle eID.\nMerci,\nPierre",
        False,
    ),
    ("redirect_other", "en"): (
        "Belgian identity card",
        "Hello,\nI am Belgian and my Belgian identity card (eID) has expired. I would like a new eID.\nThanks,\nPeter",
        False,
    ),
}


def boarding_pass_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(datetime(2026, 2, 14, tzinfo=UTC))
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 7, BOARDING_PASS)
    return bytes(pdf.output())


def resident_email(
    sender: str,
    subject: str,
    body: str,
    *,
    attach_boarding_pass: bool = False,
    message_id: str,
    in_reply_to: str | None = None,
    dmarc: str = "pass",
    display_name: str = "Resident",
) -> bytes:
    message = EmailMessage()
    message["From"] = f"{display_name} <{sender}>"
    message["To"] = "Loket Migratie Gent <migratie@stad.gent>"
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message["Authentication-Results"] = (
        f"mx.stad.gent; spf=pass; dkim=pass; dmarc={dmarc} header.from={sender.split('@')[1]}"
    )
    message.set_content(body)
    if attach_boarding_pass:
        message.add_attachment(
            boarding_pass_pdf(), maintype="application", subtype="pdf", filename="instapkaart.pdf"
        )
    # As mail clients write it: long ids are not folded into encoded words.
    return message.as_bytes(policy=message.policy.clone(max_line_length=998))
