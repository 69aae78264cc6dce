"""What the learned model reads of an email, and the numbers it turns that into.

The model sees what the rules see, produced by the same pipeline stages (parse → screen → extract): the
resident's own text and the subject, both through ``classification.cues.normalise`` (accents, card letters,
annex numbers, phone shorthand spelled one way), the kinds of the attached documents and a few
screening facts. Training and serving build their input with the one function ``model_input``, so a
model never sees text prepared differently from what it was trained on.

Three blocks of features, side by side: TF-IDF over word 1–2-grams and over character 2–5-grams
within words (``char_wb``: robust to typos and to the many spellings of one word), and a bag of
"fact" tokens (document kinds, machine mail, a reply to our own mail) scaled so that one document
counts about as much as a telling phrase. ``FEATURES_VERSION`` names this recipe: a model trained
with another recipe is not loaded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from mailflow.classification.cues import normalise
from mailflow.domain import Screening

FEATURES_VERSION = 1
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 5)
# A character n-gram seen in one email only is mostly a name, a number or a typo: noise to a model.
CHAR_MIN_DF = 2
FACT_WEIGHT = 0.5


@dataclass(frozen=True)
class ModelInput:
    text: str  # normalised subject and resident's text
    facts: tuple[str, ...]  # "doc:passport", "machine:bounce", "reply:ours"


def model_input(
    subject: str,
    text: str,
    documents: Sequence[str],
    screening: Screening,
    *,
    in_reply_to_ours: bool,
) -> ModelInput:
    facts = [f"doc:{kind}" for kind in sorted(set(documents))]
    if screening.machine_category:
        facts.append(f"machine:{screening.machine_category}")
    if in_reply_to_ours:
        facts.append("reply:ours")
    return ModelInput(text=f"{normalise(subject)}\n{normalise(text)}", facts=tuple(facts))


def _word_vectoriser(vocabulary: Mapping[str, int] | None = None) -> TfidfVectorizer:
    return TfidfVectorizer(
        ngram_range=WORD_NGRAMS, sublinear_tf=True, dtype=np.float32, vocabulary=vocabulary
    )


def _char_vectoriser(vocabulary: Mapping[str, int] | None = None) -> TfidfVectorizer:
    return TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=CHAR_NGRAMS,
        sublinear_tf=True,
        min_df=1 if vocabulary is not None else CHAR_MIN_DF,
        dtype=np.float32,
        vocabulary=vocabulary,
    )


@dataclass
class FeatureSpace:
    """The fitted vectorisers: vocabularies and IDF weights, nothing else."""

    words: TfidfVectorizer
    chars: TfidfVectorizer
    facts: tuple[str, ...]
    _fact_index: dict[str, int] = field(init=False, repr=False)
    _analysers: tuple[Callable[[str], list[str]], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._fact_index = {fact: i for i, fact in enumerate(self.facts)}
        self._analysers = (self.words.build_analyzer(), self.chars.build_analyzer())

    @classmethod
    def fit(cls, inputs: Sequence[ModelInput]) -> FeatureSpace:
        texts = [item.text for item in inputs]
        words = _word_vectoriser().fit(texts)
        try:
            chars = _char_vectoriser().fit(texts)
        except ValueError:  # too few emails for any n-gram to occur twice
            chars = _fit_without_min_df(texts)
        facts = tuple(sorted({fact for item in inputs for fact in item.facts}))
        return cls(words=words, chars=chars, facts=facts)

    def row(self, item: ModelInput) -> tuple[np.ndarray, np.ndarray]:
        """One input's non-zero features as (indices, values): ``transform`` for one email, fast.

        The same numbers as the vectorisers' own ``transform`` (a test holds them to it) without
        building a sparse matrix, which costs several times more than the arithmetic for one email.
        """
        indices: list[np.ndarray] = []
        values: list[np.ndarray] = []
        offset = 0
        for vectoriser, analyse in zip((self.words, self.chars), self._analysers, strict=True):
            vocabulary = vectoriser.vocabulary_
            counts = Counter(term for term in analyse(item.text) if term in vocabulary)
            if counts:
                index = np.fromiter((vocabulary[term] for term in counts), dtype=np.intp, count=len(counts))
                weight = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
                weight *= vectoriser.idf_[index]
                indices.append(index + offset)
                values.append(weight / np.linalg.norm(weight))
            offset += len(vocabulary)
        known = sorted({self._fact_index[f] for f in item.facts if f in self._fact_index})
        indices.append(np.array(known, dtype=np.intp) + offset)
        values.append(np.full(len(known), FACT_WEIGHT))
        return np.concatenate(indices), np.concatenate(values)

    @property
    def size(self) -> int:
        return len(self.words.vocabulary_) + len(self.chars.vocabulary_) + len(self.facts)

    def transform(self, inputs: Sequence[ModelInput]) -> sparse.csr_matrix:
        texts = [item.text for item in inputs]
        rows, cols = [], []
        for row, item in enumerate(inputs):
            for column in sorted({self._fact_index[f] for f in item.facts if f in self._fact_index}):
                rows.append(row)
                cols.append(column)
        facts = sparse.csr_matrix(
            (np.full(len(rows), FACT_WEIGHT, dtype=np.float32), (rows, cols)),
            shape=(len(inputs), len(self.facts)),
        )
        blocks = [self.words.transform(texts), self.chars.transform(texts), facts]
        return sparse.hstack(blocks, format="csr", dtype=np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (strings and floats) for the artefact: no pickled objects."""
        arrays: dict[str, np.ndarray] = {"facts": np.array(self.facts, dtype=str)}
        for name, vectoriser in (("words", self.words), ("chars", self.chars)):
            terms = sorted(vectoriser.vocabulary_, key=vectoriser.vocabulary_.__getitem__)
            arrays[f"{name}_terms"] = np.array(terms, dtype=str)
            arrays[f"{name}_idf"] = np.asarray(vectoriser.idf_, dtype=np.float64)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> FeatureSpace:
        words = _restore(_word_vectoriser, arrays["words_terms"], arrays["words_idf"])
        chars = _restore(_char_vectoriser, arrays["chars_terms"], arrays["chars_idf"])
        return cls(words=words, chars=chars, facts=tuple(str(f) for f in arrays["facts"]))


def _fit_without_min_df(texts: Iterable[str]) -> TfidfVectorizer:
    vectoriser = _char_vectoriser()
    vectoriser.set_params(min_df=1)
    return vectoriser.fit(list(texts))


def _restore(make, terms: np.ndarray, idf: np.ndarray) -> TfidfVectorizer:
    if len(terms) != len(idf):
        raise ValueError(f"{len(terms)} terms but {len(idf)} IDF weights")
    vectoriser = make({str(term): index for index, term in enumerate(terms)})
    vectoriser.idf_ = np.asarray(idf, dtype=np.float64)
    return vectoriser
