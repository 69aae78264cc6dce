"""Our own case references (``MIG-2026-004410``) and the PIN/PUK codes residents sometimes write out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

DEFAULT_CASE_PREFIX = "MIG"


@dataclass(frozen=True)
class CaseRef:
    span: tuple[int, int]
    value: str  # canonical: PREFIX-YYYY-NNNNNN
    year: int


@lru_cache(maxsize=16)
def _case_pattern(prefix: str) -> re.Pattern[str]:
    # residents retype references with spaces, slashes or no separators and in any case
    return re.compile(
        r"(?<![A-Za-z0-9])"
        + re.escape(prefix)
        + r"\s?[-/_ ]?\s?(?P<year>20\d{2})\s?[-/_ ]?\s?(?P<serial>\d{6})(?!\d)",
        re.IGNORECASE,
    )


def case_ref(prefix: str, year: int, serial: int) -> str:
    return f"{prefix.upper()}-{year:04d}-{serial:06d}"


def find_case_refs(text: str, prefix: str = DEFAULT_CASE_PREFIX) -> list[CaseRef]:
    return [
        CaseRef(span=m.span(), value=case_ref(prefix, int(m["year"]), int(m["serial"])), year=int(m["year"]))
        for m in _case_pattern(prefix).finditer(text)
    ]


# Between the keyword and the codes only punctuation and a few small words may stand ("PIN/PUK-code
# is: 1234 en 12345678"). Each character is either punctuation or part of a whole word, never both, so
# the pattern cannot backtrack exponentially on long runs of either.
_KEYWORD = r"(?<![\w-])(?<!post )(?<!zip )(?:pin|puk|pincode|pukcode|pin-code|puk-code|codes?)\b"
_SMALL_WORDS = (
    r"pin|puk|code|codes|pincode|pukcode|is|was|est|en|et|and|of|ou|or|de|du|le|la|les|mijn|mon|ma|my"
    r"|nr|no|n|nummer|number|numéro|numero|secret|secrets|geheime"
)
_GAP = r"(?:[^\w\n]|\b(?:" + _SMALL_WORDS + r")\b)"
_CODE = r"(?<!\d)(?<!\d[.,/-])\d{4,8}(?!\d)(?![.,/-]\d)"
_PIN = re.compile(
    _KEYWORD + _GAP + r"{0,16}?(?P<codes>" + _CODE + r"(?:" + _GAP + r"{1,12}?" + _CODE + r")*)",
    re.IGNORECASE,
)
_DIGITS = re.compile(r"\d+")


def find_pin_codes(text: str) -> list[tuple[int, int]]:
    """Spans of the 4–8 digit codes that follow the words PIN, PUK or code (nl/fr/en)."""
    spans: list[tuple[int, int]] = []
    for match in _PIN.finditer(text):
        start = match.start("codes")
        spans.extend((start + d.start(), start + d.end()) for d in _DIGITS.finditer(match["codes"]))
    return spans
