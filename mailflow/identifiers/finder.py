"""Every identifier in free text, tolerant of the ways people write them and wary of look-alikes.

Phone numbers, IBANs, VAT and parcel numbers are kept out by their shape (digit groups may not run on
into further digit groups, a ``+`` or letters), and what is left by check digits: a candidate that fails
its check is still reported (``valid=False``) when its shape is specific enough to be a mistyped one,
so that masking can hide it.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from mailflow.identifiers.cards import card_digits, is_valid_card_number
from mailflow.identifiers.dates import find_dates
from mailflow.identifiers.mrz import SHAPES, Mrz, normalise_mrz_lines, read_mrz
from mailflow.identifiers.nrn import NationalNumber, nrn_digits, parse_nrn, plausible_nrn_date
from mailflow.identifiers.refs import DEFAULT_CASE_PREFIX, find_case_refs, find_pin_codes

Kind = Literal["mrz", "case_ref", "card", "nrn", "pin", "date"]
Span = tuple[int, int]

# a number may not start right after another digit group nor run on into one: "+32 485 12 34 56"
_START = r"(?<![\w+])(?<!\d[.\-/])"
_END = r"(?!\w)(?![.\-/]\d)"
_NRN = re.compile(_START + r"\d{2}(?P<s>[. ]?)\d{2}(?P=s)\d{2}\s?[-./ ]?\s?\d{3}\s?[-. ]?\s?\d{2}" + _END)
_EID = re.compile(_START + r"\d{3}(?P<s>[-. ]?)\d{7}(?P=s)\d{2}" + _END)
_FOREIGN_CARD = re.compile(r"(?<!\w)B(?P<s>[-. ]?)\d{7}(?P=s)\d{2}" + _END)
MRZ_LENGTHS = {length for _, length in SHAPES}
_MRZ_RUN = re.compile(r"[A-Z0-9<](?:[A-Z0-9<]| (?=[A-Z0-9<])){26,50}")


@dataclass(frozen=True)
class Found:
    kind: Kind
    span: Span
    value: str  # normalised: digits only, canonical reference, ISO date, MRZ lines joined by newlines
    valid: bool
    detail: NationalNumber | Mrz | date | None = None


def _isolated(text: str, match: re.Match[str]) -> bool:
    """Whether a number stands apart from neighbouring digit groups. Only a space separates groups
    of phone and account numbers; a number written with dots or dashes stands out on its own."""
    if re.search(r"[.\-]", match[0]):
        return True
    before, after = text[max(0, match.start() - 2) : match.start()], text[match.end() : match.end() + 2]
    return not re.fullmatch(r"\d ", before) and not re.fullmatch(r" \d", after)


def _nrns(text: str) -> list[Found]:
    found = []
    for match in _NRN.finditer(text):
        digits = nrn_digits(match[0])
        if digits is None or not _isolated(text, match):
            continue
        parsed = parse_nrn(digits)
        # mistyped numbers are reported too when their date part is plausible, so masking hides them
        if parsed or plausible_nrn_date(digits):
            found.append(Found("nrn", match.span(), digits, parsed is not None, parsed))
    return found


def _cards(text: str) -> list[Found]:
    found = []
    for pattern in (_EID, _FOREIGN_CARD):
        for match in pattern.finditer(text):
            compact = card_digits(match[0])
            if compact is None or not _isolated(text, match):
                continue
            valid = is_valid_card_number(compact)
            if valid or match["s"]:
                found.append(Found("card", match.span(), compact, valid))
    return found


def _looks_like_mrz(run: str) -> bool:
    # a line full of data may have no filler at all (the Belgian eID's second line holds the NRN),
    # but then it has an exact zone length, digits and no spaces
    if "<" in run:
        return 28 <= len(run.replace(" ", "")) <= 46
    return len(run) in MRZ_LENGTHS and any(c.isdigit() for c in run)


def _mrz_candidates(text: str) -> list[tuple[int, Span, str]]:
    """(line number, span, compact line) of every MRZ-looking run, at most one a line."""
    candidates = []
    offset = 0
    for number, line in enumerate(text.splitlines(keepends=True)):
        runs = [m for m in _MRZ_RUN.finditer(line) if _looks_like_mrz(m[0])]
        if runs:
            best = max(runs, key=lambda m: len(m[0]))
            compact = normalise_mrz_lines([best[0]])[0]
            candidates.append((number, (offset + best.start(), offset + best.end()), compact))
        offset += len(line)
    return candidates


def _blocks(text: str) -> list[list[tuple[int, Span, str]]]:
    """Candidates on consecutive lines; blank lines in between do not break a block."""
    lines = text.splitlines()
    blocks: list[list[tuple[int, Span, str]]] = []
    for candidate in _mrz_candidates(text):
        if blocks:
            last = blocks[-1][-1][0]
            if all(not lines[i].strip() for i in range(last + 1, candidate[0])):
                blocks[-1].append(candidate)
                continue
        blocks.append([candidate])
    return blocks


def _mrzs(text: str, today: date | None) -> list[Found]:
    found = []
    for block in _blocks(text):
        i = 0
        while i < len(block):
            for size in (3, 2):
                group = block[i : i + size]
                reading = read_mrz([c[2] for c in group], today=today) if len(group) == size else None
                if reading is not None:
                    span = (group[0][1][0], group[-1][1][1])
                    value = "\n".join(c[2] for c in group)
                    found.append(Found("mrz", span, value, reading.valid, reading.mrz))
                    i += size
                    break
            else:
                # not a zone we can read (cut off, OCR damage): still reported, so it gets masked
                found.append(Found("mrz", block[i][1], block[i][2], False))
                i += 1
    return found


def find_identifiers(
    text: str, *, case_prefix: str = DEFAULT_CASE_PREFIX, today: date | None = None
) -> list[Found]:
    """Every identifier in ``text`` in order of position. Where readings overlap, the first kind in
    ``Kind``'s order wins: an MRZ line holds digits that look like anything, and a case reference or a
    card number must not be read as a national number."""
    ordered: list[Found] = _mrzs(text, today)
    ordered += [Found("case_ref", r.span, r.value, True) for r in find_case_refs(text, case_prefix)]
    ordered += _cards(text)
    ordered += _nrns(text)
    ordered += [Found("pin", span, text[span[0] : span[1]], True) for span in find_pin_codes(text)]
    ordered += [Found("date", d.span, d.value, d.valid, d.date) for d in find_dates(text)]
    return _without_overlaps(ordered)


def _without_overlaps(ordered: list[Found]) -> list[Found]:
    """The items that overlap none before them, sorted by position."""
    starts: list[int] = []  # of the kept, non-overlapping spans, sorted
    kept: list[Found] = []
    for item in ordered:
        start, end = item.span
        i = bisect.bisect_right(starts, start)
        before_overlaps = i > 0 and kept[i - 1].span[1] > start
        after_overlaps = i < len(kept) and kept[i].span[0] < end
        if before_overlaps or after_overlaps:
            continue
        starts.insert(i, start)
        kept.insert(i, item)
    return kept
