"""The text an attachment shows: text files decoded here, PDFs and images read by the sandboxed worker.

One worker per set of limits serves the whole process: started on first use (never at import),
stopped at exit. Without Tesseract, images and scans are not OCR'd: one warning says so. What the
worker read is remembered (in memory, a few hundred attachments) by content digest: the same scan
comes back in replies and forwards, and OCR takes a second a page.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import threading
from collections import OrderedDict
from functools import lru_cache

from mailflow.domain import Attachment
from mailflow.stages.document_text import MAX_TEXT_CHARS, PageText, ReaderOptions
from mailflow.stages.text_sandbox import TextSandbox

log = logging.getLogger(__name__)

_sandboxes: dict[ReaderOptions, TextSandbox] = {}
_sandboxes_lock = threading.Lock()
CACHE_ENTRIES = 256
_read_cache: OrderedDict[tuple[str, str, ReaderOptions, bool], PageText] = OrderedDict()
_cache_lock = threading.Lock()


def read_attachment(
    attachment: Attachment,
    *,
    options: ReaderOptions | None = None,
    sandbox: TextSandbox | None = None,
    timeout: float | None = None,
) -> PageText:
    """The attachment's text and where it came from; never raises for a bad attachment.

    ``timeout``: what is left of the email's time for reading documents (none left: not read).
    """
    sniffed = attachment.sniffed_type
    if sniffed == "text/plain":
        data = attachment.payload[: MAX_TEXT_CHARS * 4]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
        return PageText(text[:MAX_TEXT_CHARS], ("text attachment",))
    if sniffed == "application/pdf" or sniffed.startswith("image/"):
        # Even text PDFs go to the worker: pdfium is C code parsing a stranger's file.
        sandbox = sandbox or shared_sandbox(options or ReaderOptions())
        ocr = ocr_available()
        key = (attachment.sha256, sniffed, sandbox.options, ocr)
        with _cache_lock:
            if key in _read_cache:
                _read_cache.move_to_end(key)
                return _read_cache[key]
        if timeout is not None and timeout <= 0:
            return PageText("", (f"{sniffed}: not read, the time for this email's documents was used up",))
        limit = min(timeout, sandbox.options.timeout_seconds) if timeout is not None else None
        page = sandbox.read(attachment.payload, sniffed, ocr=ocr, timeout=limit)
        # A worker that timed out or crashed may do better another time (on a less busy machine).
        if not page.reasons or not page.reasons[0].startswith("text extraction"):
            with _cache_lock:
                _read_cache[key] = page
                while len(_read_cache) > CACHE_ENTRIES:
                    _read_cache.popitem(last=False)
        return page
    return PageText("", (f"{sniffed}: content not read",))


def shared_sandbox(options: ReaderOptions) -> TextSandbox:
    with _sandboxes_lock:
        if options not in _sandboxes:
            if not _sandboxes:
                atexit.register(close_shared_sandboxes)
            _sandboxes[options] = TextSandbox(options)
        return _sandboxes[options]


# Readers a forked process inherited: they belong to the parent, which stops them; the child must
# neither use nor stop them (a reader's pipe shared by two processes would mix their answers).
_inherited: list[TextSandbox] = []


def forget_inherited_readers() -> None:
    """In a freshly forked process: start its own readers on first use, leave the parent's alone."""
    global _sandboxes_lock, _cache_lock
    _sandboxes_lock, _cache_lock = threading.Lock(), threading.Lock()  # a parent's thread may hold them
    _inherited.extend(_sandboxes.values())
    _sandboxes.clear()
    _read_cache.clear()


def close_shared_sandboxes() -> None:
    with _sandboxes_lock:
        for sandbox in _sandboxes.values():
            sandbox.close()
        _sandboxes.clear()


@lru_cache(maxsize=1)
def ocr_available() -> bool:
    """Whether Tesseract is installed; logs one warning, the first time, when it is not."""
    if shutil.which("tesseract"):
        return True
    log.warning(
        "tesseract not found: images and scanned PDFs are recognised by their file names only "
        "(install Debian's tesseract-ocr, tesseract-ocr-nld and tesseract-ocr-fra)"
    )
    return False
