"""The text an attached PDF or image shows: the PDF's text layer, or OCR of scanned pages and pictures.

Runs inside the sandboxed text worker (``mailflow.stages.text_sandbox``): PDF and image decoders are C
code fed by strangers, so they get a process of their own with time and memory limits. Everything is
bounded here as well: pages read, pages OCR'd, pixels decoded, characters returned.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from io import BytesIO

MAX_TEXT_CHARS = 20_000
# A page with fewer letters than this in its text layer is a scan (or a scan with a stamped footer such
# as "Scanned with CamScanner"): its pictures are read instead.
MIN_PAGE_LETTERS = 40


@dataclass(frozen=True)
class ReaderOptions:
    """Limits of text extraction; ``[reader]`` in classifiers/documents.toml."""

    timeout_seconds: float = 60.0  # wall clock for one attachment, OCR included
    # Wall clock for all the attachments of one email: fifty slow scans must not hold the email (and its
    # claim, whose lease runs out) for fifty minutes. Attachments after it are known by their names only.
    email_seconds: float = 120.0
    memory_mb: int = 1536  # address space of the worker process (and of each Tesseract it starts)
    max_pages: int = 3  # pages whose text layer is read
    ocr_pages: int = 2  # scanned pages or image frames OCR'd
    dpi: int = 300  # scanned PDF pages are rendered at this resolution
    max_pixels: int = 40_000_000  # larger images are refused (decompression bombs)
    ocr_languages: str = "nld+fra+eng"


@dataclass(frozen=True)
class PageText:
    text: str
    reasons: tuple[str, ...] = ()
    ocr_pages: int = 0  # pages (or frames) whose text came from OCR
    seconds: float = 0.0  # time spent on OCR


def read_document(
    data: bytes, sniffed_type: str, options: ReaderOptions, *, ocr_enabled: bool, timeout: float | None = None
) -> PageText:
    """Text of a PDF or an image; never raises for a bad file (the reasons say what went wrong)."""
    # OCR stops a little before the parent's deadline, so that what was read is still returned.
    deadline = time.monotonic() + (timeout or options.timeout_seconds) * 0.9
    if sniffed_type == "application/pdf":
        return pdf_text(data, options, ocr_enabled=ocr_enabled, deadline=deadline)
    if sniffed_type.startswith("image/"):
        if not ocr_enabled:
            return PageText("", ("image: OCR unavailable, no OCR text: file name only",))
        return image_text(data, options, deadline=deadline)
    return PageText("", (f"{sniffed_type}: content not read",))


def letters(text: str) -> int:
    return sum(ch.isalpha() for ch in text)


def pdf_text(data: bytes, options: ReaderOptions, *, ocr_enabled: bool, deadline: float) -> PageText:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    from mailflow.stages import ocr

    try:
        pdf = pdfium.PdfDocument(data)
    except Exception as exc:  # PdfiumError, or anything a hostile file provokes
        return PageText("", (f"pdf unreadable: {type(exc).__name__}",))
    parts: list[str] = []
    reasons: list[str] = []
    scanned = ocr_done = 0
    started = time.monotonic()
    try:
        for index in range(min(len(pdf), options.max_pages)):
            page = pdf[index]
            try:
                textpage = page.get_textpage()
                try:
                    text = textpage.get_text_range().replace("\r\n", "\n")
                finally:
                    textpage.close()
                if letters(text) < MIN_PAGE_LETTERS and any(
                    True for _ in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=3)
                ):
                    scanned += 1
                    if ocr_enabled and ocr_done < options.ocr_pages:
                        text = f"{text}\n{_ocr_page(page, options, deadline)}"
                        ocr_done += 1
            finally:
                page.close()
            parts.append(text)
            if sum(map(len, parts)) >= MAX_TEXT_CHARS:
                break
    except ocr.OcrError as exc:
        reasons.append(f"pdf scan: OCR failed ({exc})")
    except Exception as exc:
        reasons.append(f"pdf partly unreadable: {type(exc).__name__}")
    finally:
        pdf.close()
    text = "\n".join(parts)[:MAX_TEXT_CHARS]
    if ocr_done:
        reasons.insert(0, f"pdf scan: OCR of {ocr_done} page(s)")
    elif scanned:
        why = "OCR unavailable" if not ocr_enabled else "not OCR'd"
        reasons.insert(0, f"pdf without text layer (scan), {why}: file name only")
    elif not reasons:
        reasons.append("pdf text")
    seconds = time.monotonic() - started if ocr_done else 0.0
    return PageText(text, tuple(reasons), ocr_pages=ocr_done, seconds=seconds)


def _ocr_page(page, options: ReaderOptions, deadline: float) -> str:  # page: pypdfium2.PdfPage
    from mailflow.stages import ocr

    width, height = page.get_size()  # points, 1/72 inch
    scale = options.dpi / 72
    # A hostile page size (a 200-inch MediaBox) must not become a gigapixel bitmap.
    scale = min(scale, (options.max_pixels / max(1.0, width * height)) ** 0.5)
    image = page.render(scale=scale, grayscale=True).to_pil()
    return ocr.read_image(image, languages=options.ocr_languages, deadline=deadline).text


def image_text(data: bytes, options: ReaderOptions, *, deadline: float) -> PageText:
    from PIL import Image, ImageSequence

    from mailflow.stages import ocr

    _register_heif()
    Image.MAX_IMAGE_PIXELS = options.max_pixels
    started = time.monotonic()
    texts: list[str] = []
    skew = 0.0
    rotation = 0
    try:
        with warnings.catch_warnings():
            # Pillow only warns between one and two times MAX_IMAGE_PIXELS: refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(BytesIO(data)) as image:
                # JPEG: decode at reduced size straight away when the photo is far larger than needed.
                image.draft("RGB", (ocr.MAX_LONG_SIDE, ocr.MAX_LONG_SIDE))
                for index, frame in enumerate(ImageSequence.Iterator(image)):
                    if index >= options.ocr_pages:
                        break
                    frame.load()
                    reading = ocr.read_image(frame, languages=options.ocr_languages, deadline=deadline)
                    texts.append(reading.text)
                    skew, rotation = skew or reading.skew, rotation or reading.rotation
    except ocr.OcrError as exc:
        # Frames read before the failure still count.
        reason = f"image: OCR failed ({exc})" + ("" if texts else ", no OCR text")
        return PageText("\n".join(texts)[:MAX_TEXT_CHARS], (reason,), ocr_pages=len(texts))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return PageText("", ("image too large to read, no OCR text: file name only",))
    except Exception as exc:  # UnidentifiedImageError, truncated files, decoder errors
        return PageText("", (f"image unreadable ({type(exc).__name__}), no OCR text: file name only",))
    seconds = time.monotonic() - started
    details = [f"{seconds:.1f}s"]
    if rotation:
        details.append(f"turned {rotation}°")
    if skew:
        details.append(f"straightened {skew:.1f}°")
    reason = f"image: OCR ({', '.join(details)})"
    return PageText("\n".join(texts)[:MAX_TEXT_CHARS], (reason,), ocr_pages=len(texts), seconds=seconds)


def _register_heif() -> None:
    """HEIC/HEIF photos (iPhones) when the optional pillow-heif plugin is installed."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return
    register_heif_opener()
