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
from collections.abc import Sequence
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


@dataclass(frozen=True, eq=False)
class Tfidf:
    """A fitted TF-IDF block: its analyser, n-gram range, terms and IDF weights.

    The terms are held as the artefact stores them, one sorted numpy array (scikit-learn numbers its
    vocabulary in sorted order): a term's column is its position, found by binary search. A dict
    of the shipped model's 159 000 terms would take about 22 MB, the arrays take 12.
    """

    analyser: Analyser
    ngram_range: tuple[int, int]
    terms: np.ndarray = field(repr=False)  # (terms,) str, sorted, unique
    idf: np.ndarray = field(repr=False)  # (terms,) float64

    def __post_init__(self) -> None:
        if self.analyser not in _ANALYSERS:
            raise ValueError(f"unknown analyser {self.analyser!r}")
        if self.terms.ndim != 1 or self.terms.dtype.kind != "U":
            raise ValueError("the terms are not one array of strings")
        if len(self.terms) != len(self.idf):
            raise ValueError(f"{len(self.terms)} terms but {len(self.idf)} IDF weights")
        if len(self.terms) > 1 and not np.all(self.terms[:-1] < self.terms[1:]):
            raise ValueError("the terms are not sorted and unique")

    @classmethod
    def from_terms(
        cls,
        analyser: Analyser,
        ngram_range: tuple[int, int],
        terms: Sequence[str] | np.ndarray,
        idf: np.ndarray,
    ) -> Tfidf:
        """From the terms in column order (as the artefact stores them)."""
        return cls(analyser, ngram_range, np.asarray(terms, dtype=str), np.asarray(idf, dtype=np.float64))

    def __len__(self) -> int:
        return len(self.terms)

    def vocabulary(self) -> dict[str, int]:
        """Term → column, as scikit-learn's ``vocabulary_``."""
        return {str(term): column for column, term in enumerate(self.terms)}

    def analyse(self, text: str) -> list[str]:
        """Every n-gram of the text, known to the vocabulary or not, in order."""
        return _ANALYSERS[self.analyser](text, self.ngram_range)

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The text's non-zero columns (ascending) and their weights: (1 + log count) · idf, of unit
        length."""
        # numpy drops a string's trailing NULs, so such an n-gram would pass for a shorter term; the
        # stored terms cannot end in one, so it is in no vocabulary.
        grams = [gram for gram in self.analyse(text) if not gram.endswith("\x00")]
        if not grams or not len(self.terms):
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float64)
        found = np.array(grams, dtype=str)
        position = np.minimum(np.searchsorted(self.terms, found), len(self.terms) - 1)
        columns, counts = np.unique(position[self.terms[position] == found], return_counts=True)
        if not len(columns):
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float64)
        weight = (1.0 + np.log(counts)) * self.idf[columns]
        return columns.astype(np.intp), weight / np.linalg.norm(weight)
