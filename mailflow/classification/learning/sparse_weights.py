"""A served model's weight matrices without their zeros.

About 63 % of the shipped model's weights are exactly zero (a feature no email of a category ever
had), scattered over rows and columns. Held by column, without the zeros — each non-zero a float32
and the row it belongs to in one byte — its three large matrices (categories, requests, topics) take
about 30 MB instead of 61, and a prediction reads only the columns of the email's features, as the
dense product did. A matrix that would not shrink (a two-row head) stays dense. Training keeps dense
arrays; only a model loaded for serving is held this way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_BLOCK = 8192  # columns converted at a time: no transient copy of a whole matrix


@dataclass(frozen=True, eq=False)
class ColumnWeights:
    """A (rows, features) matrix by column: column ``j``'s non-zeros are ``values[starts[j]:starts[j+1]]``
    in the rows ``rows[starts[j]:starts[j+1]]``."""

    shape: tuple[int, int]
    starts: np.ndarray = field(repr=False)  # (features + 1,) int32 (int64 past 2³¹ non-zeros)
    rows: np.ndarray = field(repr=False)  # (non-zeros,) the smallest unsigned type that holds a row
    values: np.ndarray = field(repr=False)  # (non-zeros,) float32

    @classmethod
    def of(cls, dense: np.ndarray) -> ColumnWeights:
        dense = np.asarray(dense, dtype=np.float32)
        height, width = dense.shape
        row_type = np.min_scalar_type(max(height - 1, 0))
        counts = np.zeros(width + 1, dtype=np.int64)
        rows, values = [], []
        for first in range(0, width, _BLOCK):
            block = dense[:, first : first + _BLOCK].T  # (columns, rows): non-zeros come column by column
            column, row = np.nonzero(block)
            counts[first + 1 : first + 1 + block.shape[0]] = np.bincount(column, minlength=block.shape[0])
            rows.append(row.astype(row_type))
            values.append(block[column, row])
        return cls(
            (height, width),
            np.cumsum(counts).astype(np.int32 if counts.sum() < 2**31 else np.int64),
            np.concatenate(rows) if rows else np.zeros(0, dtype=row_type),
            np.concatenate(values) if values else np.zeros(0, dtype=np.float32),
        )

    @property
    def nbytes(self) -> int:
        return self.starts.nbytes + self.rows.nbytes + self.values.nbytes

    def dot(self, columns: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``dense[:, columns] @ values``, in float64."""
        starts = self.starts[columns].astype(np.int64)
        ends = self.starts[np.asarray(columns) + 1].astype(np.int64)
        counts = ends - starts
        total = int(counts.sum())
        if not total:
            return np.zeros(self.shape[0], dtype=np.float64)
        # The position of every non-zero of the chosen columns, column after column.
        offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total)
        products = self.values[offsets] * np.repeat(np.asarray(values, dtype=np.float64), counts)
        return np.bincount(self.rows[offsets], weights=products, minlength=self.shape[0])

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        """The dense matrix again (to save a model, or to compare it)."""
        dense = np.zeros(self.shape, dtype=np.float32)
        column = np.repeat(np.arange(self.shape[1]), np.diff(self.starts))
        dense[self.rows, column] = self.values
        return dense if dtype is None else dense.astype(dtype)


def served(dense: np.ndarray) -> np.ndarray | ColumnWeights:
    """The matrix as a served model holds it: without its zeros, unless that would not be smaller."""
    dense = np.asarray(dense, dtype=np.float32)
    sparse = ColumnWeights.of(dense)
    return sparse if sparse.nbytes < dense.nbytes else dense


def product(weights: np.ndarray | ColumnWeights, columns: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``weights[:, columns] @ values`` for a dense matrix or a ``ColumnWeights``."""
    if isinstance(weights, ColumnWeights):
        return weights.dot(columns, values)
    return weights[:, columns] @ values
