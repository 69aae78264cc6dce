"""TF-IDF of one text over a fitted vocabulary: scikit-learn's numbers without scikit-learn.

Training fits ``TfidfVectorizer`` (which chooses the vocabulary and the IDF weights); serving only
needs to turn a text into the same numbers, and importing scikit-learn for that costs a worker
about 75 MB. So the two tokenisers the model uses are written out here, following scikit-learn's
``_VectorizerMixin`` (``build_preprocessor``: lowercase, no accent stripping; ``_word_ngrams`` with the
default token pattern; ``_char_wb_ngrams``), and ``TfidfTransformer`` with ``sublinear_tf``, IDF and
the L2 norm. A test holds them to ``TfidfVectorizer.transform`` on hostile texts and real emails.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

# scikit-learn's default ``token_pattern``: words of two or more word characters.
WORD_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_WHITE_SPACES = re.compile(r"\s\s+")  # ``_VectorizerMixin._white_spaces``

Analyser = Literal["word", "char_wb"]


def word_ngrams(text: str, ngram_range: tuple[int, int]) -> list[str]:
    """``analyzer="word"``: the lowercased tokens, then their n-grams joined by one space."""
    tokens = WORD_TOKEN.findall(text.lower())
    low, high = ngram_range
    grams = list(tokens) if low == 1 else []
    for n in range(max(low, 2), min(high, len(tokens)) + 1):
        grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return grams


def char_wb_ngrams(text: str, ngram_range: tuple[int, int]) -> list[str]:
    """``analyzer="char_wb"``: character n-grams within each space-padded word of the lowercased text."""
    low, high = ngram_range
    grams: list[str] = []
    append = grams.append
    for word in _WHITE_SPACES.sub(" ", text.lower()).split():
        padded = f" {word} "
        length = len(padded)
        for n in range(low, high + 1):
            offset = 0
            append(padded[offset : offset + n])
            while offset + n < length:
                offset += 1
                append(padded[offset : offset + n])
            if offset == 0:  # a word shorter than n counts once, as scikit-learn does
                break
    return grams


_ANALYSERS = {"word": word_ngrams, "char_wb": char_wb_ngrams}


@dataclass(frozen=True)
class Tfidf:
    """A fitted TF-IDF block: its analyser, n-gram range, vocabulary (term → column) and IDF weights."""

    analyser: Analyser
    ngram_range: tuple[int, int]
    vocabulary: dict[str, int] = field(repr=False)
    idf: np.ndarray = field(repr=False)  # (terms,) float64

    def __post_init__(self) -> None:
        if self.analyser not in _ANALYSERS:
            raise ValueError(f"unknown analyser {self.analyser!r}")
        if len(self.vocabulary) != len(self.idf):
            raise ValueError(f"{len(self.vocabulary)} terms but {len(self.idf)} IDF weights")

    @classmethod
    def from_terms(
        cls, analyser: Analyser, ngram_range: tuple[int, int], terms: Iterable[str], idf: np.ndarray
    ) -> Tfidf:
        """From the terms in column order (as the artefact stores them)."""
        vocabulary = {str(term): column for column, term in enumerate(terms)}
        return cls(analyser, ngram_range, vocabulary, np.asarray(idf, dtype=np.float64))

    def __len__(self) -> int:
        return len(self.vocabulary)

    def terms(self) -> list[str]:
        """The terms in column order."""
        return sorted(self.vocabulary, key=self.vocabulary.__getitem__)

    def analyse(self, text: str) -> list[str]:
        """Every n-gram of the text, known to the vocabulary or not, in order."""
        return _ANALYSERS[self.analyser](text, self.ngram_range)

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The text's non-zero columns and their weights: (1 + log count) · idf, of unit length."""
        vocabulary = self.vocabulary
        counts = Counter(term for term in self.analyse(text) if term in vocabulary)
        if not counts:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float64)
        index = np.fromiter((vocabulary[term] for term in counts), dtype=np.intp, count=len(counts))
        weight = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
        weight *= self.idf[index]
        return index, weight / np.linalg.norm(weight)
