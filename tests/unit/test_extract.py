"""extract: the resident's own text, its language and the kinds of the attached documents."""

from __future__ import annotations

import json
import os
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailflow.domain import ParsedMessage
from mailflow.errors import ConfigurationError
from mailflow.settings import PROJECT_ROOT
from mailflow.stages.attachments import make_attachment
from mailflow.stages.documents import classify_attachment, load_rules, normalise
from mailflow.stages.extract import extract
from mailflow.stages.language import LanguageDetector
from mailflow.stages.parse import parse
from mailflow.stages.text import FORWARD_MARKER, clean_subject, split_body

CORPUS_DIR = PROJECT_ROOT.parent / "shared" / "corpus" / "dev"


@pytest.fixture(scope="session")
def detector() -> LanguageDetector:
    return LanguageDetector().build()


def email(
    body: str, subject: str = "Vraag", attachments: tuple[tuple[str, str, bytes], ...] = ()
) -> ParsedMessage:
    msg = EmailMessage()
    msg["From"] = "resident@example.com"
    msg["Subject"] = subject
    msg.set_content(body)
    for filename, ctype, data in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return parse(msg.as_bytes())


def pdf(text: str) -> bytes:
    from fpdf import FPDF

    document = FPDF()
    document.add_page()
    document.set_font("Helvetica", size=11)
    document.multi_cell(0, 6, text)
    return bytes(document.output())


# --- the resident's own text -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "clean"),
    [
        ("Re: RE: Fwd: bijlage 35", "bijlage 35"),
        ("TR: Notification", "Notification"),
        ("Antw: Uw aanvraag", "Uw aanvraag"),
        ("AW: WG: Termin", "Termin"),
        ("Re[2]: card", "card"),
        ("Reactie op mijn vraag", "Reactie op mijn vraag"),
    ],
)
def test_clean_subject(subject: str, clean: str) -> None:
    assert clean_subject(subject) == clean


@pytest.mark.parametrize(
    "intro",
    [
        "Op vr 27 feb 2026 om 11:20 schreef Migratie Gent <migratie@stad.gent>:",
        "On Fri, 27 Feb 2026 at 11:30, Migratie Gent <migratie@stad.gent> wrote:",
        "Le ven. 27 févr. 2026 à 10:04, Migratie Gent <migratie@stad.gent> a écrit :",
        "On Fri, 27 Feb 2026 at 11:30, Migratie Gent <\nmigratie@stad.gent> wrote:",
    ],
)
def test_quoted_reply_history_is_dropped(intro: str) -> None:
    body = f"Hier is mijn paspoort.\n\n{intro}\n> Beste, stuur ons uw paspoort.\n> Migratie"
    parts = split_body(body)
    assert parts.own == "Hier is mijn paspoort."
    assert parts.forwarded == ""


def test_resident_own_words_about_earlier_mail_are_kept() -> None:
    body = "Op 3 maart schreef ik u al:\nik wil mijn kaart vernieuwen."
    assert "ik wil mijn kaart vernieuwen" in split_body(body).own


def test_outlook_history_is_dropped_in_a_reply_and_kept_in_a_forward() -> None:
    body = (
        "Can you issue the annex 49?\n\nRegards,\nPeter\n\n-----Original Message-----\n"
        "From: Aylin <aylin@example.com>\nSent: Tuesday, March 3, 2026 08:12\nTo: Peter\n"
        "Subject: annex 49\n\nMy card expires on 15 March."
    )
    reply = split_body(body, "RE: annex 49")
    assert "annex 49?" in reply.own and "expires" not in reply.own and reply.forwarded == ""
    forward = split_body(body, "FW: annex 49")
    assert "expires on 15 March" in forward.forwarded and "aylin@example.com" not in forward.forwarded
    headers_only = split_body(
        "Zie hieronder.\n\nVan: Jan <jan@x.be>\nVerzonden: maandag\nAan: Piet\nOnderwerp: x\n\noud"
    )
    assert headers_only.own == "Zie hieronder."


def test_forwarded_mail_is_kept_after_a_marker_and_signatures_are_dropped() -> None:
    body = (
        "Ik kreeg deze brief, wat moet ik doen?\n-- \nAhmed Benali\nKortrijksesteenweg 1\n\n"
        "---------- Doorgestuurd bericht ---------\nVan: Stad Gent <noreply@stad.gent>\n"
        "Datum: vr 27 feb 2026\nOnderwerp: Uitnodiging vernieuwing\nAan: ahmed@example.com\n\n"
        "Uw verblijfskaart vervalt.\n\nSent from my iPhone"
    )
    msg = email(body, subject="Fwd: Uitnodiging vernieuwing")
    text = extract(msg, language_detector=LanguageDetector(min_letters=10**6)).text
    own, forwarded = text.split(FORWARD_MARKER)
    assert own.startswith("Uitnodiging vernieuwing\n\nIk kreeg deze brief")
    assert "Ahmed Benali" not in own
    assert "Uw verblijfskaart vervalt." in forwarded and "noreply@stad.gent" not in forwarded
    assert "iPhone" not in text


@pytest.mark.parametrize(
    "signature", ["Sent from my iPhone", "Verzonden vanaf mijn Samsung Galaxy", "Envoyé de mon iPhone"]
)
def test_mobile_signatures_are_dropped(signature: str) -> None:
    assert split_body(f"Mijn kaart is kapot.\n\n{signature}").own == "Mijn kaart is kapot."


# --- language ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "language"),
    [
        ("Goedendag, mijn verblijfskaart is verlopen. Wanneer kan ik een afspraak maken?", "nl"),
        ("Bonjour, ma carte de séjour a été volée. Comment obtenir une nouvelle carte ?", "fr"),
        ("Hello, my residence card expires next month. How do I book an appointment?", "en"),
        ("Merhaba, oturma kartımı yenilemek istiyorum. Randevu alabilir miyim?", "tr"),
        ("Hallo,\nJe voudrais prolonger mon annexe 35, mon recours est en cours.\nGroetjes\nSarah", "fr"),
        ("Ik wil mijn bijlage 35 laten verlengen, het beroep loopt nog.\nKind regards,\nJohn Smith", "nl"),
    ],
)
def test_language_of_the_resident_text(detector: LanguageDetector, body: str, language: str) -> None:
    assert extract(email(body), language_detector=detector).language == language


def test_quoted_history_in_another_language_does_not_decide(detector: LanguageDetector) -> None:
    body = (
        "Here is my passport, sorry for the delay.\n\nOp vr 27 feb 2026 om 11:20 schreef Migratie Gent "
        "<migratie@stad.gent>:\n> Beste, wij hebben nog een kopie van uw paspoort nodig om uw dossier "
        "te vervolledigen. Gelieve die te sturen.\n> Met vriendelijke groeten"
    )
    assert extract(email(body, "Re: Uw dossier"), language_detector=detector).language == "en"


def test_too_little_text_falls_back_to_the_default_language(detector: LanguageDetector) -> None:
    assert detector.detect("ok") is None
    assert (
        extract(email("Thx", subject="Re:"), language_detector=detector, default_language="fr").language
        == "fr"
    )


# --- documents ---------------------------------------------------------------------------------


def test_normalise_splits_numbers_and_folds_accents() -> None:
    assert normalise("Annexe35 — séjour") == "annexe 35 sejour"
    assert normalise("BoardingPass_PC1261", split_camel=True) == "boarding pass pc 1261"


@pytest.mark.parametrize(
    ("text", "filename", "kind"),
    [
        ("BIJLAGE 35\nBIJZONDER VERBLIJFSDOCUMENT\nNaam: X", "scan.pdf", "annex35"),
        (
            "Conseil du Contentieux des Etrangers\nAccusé de réception de la requête\nNuméro de rôle: 1",
            "a.pdf",
            "appeal_proof",
        ),
        (
            "Commissariaat-generaal voor de Vluchtelingen en de Staatlozen\nBeslissing",
            "doc.pdf",
            "cgrs_decision",
        ),
        ("BOARDING PASS\nFlight SN 288  Gate B4  Seat 12A", "x.pdf", "boarding_pass"),
        ("E-TICKET ITINERARY\nFlight SN 288 BRU-LOS\nThis is not a boarding pass.", "ticket.pdf", "other"),
        ("Zie bijlage: mijn contract en de bijlage van mijn werkgever staan erin.", "bijlage.pdf", "other"),
        (
            "Formulier - ingevuld\nIk verklaar dat alle gegevens correct zijn.\nHandtekening",
            "paspoort.pdf",
            "other",
        ),
    ],
)
def test_text_pdf_kinds_come_from_their_content(text: str, filename: str, kind: str) -> None:
    attachment = make_attachment(1, filename, "application/pdf", pdf(text))
    document = classify_attachment(attachment)
    assert document.kind == kind, document.reasons
    assert document.sha256 == attachment.sha256 and document.size == attachment.size


@pytest.mark.parametrize(
    ("filename", "kind"),
    [("paspoort.jpg", "passport"), ("passeport_visa.jpg", "passport_stamp"), ("IMG_1234.jpg", "other"),
     ("pasfoto_kind.jpg", "photo"), ("Bijlage35.jpg", "annex35"), ("bijlage.jpg", "other")],
)  # fmt: skip
def test_images_are_known_by_their_file_name_only(filename: str, kind: str) -> None:
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
    document = classify_attachment(make_attachment(1, filename, "image/jpeg", jpeg))
    assert document.kind == kind
    assert any("no OCR" in reason for reason in document.reasons)


def test_broken_pdf_never_crashes_and_falls_back_to_the_file_name() -> None:
    broken = make_attachment(1, "paspoort.pdf", "application/pdf", b"%PDF-1.7\n garbage \x00\xff")
    document = classify_attachment(broken)
    assert document.kind == "passport"
    assert any("pdf unreadable" in reason for reason in document.reasons)


def test_text_attachment_is_read() -> None:
    attachment = make_attachment(1, "notes.txt", "text/plain", b"Huurovereenkomst\nVerhuurder: A\nHuurder: B")
    assert classify_attachment(attachment).kind == "rental_contract"


def test_extract_lists_one_document_per_attachment_in_order() -> None:
    msg = email(
        "Hierbij mijn documenten.",
        attachments=(
            ("a.pdf", "application/pdf", pdf("LOONBRIEF januari\nWerkgever: X\nNetto: 2000 EUR")),
            ("b.jpg", "image/jpeg", b"\xff\xd8\xff\xe0" + b"\x00" * 32),
        ),
    )
    documents = extract(msg, language_detector=LanguageDetector(min_letters=10**6)).documents
    assert [(d.filename, d.kind) for d in documents] == [("a.pdf", "payslip"), ("b.jpg", "other")]


def test_rules_file_errors_are_configuration_errors(tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[kinds.tax_return]\ncontent = { "tax" = 3 }\n')
    bad_regex = tmp_path / "bad.toml"
    bad_regex.write_text('[kinds.passport]\ncontent = { "re:(" = 3 }\n')
    for path in (unknown, bad_regex, tmp_path / "missing.toml"):
        with pytest.raises(ConfigurationError):
            load_rules(path)


# --- measured on the corpus --------------------------------------------------------------------


def corpus_rows() -> list[dict]:
    spec = CORPUS_DIR.parent / "dev.jsonl"
    if not (CORPUS_DIR / "labels.jsonl").exists() or not spec.exists():
        if os.environ.get("CI"):
            pytest.fail(f"the shared corpus is missing at {CORPUS_DIR}")
        pytest.skip(f"no shared corpus at {CORPUS_DIR}")
    formats = {}
    for line in spec.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            formats[row["id"]] = [a.get("format", "pdf") for a in row.get("attachments", [])]
    rows = [
        json.loads(line) for line in (CORPUS_DIR / "labels.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    return [{**row, "formats": formats.get(row["id"], [])} for row in rows if row]


def test_corpus_language_accuracy_on_nl_fr_en(detector: LanguageDetector) -> None:
    right = total = 0
    for row in corpus_rows():
        if row["language"] in ("nl", "fr", "en"):
            msg = parse((CORPUS_DIR / row["file"]).read_bytes())
            total += 1
            right += extract(msg, language_detector=detector).language == row["language"]
    assert total > 50 and right / total >= 0.97


def test_corpus_document_kind_accuracy_on_text_pdfs() -> None:
    rules = load_rules()
    right = total = 0
    for row in corpus_rows():
        if "pdf" not in row["formats"]:
            continue
        msg = parse((CORPUS_DIR / row["file"]).read_bytes())
        for attachment, expected, fmt in zip(msg.attachments, row["documents"], row["formats"], strict=True):
            if fmt == "pdf":
                total += 1
                right += classify_attachment(attachment, rules).kind == expected
    assert total > 20 and right / total >= 0.9


def test_identifiers_are_extracted_validated_and_kept_masked(detector) -> None:
    from mailflow.stages.parse import parse

    raw = (
        b"From: R <r@example.org>\r\nTo: migratie@stad.gent\r\nSubject: adres\r\n"
        b"Message-ID: <i@example.org>\r\n\r\n"
        b"Goeiedag, mijn rijksregisternummer is 85.07.30-033.28 en mijn dossier MIG-2026-000123.\r\n"
    )
    extraction = extract(parse(raw), language_detector=detector)
    kinds = {i.kind: i for i in extraction.identifiers}
    assert kinds["nrn"].valid and "85.07.30" not in kinds["nrn"].masked and kinds["nrn"].masked.endswith("28")
    assert kinds["case_ref"].masked == "MIG-2026-000123"
