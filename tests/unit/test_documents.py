"""Document kinds: cue scoring of OCR text, image clean-up, and the sandboxed text worker.

Nothing here needs Tesseract (tests/integration/test_ocr.py does): the worker is exercised on PDFs and
on images with OCR switched off.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from mailflow.errors import ConfigurationError
from mailflow.stages import attachment_reader, ocr
from mailflow.stages.attachments import make_attachment
from mailflow.stages.document_text import ReaderOptions
from mailflow.stages.documents import classify_attachment, load_rules, score_kinds
from mailflow.stages.text_sandbox import TextSandbox


def best(text: str, *, ocr_text: bool, filename: str = "scan.jpg") -> str:
    rules = load_rules()
    scored = score_kinds(rules, text, filename, ocr=ocr_text)
    return scored[0][0] if scored and scored[0][1] >= rules.min_score else "other"


def pdf(text: str) -> bytes:
    from fpdf import FPDF

    document = FPDF()
    document.add_page()
    document.set_font("Helvetica", size=11)
    document.multi_cell(0, 6, text)
    return bytes(document.output())


@pytest.fixture(scope="module")
def busy_image() -> bytes:
    """A photo of noise: decoding and cleaning it up keeps the worker busy for a good while."""
    image = io.BytesIO()
    Image.effect_noise((3000, 3000), 60).save(image, format="PNG")
    return image.getvalue()


@pytest.fixture(scope="module")
def sandbox() -> TextSandbox:
    with TextSandbox(ReaderOptions(timeout_seconds=30)) as worker:
        yield worker


# --- scoring of OCR text -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("ROYAUME DE BELGIQUE\nORDRE DE QUITTER LE T ERRITOIRE\nMonsieur X", "order_to_leave"),
        ("STAD GENT\nGEZINSSAMENSTEL1ING\nReferentiepersoon: A", "household_composition"),
        ("HUUROVEREENK0MST\nTussen partijen", "rental_contract"),
        ("Extrait d'acte de naissanoe\nLe 3 mai", "birth_certificate"),
    ],
)
def test_misread_long_phrases_count_in_ocr_text_only(text: str, kind: str) -> None:
    assert best(text, ocr_text=True) == kind
    assert best(text, ocr_text=False) == "other"


@pytest.mark.parametrize(
    ("text", "filename", "kind"),
    [
        (
            "REPUBLICA DE CHILE PASAPORTE - pagina 9\n[sello] BRUSSELS AIRPORT\nENTRADA 03.02.2026",
            "IMG_5521.jpg",
            "passport_stamp",
        ),
        ("T.C. PASAPORT - sayfa 7\ngiris damgasi: BE BRUSSELS 11.03.2026", "IMG_0412.jpg", "passport_stamp"),
        (
            "PASSEPORT - page 12\ncachet: AEROPORT DE CHARLEROI\nENTREE 20.01.2026",
            "passeport.jpg",
            "passport_stamp",
        ),
        (
            "PASSPORT\nSurname: OKAFOR\nNationality: NIGERIAN\nP<NGAOKAFOR<<CHIDI<<<<<<<<",
            "passport.jpg",
            "passport",
        ),
    ],
)
def test_a_passport_page_showing_an_entry_stamp_is_the_stamp_and_the_identity_page_the_passport(
    text: str, filename: str, kind: str
) -> None:
    # The page with the stamp also names the passport (and the file is often "passport.jpg"): what it
    # shows, a stamp of entry, is what a return report needs.
    assert best(text, ocr_text=True, filename=filename) == kind


@pytest.mark.parametrize(
    ("text", "filename"),
    [
        (
            "E-TICKET RECEIPT / ITINERARY\nBrussels Airport - Istanbul Airport\nExit row seat 14C",
            "ticket.pdf",
        ),
        (
            "Iberia - Confirmacion de reserva\nSalida: Aeropuerto Madrid-Barajas 10:35\nLlegada: Bruselas",
            "reserva.pdf",
        ),
    ],
)
def test_a_ticket_naming_airports_and_departures_is_no_stamp(text: str, filename: str) -> None:
    # A ticket proves no return: it must not complete a return report as its stamp would.
    assert best(text, ocr_text=True, filename=filename) != "passport_stamp"


def test_fuzzy_matching_never_changes_an_annex_number() -> None:
    # "bijlage 36" is one misread digit from "bijlage 35"; only exact annex numbers count.
    assert best("BIJLAGE 36\nKoninkrijk Belgie", ocr_text=True) == "other"
    assert best("BIJLAGE 35\nKoninkrijk Belgie", ocr_text=True) == "annex35"


def test_an_approximate_phrase_keeps_its_short_words() -> None:
    # "declaration de depart" is close to the police's "declaration de vol" but for its last word.
    text = "Commune de Gand\nDECLARATION DE DEPART\nNom: X"
    assert best(text, ocr_text=True) == "other"


def test_short_words_are_never_matched_approximately() -> None:
    # "visum" and "visa" are short passport_stamp cues; "vijsum" must not count for them.
    assert best("vijsum stenpel", ocr_text=True) == "other"


@pytest.mark.parametrize(
    ("mrz", "kind"),
    [
        ("P<NORHANSEN<<INGRID<MARIE<<<<<<<<<<<<<<<<<<<\n31195855<4NOR8502145F30110<<<<<<<<02", "passport"),
        ("IDBEL5920317463<<<<<<<<<<<<<<<\n8501019F3011023BEL<<<<<<<<<4\nPEETERS<<AN<<<<<", "identity_card"),
        ("IRBEL5920317463<<<<<<<<<<<<<<<\n8501019F3011023MAR<<<<<<<<<4\nALAOUI<<SARA<<<<", "residence_card"),
    ],
)  # fmt: skip
def test_machine_readable_zones_name_the_document(mrz: str, kind: str) -> None:
    assert best(f"some unreadable header\n{mrz}", ocr_text=True) == kind


def test_reader_settings_are_checked(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[reader]\ntimeout = 3\n")
    with pytest.raises(ConfigurationError):
        load_rules(bad)
    assert load_rules().reader.ocr_languages == "nld+fra+eng"


# --- image clean-up (Pillow only) -------------------------------------------------------------


def text_image(lines: list[str], size: int = 28) -> Image.Image:
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        font = ImageFont.load_default(size=size)
    image = Image.new("L", (size * 30, size * (2 * len(lines) + 2)), 255)
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((size, size * (2 * index + 1)), line, fill=0, font=font)
    return image


@pytest.mark.parametrize("angle", [-7.0, -3.0, 4.0, 9.0])
def test_skew_is_measured_from_the_text_lines(angle: float) -> None:
    page = text_image(["Bijzonder verblijfsdocument"] * 8)
    turned = page.rotate(angle, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    assert ocr.skew_angle(turned) == pytest.approx(-angle, abs=0.6)
    assert ocr.skew_angle(page) == 0.0


@pytest.mark.parametrize("turn", [90, 270])
def test_a_sideways_page_is_told_from_an_upright_one(turn: int) -> None:
    page = text_image(["Verblijfskaart van een familielid", "Naam: X  Voornaam: Y"] * 4)
    assert ocr.lines_run_vertically(page.rotate(turn, expand=True))
    assert not ocr.lines_run_vertically(page)
    assert not ocr.lines_run_vertically(Image.new("L", (400, 300), 255))


def test_a_blank_image_has_no_skew_and_survives_preparation() -> None:
    blank = Image.new("RGB", (300, 200), "white")
    prepared, skew = ocr.prepare(blank)
    # Small images are enlarged (at most three times) for Tesseract.
    assert skew == 0.0 and prepared.mode == "L" and prepared.size == (900, 600)


def test_uneven_light_is_flattened() -> None:
    page = text_image(["Huurovereenkomst"] * 4)
    shadow = Image.linear_gradient("L").resize(page.size).point(lambda v: 90 + v * 165 // 255)
    dark = Image.composite(page, Image.new("L", page.size, 0), shadow)
    flat = ocr.flatten_lighting(dark)
    # The paper in the shadowed corner is white again, the ink still black.
    assert flat.crop((0, 0, 20, 20)).getextrema()[0] > 200
    assert flat.getextrema()[0] < 60


def test_tesseract_tsv_is_turned_into_lines_and_good_words() -> None:
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"
    rows = [
        "5\t1\t1\t1\t1\t1\t0\t0\t1\t1\t96\tBIJLAGE",
        "5\t1\t1\t1\t1\t2\t0\t0\t1\t1\t91\t35",
        "5\t1\t1\t1\t2\t1\t0\t0\t1\t1\t30\tGemeente",
        "5\t1\t2\t1\t1\t1\t0\t0\t1\t1\t88\tGent",
        "4\t1\t2\t1\t1\t0\t0\t0\t1\t1\t-1\t",
    ]
    text, good, words = ocr.parse_tsv("\n".join([header, *rows]))
    assert text == "BIJLAGE 35\nGemeente\n\nGent"
    assert (good, words) == (2, 3)


# --- the sandboxed worker -------------------------------------------------------------------


def test_text_pdfs_are_read_in_the_worker(sandbox: TextSandbox) -> None:
    page = sandbox.read(pdf("HUUROVEREENKOMST\nVerhuurder: A\nHuurder: B"), "application/pdf", ocr=False)
    assert "HUUROVEREENKOMST" in page.text and page.reasons == ("pdf text",)
    assert sandbox.pid is not None and sandbox.pid != os.getpid()


def test_garbage_never_kills_the_worker(sandbox: TextSandbox) -> None:
    pid = None
    for data, kind in [
        (b"%PDF-1.7\n\x00\xff garbage", "application/pdf"),
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
    ]:
        page = sandbox.read(data, kind, ocr=True)
        assert page.text == "" and ("unreadable" in page.reasons[0]), page.reasons
        pid = pid or sandbox.pid
        assert sandbox.pid == pid


def test_a_worker_that_overruns_its_time_is_killed_and_replaced(
    sandbox: TextSandbox, busy_image: bytes
) -> None:
    sandbox.read(pdf("warm up"), "application/pdf", ocr=False)
    first = sandbox.pid
    page = sandbox.read(busy_image, "image/png", ocr=True, timeout=0.05)
    assert page.text == "" and "timed out" in page.reasons[0]
    assert sandbox.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)
    again = sandbox.read(pdf("Loonbrief maart"), "application/pdf", ocr=False)
    assert "Loonbrief" in again.text and sandbox.pid not in (None, first)


def test_a_worker_that_dies_mid_request_is_reported_and_replaced(
    sandbox: TextSandbox, busy_image: bytes
) -> None:
    sandbox.read(pdf("warm up"), "application/pdf", ocr=False)
    pid = sandbox.pid
    threading.Timer(0.1, os.kill, (pid, signal.SIGKILL)).start()
    page = sandbox.read(busy_image, "image/png", ocr=True)
    if sandbox.pid == pid:  # finished before the kill arrived: nothing to check
        pytest.skip("the worker answered within 0.1 s")
    assert "crashed" in page.reasons[0]
    assert "Loonbrief" in sandbox.read(pdf("Loonbrief maart"), "application/pdf", ocr=False).text


def test_the_worker_runs_with_a_memory_limit(sandbox: TextSandbox) -> None:
    sandbox.read(pdf("warm up"), "application/pdf", ocr=False)
    limits = Path(f"/proc/{sandbox.pid}/limits").read_text()
    line = next(line for line in limits.splitlines() if line.startswith("Max address space"))
    assert str(sandbox.options.memory_mb * 1024 * 1024) in line


def test_too_little_memory_fails_cleanly() -> None:
    with TextSandbox(ReaderOptions(memory_mb=24, timeout_seconds=20)) as starved:
        page = starved.read(pdf("Loonbrief maart"), "application/pdf", ocr=False)
    assert page.text == ""
    assert any(word in page.reasons[0] for word in ("crashed", "failed")), page.reasons


def test_images_above_the_pixel_limit_are_refused() -> None:
    small = TextSandbox(ReaderOptions(max_pixels=10_000, timeout_seconds=20))
    image = io.BytesIO()
    Image.new("L", (400, 400), 255).save(image, format="PNG")
    with small:
        page = small.read(image.getvalue(), "image/png", ocr=True)
    assert "too large" in page.reasons[0]


# --- without Tesseract --------------------------------------------------------------------------


def test_without_tesseract_images_fall_back_to_their_names_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path, sandbox: TextSandbox
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    attachment_reader.ocr_available.cache_clear()
    image = io.BytesIO()
    text_image(["BIJLAGE 35"]).save(image, format="PNG")
    try:
        with caplog.at_level(logging.WARNING, logger="mailflow.stages.attachment_reader"):
            for name, kind in [("bijlage35.png", "annex35"), ("IMG_0001.png", "other")]:
                attachment = make_attachment(1, name, "image/png", image.getvalue())
                document = classify_attachment(attachment, sandbox=sandbox)
                assert document.kind == kind and "OCR unavailable" in document.reasons[0]
    finally:
        attachment_reader.ocr_available.cache_clear()
    warnings = [record for record in caplog.records if "tesseract not found" in record.getMessage()]
    assert len(warnings) == 1


def test_an_attachment_seen_before_is_not_read_again() -> None:
    attachment = make_attachment(1, "loon.pdf", "application/pdf", pdf("Loonbrief april\nNetto 1 900 EUR"))
    with TextSandbox(ReaderOptions(timeout_seconds=20, max_pages=2)) as worker:
        first = attachment_reader.read_attachment(attachment, sandbox=worker)
        worker.close()  # a second reading would have to start a new worker
        again = attachment_reader.read_attachment(attachment, sandbox=worker)
        assert again == first and "Loonbrief" in again.text
        assert worker.pid is None


def test_text_attachments_stay_in_process() -> None:
    started = time.monotonic()
    attachment = make_attachment(1, "a.txt", "text/plain", b"Loonbrief\nBruto\nNetto")
    page = attachment_reader.read_attachment(
        attachment, sandbox=TextSandbox(ReaderOptions(timeout_seconds=0.001))
    )
    assert page.text.startswith("Loonbrief") and time.monotonic() - started < 1


def test_a_blank_pdf_is_only_named_the_document_its_file_name_says(sandbox: TextSandbox) -> None:
    from fpdf import FPDF

    blank = FPDF()
    for _ in range(3):
        blank.add_page()
    named = classify_attachment(
        make_attachment(0, "bijlage35.pdf", "application/pdf", bytes(blank.output())), sandbox=sandbox
    )
    assert (named.kind, named.named_only) == ("annex35", True)
    shown = classify_attachment(
        make_attachment(
            0,
            "bijlage35.pdf",
            "application/pdf",
            pdf("BIJLAGE 35\nDocument voor bijzonder verblijf\nKoninkrijk Belgie, Dienst Vreemdelingenzaken"),
        ),
        sandbox=sandbox,
    )
    assert (shown.kind, shown.named_only) == ("annex35", False)
