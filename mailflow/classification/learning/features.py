"""What the learned model reads of an email, and the numbers it turns that into.

The model sees what the rules see, produced by the same pipeline stages (parse → screen → extract): the
resident's own text and the subject, both through ``classification.cues.normalise`` (accents, card letters,
annex numbers, phone shorthand spelled one way), the kinds of the attached documents and a few
screening facts. Training and serving build their input with the one function ``model_input``, so a
model never sees text prepared differently from what it was trained on.

Six blocks of features, side by side: TF-IDF over word 1–2-grams and over character 2–5-grams
within words (``char_wb``: robust to typos and to the many spellings of one word); word 1–2-grams
of the sentences that say what is asked (``ask_text``: the subject, the questions, the first and
last sentences), so that a story's background — the cards and annexes it mentions on the way —
weighs less than its request; a bag of "fact"
tokens (document kinds, machine mail, a reply to our own mail) scaled so that one document counts
about as much as a telling phrase; what the catalogue's rules found (their evidence per category,
their verdict and their question/request balance), so that the model learns how far to trust them;
and the email's multilingual word-vector mean (``word_vectors``), which carries what words mean
across languages where the n-grams only know the spellings seen in training. ``FEATURES_VERSION``
names this recipe: a model trained with another recipe is not loaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from mailflow.classification.cues import normalise
from mailflow.classification.learning.tfidf import Tfidf
from mailflow.classification.taxonomy import CATEGORIES
from mailflow.classification.word_vectors import WordVectors
from mailflow.domain import Classification, Screening

FEATURES_VERSION = 2
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 5)
# A term seen in one email only is mostly a name, a number or a typo: noise to a model, and most of
# its memory (word bigrams above all).
CHAR_MIN_DF = 2
WORD_MIN_DF = 2
FACT_WEIGHT = 0.5
# The rules' block: evidence log1p(score)·RULE_SCALE per category, their verdict's confidence, and the
# question/request balance; sized by the taxonomy, so that it means the same in every model.
RULE_SCALE = 0.5
_CATEGORY_INDEX = {category: index for index, category in enumerate(CATEGORIES)}
RULE_FEATURES = 2 * len(CATEGORIES) + 2
# Sentences end at ., ! or ? followed by white space, or at a line break; shorter than ASK_WORDS
# words they are greetings and names ("Hallo,", "Mvg", "Ahmed"), not what is asked. (No ``\s*``
# around the line break: on a long run of spaces that backtracks quadratically.)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n")
ASK_WORDS = 3
ASK_LAST = 2  # the last sentences of an email, where a story ends in its request


def ask_text(plain: str) -> str:
    """The normalised sentences that say what is asked: the subject, every question, the first and
    the last sentences of the text (``plain``: the subject, a line break, the text).

    The text is the classifier's (``stages.text.resident_text``): it opens with the cleaned subject
    and ends with any forwarded mail, so the "first sentence" is often the subject again and the last
    ones can be a closing of three words or more, or the forwarded mail's end."""
    subject, _, body = plain.partition("\n")
    sentences = [s for s in _SENTENCE_END.split(body) if len(s.split()) >= ASK_WORDS]
    chosen = [s for s in sentences if "?" in s] + sentences[:1] + sentences[-ASK_LAST:]
    return normalise(" ".join([subject, *dict.fromkeys(chosen)]))


# The word-vector mean has unit length; scaled so that it weighs like the TF-IDF blocks.
VECTOR_SCALE = 3.0


@dataclass(frozen=True)
class ModelInput:
    text: str  # normalised subject and resident's text
    facts: tuple[str, ...]  # "doc:passport", "machine:bounce", "reply:ours"
    plain: str = ""  # the subject and resident's text as written: for the word vectors and ``ask_text``
    rules: tuple[tuple[str, float], ...] = ()  # the rules' evidence per category
    rules_category: str = ""
    rules_confidence: float = 0.0
    balance: float = 0.0  # the rules' question (> 0) / request (< 0) balance


def model_input(
    subject: str,
    text: str,
    documents: Sequence[str],
    screening: Screening,
    *,
    in_reply_to_ours: bool,
    rules: Classification | None = None,
) -> ModelInput:
    facts = [f"doc:{kind}" for kind in sorted(set(documents))]
    if screening.machine_category:
        facts.append(f"machine:{screening.machine_category}")
    if in_reply_to_ours:
        facts.append("reply:ours")
    if rules is not None and len(rules.intents) > 1:
        # The rules found a second request, or one request for several persons.
        facts.append("rules:several" if len(set(rules.intents)) > 1 else "rules:persons")
    return ModelInput(
        text=f"{normalise(subject)}\n{normalise(text)}",
        facts=tuple(facts),
        plain=f"{subject}\n{text}",
        rules=rules.scores if rules else (),
        rules_category=rules.category if rules else "",
        rules_confidence=rules.confidence if rules else 0.0,
        balance=rules.balance if rules else 0.0,
    )


def rule_features(item: ModelInput) -> tuple[np.ndarray, np.ndarray]:
    """The rules' block as (indices, values), indices within the block."""
    indices, values = [], []
    for category, score in item.rules:
        if category in _CATEGORY_INDEX and score > 0:
            indices.append(_CATEGORY_INDEX[category])
            values.append(np.log1p(score) * RULE_SCALE)
    if item.rules_category in _CATEGORY_INDEX:
        indices.append(len(CATEGORIES) + _CATEGORY_INDEX[item.rules_category])
        values.append(item.rules_confidence)
    if item.balance:
        indices.append(RULE_FEATURES - 2 if item.balance > 0 else RULE_FEATURES - 1)
        values.append(abs(item.balance) / 2)
    return np.array(indices, dtype=np.intp), np.array(values, dtype=np.float64)


@dataclass
class FeatureSpace:
    """The fitted TF-IDF blocks (vocabularies and IDF weights), the facts known and the word vectors.

    Made by ``training.fit_features``; serving reads it from the artefact and needs no scikit-learn.
    """

    words: Tfidf
    chars: Tfidf
    facts: tuple[str, ...]
    vectors: WordVectors | None = None
    asks: Tfidf | None = None  # word n-grams of ``ask_text``; None in a model trained without them
    _fact_index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._fact_index = {fact: i for i, fact in enumerate(self.facts)}

    def row(self, item: ModelInput) -> tuple[np.ndarray, np.ndarray]:
        """One input's non-zero features as (indices, values), in float64."""
        indices: list[np.ndarray] = []
        values: list[np.ndarray] = []
        offset = 0
        for block in (self.words, self.chars):
            block_indices, block_values = block.row(item.text)
            indices.append(block_indices + offset)
            values.append(block_values)
            offset += len(block)
        if self.asks is not None:
            block_indices, block_values = self.asks.row(ask_text(item.plain))
            indices.append(block_indices + offset)
            values.append(block_values)
            offset += len(self.asks)
        known = sorted({self._fact_index[f] for f in item.facts if f in self._fact_index})
        indices.append(np.array(known, dtype=np.intp) + offset)
        values.append(np.full(len(known), FACT_WEIGHT))
        offset += len(self.facts)
        rule_indices, rule_values = rule_features(item)
        indices.append(rule_indices + offset)
        values.append(rule_values)
        offset += RULE_FEATURES
        if self.vectors is not None:
            indices.append(np.arange(offset, offset + self.vectors.dimensions, dtype=np.intp))
            values.append(self.vectors.embed(item.plain).astype(np.float64) * VECTOR_SCALE)
        return np.concatenate(indices), np.concatenate(values)

    @property
    def size(self) -> int:
        dense = self.vectors.dimensions if self.vectors is not None else 0
        asks = len(self.asks) if self.asks is not None else 0
        return len(self.words) + len(self.chars) + asks + len(self.facts) + RULE_FEATURES + dense

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (strings and floats) for the artefact: no pickled objects."""
        arrays: dict[str, np.ndarray] = {"facts": np.array(self.facts, dtype=str)}
        blocks = {"words": self.words, "chars": self.chars, "asks": self.asks}
        for name, block in blocks.items():
            if block is not None:
                arrays[f"{name}_terms"] = block.terms
                arrays[f"{name}_idf"] = np.asarray(block.idf, dtype=np.float64)
        if self.vectors is not None:
            arrays["vector_words"] = np.array(self.vectors.words, dtype=str)
            arrays["vector_values"] = self.vectors.vectors
            arrays["vector_weights"] = self.vectors.weights
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> FeatureSpace:
        words = Tfidf.from_terms("word", WORD_NGRAMS, arrays["words_terms"], arrays["words_idf"])
        chars = Tfidf.from_terms("char_wb", CHAR_NGRAMS, arrays["chars_terms"], arrays["chars_idf"])
        asks = None
        if "asks_terms" in arrays:
            asks = Tfidf.from_terms("word", WORD_NGRAMS, arrays["asks_terms"], arrays["asks_idf"])
        vectors = None
        if "vector_words" in arrays:
            vectors = WordVectors(
                words=tuple(str(w) for w in arrays["vector_words"]),
                vectors=np.asarray(arrays["vector_values"], dtype=np.float16),
                weights=np.asarray(arrays["vector_weights"], dtype=np.float32),
            )
            if vectors.vectors.shape[0] != len(vectors.words) or len(vectors.weights) != len(vectors.words):
                raise ValueError("word vectors, words and weights differ in number")
        return cls(
            words=words, chars=chars, facts=tuple(str(f) for f in arrays["facts"]), vectors=vectors, asks=asks
        )
