"""Static word vectors: the weighted mean of known words, stored as plain arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mailflow.classification.word_vectors import WordVectors, load_word_vectors


@pytest.fixture
def vectors() -> WordVectors:
    return WordVectors(
        words=("kaart", "carte", "card", "de"),
        vectors=np.array([[1, 0, 0], [0.9, 0.1, 0], [0.95, 0, 0.05], [0, 1, 0]], dtype=np.float16),
        weights=np.array([1.0, 1.0, 1.0, 0.01], dtype=np.float32),
    )


def test_the_mean_of_known_words_weighted_by_rarity(vectors):
    embedded = vectors.embed("De KAART, de kaart!")
    assert np.linalg.norm(embedded) == pytest.approx(1.0, abs=1e-3)
    assert embedded[0] > 0.99  # "de" is frequent: it barely counts


def test_unknown_words_and_digits_add_nothing(vectors):
    assert not vectors.embed("123 onbekend 456").any()
    assert np.allclose(vectors.embed("carte 2026 xyz"), vectors.embed("carte"))


def test_saved_and_loaded_unchanged(vectors, tmp_path: Path):
    vectors.save(tmp_path)
    loaded = load_word_vectors(tmp_path)
    assert loaded is not None and loaded.words == vectors.words
    assert loaded.digest() == vectors.digest()


def test_missing_vectors_are_none_with_a_warning(tmp_path: Path, caplog):
    assert load_word_vectors(tmp_path / "absent") is None
    assert "no word vectors" in caplog.text
