"""scikit-learn's own computation of the learned model's features and probabilities: the reference the
served code (``learning.tfidf``, ``FeatureSpace.row``, ``TrainedModel.predict_all``) is held to."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from mailflow.classification.learning.features import (
    FACT_WEIGHT,
    RULE_FEATURES,
    VECTOR_SCALE,
    FeatureSpace,
    ModelInput,
    ask_text,
    rule_features,
)
from mailflow.classification.learning.model import TrainedModel
from mailflow.classification.learning.sparse_weights import ColumnWeights
from mailflow.classification.learning.tfidf import Tfidf
from mailflow.classification.learning.training import vectoriser


def sklearn_vectoriser(block: Tfidf) -> TfidfVectorizer:
    """The fitted ``TfidfVectorizer`` a block stands for: its vocabulary and IDF weights."""
    fitted = vectoriser(block.analyser, block.ngram_range, vocabulary=block.vocabulary())
    fitted.idf_ = block.idf
    return fitted


def sklearn_matrix(features: FeatureSpace, inputs: Sequence[ModelInput]) -> sparse.csr_matrix:
    """The inputs' features as a float32 matrix, the TF-IDF blocks by ``TfidfVectorizer.transform``."""
    texts = [item.text for item in inputs]
    facts = sparse.lil_matrix((len(inputs), len(features.facts)), dtype=np.float32)
    rules = sparse.lil_matrix((len(inputs), RULE_FEATURES), dtype=np.float32)
    for row, item in enumerate(inputs):
        for fact in item.facts:
            if fact in features.facts:
                facts[row, features.facts.index(fact)] = FACT_WEIGHT
        for column, value in zip(*rule_features(item), strict=True):
            rules[row, column] = value
    blocks = [
        sklearn_vectoriser(features.words).transform(texts),
        sklearn_vectoriser(features.chars).transform(texts),
    ]
    if features.asks is not None:
        blocks.append(sklearn_vectoriser(features.asks).transform([ask_text(item.plain) for item in inputs]))
    blocks += [
        facts.tocsr(),
        rules.tocsr(),
    ]
    if features.vectors is not None:
        dense = np.vstack([features.vectors.embed(item.plain) for item in inputs]) * VECTOR_SCALE
        blocks.append(sparse.csr_matrix(dense.astype(np.float32)))
    return sparse.hstack(blocks, format="csr", dtype=np.float32)


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def sklearn_predictions(model: TrainedModel, inputs: Sequence[ModelInput]) -> dict[str, np.ndarray]:
    """Every head's probabilities (one row per input) from ``sklearn_matrix``'s features."""
    matrix = sklearn_matrix(model.features, inputs)

    def scores(weights: np.ndarray | ColumnWeights, intercepts: np.ndarray) -> np.ndarray:
        return np.asarray(matrix @ np.asarray(weights, dtype=np.float64).T) + intercepts

    found = {"categories": _softmax(model.beta * scores(model.weights, model.intercepts))}
    for name, head in model.heads.items():
        found[name] = _softmax(head.beta * scores(head.weights, head.intercepts))
    if model.requests is not None:
        logits = 2.0 * model.requests.betas * scores(model.requests.weights, model.requests.intercepts)
        found["requests"] = 1.0 / (1.0 + np.exp(-np.clip(logits, -50.0, 50.0)))
    return found
