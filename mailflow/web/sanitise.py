"""Showing what residents sent without trusting it: an allow-list HTML sanitiser, masking, safe names.

The sanitised HTML is shown in a sandboxed frame whose own Content-Security-Policy allows no script,
no remote image, font, style sheet or frame: the sanitiser is the first wall, the frame the second.
"""

from __future__ import annotations

import html
import re
import unicodedata

import nh3

from mailflow.identifiers.masking import mask

# Rendering only: no forms, media, frames or anything that loads or runs.
TAGS = frozenset(nh3.ALLOWED_TAGS) - {"area", "map"}
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "ol": {"start"},
}
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
# Images only when embedded in the email itself; anything fetched would tell the sender it was read.
_DATA_IMAGE = re.compile(r"data:image/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+", re.IGNORECASE)
_LONG_NUMBER = re.compile(r"(?<!\d)\d(?:[ ./-]?\d){8,}(?!\d)")

FRAME_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
_FRAME = (
    '<!doctype html><html><head><meta charset="utf-8">'
    '<meta name="referrer" content="no-referrer">'
    "<style>body{font:14px/1.45 system-ui,sans-serif;margin:12px;color:#1b1f24;word-wrap:break-word}"
    "pre{white-space:pre-wrap;font:inherit}img{max-width:100%}</style></head><body>{}</body></html>"
)


def _attribute(element: str, attribute: str, value: str) -> str | None:
    if element == "img" and attribute == "src":
        return value if _DATA_IMAGE.fullmatch(value.strip()) else None
    if attribute == "href":
        scheme = value.strip().split(":", 1)[0].lower() if ":" in value else ""
        return value if scheme in LINK_SCHEMES else None
    return value


def sanitise_html(markup: str) -> str:
    return nh3.clean(
        markup,
        tags=set(TAGS),
        clean_content_tags={"script", "style", "title", "head", "noscript", "template"},
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        attribute_filter=_attribute,
        # "data" only so that embedded images reach ``_attribute``, which keeps it for images alone.
        url_schemes={*LINK_SCHEMES, "data"},
        strip_comments=True,
        link_rel="noopener noreferrer nofollow",
    )


def _fallback_mask(text: str) -> str:
    return _LONG_NUMBER.sub(lambda m: "•" * max(0, len(m.group()) - 2) + m.group()[-2:], text)


def mask_identifiers(text: str) -> str:
    """Identifiers masked by their rules, then any long run of digits those rules did not claim."""
    return _fallback_mask(mask(text))


def frame_document(html_body: str | None, text_body: str) -> str:
    """The page shown in the email's frame: its sanitised HTML, else its text, identifiers masked."""
    if html_body and html_body.strip():
        inner = sanitise_html(html_body)
    else:
        inner = f"<pre>{html.escape(text_body)}</pre>"
    return _FRAME.replace("{}", mask_identifiers(inner))


_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')


def safe_filename(name: str, fallback: str) -> str:
    """A name to offer a download under: no path, no control or reserved characters, not hidden."""
    name = unicodedata.normalize("NFKC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    if not name:
        return fallback
    stem, dot, ext = name.rpartition(".")
    if dot and 0 < len(ext) <= 10:
        return f"{stem[: 100 - len(ext)]}.{ext}" if stem else fallback
    return name[:100]
