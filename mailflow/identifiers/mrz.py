"""Machine-readable zones of travel documents (ICAO 9303): TD1 cards (3×30), TD2 (2×36), TD3 passports (2×44).

Every check digit is verified: document number, birth date, expiry date, the TD3 personal number and the
composite. A document number longer than nine characters (the Belgian eID's twelve digits) continues in
the optional data with its check digit behind it, and a ``<`` takes the usual check digit's place.
Two-digit years are placed with ``today``: a birth year cannot lie in the future, an expiry year can lie
at most fifty years ahead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

MrzFormat = Literal["TD1", "TD2", "TD3"]

SHAPES: dict[tuple[int, int], MrzFormat] = {(3, 30): "TD1", (2, 36): "TD2", (2, 44): "TD3"}
_WEIGHTS = (7, 3, 1)
_LINE = re.compile(r"[A-Z0-9<]+")


@dataclass(frozen=True)
class Mrz:
    format: MrzFormat
    document_type: str  # "P", "ID", "IR", … with fillers removed
    issuing_state: str
    document_number: str
    nationality: str
    birth_date: date | None  # None when the zone marks it unknown
    sex: Literal["M", "F"] | None
    expiry_date: date | None
    surname: str
    given_names: str
    optional_data: str


@dataclass(frozen=True)
class MrzReading:
    """A zone read field by field, with the names of the checks that failed."""

    mrz: Mrz
    failed: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return not self.failed


def mrz_char_value(c: str) -> int:
    if c == "<":
        return 0
    if c.isdigit():
        return int(c)
    if "A" <= c <= "Z":
        return ord(c) - ord("A") + 10
    raise ValueError(f"not an MRZ character: {c!r}")


def mrz_check_digit(field: str) -> int:
    """ICAO 9303 check digit: weights 7, 3, 1 repeated; ``<`` counts 0, A–Z count 10–35."""
    return sum(mrz_char_value(c) * _WEIGHTS[i % 3] for i, c in enumerate(field)) % 10


def _checks(field: str, digit: str, *, may_be_empty: bool = False) -> bool:
    if may_be_empty and set(field) <= {"<"} and digit in "<0":
        return True
    return digit.isdigit() and mrz_check_digit(field) == int(digit)


def normalise_mrz_lines(lines: str | Sequence[str]) -> list[str]:
    """Upper-cased lines without spaces (OCR and mail clients insert them), blank lines dropped."""
    raw = lines.splitlines() if isinstance(lines, str) else list(lines)
    return [cleaned for line in raw if (cleaned := re.sub(r"\s+", "", line).upper())]


def mrz_format(lines: Sequence[str]) -> MrzFormat | None:
    lengths = {len(line) for line in lines}
    if len(lengths) != 1 or not all(_LINE.fullmatch(line) for line in lines):
        return None
    return SHAPES.get((len(lines), lengths.pop()))


def _date(yymmdd: str, *, latest_year: int) -> date | None:
    if not yymmdd.isdigit():
        return None
    year = 2000 + int(yymmdd[:2])
    if year > latest_year:
        year -= 100
    try:
        return date(year, int(yymmdd[2:4]), int(yymmdd[4:6]))
    except ValueError:
        return None


def _names(field: str) -> tuple[str, str]:
    surname, _, given = field.strip("<").partition("<<")
    return surname.replace("<", " ").strip(), given.replace("<", " ").strip()


def _document_number(number: str, check: str, optional: str) -> tuple[str, str, str, str]:
    """(number, check field, check digit, remaining optional data), following a long number's extension."""
    if check != "<" or not optional or optional[0] == "<":
        return number, number, check, optional
    extension, _, rest = optional.partition("<")
    if len(extension) < 2:
        return number, number, check, optional
    full = number + extension[:-1]
    return full, full, extension[-1], rest


def read_mrz(lines: str | Sequence[str], *, today: date | None = None) -> MrzReading | None:
    """Every field of a zone and the checks that failed, or None when the lines are not an MRZ at all."""
    rows = normalise_mrz_lines(lines)
    fmt = mrz_format(rows)
    if fmt is None:
        return None
    this_year = (today or date.today()).year
    failed: list[str] = []
    doc_type, state = rows[0][0:2].strip("<"), rows[0][2:5]
    if fmt == "TD1":
        l1, l2, l3 = rows
        number, num_field, num_check, optional = _document_number(l1[5:14], l1[14], l1[15:30])
        birth, birth_check, sex = l2[0:6], l2[6], l2[7]
        expiry, expiry_check, nationality = l2[8:14], l2[14], l2[15:18]
        optional = (optional + l2[18:29]).strip("<")
        composite_field, composite = l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29], l2[29]
        surname, given = _names(l3)
    else:
        l1, l2 = rows
        if fmt == "TD3":
            number, num_field, num_check, optional = l2[0:9], l2[0:9], l2[9], l2[28:42]
            if not _checks(optional, l2[42], may_be_empty=True):
                failed.append("personal_number")
            composite_field, composite = l2[0:10] + l2[13:20] + l2[21:43], l2[43]
        else:
            number, num_field, num_check, optional = _document_number(l2[0:9], l2[9], l2[28:35])
            composite_field, composite = l2[0:10] + l2[13:20] + l2[21:35], l2[35]
        nationality, birth, birth_check, sex = l2[10:13], l2[13:19], l2[19], l2[20]
        expiry, expiry_check = l2[21:27], l2[27]
        optional = optional.strip("<")
        surname, given = _names(l1[5:])
    if not _checks(num_field, num_check):
        failed.append("document_number")
    if not _checks(birth, birth_check):
        failed.append("birth_date")
    if not _checks(expiry, expiry_check):
        failed.append("expiry_date")
    if not _checks(composite_field, composite):
        failed.append("composite")
    birth_date = _date(birth, latest_year=this_year)
    expiry_date = _date(expiry, latest_year=this_year + 50)
    if birth_date is None and "<" not in birth and "birth_date" not in failed:
        failed.append("birth_date")
    if expiry_date is None and "<" not in expiry and "expiry_date" not in failed:
        failed.append("expiry_date")
    mrz = Mrz(
        format=fmt,
        document_type=doc_type,
        issuing_state=state.strip("<"),
        document_number=number.strip("<"),
        nationality=nationality.strip("<"),
        birth_date=birth_date,
        sex="M" if sex == "M" else "F" if sex == "F" else None,
        expiry_date=expiry_date,
        surname=surname,
        given_names=given,
        optional_data=optional,
    )
    return MrzReading(mrz=mrz, failed=tuple(failed))


def parse_mrz(lines: str | Sequence[str], *, today: date | None = None) -> Mrz | None:
    """The zone's fields when it is well formed and every check digit holds, else None."""
    reading = read_mrz(lines, today=today)
    return reading.mrz if reading is not None and reading.valid else None
