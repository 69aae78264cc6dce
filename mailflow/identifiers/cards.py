"""Belgian identity and residence card numbers.

The eID (and Kids-ID) number is twelve digits, printed ``XXX-XXXXXXX-YY``: YY is the first ten digits
mod 97, with 97 standing in for a remainder of 0. Electronic residence cards for foreigners are printed
``B 1234567 89``: a letter B, seven digits and two check digits. No public specification of their check
was at hand; we assume the eID rule applied to the seven digits (the examples we have agree with it).
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s.\-/]")


def card_check(body: str) -> int:
    """Check digits for the card number body: remainder mod 97, 97 instead of 0."""
    return int(body) % 97 or 97


def card_digits(s: str) -> str | None:
    """The compact card number ("591191706458" or "B098765497"), or None when it has the wrong shape."""
    compact = _SEPARATORS.sub("", s.strip()).upper()
    if not compact.isascii():
        return None
    if len(compact) == 12 and compact.isdigit():
        return compact
    if len(compact) == 10 and compact[0] == "B" and compact[1:].isdigit():
        return compact
    return None


def is_valid_card_number(s: str) -> bool:
    """Whether ``s`` is a Belgian eID number or a foreigner's residence card number with a valid check."""
    compact = card_digits(s)
    if compact is None:
        return False
    body, check = compact[:-2].lstrip("B"), int(compact[-2:])
    return int(body) != 0 and card_check(body) == check


def format_card_number(s: str) -> str | None:
    """The number as printed on the card, or None when it is not a valid card number."""
    compact = card_digits(s)
    if compact is None or not is_valid_card_number(compact):
        return None
    if compact[0] == "B":
        return f"B {compact[1:8]} {compact[8:]}"
    return f"{compact[:3]}-{compact[3:10]}-{compact[10:]}"
