"""Validators, parsers and finders of mailflow.identifiers.

Test numbers come from small generators written here independently of the code under test, and from a
few literal numbers whose check digits are worked out by hand in the comments.
"""

from __future__ import annotations

import random
from datetime import date

import pytest

from mailflow.identifiers import (
    card_check,
    find_case_refs,
    find_dates,
    find_identifiers,
    format_card_number,
    is_valid_card_number,
    is_valid_nrn,
    mrz_check_digit,
    nrn_check,
    parse_mrz,
    parse_nrn,
    read_mrz,
)

TODAY = date(2026, 3, 10)


# --- generators, independent of the code under test -------------------------------------------------


def make_nrn(yy: int, mm: int, dd: int, serial: int, *, born_2000: bool = False, sep: bool = True) -> str:
    first9 = f"{yy:02d}{mm:02d}{dd:02d}{serial:03d}"
    check = 97 - int(("2" if born_2000 else "") + first9) % 97
    digits = f"{first9}{check:02d}"
    if not sep:
        return digits
    return f"{digits[0:2]}.{digits[2:4]}.{digits[4:6]}-{digits[6:9]}.{digits[9:]}"


def make_eid(body: int) -> str:
    digits = f"{body:010d}"
    check = int(digits) % 97 or 97
    return f"{digits[:3]}-{digits[3:]}-{check:02d}"


def make_foreign_card(body: int) -> str:
    check = body % 97 or 97
    return f"B {body:07d} {check:02d}"


def icao(field: str) -> str:
    values = {**{str(d): d for d in range(10)}, "<": 0} | {chr(65 + i): 10 + i for i in range(26)}
    return str(sum(values[c] * (7, 3, 1)[i % 3] for i, c in enumerate(field)) % 10)


def make_td1_be(number: str, birth: str, sex: str, expiry: str, nrn: str, names: str) -> list[str]:
    """A Belgian eID zone: the twelve-digit card number runs on into the optional data."""
    line1 = f"IDBEL{number[:9]}<{number[9:]}{icao(number)}".ljust(30, "<")
    line2 = f"{birth}{icao(birth)}{sex}{expiry}{icao(expiry)}BEL{nrn.ljust(11, '<')}"
    composite = icao(line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29])
    return [line1, line2 + composite, names.ljust(30, "<")]


def make_td3(
    number: str, state: str, birth: str, sex: str, expiry: str, personal: str, names: str
) -> list[str]:
    number = number.ljust(9, "<")
    personal = personal.ljust(14, "<")
    personal_check = icao(personal) if personal.strip("<") else "<"
    body = f"{number}{icao(number)}{state}{birth}{icao(birth)}{sex}{expiry}{icao(expiry)}"
    body += personal + personal_check
    composite = icao(body[0:10] + body[13:20] + body[21:43])
    return [f"P<{state}{names}".ljust(44, "<"), body + composite]


# --- national register numbers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        # 970000161 = 97 × 10 000 001 + 64, check 97 − 64 = 33; month and day 00: date unknown
        "97.00.00-161.33",
        # 2 010 000 131 = 97 × 20 721 650 + 81, check 97 − 81 = 16: born in 2001, so "2" leads
        "01.00.00-131.16",
        # 900 101 024 = 97 × 9 279 392 exactly: remainder 0, check 97
        "90.01.01-024.97",
    ],
)
def test_hand_checked_numbers_are_valid(number: str) -> None:
    assert is_valid_nrn(number)


def test_hand_checked_century_and_unknown_date() -> None:
    born_2001 = parse_nrn("01.00.00-131.16")
    assert born_2001 is not None
    assert (born_2001.birth_year, born_2001.birth_month, born_2001.birth_date) == (2001, None, None)
    assert born_2001.sex == "M" and not born_2001.is_bis
    check_97 = parse_nrn("90.01.01-024.97")
    assert check_97 is not None and check_97.birth_date == date(1990, 1, 1) and check_97.sex == "F"


def test_one_digit_off_is_invalid() -> None:
    assert not is_valid_nrn("97.00.00-161.34")
    assert not is_valid_nrn("97.00.00-162.33")
    # 850730033 = 97 × 8 770 412 + 69: the check is 28 (and 2850730033 gives neither 61)
    assert not is_valid_nrn("85.07.30-033.61")
    assert is_valid_nrn("85.07.30-033.28")


@pytest.mark.parametrize(
    "written", ["85073003328", "850730 033 28", "850730-033-28", "85 07 30 033 28", " 85.07.30.033.28 "]
)
def test_written_forms_are_accepted(written: str) -> None:
    nrn = parse_nrn(written)
    assert nrn is not None and nrn.number == "85073003328" and nrn.formatted == "85.07.30-033.28"


@pytest.mark.parametrize(
    "junk", ["", "8507300332", "850730033280", "85.07.30-033.2B", "abcdefghijk", "٨٥٠٧٣٠٠٣٣٢٨"]
)
def test_wrong_shapes_are_invalid(junk: str) -> None:
    assert not is_valid_nrn(junk)
    assert parse_nrn(junk) is None


def test_births_from_2000_use_the_leading_two() -> None:
    number = make_nrn(12, 5, 17, 8, born_2000=True)
    nrn = parse_nrn(number)
    assert nrn is not None and nrn.birth_date == date(2012, 5, 17) and nrn.sex == "F"
    # the same nine digits checked by the pre-2000 rule are a person born in 1912
    assert make_nrn(12, 5, 17, 8)[-2:] != number[-2:]
    old = parse_nrn(make_nrn(12, 5, 17, 8))
    assert old is not None and old.birth_year == 1912


def test_29_february_1900_does_not_exist_but_2000_does() -> None:
    assert not is_valid_nrn(make_nrn(0, 2, 29, 15))
    leap = parse_nrn(make_nrn(0, 2, 29, 15, born_2000=True))
    assert leap is not None and leap.birth_date == date(2000, 2, 29)


@pytest.mark.parametrize(
    ("month", "day", "ok"),
    [
        (2, 30, False),
        (4, 31, False),
        (13, 1, False),
        (0, 15, True),
        (5, 0, True),
        (0, 32, False),
        (19, 1, False),
    ],
)
def test_calendar(month: int, day: int, ok: bool) -> None:
    assert is_valid_nrn(make_nrn(88, month, day, 101)) is ok


def test_unknown_day_keeps_the_month() -> None:
    nrn = parse_nrn(make_nrn(88, 7, 0, 101))
    assert nrn is not None and nrn.birth_month == 7 and nrn.birth_date is None


@pytest.mark.parametrize("serial", [0, 999])
def test_serials_never_issued(serial: int) -> None:
    assert not is_valid_nrn(make_nrn(88, 7, 1, serial))


@pytest.mark.parametrize(("serial", "sex"), [(1, "M"), (2, "F"), (997, "M"), (998, "F")])
def test_serial_parity_is_the_sex(serial: int, sex: str) -> None:
    nrn = parse_nrn(make_nrn(75, 11, 3, serial))
    assert nrn is not None and nrn.sex == sex


def test_bis_number_without_sex_adds_20_to_the_month() -> None:
    nrn = parse_nrn(make_nrn(81, 23, 14, 57))
    assert nrn is not None
    assert nrn.is_bis and nrn.sex is None and nrn.birth_date == date(1981, 3, 14)


def test_bis_number_with_sex_adds_40_to_the_month() -> None:
    nrn = parse_nrn(make_nrn(5, 52, 31, 58, born_2000=True))
    assert nrn is not None
    assert nrn.is_bis and nrn.sex == "F" and nrn.birth_date == date(2005, 12, 31)


@pytest.mark.parametrize("month", [20, 40])
def test_bis_number_with_unknown_birth_date(month: int) -> None:
    nrn = parse_nrn(make_nrn(70, month, 0, 3))
    assert nrn is not None and nrn.is_bis and nrn.birth_date is None and nrn.birth_month is None


@pytest.mark.parametrize("month", [33, 39, 53, 60, 99])
def test_months_between_and_beyond_the_bis_ranges_are_invalid(month: int) -> None:
    assert not is_valid_nrn(make_nrn(70, month, 1, 3))


def test_bis_day_must_exist_in_the_real_month() -> None:
    assert not is_valid_nrn(make_nrn(70, 42, 30, 3))  # 30 February


def test_check_is_never_zero_and_matches_generator() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        first9 = f"{rng.randrange(10**9):09d}"
        for born_2000 in (False, True):
            check = nrn_check(first9, born_2000_or_later=born_2000)
            assert 1 <= check <= 97
            assert check == 97 - int(("2" if born_2000 else "") + first9) % 97


def test_generated_numbers_round_trip() -> None:
    rng = random.Random(7)
    for _ in range(500):
        yy, born_2000 = rng.randrange(100), rng.random() < 0.3
        month, day, serial = rng.randint(1, 12), rng.randint(1, 28), rng.randint(1, 997)
        nrn = parse_nrn(make_nrn(yy, month, day, serial, born_2000=born_2000))
        assert nrn is not None
        assert nrn.birth_date == date((2000 if born_2000 else 1900) + yy, month, day)


# --- card numbers -----------------------------------------------------------------------------------


def test_hand_checked_eid_number() -> None:
    # 5 911 917 064 = 97 × 60 947 598 + 58
    assert is_valid_card_number("591-1917064-58")
    assert is_valid_card_number("591191706458")
    assert is_valid_card_number("591 1917064 58")
    assert not is_valid_card_number("591-1917064-59")
    assert not is_valid_card_number("591-1917065-58")


def test_hand_checked_residence_card_with_check_97() -> None:
    # 987 654 = 97 × 10 182 exactly: remainder 0 is written 97
    assert is_valid_card_number("B 0987654 97")
    assert is_valid_card_number("b0987654-97")
    assert not is_valid_card_number("B 0987654 00")
    assert format_card_number("b0987654-97") == "B 0987654 97"


def test_generated_card_numbers() -> None:
    rng = random.Random(11)
    for _ in range(300):
        eid, foreign = make_eid(rng.randrange(1, 10**10)), make_foreign_card(rng.randrange(1, 10**7))
        assert is_valid_card_number(eid) and is_valid_card_number(foreign)
        assert format_card_number(eid.replace("-", "")) == eid
    assert card_check("0000000097") == 97


@pytest.mark.parametrize(
    "junk",
    ["", "59119170645", "5911917064580", "C 0987654 97", "B 098765 97", "000-0000000-97", "BE0440966354"],
)
def test_card_number_wrong_shapes(junk: str) -> None:
    assert not is_valid_card_number(junk)
    assert format_card_number(junk) is None


# --- machine-readable zones -------------------------------------------------------------------------

SPECIMEN_TD3 = [
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
]
SPECIMEN_TD1 = [
    "I<UTOD231458907<<<<<<<<<<<<<<<",
    "7408122F1204159UTO<<<<<<<<<<<6",
    "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
]
SPECIMEN_TD2 = ["I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "D231458907UTO7408122F1204159<<<<<<<6"]


def test_check_digit_by_hand() -> None:
    # L898902C3: L=21, C=12 → 21·7+8·3+9·1+8·7+9·3+0·1+2·7+12·3+3·1 = 346 → 6
    assert mrz_check_digit("L898902C3") == 6
    assert mrz_check_digit("740812") == 2
    assert mrz_check_digit("<<<<<<") == 0


def test_icao_specimen_passport() -> None:
    mrz = parse_mrz(SPECIMEN_TD3, today=TODAY)
    assert mrz is not None
    assert (mrz.format, mrz.document_type, mrz.issuing_state, mrz.nationality) == ("TD3", "P", "UTO", "UTO")
    assert (mrz.document_number, mrz.optional_data, mrz.sex) == ("L898902C3", "ZE184226B", "F")
    assert (mrz.birth_date, mrz.expiry_date) == (date(1974, 8, 12), date(2012, 4, 15))
    assert (mrz.surname, mrz.given_names) == ("ERIKSSON", "ANNA MARIA")


@pytest.mark.parametrize(("lines", "fmt"), [(SPECIMEN_TD1, "TD1"), (SPECIMEN_TD2, "TD2")])
def test_icao_specimen_cards(lines: list[str], fmt: str) -> None:
    mrz = parse_mrz(lines, today=TODAY)
    assert mrz is not None and mrz.format == fmt and mrz.document_number == "D23145890"
    assert mrz.birth_date == date(1974, 8, 12) and mrz.given_names == "ANNA MARIA"


def test_zone_as_one_string_with_spaces_and_lower_case() -> None:
    text = "\n".join(SPECIMEN_TD3).lower().replace("<<<<<10", "<<<<< 10") + "\n\n"
    assert parse_mrz(text, today=TODAY) == parse_mrz(SPECIMEN_TD3, today=TODAY)


def test_belgian_eid_with_twelve_digit_number() -> None:
    nrn = make_nrn(90, 1, 1, 24, sep=False)
    lines = make_td1_be("591191706458", "900101", "F", "310415", nrn, "PEETERS<<ANNA<MARIA")
    mrz = parse_mrz(lines, today=TODAY)
    assert mrz is not None
    assert mrz.document_number == "591191706458" and mrz.optional_data == nrn
    assert (mrz.issuing_state, mrz.document_type, mrz.expiry_date) == ("BEL", "ID", date(2031, 4, 15))


@pytest.mark.parametrize(
    ("line", "position", "failure"),
    [
        (1, 9, "document_number"),
        (1, 19, "birth_date"),
        (1, 27, "expiry_date"),
        (1, 42, "personal_number"),
        (1, 43, "composite"),
    ],
)
def test_every_bad_check_digit_is_caught(line: int, position: int, failure: str) -> None:
    lines = list(SPECIMEN_TD3)
    digit = lines[line][position]
    lines[line] = lines[line][:position] + str((int(digit) + 1) % 10) + lines[line][position + 1 :]
    reading = read_mrz(lines, today=TODAY)
    assert reading is not None and failure in reading.failed
    assert parse_mrz(lines, today=TODAY) is None


def test_changed_data_fails_its_check_and_the_composite() -> None:
    lines = [SPECIMEN_TD3[0], SPECIMEN_TD3[1].replace("740812", "740813")]
    reading = read_mrz(lines, today=TODAY)
    assert reading is not None and reading.failed == ("birth_date", "composite")


def test_only_the_composite_covers_td1_optional_data() -> None:
    lines = list(SPECIMEN_TD1)
    lines[1] = lines[1][:18] + "X" + lines[1][19:]
    reading = read_mrz(lines, today=TODAY)
    assert reading is not None and reading.failed == ("composite",)


def test_personal_number_filler_check_digit() -> None:
    lines = make_td3("AB1234567", "NLD", "850730", "M", "300101", "", "DE<VRIES<<JAN")
    assert lines[1][42] == "<"
    mrz = parse_mrz(lines, today=TODAY)
    assert mrz is not None and mrz.optional_data == "" and mrz.surname == "DE VRIES"


def test_two_digit_years_are_placed_around_today() -> None:
    lines = make_td3("X12345", "SYR", "150812", "<", "350101", "", "HADDAD<<OMAR")
    mrz = parse_mrz(lines, today=TODAY)
    assert mrz is not None and mrz.birth_date == date(2015, 8, 12) and mrz.expiry_date == date(2035, 1, 1)
    assert mrz.sex is None
    later = make_td3("X12345", "SYR", "300812", "M", "350101", "", "HADDAD<<OMAR")
    assert parse_mrz(later, today=TODAY).birth_date == date(1930, 8, 12)  # type: ignore[union-attr]


def test_unknown_birth_date_is_none_not_a_failure() -> None:
    lines = make_td3("X12345", "AFG", "85<<<<", "M", "300101", "", "KARIMI<<ZAHRA")
    mrz = parse_mrz(lines, today=TODAY)
    assert mrz is not None and mrz.birth_date is None


def test_impossible_date_with_matching_check_digit_is_invalid() -> None:
    lines = make_td3("X12345", "AFG", "851332", "M", "300101", "", "KARIMI<<ZAHRA")
    reading = read_mrz(lines, today=TODAY)
    assert reading is not None and reading.failed == ("birth_date",)


@pytest.mark.parametrize(
    "lines",
    [
        [],
        SPECIMEN_TD3[:1],
        [SPECIMEN_TD3[0], SPECIMEN_TD3[1][:-1]],
        [SPECIMEN_TD3[0][:36], SPECIMEN_TD1[1]],
        [SPECIMEN_TD3[0], SPECIMEN_TD3[1].replace("L", "l", 1).replace("l", "-")],
    ],
)
def test_not_a_zone(lines: list[str]) -> None:
    assert read_mrz(lines, today=TODAY) is None


# --- dates ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("op 12/03/2026 om", "2026-03-12"),
        ("le 12-03-2026.", "2026-03-12"),
        ("vanaf 3.4.2026", "2026-04-03"),
        ("ISO 2026-03-12 ok", "2026-03-12"),
        ("op 12 maart 2026", "2026-03-12"),
        ("le 3 avril 2026", "2026-04-03"),
        ("le 1er avril 2026", "2026-04-01"),
        ("on March 3, 2026", "2026-03-03"),
        ("on the 3rd of March 2026", "2026-03-03"),
        ("depuis le 27 févr. 2026", "2026-02-27"),
        ("sinds 2 mrt 2026", "2026-03-02"),
        ("Thursday 12 March at 8", "--03-12"),
        ("op 16 Maart.", "--03-16"),
        ("on May 4, 2026", "2026-05-04"),
    ],
)
def test_dates(text: str, value: str) -> None:
    (found,) = find_dates(text)
    assert found.value == value and found.valid
    assert text[found.span[0] : found.span[1]] == found.text


def test_date_does_not_swallow_the_full_stop() -> None:
    (found,) = find_dates("Mijn afspraak is op 20 april. Daarna")
    assert found.text == "20 april"


@pytest.mark.parametrize(
    "text",
    [
        "you may 3 times",  # the verb, not the month
        "85.07.30-033.28",  # two-digit years are national register numbers
        "MIG-2026-004410",
        "tel 0485 12 34 56",
        "versie 1.2.2026.4",
        "3 marketing plans",
        "12/13/2026",
    ],
)
def test_not_dates(text: str) -> None:
    assert find_dates(text) == []


def test_impossible_dates_are_found_but_invalid() -> None:
    (found,) = find_dates("geboren op 31/04/1990")
    assert not found.valid and found.date is None
    (leap,) = find_dates("29 februari")
    assert leap.valid and leap.year is None


# --- case references --------------------------------------------------------------------------------


def test_case_references_in_any_writing() -> None:
    text = (
        "dossier MIG-2026-004410, ook mig 2026 004411 en MIG/2026/004412;"
        " niet XMIG-2026-004413 of MIG-2026-0044145"
    )
    assert [r.value for r in find_case_refs(text)] == [
        "MIG-2026-004410",
        "MIG-2026-004411",
        "MIG-2026-004412",
    ]


def test_case_reference_prefix_is_configurable() -> None:
    text = "reference WIB-2026-118337 and MIG-2026-004410"
    assert [r.value for r in find_case_refs(text, prefix="WIB")] == ["WIB-2026-118337"]
    assert [r.value for r in find_case_refs(text)] == ["MIG-2026-004410"]


# --- finding in free text ---------------------------------------------------------------------------

NOISY = """Goeiedag,

Mijn rrn is 850730 033 28 (of 85.07.30-033.28), mijn zoon: 12.05.17-008.{check}. Oud nummer 85.07.30-033.61.
Kaart 591-1917064-58, verblijfskaart B 0987654 97. Dossier MIG-2026-004410, geboren op 14/05/1990.
Bel me op 0485 12 34 56 of +32 485 12 34 56 of 09 265 04 00 of +32 9 266 71 11 of 0032485123456.
IBAN BE71 0961 2345 6769 / BE71096123456769, btw BE 0440.966.354, pakket 3232 0000 1234 5678,
booking ref 4471-2283, factuur 12345678901.
"""


def test_noisy_text() -> None:
    son = make_nrn(12, 5, 17, 8, born_2000=True)
    text = NOISY.format(check=son[-2:])
    found = find_identifiers(text, today=TODAY)
    summary = [(f.kind, f.value, f.valid) for f in found]
    assert summary == [
        ("nrn", "85073003328", True),
        ("nrn", "85073003328", True),
        ("nrn", son.replace(".", "").replace("-", ""), True),
        ("nrn", "85073003361", False),
        ("card", "591191706458", True),
        ("card", "B098765497", True),
        ("case_ref", "MIG-2026-004410", True),
        ("date", "1990-05-14", True),
    ]
    for f in found:
        assert f.span[0] < f.span[1] and text[f.span[0] : f.span[1]].strip() == text[f.span[0] : f.span[1]]


def test_random_valid_numbers_in_random_text_are_all_found() -> None:
    rng = random.Random(5)
    words = [
        "mijn",
        "nummer",
        "is",
        "NN",
        "RRN:",
        "(",
        ")",
        "et",
        "mon",
        "numéro",
        "and",
        ",",
        "tel 09 210 47 12",
    ]
    for _ in range(200):
        numbers = [
            make_nrn(rng.randrange(100), rng.randint(1, 12), rng.randint(1, 28), rng.randint(1, 997))
            for _ in range(3)
        ]
        parts: list[str] = []
        for number in numbers:
            parts += [*rng.sample(words, 3), number]
        found = [f for f in find_identifiers(" ".join(parts)) if f.kind == "nrn"]
        assert [f.value for f in found] == [n.replace(".", "").replace("-", "") for n in numbers]


def test_grouped_digit_runs_are_not_national_numbers() -> None:
    rng = random.Random(9)
    for _ in range(500):
        digits = f"{rng.randrange(10**16):016d}"
        grouped = " ".join(digits[i : i + 4] for i in range(0, 16, 4))
        assert [f for f in find_identifiers(f"nummer {grouped} ok") if f.kind in ("nrn", "card")] == []
        phone = f"+32 4{digits[:2]} {digits[2:4]} {digits[4:6]} {digits[6:8]}"
        assert find_identifiers(f"bel {phone}") == []


def test_mrz_in_extracted_document_text() -> None:
    text = "PASSPORT\nSurname ERIKSSON\n\n" + "\n".join(SPECIMEN_TD3) + "\n"
    (found,) = find_identifiers(text, today=TODAY)
    assert found.kind == "mrz" and found.valid and found.value == "\n".join(SPECIMEN_TD3)
    assert text[found.span[0] : found.span[1]] == "\n".join(SPECIMEN_TD3)


def test_mrz_with_bad_check_digit_is_found_invalid() -> None:
    bad = [SPECIMEN_TD1[0], SPECIMEN_TD1[1][:-1] + "7", SPECIMEN_TD1[2]]
    found = find_identifiers("\n".join(bad), today=TODAY)
    assert [(f.kind, f.valid) for f in found] == [("mrz", False)]


def test_mrz_line_fragment_is_still_reported() -> None:
    found = find_identifiers("scan: P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<", today=TODAY)
    assert [(f.kind, f.valid) for f in found] == [("mrz", False)]


def test_mrz_digits_are_not_read_as_other_identifiers() -> None:
    nrn = make_nrn(90, 1, 1, 24, sep=False)
    lines = make_td1_be("591191706458", "900101", "F", "310415", nrn, "PEETERS<<ANNA")
    found = find_identifiers("\n".join(lines), today=TODAY)
    assert [(f.kind, f.valid) for f in found] == [("mrz", True)]
