"""How many persons one request is for, read from the words of ``markers.toml``'s ``[persons]``.

Two readings. ``named``: the writer names themself with others as the object of the request — "voor
mij en mijn vrouw", "pour moi et mes deux enfants" — which is what makes the rules split an email
per person. ``counted``: a number before persons or the papers each person has — "onze drie
kinderen", "3 PIN-brieven" — or a number word standing for the persons themselves — "alle drie",
"all three of us", "nous sommes trois", "somos cuatro" — which says how many persons, once the email
is known to ask one request for several (a number alone is no request: "we have three children" is
often background).

Both read normalised text (``cues.normalise``: lower case, no accents, digits split from letters).
"""

from __future__ import annotations

import re

from mailflow.classification.cues import normalise
from mailflow.classification.markers import MAX_COUNTED, Markers

# How far after "mij en" the persons it names are read.
NAMED_WINDOW = 12
# The words after a number that may say what it counts: "3 PIN brieven".
COUNTED_WINDOW = 2
_PARAGRAPH_END = re.compile(r"\n\s*\n")


def named(text: str, markers: Markers) -> int:
    """How many persons the writer names as the object of the request, 1 when only themself: the
    most in any one paragraph. Per paragraph, because the text opens with the subject: "voor mij
    en mijn vrouw" there and "mijn vrouw" in the greeting below are the same two persons."""
    return max(_named(normalise(paragraph), markers) for paragraph in _PARAGRAPH_END.split(text))


def counted(normalised: str, markers: Markers) -> int:
    """The most persons a number counts in text already normalised (the rules' own), 0 when none
    does: a number word or digits from 2 to ``MAX_COUNTED`` before a ``counted`` word ("3 kaarten"),
    or after a ``collective`` one with no ``uncounted`` one in the next two words ("alle drie", "ons
    3", not "alle drie de maanden"; never one of the ``homographs``), or a ``standalone`` number word
    ("drieën")."""
    words = normalised.split()
    most = max((markers.standalone.get(word, 0) for word in words), default=0)
    for index, word in enumerate(words):
        number = _number(word, markers)
        if not number:
            continue
        following = words[index + 1 : index + 1 + COUNTED_WINDOW]
        collective = (
            word not in markers.homographs
            and index > 0
            and words[index - 1] in markers.collective
            and not any(w in markers.uncounted for w in following)
        )
        if collective or any(w in markers.counted for w in following):
            most = max(most, number)
    return most


def _named(paragraph: str, markers: Markers) -> int:
    words = paragraph.split()
    persons = 1
    for index, word in enumerate(words):
        if word not in markers.self_words:
            continue
        following = words[index + 1] if index + 1 < len(words) else ""
        if following not in markers.conjunctions and following not in markers.possessives:
            continue
        window = words[index + 1 : index + 1 + NAMED_WINDOW]
        persons = max(
            persons, 1 + sum(_relatives(window, position, markers) for position in range(len(window)))
        )
    if persons == 1 and any(cue.search(paragraph) for cue in markers.several):
        persons = 2
    return persons


def _relatives(window: list[str], position: int, markers: Markers) -> int:
    """The persons the word at ``position`` names: a family word after a possessive ("mijn zoon"),
    as many as a number between them says ("mijn drie kinderen")."""
    word = window[position]
    if word not in markers.relatives or position == 0:
        return 0
    before = window[position - 1]
    if before in markers.possessives:
        return markers.relatives[word]
    number = _number(before, markers)
    if number and position > 1 and window[position - 2] in markers.possessives:
        return number
    return 0


def _number(word: str, markers: Markers) -> int:
    """A number word ("drie", "trois") or digits ("3") from 2 to ``MAX_COUNTED``; 0 for anything else
    (a year or a house number is larger, "1" is nobody else)."""
    if word.isdigit():
        return int(word) if 2 <= int(word) <= MAX_COUNTED else 0
    return markers.numbers.get(word, 0)
