"""Calendar dates in residents' mail: numeric (day first, as written in Belgium, or ISO) and written out
in Dutch, French or English, with or without a year ("12 maart 2026", "1er avril", "March 3, 2026").

Two-digit years are not read: "85.07.30" is far more often the start of a national register number
than a date, and a date without its century cannot be placed anyway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        "januari january janvier jan janv",
        "februari february février fevrier feb febr fév fev févr fevr",
        "maart march mars mrt mar",
        "april avril apr avr",
        "mei may mai",
        "juni june juin jun",
        "juli july juillet jul juil",
        "augustus august août aout aug",
        "september septembre sep sept",
        "oktober october octobre okt oct",
        "november novembre nov",
        "december décembre decembre dec déc",
    ),
    start=1,
):
    for _name in _names.split():
        _MONTHS[_name] = _number

_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th|er|e|ste|de)?"
_YEAR = r"(?P<year>(?:19|20)\d{2})"

_NUMERIC_DMY = re.compile(
    r"(?<![\w./-])(?P<day>[0-3]?\d)(?P<sep>[/.-])(?P<month>[01]?\d)(?P=sep)" + _YEAR + r"(?![\w]|[./-]\d)"
)
_ISO = re.compile(r"(?<![\w./-])" + _YEAR + r"-(?P<month>[01]\d)-(?P<day>[0-3]\d)(?![\w]|[./-]\d)")
_WRITTEN_DMY = re.compile(
    r"(?<![\w])" + _DAY + r"\.?\s*(?:of\s+)?(?P<month>" + _MONTH + r")\b(?:\.?,?\s+" + _YEAR + r"\b)?",
    re.IGNORECASE,
)
_WRITTEN_MDY = re.compile(
    r"(?<![\w])(?P<month>" + _MONTH + r")\b\.?\s+(?P<day>[0-3]?\d)(?:st|nd|rd|th)?\b"
    r"(?:,?\s+" + _YEAR + r"\b)?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class DateMention:
    span: tuple[int, int]
    text: str
    date: date | None  # None when the year is missing or the day does not exist
    year: int | None
    month: int
    day: int

    @property
    def valid(self) -> bool:
        """Whether the day exists: in its year, or in some year (29 February) when none is given."""
        if self.year is not None:
            return self.date is not None
        try:
            date(2000, self.month, self.day)
        except ValueError:
            return False
        return True

    @property
    def value(self) -> str:
        """ISO 8601: 2026-03-12, or --03-12 without a year."""
        if self.year is None:
            return f"--{self.month:02d}-{self.day:02d}"
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"


def _mention(match: re.Match[str], month: int) -> DateMention | None:
    day = int(match["day"])
    year = int(match["year"]) if match["year"] else None
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    try:
        when = date(year, month, day) if year is not None else None
    except ValueError:
        when = None
    return DateMention(span=match.span(), text=match[0], date=when, year=year, month=month, day=day)


def find_dates(text: str) -> list[DateMention]:
    """Every date mentioned in ``text``, in order; overlapping readings keep the longest."""
    found: list[DateMention] = []
    for pattern in (_NUMERIC_DMY, _ISO):
        for match in pattern.finditer(text):
            if mention := _mention(match, int(match["month"])):
                found.append(mention)
    for pattern in (_WRITTEN_DMY, _WRITTEN_MDY):
        for match in pattern.finditer(text):
            name = match["month"].lower()
            # "may" is mostly the verb; only believe it with a year ("May 3, 2026")
            if name == "may" and pattern is _WRITTEN_MDY and not match["year"]:
                continue
            if mention := _mention(match, _MONTHS[name]):
                found.append(mention)
    found.sort(key=lambda m: (m.span[0], -(m.span[1] - m.span[0])))
    kept: list[DateMention] = []
    for mention in found:
        if kept and mention.span[0] < kept[-1].span[1]:
            continue
        kept.append(mention)
    return kept
