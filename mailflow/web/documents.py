"""Attachments shown inline: PDF pages and images, redrawn as PNG on the server.

Nothing a resident sent reaches the browser as it came, except as a download: a PDF is rendered to
pictures of its pages (its scripts, forms and links never run), an image is decoded and encoded
again (dropping metadata and anything hiding behind a misleading type).
"""

from __future__ import annotations

import io

import pypdfium2
from PIL import Image

MAX_PAGES = 10
PAGE_WIDTH = 1000
MAX_IMAGE_SIDE = 1600
MAX_PIXELS = 60_000_000  # larger images are downloads only
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff"})


def inline_kind(sniffed_type: str) -> str | None:
    if sniffed_type == "application/pdf":
        return "pdf"
    if sniffed_type in IMAGE_TYPES:
        return "image"
    return None


def pdf_page_count(data: bytes) -> int:
    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError:
        return 0
    try:
        return min(len(document), MAX_PAGES)
    finally:
        document.close()


def render_pdf_page(data: bytes, index: int, width: int = PAGE_WIDTH) -> bytes:
    """One page as PNG; IndexError past the pages shown, ValueError for a PDF that cannot be read."""
    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        raise ValueError("not a readable PDF") from exc
    try:
        if not 0 <= index < min(len(document), MAX_PAGES):
            raise IndexError(index)
        page = document[index]
        try:
            scale = max(0.2, min(4.0, width / max(1.0, page.get_width())))
            bitmap = page.render(scale=scale, may_draw_forms=False)
            image = bitmap.to_pil()
        finally:
            page.close()
    finally:
        document.close()
    return _png(image)


def render_image(data: bytes, max_side: int = MAX_IMAGE_SIDE) -> bytes:
    """The image decoded and encoded again as PNG, no larger than ``max_side``; ValueError if unusable."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ValueError("image too large to show")
            image.seek(0)
            frame = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
    except (OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ValueError("not a readable image") from exc
    frame.thumbnail((max_side, max_side))
    return _png(frame)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()
