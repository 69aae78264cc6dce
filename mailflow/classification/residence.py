"""Where the writer lives, as far as a Belgian postcode before a place name says ("9820 Merelbeke").

The counter serves the residents of Ghent only: who lives in another municipality belongs to its own
counter (the taxonomy's ``other_service``). A postcode is evidence the model weighs, not a verdict:
a Ghent address may be the city's own, another one where the writer works or used to live.
"""

from __future__ import annotations

import re
from collections.abc import Collection

GHENT = "ghent"
ELSEWHERE = "elsewhere"

# Four digits (Belgian postcodes run from 1000), optionally after "B-" or "BE-", before a place name
# on the same line that starts with a capital: "9000 Gent", "B-9070 Destelbergen", "9940 EVERGEM".
_POSTCODE = re.compile(r"(?<![\w.,/:-])(?:BE?-)?([1-9]\d{3})[ \t]+([A-ZÀ-Þ][A-Za-zÀ-ÿ-]{2,})")
_NOT_PLACES = frozenset({"euro", "euros", "eur"})
# Years before a name ("2026 Microsoft", "sinds 2019 Gent") read like postcodes: these are left out,
# and with them the few postcodes in that range (Zaventem, Antwerp's centre).
_YEARS = range(1900, 2100)


def residence(text: str, ghent_postcodes: Collection[str]) -> str:
    """``GHENT`` when the text has a Ghent postcode, ``ELSEWHERE`` when it has only others, "" when
    it has none."""
    found = {
        match.group(1)
        for match in _POSTCODE.finditer(text)
        if match.group(2).lower() not in _NOT_PLACES and int(match.group(1)) not in _YEARS
    }
    if not found:
        return ""
    return GHENT if found & set(ghent_postcodes) else ELSEWHERE
