"""Static multilingual word vectors: what a sentence encoder knows about words, at the cost of a lookup.

An email's vector is the SIF-weighted mean of the vectors of its words (frequent words weigh little),
normalised to length one. Words outside the vocabulary add nothing; the TF-IDF character n-grams of
the learned model still see them. Made by ``word_vectors_build``; stored as plain arrays
(``vectors.npz``: words, float16 vectors, weights), loaded without pickle.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

WORD = re.compile(r"[^\W\d_]+")
FILE = "vectors.npz"


@dataclass(frozen=True)
class WordVectors:
    words: tuple[str, ...]
    vectors: np.ndarray = field(repr=False)  # (words, dimensions), float16
    weights: np.ndarray = field(repr=False)  # (words,), SIF weight of each word
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {word: i for i, word in enumerate(self.words)})

    @property
    def dimensions(self) -> int:
        return int(self.vectors.shape[1])

    def embed(self, text: str) -> np.ndarray:
        """The text's vector (zeros when none of its words is known)."""
        rows = [i for i in (self._index.get(w) for w in WORD.findall(text.lower())) if i is not None]
        if not rows:
            return np.zeros(self.dimensions, dtype=np.float32)
        weights = self.weights[rows]
        vector = weights @ self.vectors[rows].astype(np.float32)
        norm = float(np.linalg.norm(vector))
        return (vector / norm).astype(np.float32) if norm else vector.astype(np.float32)

    def same_table(self, other: WordVectors) -> bool:
        """The same words, vectors and weights (two loads of one table)."""
        return (
            self.words == other.words
            and np.array_equal(self.vectors, other.vectors)
            and np.array_equal(self.weights, other.weights)
        )

    def digest(self) -> str:
        digest = hashlib.sha256("\n".join(self.words).encode())
        digest.update(np.ascontiguousarray(self.vectors).tobytes())
        digest.update(np.ascontiguousarray(self.weights).tobytes())
        return digest.hexdigest()

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / FILE
        np.savez_compressed(
            path, words=np.array(self.words, dtype=str), vectors=self.vectors, weights=self.weights
        )
        return path

    @classmethod
    def load(cls, directory: Path) -> WordVectors:
        with np.load(directory / FILE, allow_pickle=False) as arrays:
            return cls(
                words=tuple(str(w) for w in arrays["words"]),
                vectors=np.asarray(arrays["vectors"], dtype=np.float16),
                weights=np.asarray(arrays["weights"], dtype=np.float32),
            )


def load_word_vectors(directory: Path) -> WordVectors | None:
    """The word vectors in ``directory``, or None (with a warning) when there are none to read."""
    try:
        vectors = WordVectors.load(directory)
        if vectors.vectors.shape[0] != len(vectors.words) or len(vectors.weights) != len(vectors.words):
            raise ValueError("words, vectors and weights differ in number")
        return vectors
    except Exception as exc:  # a damaged file (bad zip, wrong arrays) must not stop the worker
        log.warning("no word vectors in %s (%s): new models are trained without them", directory, exc)
        return None
