"""A served model's weights held without their zeros give the dense products."""

from __future__ import annotations

import numpy as np

from mailflow.classification.learning.sparse_weights import ColumnWeights, product, served


def _matrix(rows: int, columns: int, density: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dense = rng.normal(size=(rows, columns)).astype(np.float32)
    dense[rng.random(size=dense.shape) > density] = 0.0
    dense[:, 3] = 0.0  # a column with no weight at all
    return dense


def test_products_equal_the_dense_ones() -> None:
    dense = _matrix(39, 20_000, 0.37, seed=1)  # wider than one conversion block
    weights = ColumnWeights.of(dense)
    rng = np.random.default_rng(2)
    for _ in range(20):
        columns = np.unique(rng.integers(0, dense.shape[1], size=rng.integers(0, 400)))
        values = rng.random(len(columns))
        expected = dense[:, columns] @ values
        found = product(weights, columns, values)
        assert found.shape == (39,) and found.dtype == np.float64
        np.testing.assert_allclose(found, expected, rtol=1e-9, atol=1e-9)
    assert np.all(product(weights, np.array([3], dtype=np.intp), np.array([1.0])) == 0.0)
    assert weights.nbytes < dense.nbytes * 0.6


def test_the_dense_matrix_comes_back_exactly() -> None:
    dense = _matrix(300, 1_000, 0.2, seed=3)  # more rows than a byte can number
    weights = ColumnWeights.of(dense)
    assert weights.rows.dtype == np.uint16
    assert np.array_equal(np.asarray(weights), dense)
    assert np.asarray(weights, dtype=np.float64).dtype == np.float64
    empty = ColumnWeights.of(np.zeros((2, 5), dtype=np.float32))
    assert np.array_equal(np.asarray(empty), np.zeros((2, 5))) and empty.values.size == 0


def test_a_matrix_that_would_not_shrink_stays_dense() -> None:
    small_head = _matrix(2, 5_000, 0.9, seed=4)  # two rows, few zeros: the index costs more
    assert isinstance(served(small_head), np.ndarray)
    assert isinstance(served(_matrix(39, 5_000, 0.37, seed=5)), ColumnWeights)
