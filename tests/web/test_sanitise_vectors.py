"""Every vector of the XSS catalogue, one at a time, through the email-body sanitiser: what comes out is
markup of the allow-list only, with no handler, no script address and nothing fetched from elsewhere.

The browser test (test_xss_browser.py) shows the same vectors in Chromium; this one checks each vector
alone, so that no vector is hidden from the check by an earlier one that swallows what follows it.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from mailflow.web.sanitise import ATTRIBUTES, TAGS, frame_document, sanitise_html
from tests.web.xss_vectors import catalogue

# Besides the allow-list: what nh3 itself adds or keeps on every element.
GENERIC_ATTRIBUTES = {"lang", "title"}
ADDED_ATTRIBUTES = {"a": {"rel"}}
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):")
_DATA_IMAGE = re.compile(r"data:image/(?:png|jpeg|gif|webp);base64,[a-z0-9+/=\s]+")


def _scheme(value: str) -> str | None:
    # As a browser reads an address: controls and spaces anywhere in it are dropped first.
    found = _SCHEME.match(re.sub(r"[\x00-\x20]", "", value).lower())
    return found.group(1) if found else None


class MarkupCheck(HTMLParser):
    """Collects every way the parsed markup falls outside what the sanitiser promises."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TAGS:
            self.problems.append(f"tag <{tag}>")
        allowed = ATTRIBUTES.get(tag, set()) | GENERIC_ATTRIBUTES | ADDED_ATTRIBUTES.get(tag, set())
        for name, value in attrs:
            value = value or ""
            if name not in allowed:
                self.problems.append(f"attribute {name} on <{tag}>")
            elif name == "href" and _scheme(value) not in (None, "http", "https", "mailto"):
                self.problems.append(f"href {value!r}")
            elif name == "src" and not _DATA_IMAGE.fullmatch(value.strip().lower()):
                self.problems.append(f"src {value!r}")

    handle_startendtag = handle_starttag

    def handle_comment(self, data: str) -> None:
        self.problems.append("comment")  # comments are stripped: one left means the parse went astray

    def handle_decl(self, decl: str) -> None:
        if decl.lower() != "doctype html":
            self.problems.append(f"declaration {decl!r}")

    def unknown_decl(self, data: str) -> None:
        self.problems.append(f"declaration {data!r}")


def problems(markup: str) -> list[str]:
    check = MarkupCheck()
    check.feed(markup)
    check.close()
    return check.problems


def test_each_vector_alone_leaves_only_allowed_markup():
    found = catalogue()
    failures = {}
    for vector in found.vectors:
        for wrapped in (vector, f"<div>{vector}</div>", f'<a href="#" title="{vector}">x</a>'):
            trouble = problems(sanitise_html(wrapped))
            if trouble:
                failures[wrapped] = trouble
    print(f"sanitiser: {found.entries} catalogue entries, {len(found.vectors)} distinct vectors, "
          f"{len(found.vectors) * 3} documents checked, {len(failures)} with unsafe markup")  # fmt: skip
    assert len(found.vectors) > 10_000
    assert not failures, list(failures.items())[:20]


def test_the_served_frame_of_each_vector_has_no_script_style_sheet_or_remote_address():
    """The frame's own style element is the only one; no vector adds another, nor an @import or url()."""
    empty = frame_document("", "")
    head = empty[: empty.index("<body>")]
    for vector in catalogue().vectors:
        document = frame_document(vector, "")
        assert document.startswith(head + "<body>") and document.endswith("</body></html>"), vector
        body = document[len(head) + len("<body>") : -len("</body></html>")]
        assert not problems(body), vector
        lowered = body.lower()
        assert "<style" not in lowered and "<script" not in lowered and "<svg" not in lowered, vector


def test_the_check_itself_finds_unsafe_markup():
    """A check that cannot fail proves nothing: raw vectors are caught by it."""
    assert problems('<img src=x onerror="alert(1)">') == ["src 'x'", "attribute onerror on <img>"]
    assert problems('<a href=" jav&#x09;ascript:alert(1)">x</a>') == ["href ' jav\\tascript:alert(1)'"]
    assert problems("<svg><script>alert(1)</script></svg>") == ["tag <svg>", "tag <script>"]
    assert problems('<p style="background:url(//evil.example/x)">') == ["attribute style on <p>"]
