"""Deterministic generated emails for the benchmarks: residents' requests in nl/fr/en, some with PDFs."""
# ruff: noqa: E501  (resident texts read best unbroken)

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

FIRST = [
    "Amina",
    "Jonas",
    "Fatma",
    "Lucas",
    "Olena",
    "Mehdi",
    "Sofia",
    "Tarek",
    "Ines",
    "Piotr",
    "Grace",
    "Yusuf",
]
LAST = [
    "El Amrani",
    "Peeters",
    "Yilmaz",
    "Dubois",
    "Kovalenko",
    "Haddad",
    "Rossi",
    "Nowak",
    "Mensah",
    "Diallo",
]

# fmt: off
TEXTS = {
    "nl": [
        "Goeiedag,\nIk ben teruggekeerd na een verblijf van vijf maanden in het buitenland en wil mijn terugkeer "
        "melden. In bijlage mijn boarding pass.\nMet vriendelijke groeten,\n{name}",
        "Hallo,\nMijn verblijfskaart vervalt volgende maand en ik kreeg een uitnodigingsbrief. Kan ik een "
        "afspraak maken om ze te vernieuwen?\n{name}",
        "Beste,\nGraag verlenging van mijn bijlage 35, mijn beroep bij de RvV loopt nog. De huidige bijlage 35 "
        "zit erbij.\nDank u,\n{name}",
        "Dag,\nWelke documenten heb ik nodig voor gezinshereniging met mijn echtgenote?\nGroeten,\n{name}",
    ],
    "fr": [
        "Bonjour,\nJe souhaite prolonger mon annexe 35, mon recours au CCE est toujours en cours. Vous trouverez "
        "mon annexe 35 en pièce jointe.\nCordialement,\n{name}",
        "Bonjour,\nJ'ai perdu ma carte de séjour. Comment obtenir une nouvelle carte ?\nMerci,\n{name}",
        "Madame, Monsieur,\nJe vous envoie la décision du CGRA pour mettre à jour mes données.\n{name}",
    ],
    "en": [
        "Hello,\nI would like to switch to an EU+ card, I have lived in Belgium for more than five years.\n{name}",
        "Dear counter,\nMy card's chip no longer works. Can I get an appointment to replace it?\nThanks,\n{name}",
        "Hi,\nI am leaving Belgium for good next month. How do I report my departure?\nBest regards,\n{name}",
    ],
}
# fmt: on

DOCUMENTS = [
    (
        "bijlage35.pdf",
        "BIJLAGE 35\nDocument van bijzonder verblijf\nBeroep ingediend bij de Raad voor "
        "Vreemdelingenbetwistingen. Geldig tot {date}.",
    ),
    (
        "boarding_pass.pdf",
        "BOARDING PASS\nBrussels Airlines SN 362\nFrom CASABLANCA to BRUSSELS\nGate B12 "
        "Seat 14C\nDate {date}",
    ),
    (
        "decision_cgra.pdf",
        "COMMISSARIAT GÉNÉRAL AUX RÉFUGIÉS ET AUX APATRIDES\nDécision de reconnaissance du "
        "statut de réfugié\nBruxelles, le {date}",
    ),
]


def pdf_with_text(text: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(datetime(2026, 1, 1, tzinfo=UTC))
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, text.encode("latin-1", "replace").decode("latin-1"))
    return bytes(pdf.output())


def generate(count: int, pdf_share: float = 0.2, seed: int = 2026) -> Iterator[bytes]:
    rng = random.Random(seed)
    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    pdf_cache: dict[tuple[str, str], bytes] = {}
    for index in range(count):
        language = rng.choice(["nl", "nl", "fr", "en"])
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        message = EmailMessage()
        message["From"] = f"{name} <resident{index}@example.org>"
        message["To"] = "Loket Migratie Gent <migratie@stad.gent>"
        message["Subject"] = ["Vraag", "Demande", "Request"][["nl", "fr", "en"].index(language)] + f" {index}"
        message["Date"] = format_datetime(start + timedelta(minutes=index))
        message["Message-ID"] = f"<bench.{seed}.{index}@example.org>"
        message["Authentication-Results"] = "mx.stad.gent; dmarc=pass header.from=example.org"
        message.set_content(rng.choice(TEXTS[language]).format(name=name))
        if rng.random() < pdf_share:
            filename, text = rng.choice(DOCUMENTS)
            date = f"{rng.randint(1, 28):02d}/0{rng.randint(1, 9)}/2026"
            key = (filename, date)
            if key not in pdf_cache:
                pdf_cache[key] = pdf_with_text(text.format(date=date))
            message.add_attachment(pdf_cache[key], maintype="application", subtype="pdf", filename=filename)
        yield message.as_bytes()
