from __future__ import annotations

import pytest

from mailflow.classification.residence import ELSEWHERE, GHENT, residence

GHENT_POSTCODES = frozenset({"9000", "9030", "9031", "9032", "9040", "9041", "9042", "9050", "9051", "9052"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Met vriendelijke groet,\nAhmed\nKorenmarkt 1, 9000 Gent", GHENT),
        ("Je vis à Destelbergen.\nEenbeekstraat 12\n9070 Destelbergen", ELSEWHERE),
        ("Adres: B-9820 Merelbeke", ELSEWHERE),
        ("We moved from 9820 Merelbeke to 9032 Wondelgem last week.", GHENT),
        ("Sinds 2019 Gent is mijn thuis; ik betaal 1200 euro huur.", ""),
        ("My card expired on 12 March 2026\nDear sir", ""),
        ("I've lived here since 2017 I've never left.", ""),
        ("Ik wil mijn kaart vernieuwen.", ""),
    ],
)
def test_a_postcode_before_a_place_says_where_the_writer_lives(text: str, expected: str) -> None:
    assert residence(text, GHENT_POSTCODES) == expected
