"""Belgian national register numbers (rijksregisternummer / numéro national) and BIS numbers.

Layout: YYMMDD SSS CC. CC = 97 - (YYMMDDSSS mod 97); for births from 2000 on, a "2" is put in front of
the nine digits before taking the modulus, and that is the only place the century shows. BIS numbers
(people not in the register) add 20 to the month when the sex was unknown at issue, 40 when known.
Month and/or day are 00 when the birth date is not (fully) known. The serial is odd for men, even for
women, 001–997 (000 and 999 are never issued).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

Sex = Literal["M", "F"]

_SEPARATORS = re.compile(r"[\s.\-/]")


@dataclass(frozen=True)
class NationalNumber:
    number: str  # the eleven digits, no separators
    birth_year: int
    birth_month: int | None  # None when the number says the month is unknown (00)
    birth_date: date | None  # None when month or day is unknown
    sex: Sex | None  # None on a BIS number issued without the sex
    is_bis: bool

    @property
    def formatted(self) -> str:
        n = self.number
        return f"{n[0:2]}.{n[2:4]}.{n[4:6]}-{n[6:9]}.{n[9:11]}"


def nrn_digits(s: str) -> str | None:
    """The eleven digits of a written number (dots, dashes, slashes, spaces allowed), or None."""
    digits = _SEPARATORS.sub("", s.strip())
    return digits if len(digits) == 11 and digits.isascii() and digits.isdigit() else None


def nrn_check(first9: str, *, born_2000_or_later: bool) -> int:
    """The two check digits for the nine leading digits: always 1..97, never 0."""
    base = int(("2" if born_2000_or_later else "") + first9)
    return 97 - base % 97


def _century(digits: str) -> int | None:
    """1900 or 2000 from the check digits, None when neither matches. At most one can: 2·10⁹ ≢ 0 mod 97."""
    check = int(digits[9:])
    if nrn_check(digits[:9], born_2000_or_later=False) == check:
        return 1900
    if nrn_check(digits[:9], born_2000_or_later=True) == check:
        return 2000
    return None


def _month_offset(raw_month: int) -> int | None:
    """0 for a register number, 20 or 40 for a BIS number, None for an impossible month."""
    for offset in (0, 20, 40):
        if offset <= raw_month <= offset + 12:
            return offset
    return None


def plausible_nrn_date(digits: str) -> bool:
    """Whether the first six digits can be a register/BIS birth date, ignoring the check digits."""
    offset = _month_offset(int(digits[2:4]))
    return offset is not None and int(digits[4:6]) <= 31


def parse_nrn(s: str) -> NationalNumber | None:
    """The decoded number, or None when it is not a valid national register or BIS number."""
    digits = nrn_digits(s)
    if digits is None:
        return None
    century = _century(digits)
    offset = _month_offset(int(digits[2:4]))
    serial = int(digits[6:9])
    if century is None or offset is None or serial in (0, 999):
        return None
    year = century + int(digits[0:2])
    month = int(digits[2:4]) - offset
    day = int(digits[4:6])
    birth_date: date | None = None
    if month and day:
        try:
            birth_date = date(year, month, day)
        except ValueError:
            return None
    elif day > 31:
        return None
    sex: Sex | None = None if offset == 20 else ("M" if serial % 2 else "F")
    return NationalNumber(
        number=digits,
        birth_year=year,
        birth_month=month or None,
        birth_date=birth_date,
        sex=sex,
        is_bis=offset != 0,
    )


def is_valid_nrn(s: str) -> bool:
    return parse_nrn(s) is not None
