"""Personal identifiers hidden from anything shown or logged; our case references stay readable.

National register and card numbers keep their last two digits and their layout (``**.**.**-***.61``)
so that a person who knows the number can still recognise it; PIN/PUK codes, machine-readable zones and
dates of birth are hidden entirely.
"""

from __future__ import annotations

import re

from mailflow.identifiers.finder import find_identifiers
from mailflow.identifiers.refs import DEFAULT_CASE_PREFIX

_BIRTH = re.compile(
    r"(?:(?:born|birth|dob|geboren|geboortedatum|née?|naissance)\b|geb\.|d\.o\.b\.?|né\(e\))[^\n\d]{0,20}$",
    re.IGNORECASE,
)


def _keep_last_two(s: str) -> str:
    digits = [i for i, c in enumerate(s) if c.isdigit()]
    hidden = set(digits[:-2])
    return "".join("*" if i in hidden else c for i, c in enumerate(s))


def _hide_all(s: str) -> str:
    return "".join("*" if c.isalnum() or c == "<" else c for c in s)


def _is_birth_date(text: str, start: int) -> bool:
    return _BIRTH.search(text[max(0, start - 40) : start]) is not None


def mask(text: str, *, case_prefix: str = DEFAULT_CASE_PREFIX) -> str:
    """``text`` with national register/BIS numbers (valid or shaped like one), card numbers, MRZ lines,
    PIN/PUK codes and dates of birth masked. Masking keeps lengths, so spans found before stay valid."""
    pieces: list[str] = []
    position = 0
    for found in find_identifiers(text, case_prefix=case_prefix):
        start, end = found.span
        original = text[start:end]
        if found.kind in ("nrn", "card"):
            replacement = _keep_last_two(original)
        elif found.kind in ("mrz", "pin") or (found.kind == "date" and _is_birth_date(text, start)):
            replacement = _hide_all(original)
        else:
            continue
        pieces += [text[position:start], replacement]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)
