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


_PIN_WORD = (
    r"(?:pin|puk|pin-?code|puk-?code|pincode|pukcode|code(?:s)?|codes?\s+(?:pin|puk)"
    r"|geheime\s+code|code\s+secret|activeringscode|activation\s+code|code\s+d'activation)"
)
_FILLER = r"(?:\s*(?:[:=#]|is|was|est|:|nr\.?|n°|no\.?|nummer|number|numéro|numero)\s*)*"
_CODE = r"(?<![\d.,/-])\d{4,8}(?![\d]|[.,/-]\d)"
_PIN = re.compile(
    r"(?<![\w-])"
    + _PIN_WORD
    + r"\b(?:\s*(?:/|en|et|and|&|\+)\s*"
    + _PIN_WORD
    + r"\b)*"
    + r"\s*(?:\(\w+\))?"
    + _FILLER
    + r"\s*(?P<codes>"
    + _CODE
    + r"(?:\s*(?:/|,|;|en|et|and|&|\+|\s)\s*(?:(?:pin|puk)\b\s*[:=]?\s*)?"
    + _CODE
    + r")*)",
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
