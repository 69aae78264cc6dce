"""Identifiers in residents' mail: national register and BIS numbers, eID and residence card numbers,
machine-readable zones, dates and our case references; validated by their check digits and masked
wherever they would be shown or logged. Pure functions, no I/O."""

from mailflow.identifiers.cards import card_check, format_card_number, is_valid_card_number
from mailflow.identifiers.dates import DateMention, find_dates
from mailflow.identifiers.finder import Found, Kind, find_identifiers
from mailflow.identifiers.masking import mask
from mailflow.identifiers.mrz import Mrz, MrzReading, mrz_check_digit, parse_mrz, read_mrz
from mailflow.identifiers.nrn import NationalNumber, is_valid_nrn, nrn_check, parse_nrn
from mailflow.identifiers.refs import CaseRef, case_ref, find_case_refs, find_pin_codes

__all__ = [
    "CaseRef",
    "DateMention",
    "Found",
    "Kind",
    "Mrz",
    "MrzReading",
    "NationalNumber",
    "card_check",
    "case_ref",
    "find_case_refs",
    "find_dates",
    "find_identifiers",
    "find_pin_codes",
    "format_card_number",
    "is_valid_card_number",
    "is_valid_nrn",
    "mask",
    "mrz_check_digit",
    "nrn_check",
    "parse_mrz",
    "parse_nrn",
    "read_mrz",
]
