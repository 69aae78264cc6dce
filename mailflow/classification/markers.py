"""The classifier's vocabulary about the kind of email rather than its product (``markers.toml``).

Whether it asks a question or makes a request, whether it announces a further request ("also"),
and whether one request is for several persons ("voor mij en mijn vrouw").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from mailflow.classification.cues import Cue, FieldError, check_weight, cue_tables, normalise
from mailflow.classification.taxonomy import CUE_LANGUAGES

_KEYS = frozenset({"question", "request", "question_mark", "also", "persons"})
_PERSON_KEYS = frozenset(
    {
        "self",
        "conjunctions",
        "possessives",
        "relatives",
        "several",
        "numbers",
        "standalone",
        "counted",
        "collective",
        "homographs",
        "uncounted",
    }
)
# A number counts the persons of one request up to this many: beyond, it counts something else.
MAX_COUNTED = 6


@dataclass(frozen=True)
class Markers:
    question: tuple[Cue, ...]
    request: tuple[Cue, ...]
    question_mark: float  # what a "?" in the text weighs as a question
    also: tuple[Cue, ...]  # "ook", "aussi", "also": a further request is announced
    self_words: frozenset[str]  # "mij", "me", "moi": the writer as object of the request
    conjunctions: frozenset[str]
    possessives: frozenset[str]
    relatives: Mapping[str, int]  # family word → how many persons it stands for
    several: tuple[Cue, ...]  # "allebei", "both of us": two persons
    numbers: Mapping[str, int] = field(default_factory=dict)  # "drie" → 3: numbers written as words
    # "drieën", "üçümüz", "втроём": number words that stand for that many persons wherever they are
    standalone: Mapping[str, int] = field(default_factory=dict)
    counted: frozenset[str] = frozenset()  # "kinderen", "brieven": what a number before counts persons by
    collective: frozenset[str] = frozenset()  # "alle", "nous": a number word after them is the persons
    homographs: frozenset[str] = frozenset()  # "tres", "due": number words never read so
    uncounted: frozenset[str] = frozenset()  # "maanden", "euro": a number before them counts no persons


def parse_markers(raw: dict[str, Any]) -> Markers:
    """Validate the contents of ``markers.toml``; FieldError names the first wrong field."""
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise FieldError(unknown[0], "unknown field")
    persons = raw.get("persons", {})
    if not isinstance(persons, dict):
        raise FieldError("persons", "must be a table")
    unknown = sorted(set(persons) - _PERSON_KEYS)
    if unknown:
        raise FieldError(f"persons.{unknown[0]}", "unknown field")
    relatives = persons.get("relatives", {})
    if not isinstance(relatives, dict) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in relatives.values()
    ):
        raise FieldError("persons.relatives", "must be a table of word = number of persons (>= 1)")
    several = _words(persons, "several")
    numbers, standalone = _number_table(persons, "numbers"), _number_table(persons, "standalone")
    return Markers(
        question=cue_tables(raw.get("question", {}), "question", CUE_LANGUAGES),
        request=cue_tables(raw.get("request", {}), "request", CUE_LANGUAGES),
        question_mark=check_weight(raw.get("question_mark", 1.0), "question_mark"),
        also=cue_tables(raw.get("also", {}), "also", CUE_LANGUAGES),
        self_words=frozenset(normalise(w) for w in _words(persons, "self")),
        conjunctions=frozenset(normalise(w) for w in _words(persons, "conjunctions")),
        possessives=frozenset(normalise(w) for w in _words(persons, "possessives")),
        relatives=MappingProxyType({normalise(word): count for word, count in relatives.items()}),
        several=cue_tables({"any": dict.fromkeys(several, 1.0)}, "persons.several", CUE_LANGUAGES),
        numbers=MappingProxyType({normalise(word): count for word, count in numbers.items()}),
        standalone=MappingProxyType({normalise(word): count for word, count in standalone.items()}),
        counted=frozenset(normalise(w) for w in _words(persons, "counted")),
        collective=frozenset(normalise(w) for w in _words(persons, "collective")),
        homographs=frozenset(normalise(w) for w in _words(persons, "homographs")),
        uncounted=frozenset(normalise(w) for w in _words(persons, "uncounted")),
    )


def _number_table(persons: dict[str, Any], key: str) -> dict[str, int]:
    numbers = persons.get(key, {})
    if not isinstance(numbers, dict) or not all(
        isinstance(n, int) and not isinstance(n, bool) and 2 <= n <= MAX_COUNTED for n in numbers.values()
    ):
        raise FieldError(f"persons.{key}", f"must be a table of word = number from 2 to {MAX_COUNTED}")
    return numbers


def _words(table: dict[str, Any], key: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(word, str) and word.strip() for word in value):
        raise FieldError(f"persons.{key}", "must be a list of words")
    return value
