"""OCR with the real Tesseract: document images of our own making, scanned PDFs, and the dev corpus.

The images are drawn here with Pillow in several fonts, then skewed, turned, blurred, shadowed and
speckled, so that what is measured is how well recognition generalises, not how well it fits the
corpus. Without Tesseract these tests skip, or fail under CI.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from mailflow.settings import PROJECT_ROOT
from mailflow.stages.attachments import make_attachment
from mailflow.stages.document_text import ReaderOptions
from mailflow.stages.documents import classify_attachment, load_rules
from mailflow.stages.parse import parse
from mailflow.stages.text_sandbox import TextSandbox

pytestmark = pytest.mark.integration

CORPUS_DIR = PROJECT_ROOT.parent / "shared" / "corpus" / "dev"
FONTS = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "LiberationSerif-Regular.ttf", "DejaVuSansMono.ttf")

# Documents written for this test, in the wording of real ones (not the corpus's).
DOCUMENTS = {
    "passport": "KONGERIKET NORGE / KINGDOM OF NORWAY\nPASS / PASSPORT\n"
    "Type P  Landkode NOR  Pass nr. 31195855\n"
    "Etternavn / Surname: HANSEN\nFornavn / Given names: INGRID MARIE\n"
    "P<NORHANSEN<<INGRID<MARIE<<<<<<<<<<<<<<<<<<<\n31195855<4NOR8502145F3011023<<<<<<<<<<<<<<02",
    "annex35": "ROYAUME DE BELGIQUE - Ville de Gand\nANNEXE 35\nDocument spécial de séjour\n"
    "Délivré en application de l'article 111 de l'arrêté royal\nNom: DIALLO  Prénom: Mamadou",
    "payslip": "Loonbrief maart 2026\nWerkgever: Bakkerij De Zon bv\nWerknemer: Samir Haddou\n"
    "Brutoloon 2.950,00 EUR\nRSZ werknemer 385,57\nNetto te betalen 2.052,33 EUR",
    "rental_contract": "HUUROVEREENKOMST VOOR EEN HOOFDVERBLIJFPLAATS\nTussen de verhuurder: Jan Peeters\n"
    "en de huurder: Amina Rahmani\nHuurprijs: 780 EUR per maand",
    "birth_certificate": "REPUBLIQUE DU SENEGAL\nEXTRAIT DU REGISTRE DES ACTES DE NAISSANCE\n"
    "Acte de naissance n° 1452\nLe 12 mars 1994 est né à Thiès Ndiaye Ousmane",
    "boarding_pass": "BRUSSELS AIRLINES\nBOARDING PASS\nName: OKAFOR/CHIDI MR\n"
    "From LOS Lagos to BRU Brussels\n"
    "Flight SN0288  Gate B12  Seat 24C\nBoarding time 22:35",
    "order_to_leave": "ROYAUME DE BELGIQUE - SPF INTERIEUR\nOFFICE DES ETRANGERS\n"
    "ORDRE DE QUITTER LE TERRITOIRE\n"
    "Il est enjoint à Monsieur BERISHA Arben de quitter le territoire",
    "household_composition": "STAD GENT - BURGERZAKEN\nUITTREKSEL UIT HET BEVOLKINGSREGISTER\n"
    "GEZINSSAMENSTELLING\nReferentiepersoon: EL AMRANI Youssef\nKind: EL AMRANI Nour",
}


@pytest.fixture(scope="module")
def tesseract() -> str:
    path = shutil.which("tesseract")
    if path is None:
        message = "tesseract is not installed (Debian: tesseract-ocr tesseract-ocr-nld tesseract-ocr-fra)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    languages = subprocess.run([path, "--list-langs"], capture_output=True, text=True, check=False).stdout
    missing = {"nld", "fra", "eng"} - set(languages.split())
    if missing:
        pytest.fail(f"tesseract has no data for {sorted(missing)}")
    return path


@pytest.fixture(scope="module")
def sandbox(tesseract: str) -> TextSandbox:
    with TextSandbox(load_rules().reader) as worker:
        yield worker


def font(name: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype(name, size)
    except OSError:
        return ImageFont.load_default(size=size)


def render(text: str, font_name: str, size: int, paper: tuple[int, int, int]) -> Image.Image:
    face = font(font_name, size)
    lines = text.splitlines()
    width = int(max(face.getlength(line) for line in lines)) + 4 * size
    image = Image.new("RGB", (width, int(len(lines) * size * 1.6) + 4 * size), paper)
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((2 * size, 2 * size + index * size * 1.6), line, fill=(25, 25, 60), font=face)
    return image


def skewed(image: Image.Image, rng: random.Random) -> Image.Image:
    angle = rng.choice((-1, 1)) * rng.uniform(3, 8)
    return image.rotate(angle, expand=True, fillcolor=(90, 80, 70), resample=Image.Resampling.BICUBIC)


def speckled(image: Image.Image, rng: random.Random) -> Image.Image:
    noise = Image.effect_noise(image.size, 50).convert("RGB")
    return Image.blend(image.filter(ImageFilter.GaussianBlur(1.2)), noise, 0.25)


def shadowed(image: Image.Image, rng: random.Random) -> Image.Image:
    light = Image.linear_gradient("L").rotate(rng.choice((0, 90, 180))).resize(image.size)
    light = light.point(lambda value: 100 + value * 155 // 255)
    return ImageChops.multiply(image, Image.merge("RGB", [light] * 3))


def turned(image: Image.Image, rng: random.Random) -> Image.Image:
    return image.rotate(rng.choice((90, 180, 270)), expand=True)


def small(image: Image.Image, rng: random.Random) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)


DAMAGE: dict[str, Callable[[Image.Image, random.Random], Image.Image]] = {
    "skewed": skewed,
    "speckled": speckled,
    "shadowed": shadowed,
    "turned": turned,
    "small": small,
    "skewed+speckled+shadowed": lambda image, rng: shadowed(speckled(skewed(image, rng), rng), rng),
}


def jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


@pytest.mark.slow
def test_document_photos_of_our_own_are_recognised(sandbox: TextSandbox) -> None:
    rng = random.Random(20260302)
    rules = load_rules()
    damages = list(DAMAGE)
    results = []
    for index, (kind, text) in enumerate(DOCUMENTS.items()):
        # Each document twice, with two different damages, fonts and sizes.
        for damage in (damages[index % len(damages)], damages[(index + 3) % len(damages)]):
            paper = rng.choice(((255, 255, 255), (246, 240, 226), (234, 238, 243)))
            page = render(text, rng.choice(FONTS), rng.choice((22, 28, 36)), paper)
            data = jpeg(DAMAGE[damage](page, rng), rng.choice((45, 75, 92)))
            # A phone's file name says nothing: the kind must come from the picture.
            attachment = make_attachment(1, f"IMG_{index:04d}.jpg", "image/jpeg", data)
            document = classify_attachment(attachment, rules, sandbox=sandbox)
            results.append((kind, damage, document.kind))
    wrong = [result for result in results if result[0] != result[2]]
    print(f"own document photos: {len(results) - len(wrong)}/{len(results)} recognised")
    assert len(wrong) <= len(results) // 8, wrong


def scanned_pdf(image: Image.Image, footer: str = "") -> bytes:
    from fpdf import FPDF

    document = FPDF()
    document.add_page()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    document.image(buffer, x=15, y=15, w=180)
    if footer:
        document.set_font("Helvetica", size=7)
        document.set_xy(15, 285)
        document.cell(0, 4, footer)
    return bytes(document.output())


def test_scanned_pdfs_are_read_by_ocr(sandbox: TextSandbox) -> None:
    page = skewed(
        render(DOCUMENTS["order_to_leave"], "DejaVuSerif.ttf", 26, (250, 250, 250)), random.Random(1)
    )
    # Scanner apps stamp a line of text on the page: too little to count as a text layer.
    data = scanned_pdf(page, footer="Scanned with CamScanner")
    document = classify_attachment(
        make_attachment(1, "scan0003.pdf", "application/pdf", data), sandbox=sandbox
    )
    assert document.kind == "order_to_leave", document.reasons
    assert document.reasons[0] == "pdf scan: OCR of 1 page(s)"


def test_multi_page_tiff_frames_are_read(sandbox: TextSandbox) -> None:
    frames = [
        render(DOCUMENTS[kind], "DejaVuSans.ttf", 28, (255, 255, 255)) for kind in ("payslip", "passport")
    ]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="TIFF", save_all=True, append_images=frames[1:])
    page = sandbox.read(buffer.getvalue(), "image/tiff", ocr=True)
    assert "Loonbrief" in page.text and "PASSPORT" in page.text and page.ocr_pages == 2


def test_a_picture_that_names_no_document_leaves_it_to_the_file_name(sandbox: TextSandbox) -> None:
    # What a blurred photo of a card often reads as: letters, but no word of any document.
    gibberish = "Kbvr Tzqm\nWxolp Jhqe Frum\nVosk Ybbe Zrat Plom"
    data = jpeg(render(gibberish, "DejaVuSans.ttf", 30, (255, 255, 255)), 85)
    for name, kind in [("paspoort_achterkant.jpg", "passport"), ("IMG_2291.jpg", "other")]:
        document = classify_attachment(make_attachment(1, name, "image/jpeg", data), sandbox=sandbox)
        assert document.kind == kind, document.reasons
        assert document.reasons[0].startswith("image: OCR")


def test_iphone_heic_photos_are_read(sandbox: TextSandbox) -> None:
    pytest.importorskip("pillow_heif").register_heif_opener()
    buffer = io.BytesIO()
    render(DOCUMENTS["rental_contract"], "DejaVuSans.ttf", 28, (250, 248, 240)).save(buffer, format="HEIF")
    attachment = make_attachment(1, "IMG_4821.HEIC", "image/heic", buffer.getvalue())
    assert attachment.sniffed_type in ("image/heic", "image/heif")
    document = classify_attachment(attachment, sandbox=sandbox)
    assert document.kind == "rental_contract", document.reasons


def test_ocr_runs_out_of_time_without_hanging(tesseract: str) -> None:
    image = render(DOCUMENTS["rental_contract"] * 3, "DejaVuSans.ttf", 30, (255, 255, 255))
    started = time.monotonic()
    with TextSandbox(ReaderOptions(timeout_seconds=0.5)) as hurried:
        page = hurried.read(jpeg(image, 90), "image/jpeg", ocr=True)
    assert time.monotonic() - started < 5
    # Either the worker gave up in time (OCR stops short of the deadline) or it was killed.
    assert "OCR failed" in page.reasons[0] or "timed out" in page.reasons[0], page.reasons


def test_document_text_is_never_logged(sandbox: TextSandbox, caplog: pytest.LogCaptureFixture) -> None:
    data = jpeg(render(DOCUMENTS["household_composition"], "DejaVuSans.ttf", 28, (255, 255, 255)), 85)
    with caplog.at_level(logging.DEBUG):
        document = classify_attachment(make_attachment(1, "x.jpg", "image/jpeg", data), sandbox=sandbox)
    assert document.kind == "household_composition"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "AMRANI" not in logged and "Youssef" not in logged


# --- measured on the dev corpus ----------------------------------------------------------------


def corpus_attachments() -> list[tuple[str, str, object]]:
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
    found = []
    for line in (CORPUS_DIR / "labels.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if not formats.get(row["id"]):
            continue
        message = parse((CORPUS_DIR / row["file"]).read_bytes())
        for attachment, kind, fmt in zip(
            message.attachments, row["documents"], formats[row["id"]], strict=True
        ):
            found.append((fmt, kind, attachment))
    return found


@pytest.mark.slow
def test_corpus_document_kinds_from_text_pdfs_and_images(sandbox: TextSandbox) -> None:
    rules = load_rules()
    right: dict[str, int] = {}
    total: dict[str, int] = {}
    seconds = 0.0
    for fmt, kind, attachment in corpus_attachments():
        group = "pdf" if fmt == "pdf" else "image" if fmt in ("jpg", "png", "pdf-image") else "other"
        started = time.monotonic()
        document = classify_attachment(attachment, rules, sandbox=sandbox)
        if group == "image":
            seconds += time.monotonic() - started
        total[group] = total.get(group, 0) + 1
        right[group] = right.get(group, 0) + (document.kind == kind)
    print(
        f"text PDFs {right['pdf']}/{total['pdf']}, images {right['image']}/{total['image']}, "
        f"{seconds / total['image']:.2f} s per image"
    )
    assert total["pdf"] > 20 and right["pdf"] / total["pdf"] >= 0.9
    assert total["image"] > 20 and right["image"] / total["image"] >= 0.75
