"""OCR of one page image with Tesseract: clean the image up, read it, and turn it upright if it reads badly.

Runs inside the sandboxed text worker (``mailflow.stages.text_sandbox``), never in the main process.
Tesseract is called as a program (Debian's ``tesseract-ocr``), its input on stdin, its TSV on stdout:
the word confidences tell a good reading from a bad one, which decides whether to try another
orientation.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from dataclasses import dataclass
from io import BytesIO

from PIL import Image, ImageChops, ImageFilter, ImageMath, ImageOps

TESSERACT = "tesseract"
# Tesseract reads text best with capital letters some 30 px high; scans and phone pictures of a page
# usually have that from about 1600 px on their long side, screenshots and small crops do not.
MIN_LONG_SIDE = 1600
MAX_LONG_SIDE = 3500
MAX_SKEW_DEGREES = 15
# A good reading has most of its words (3+ letters) read with confidence; a sideways or upside-down
# page reads as a few confident bits of gibberish among many unsure ones.
MIN_GOOD_WORDS = 3
GOOD_READING_WORDS = 6
GOOD_READING_SHARE = 0.6
SHORT_READING_SHARE = 0.8  # for readings with fewer than GOOD_READING_WORDS good words
# A page read as fewer words than this (good or bad) is turned only as Tesseract's orientation guess says.
MIN_TEXT_WORDS = 4
# Tesseract page segmentation modes: 3 automatic layout, 6 one uniform block of text.
LAYOUTS = ("3", "6")


class OcrError(Exception):
    """Tesseract failed or ran out of time."""


@dataclass(frozen=True)
class Reading:
    text: str
    good_words: int  # words of 3+ letters read with confidence >= 60
    words: int = 0  # words with 3+ letters, however well read
    rotation: int = 0  # degrees counter-clockwise the image was turned to read it
    skew: float = 0.0

    @property
    def good(self) -> bool:
        # Short texts (a label, a card) need a larger share: three lucky words of gibberish are not rare.
        share = GOOD_READING_SHARE if self.good_words >= GOOD_READING_WORDS else SHORT_READING_SHARE
        return self.good_words >= MIN_GOOD_WORDS and self.good_words >= share * self.words


def read_image(image: Image.Image, *, languages: str, deadline: float) -> Reading:
    """The text of one page image, turned upright when it reads better so. Raises OcrError.

    Each orientation is read with automatic layout analysis first, then as one block of text: the
    layout analysis sometimes takes a page with a dark frame or a stamp for a picture and reads nothing.
    At most eight Tesseract runs (orientation detection included); when time runs out, the best
    reading so far is the answer.
    """
    page, skew = prepare(image)
    best = _read(page, languages, deadline, LAYOUTS[0], rotation=0, skew=skew)
    if best.good:
        return best
    try:
        best = _better(best, _read(page, languages, deadline, LAYOUTS[1], rotation=0, skew=skew))
        if best.good:
            return best
        # The page may be sideways or upside down (phone photos without EXIF orientation). Tesseract's
        # guess comes first (or both sideways turns when the lines run up and down); the others are
        # read too only when there are words to read: the guess is often wrong on noisy pages, but a
        # photo without text needs no turning.
        guess = _orientation_guess(page, deadline)
        first = [guess] if guess else [90, 270] if lines_run_vertically(page) else []
        plan = [(rotation, layout) for rotation in first for layout in LAYOUTS]
        if best.words >= MIN_TEXT_WORDS:
            plan += [(rotation, LAYOUTS[0]) for rotation in (90, 270, 180) if rotation not in first]
        turned: dict[int, tuple[Image.Image, float]] = {}
        for rotation, layout in plan:
            if rotation not in turned:
                turned[rotation] = prepare(page.rotate(rotation, expand=True), scale=False)
            candidate, candidate_skew = turned[rotation]
            reading = _read(candidate, languages, deadline, layout, rotation=rotation, skew=candidate_skew)
            best = _better(best, reading)
            if best.good:
                break
    except OcrError:
        pass  # out of time, or Tesseract choked on one variant: the best reading so far will do
    return best


def _better(best: Reading, other: Reading) -> Reading:
    # Confident words weighted by their share: a turned page's gibberish has some, but a small share.
    def score(reading: Reading) -> float:
        return reading.good_words**2 / max(1, reading.words)

    return other if score(other) > score(best) else best


def prepare(image: Image.Image, *, scale: bool = True) -> tuple[Image.Image, float]:
    """Grey, upright by EXIF, at a readable size, even lighting, straightened: (image, skew removed)."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent screenshots: text drawn on nothing must show on white, not on black.
        background = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(background, image.convert("RGBA"))
    grey = image.convert("L")
    if scale:
        grey = _rescale(grey)
    # Sensor noise and JPEG speckles become stray strokes once binarised; strokes at this size survive.
    grey = flatten_lighting(grey.filter(ImageFilter.MedianFilter(3)))
    angle = skew_angle(grey)
    if abs(angle) >= 0.5:
        grey = grey.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    return grey, angle


def _rescale(grey: Image.Image) -> Image.Image:
    long_side = max(grey.size)
    if long_side < MIN_LONG_SIDE:
        factor = min(3.0, MIN_LONG_SIDE / long_side)
    elif long_side > MAX_LONG_SIDE:
        factor = MAX_LONG_SIDE / long_side
    else:
        return grey
    size = (max(1, round(grey.width * factor)), max(1, round(grey.height * factor)))
    return grey.resize(size, Image.Resampling.LANCZOS)


def flatten_lighting(grey: Image.Image) -> Image.Image:
    """Divide by the background: shadows, uneven light and dark surroundings become white paper.

    Phone photos show the page on a table, scans show the scanner's lid: Tesseract takes such dark
    areas for pictures and skips the text beside them.
    """
    small = grey.copy()
    small.thumbnail((400, 400))
    # A closing (max, then min) wipes out the thin text strokes but keeps wide dark areas: what is left
    # is the paper with its shadows, and whatever lies around it.
    closing = small.filter(ImageFilter.MaxFilter(5)).filter(ImageFilter.MinFilter(5))
    # Blurred well, or the speckles of a noisy photo would pass into the background and back out.
    background = closing.filter(ImageFilter.GaussianBlur(8))
    background = background.resize(grey.size, Image.Resampling.BILINEAR)
    flat = ImageMath.lambda_eval(lambda a: a["img"] * 255 / (a["bg"] + 1), img=grey, bg=background)
    return ImageOps.autocontrast(flat.convert("L"), cutoff=1)


def _ink(grey: Image.Image, size: int) -> Image.Image:
    """Text strokes, white on black, at most ``size`` pixels wide, cropped to where there are any."""
    small = grey.copy()
    small.thumbnail((size, size))
    # Ink is what is darker than the paper around it (a black top-hat): thin strokes, not the wide
    # dark areas around a photographed page, whose straight edges would otherwise set the angle.
    paper = small.filter(ImageFilter.MaxFilter(5)).filter(ImageFilter.MinFilter(5))
    ink = ImageChops.subtract(paper, small).point(lambda value: 255 if value > 40 else 0)
    box = ink.getbbox()
    return ink.crop(box) if box else ink  # text often fills a corner of the page only


def _profile_sharpness(ink: Image.Image, angle: float = 0.0) -> float:
    """How sharply the rows alternate between ink and paper: high when text lines run horizontally."""
    turned = ink.rotate(angle, resample=Image.Resampling.BILINEAR, expand=angle % 90 == 0, fillcolor=0)
    rows = turned.resize((1, turned.height), Image.Resampling.BOX).tobytes()
    return float(sum((a - b) ** 2 for a, b in itertools.pairwise(rows)))


def skew_angle(grey: Image.Image) -> float:
    """The rotation (degrees) that makes text lines horizontal, by the sharpest row profile."""
    ink = _ink(grey, 800)
    if not ink.getbbox():
        return 0.0

    def sharpness(angle: float) -> float:
        return _profile_sharpness(ink, angle)

    coarse = max(range(-MAX_SKEW_DEGREES, MAX_SKEW_DEGREES + 1), key=sharpness)
    fine = max((coarse + step / 4 for step in range(-4, 5)), key=sharpness)
    # Ties between angles mean no text lines to speak of: leave the image alone.
    return fine if sharpness(fine) > sharpness(0) * 1.05 else 0.0


def lines_run_vertically(grey: Image.Image) -> bool:
    """Whether the page's text lines run up and down (a page photographed sideways).

    Between horizontal lines of text lie rows without ink; across them, hardly any column is empty.
    """
    ink = _ink(grey, 800)
    if not ink.getbbox():
        return False
    across, down = _empty_share(ink), _empty_share(ink.transpose(Image.Transpose.ROTATE_90))
    return down > 0.15 and down > 2 * across


def _empty_share(ink: Image.Image) -> float:
    """The share of rows with (almost) no ink."""
    rows = ink.resize((1, ink.height), Image.Resampling.BOX).tobytes()
    return sum(value < 3 for value in rows) / max(1, len(rows))


def _run(args: list[str], image: Image.Image, deadline: float) -> str:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise OcrError("no time left for OCR")
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    # One thread per Tesseract: its OpenMP threads slow small pages down and defeat the memory limit.
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(
            [TESSERACT, "stdin", "stdout", *args],
            input=buffer.getvalue(),
            capture_output=True,
            timeout=remaining,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise OcrError("tesseract timed out") from exc
    except OSError as exc:
        raise OcrError(f"tesseract not runnable: {type(exc).__name__}") from exc
    if done.returncode != 0:
        raise OcrError(f"tesseract exit status {done.returncode}")
    return done.stdout.decode("utf-8", errors="replace")


def _read(
    image: Image.Image, languages: str, deadline: float, layout: str = "3", *, rotation: int, skew: float
) -> Reading:
    # dpi: the pages were scaled to about 300 dpi (Tesseract's guess from a PNG is often wrong).
    tsv = _run(["-l", languages, "--psm", layout, "--dpi", "300", "tsv"], image, deadline)
    text, good, words = parse_tsv(tsv)
    return Reading(text=text, good_words=good, words=words, rotation=rotation, skew=skew)


def parse_tsv(tsv: str) -> tuple[str, int, int]:
    """Text from Tesseract's TSV (lines kept, blocks apart), the numbers of good words and of words."""
    lines: dict[tuple[str, str, str], list[str]] = {}
    good = words = 0
    for row in tsv.splitlines()[1:]:
        fields = row.split("\t")
        if len(fields) < 12 or fields[0] != "5" or not fields[11].strip():
            continue
        word = fields[11].strip()
        lines.setdefault((fields[2], fields[3], fields[4]), []).append(word)
        try:
            confidence = float(fields[10])
        except ValueError:
            confidence = 0.0
        if sum(ch.isalpha() for ch in word) >= 3:
            words += 1
            good += confidence >= 60
    text_lines, previous_block = [], None
    for (block, _, _), line in lines.items():
        if previous_block is not None and block != previous_block:
            text_lines.append("")
        text_lines.append(" ".join(line))
        previous_block = block
    return "\n".join(text_lines), good, words


def _orientation_guess(image: Image.Image, deadline: float) -> int:
    """Tesseract's guess of the counter-clockwise turn that makes the page upright; 0 without one."""
    try:
        osd = _run(["--psm", "0"], image, deadline)
    except OcrError:
        return 0  # too little text for the detection, usually
    fields = dict(line.split(":", 1) for line in osd.splitlines() if ":" in line)
    try:
        # Tesseract says how far to turn clockwise; Pillow turns counter-clockwise.
        return (360 - int(fields["Rotate"].strip())) % 360
    except (KeyError, ValueError):
        return 0
