"""Finding a national register number without keeping it: a keyed token stands in for it.

The number itself is stored only in the raw email (encrypted); the search index holds, beside the
masked text, one word per number found: ``nrn`` + a keyed HMAC of its eleven digits (the key is the
blob keyring's naming key, docs/encryption.md). A search for the number makes the same word. Without the
key the token says nothing: eleven digits with a check digit are few enough to try them all, which is
why a plain hash would not do.
"""

from __future__ import annotations

from collections.abc import Callable

from mailflow.identifiers.finder import find_identifiers

# (purpose, value) -> a keyed token; BlobKeyring.lookup_token.
LookupToken = Callable[[str, str], str]
PREFIX = "nrn"


def nrn_lookup_words(text: str, token: LookupToken) -> list[str]:
    """One search word per national register number in ``text`` (each number once)."""
    numbers = dict.fromkeys(found.value for found in find_identifiers(text) if found.kind == "nrn")
    return [f"{PREFIX}{token('nrn', digits)}" for digits in numbers]


def without_nrns(text: str) -> str:
    """``text`` with its national register numbers blanked out (a search then looks for their tokens)."""
    pieces, position = [], 0
    for found in find_identifiers(text):
        if found.kind == "nrn":
            pieces += [text[position : found.span[0]], " "]
            position = found.span[1]
    return "".join([*pieces, text[position:]])
