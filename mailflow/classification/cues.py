"""Text normalisation and cue phrases: the shared vocabulary of the catalogue and the classifier.

Residents write in many languages, on phones, with or without accents and with every spelling of
"K-kaart". Both the email text and every cue phrase go through the same ``normalise`` so that a cue
written once ("carte de séjour", "bijlage 35") matches all those spellings.

Cue syntax (one phrase, words separated by spaces):

- ``word``: the whole word; ``word*``: any word starting with it (``verlore*``);
- ``a|b|c``: any of these words at this place (``renew|renewal|renouveler``);
- ``(a b|c d)``: any of these word sequences at this place (``(ik ben belg|belg geworden)``);
- ``#``: any number; ``..``: up to four other words in between (``annex 35 .. verleng*``).

Annex numbers are canonical: "bijlage 35", "annexe 35", "anexo 35" and "attachment 35" all read
"annex 35", so cues say ``annex 35``; "bijlage" without a number stays an email attachment.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

GAP_WORDS = 4
MAX_WEIGHT = 10.0

# Letters that Unicode decomposition does not reduce to ASCII.
_FOLD = str.maketrans(
    {"ı": "i", "ł": "l", "Ł": "l", "ß": "ss", "ø": "o", "æ": "ae", "œ": "oe", "đ": "d", "ð": "d", "’": "'"}
)
# Every language's word for "card" reads "card", so "K-kaart", "carte K" and "K card" become alike.
_CARD_WORDS = frozenset(
    {"kaart", "kaartje", "kaarten", "card", "cards", "carte", "cartes", "kart", "karta", "karte", "karty"}
    | {"tarjeta", "cartao", "cartea"}
)
# Phone-typed shorthand, spelled out.
_SHORTHAND = {
    "rdv": "rendez vous",
    "pls": "please",
    "plz": "please",
    "appt": "appointment",
    "thx": "thanks",
    "svp": "s il vous plait",
    "stp": "s il te plait",
    "aub": "alstublieft",
    "ajb": "alstublieft",
    "mvg": "met vriendelijke groeten",
    "nr": "nummer",
}
_ANNEX_WORDS = (
    r"bijlage|bijl|bylage|annexe?s?|anexo|anexa|anexei|anexul|anexos|attachment|attachement"
    r"|zalacznik|zalacznika|ek|eki|appendix|allegato"
)
_ANNEX_NUMBER = re.compile(rf"\b(?:{_ANNEX_WORDS})\s+(?:(?:nummer|nr|number|numero|no|n)\s+)?(?=\d)")
_LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")
_NUMBER_SUFFIX = re.compile(r"\b(\d+) (bis|ter|quater|septies)\b")
_PLUS_JOINED = re.compile(r"(?<=\w)\+(?=\w)")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def normalise(text: str, *, canonical_words: bool = True) -> str:
    """Lower-case, accent-free words separated by single spaces; ``+`` stays (``EU+``, ``F+``).

    ``canonical_words`` spells card words and shorthand the one way cues use ("kaart" → "card").
    """
    text = _PLUS_JOINED.sub("+ ", _fold(text))
    text = re.sub(r"[^\w+]+|_", " ", text)
    text = _LETTER_DIGIT.sub(" ", text)
    text = _NUMBER_SUFFIX.sub(r"\1\2", text)  # "3 bis" and "3bis" are the same annex
    text = _ANNEX_NUMBER.sub("annex ", text)
    if not canonical_words:
        return " ".join(text.split())
    words = []
    for word in text.split():
        if word in _CARD_WORDS:
            words.append("card")
        else:
            words.append(_SHORTHAND.get(word, word))
    return " ".join(words)


@dataclass(frozen=True)
class Cue:
    """One weighted phrase, compiled once when the catalogue is loaded."""

    phrase: str
    weight: float
    pattern: re.Pattern[str] = field(repr=False, compare=False)
    # Per place of the phrase, the words one of which the text must contain for it to match: most
    # cues are absent from most emails, and a substring test rules them out far faster than the regex.
    needles: tuple[tuple[str, ...], ...] = field(default=(), repr=False, compare=False)

    def search(self, normalised: str) -> tuple[int, int] | None:
        if self.absent_from(normalised):
            return None
        match = self.pattern.search(normalised)
        return match.span() if match else None

    def absent_from(self, normalised: str) -> bool:
        """Whether the text surely does not match: it lacks every word of one of the cue's places."""
        for place in self.needles:
            for needle in place:
                if needle in normalised:
                    break
            else:
                return True
        return False


def compile_cue(phrase: str, weight: float) -> Cue:
    """Compile a cue phrase (syntax in the module docstring); ValueError when it is malformed."""
    text = _ANNEX_NUMBER.sub("annex ", _fold(phrase))
    tokens = _TOKEN.findall(text)
    if re.sub(r"\s+", "", "".join(tokens)) != re.sub(r"\s+", "", text):
        raise ValueError(f"cue {phrase!r} has unbalanced parentheses")
    body = _sequence(tokens, phrase)
    pattern = re.compile(rf"(?<![\w+]){body}(?![\w+])")
    return Cue(phrase=phrase, weight=weight, pattern=pattern, needles=_needles(tokens))


_TOKEN = re.compile(r"\([^()]*\)|[^\s()]+")
_GAP = rf"(?:\s+\S+){{0,{GAP_WORDS}}}\s+"


def _sequence(tokens: list[str], phrase: str) -> str:
    """Words (or groups) one after the other, ``..`` allowing a few other words in between."""
    if not tokens:
        raise ValueError(f"cue {phrase!r} is empty or has an empty alternative")
    if tokens[0] == ".." or tokens[-1] == "..":
        raise ValueError(f"cue {phrase!r} starts or ends with '..'")
    parts: list[str] = []
    for previous, token in zip([None, *tokens], tokens, strict=False):
        if token == "..":
            if previous == "..":
                raise ValueError(f"cue {phrase!r} has '.. ..'")
            continue
        if parts:
            parts.append(_GAP if previous == ".." else r"\s+")
        if token.startswith("("):
            alternatives = [_sequence(a.split(), phrase) for a in token[1:-1].split("|")]
        else:
            alternatives = [_word(word, phrase) for word in token.split("|")]
        parts.append("(?:" + "|".join(alternatives) + ")")
    return "".join(parts)


def _needles(tokens: list[str]) -> tuple[tuple[str, ...], ...]:
    """For each place of a well-formed phrase that names words, the first normalised word of each of
    its alternatives: a text holding none of them cannot match. A place with a number (``#``) in
    any alternative is not checked."""
    places = []
    for token in tokens:
        if token == "..":
            continue
        alternatives = token[1:-1].split("|") if token.startswith("(") else token.split("|")
        firsts = [alternative.split()[0] for alternative in alternatives]
        if "#" in firsts:
            continue
        places.append(tuple(dict.fromkeys(_spelled(first)[0] for first in firsts)))
    return tuple(places)


def _word(word: str, phrase: str) -> str:
    if word == "#":
        return r"\d+"
    words = _spelled(word)
    if not words:
        raise ValueError(f"cue {phrase!r} has an empty word in {word!r}")
    return r"\s+".join(re.escape(w) for w in words) + (r"[\w+]*" if word.endswith("*") else "")


def _spelled(word: str) -> list[str]:
    """The normalised words a cue word stands for; a prefix (``kart*``) as written, so that it still
    matches "kartı" where "kart" alone would read "card"."""
    prefix = word.endswith("*")
    return normalise(word.rstrip("*"), canonical_words=not prefix).split()


class FieldError(ValueError):
    """A configuration value is wrong; ``field`` says which (the loader adds the file)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"field {field!r}: {problem}")
        self.field = field
        self.problem = problem


def check_weight(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FieldError(field, f"weight {value!r} is not a number")
    if not 0 < value <= MAX_WEIGHT:
        raise FieldError(field, f"weight {value!r} is outside (0, {MAX_WEIGHT:g}]")
    return float(value)


def cue_tables(value: Any, field: str, languages: frozenset[str]) -> tuple[Cue, ...]:
    """Compile ``{language: {phrase: weight}}`` as read from a TOML file."""
    cues = []
    for where, table in _by_language(value, field, languages, "table of language tables"):
        if not isinstance(table, dict):
            raise FieldError(where, "must be a table of phrase = weight")
        for phrase, weight in table.items():
            cues.append(_compiled(phrase, check_weight(weight, f"{where}.{phrase!r}"), where))
    return tuple(cues)


def cue_lists(value: Any, field: str, languages: frozenset[str]) -> tuple[Cue, ...]:
    """Compile ``{language: [phrase, …]}`` as read from a TOML file: phrases that count as found or
    not, without a weight."""
    cues = []
    for where, phrases in _by_language(value, field, languages, "table of language = [phrases]"):
        if not isinstance(phrases, list) or not all(isinstance(phrase, str) for phrase in phrases):
            raise FieldError(where, "must be a list of phrases")
        cues.extend(_compiled(phrase, 1.0, where) for phrase in phrases)
    return tuple(cues)


def _by_language(value: Any, field: str, languages: frozenset[str], shape: str) -> Iterator[tuple[str, Any]]:
    if not isinstance(value, dict):
        raise FieldError(field, f"must be a {shape}")
    for language, entry in value.items():
        where = f"{field}.{language}"
        if language not in languages:
            raise FieldError(where, f"unknown cue language (known: {', '.join(sorted(languages))})")
        yield where, entry


def _compiled(phrase: str, weight: float, where: str) -> Cue:
    try:
        return compile_cue(phrase, weight)
    except ValueError as exc:
        raise FieldError(f"{where}.{phrase!r}", str(exc)) from exc
