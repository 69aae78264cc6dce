"""HTML mail bodies as plain text."""

from __future__ import annotations

import html as html_lib
import re

from inscriptis import get_text
from inscriptis.model.config import ParserConfig

# Bodies beyond this are newsletters or attacks; the resident's words are in the first part.
MAX_HTML_CHARS = 1_000_000
_DROP = re.compile(r"<(script|style|head|title)\b.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)


def html_to_text(markup: str) -> str:
    """Readable text of an HTML body: layout kept as line breaks, scripts and styles dropped."""
    markup = _DROP.sub(" ", markup[:MAX_HTML_CHARS])
    if not markup.strip():
        return ""
    try:
        text = get_text(markup, ParserConfig(display_links=False, display_images=False))
    except Exception:  # lxml refuses some broken documents: fall back to stripping the tags
        text = html_lib.unescape(re.sub(r"<[^>]*>", " ", markup))
    return re.sub(r"[ \t\xa0]+\n", "\n", text).strip()
