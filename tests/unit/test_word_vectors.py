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


def test_same_table_compares_words_vectors_and_weights(vectors):
    copy = WordVectors(words=vectors.words, vectors=vectors.vectors.copy(), weights=vectors.weights.copy())
    assert vectors.same_table(copy)
    changed = vectors.vectors.copy()
    changed[0, 0] = 0.5
    assert not vectors.same_table(WordVectors(vectors.words, changed, vectors.weights))
    assert not vectors.same_table(WordVectors(("x", *vectors.words[1:]), vectors.vectors, vectors.weights))


def test_the_analyser_keeps_one_copy_of_the_served_models_vectors(vectors, tmp_path: Path):
    from mailflow.bootstrap import build_analyser
    from mailflow.settings import load_settings

    shipped = build_analyser(load_settings(data_dir=tmp_path))
    assert shipped.model is not None and shipped.word_vectors is shipped.model.features.vectors
    vectors.save(tmp_path / "other")  # other vectors installed for the next training: both kept
    other = build_analyser(load_settings(data_dir=tmp_path, word_vectors_dir=tmp_path / "other"))
    assert other.word_vectors is not None and other.word_vectors.words == vectors.words
    assert other.model is not None and other.model.features.vectors is not other.word_vectors
