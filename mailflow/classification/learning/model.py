"""The learned classifier as served: a calibrated linear model over ``features.FeatureSpace``.

A trained model is its vocabularies, IDF weights, one weight matrix, intercepts and the inverse
temperature ``beta``, and its probabilities are ``softmax(beta · (x·Wᵀ + b))`` — exactly what
scikit-learn's ``CalibratedClassifierCV.predict_proba`` computes, which a test checks. That is what
lets the artefact be plain arrays instead of a pickle, and the worker serve it without importing
scikit-learn (``training`` fits it, with scikit-learn).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mailflow.classification.learning.features import FEATURES_VERSION, FeatureSpace, ModelInput
from mailflow.classification.learning.sparse_weights import ColumnWeights, product


@dataclass(frozen=True)
class Head:
    """One more calibrated linear classifier over the same features: intent, topic, several requests."""

    labels: tuple[str, ...]
    weights: np.ndarray | ColumnWeights = field(repr=False)
    intercepts: np.ndarray = field(repr=False)
    beta: float

    def predict(self, indices: np.ndarray, values: np.ndarray) -> dict[str, float]:
        logits = self.beta * (product(self.weights, indices, values) + self.intercepts)
        exp = np.exp(logits - logits.max())
        return {label: float(p) for label, p in zip(self.labels, exp / exp.sum(), strict=True)}


@dataclass(frozen=True)
class RequestsHead:
    """Which requests an email makes, each category judged on its own (one-vs-rest, calibrated per
    category): unlike the category head, two categories can both be likely — an email asking for two
    things. Each row is ``p(category asked) = sigmoid(2·beta·(x·w + b))``, the binary form of
    ``Head``."""

    labels: tuple[str, ...]
    weights: np.ndarray | ColumnWeights = field(repr=False)  # (labels, features)
    intercepts: np.ndarray = field(repr=False)  # (labels,)
    betas: np.ndarray = field(repr=False)  # (labels,) one inverse temperature per category

    def predict(self, indices: np.ndarray, values: np.ndarray) -> dict[str, float]:
        logits = 2.0 * self.betas * (product(self.weights, indices, values) + self.intercepts)
        probabilities = 1.0 / (1.0 + np.exp(-np.clip(logits, -50.0, 50.0)))
        return {label: float(p) for label, p in zip(self.labels, probabilities, strict=True)}


@dataclass(frozen=True)
class Prediction:
    """The model's view of one email: its categories, and what is asked about what."""

    categories: dict[str, float]
    intent: dict[str, float]
    topic: dict[str, float]
    several: float  # the probability that it asks for several things (or for several persons)
    has_several_head: bool = True  # False: the model could not learn several requests
    requests: dict[str, float] = field(default_factory=dict)  # per category: is it one of the requests
    several_examples: int = 0  # emails of several requests the model learnt from (0: not recorded)


@dataclass(frozen=True)
class ModelCard:
    """What a model is and how it was made: written to the artefact's manifest."""

    version: str  # trained-at timestamp + hash of the model's numbers
    trained_at: str
    corpus: str
    examples: Mapping[str, int]  # per category, as trained on
    left_out: Mapping[str, int] = field(default_factory=dict)  # categories with too few examples
    parameters: Mapping[str, Any] = field(default_factory=dict)
    evaluation: Mapping[str, Any] = field(default_factory=dict)
    # Short SHA-256 digests of the emails trained on: a later retraining can then tell which
    # held-out emails this model has seen (its figures on those would flatter it).
    trained_on: tuple[str, ...] = ()
    # The confidence each action group needs ("act", "redirect_info", …), chosen on held-out emails.
    thresholds: Mapping[str, float] = field(default_factory=dict)
    risk_coverage: tuple[Mapping[str, Any], ...] = ()  # the held-out table the thresholds came from
    sklearn_version: str = ""  # the scikit-learn that fitted it (its tokenisers chose the vocabulary)
    features_version: int = FEATURES_VERSION


@dataclass(frozen=True)
class TrainedModel:
    features: FeatureSpace
    categories: tuple[str, ...]
    weights: np.ndarray | ColumnWeights = field(repr=False)  # (categories, features)
    intercepts: np.ndarray = field(repr=False)  # (categories,)
    beta: float  # inverse temperature
    card: ModelCard
    heads: Mapping[str, Head] = field(default_factory=dict)  # "intent", "topic", "several"
    requests: RequestsHead | None = None

    def predict(self, item: ModelInput) -> dict[str, float]:
        """The calibrated probability of each category for one email."""
        indices, values = self.features.row(item)
        logits = self.beta * (product(self.weights, indices, values) + self.intercepts)
        exp = np.exp(logits - logits.max())
        return {category: float(p) for category, p in zip(self.categories, exp / exp.sum(), strict=True)}

    def predict_all(self, item: ModelInput) -> Prediction:
        indices, values = self.features.row(item)
        logits = self.beta * (product(self.weights, indices, values) + self.intercepts)
        exp = np.exp(logits - logits.max())
        categories = {c: float(p) for c, p in zip(self.categories, exp / exp.sum(), strict=True)}
        heads = {name: head.predict(indices, values) for name, head in self.heads.items()}
        return Prediction(
            categories=categories,
            intent=heads.get("intent", {}),
            topic=heads.get("topic", {}),
            several=heads.get("several", {}).get("yes", 0.0),
            has_several_head="several" in heads,
            requests=self.requests.predict(indices, values) if self.requests else {},
            several_examples=int(self.card.parameters.get("several_examples", 0)),
        )

    def arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            **self.features.to_arrays(),
            "categories": np.array(self.categories, dtype=str),
            "weights": np.asarray(self.weights, dtype=np.float32),
            "intercepts": self.intercepts,
            "beta": np.array([self.beta], dtype=np.float64),
        }
        for name, head in self.heads.items():
            arrays[f"head_{name}_labels"] = np.array(head.labels, dtype=str)
            arrays[f"head_{name}_weights"] = np.asarray(head.weights, dtype=np.float32)
            arrays[f"head_{name}_intercepts"] = head.intercepts
            arrays[f"head_{name}_beta"] = np.array([head.beta], dtype=np.float64)
        if self.requests is not None:
            arrays["requests_labels"] = np.array(self.requests.labels, dtype=str)
            arrays["requests_weights"] = np.asarray(self.requests.weights, dtype=np.float32)
            arrays["requests_intercepts"] = self.requests.intercepts
            arrays["requests_betas"] = self.requests.betas
        return arrays

    def with_evaluation(self, evaluation: Mapping[str, Any]) -> TrainedModel:
        return replace(self, card=replace(self.card, evaluation=dict(evaluation)))

    def with_thresholds(
        self, thresholds: Mapping[str, float], table: Sequence[Mapping[str, Any]] = ()
    ) -> TrainedModel:
        card = replace(self.card, thresholds=dict(thresholds), risk_coverage=tuple(table))
        return replace(self, card=card)

    def with_trained_on(self, digests: Iterable[str]) -> TrainedModel:
        return replace(self, card=replace(self.card, trained_on=tuple(sorted(set(digests)))))


def content_hash(arrays: Mapping[str, np.ndarray]) -> str:
    """A hash of the numbers themselves (a file's hash also covers its container's timestamps)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
