"""The learned classifier: a calibrated linear model over ``features.FeatureSpace``.

Training uses scikit-learn: a linear SVM (fast and strong on sparse text) inside
``CalibratedClassifierCV`` with temperature scaling, fitted on cross-validated decision values
(``ensemble=False``: one SVM fitted on every example, one temperature). Temperature scaling has a
single parameter, which is what a few examples per category can support; it keeps the SVM's ranking
and only makes its scores honest probabilities.

Serving needs none of scikit-learn's estimators: a trained model is its vocabularies, IDF weights,
one weight matrix, intercepts and the inverse temperature ``beta``, and its probabilities are
``softmax(beta · (x·Wᵀ + b))`` — exactly what ``CalibratedClassifierCV.predict_proba`` computes, which
a test checks. That is what lets the artefact be plain arrays instead of a pickle.

Examples come from any source — labelled corpora today, staff corrections later — as an iterable of
``Example``. A category with fewer than ``MIN_EXAMPLES`` examples cannot be calibrated and is left
out (the rules still know it); the model then has no opinion on it.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sklearn
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from mailflow.classification.learning.features import FEATURES_VERSION, FeatureSpace, ModelInput
from mailflow.classification.taxonomy import intent_of
from mailflow.classification.word_vectors import WordVectors

log = logging.getLogger(__name__)

MIN_EXAMPLES = 3
CALIBRATION_FOLDS = 3
SVM_C = 1.0
SEED = 0


class TrainingError(ValueError):
    """The examples cannot make a model (too few, or too few categories)."""


@dataclass(frozen=True)
class Example:
    input: ModelInput
    category: str
    source: str = ""  # where it came from (a file name, a correction id): for reports only
    intents: tuple[str, ...] = ()  # its several requests, when it has several


@dataclass(frozen=True)
class Head:
    """One more calibrated linear classifier over the same features: intent, topic, several requests."""

    labels: tuple[str, ...]
    weights: np.ndarray = field(repr=False)
    intercepts: np.ndarray = field(repr=False)
    beta: float

    def predict(self, indices: np.ndarray, values: np.ndarray) -> dict[str, float]:
        logits = self.beta * (self.weights[:, indices] @ values + self.intercepts)
        exp = np.exp(logits - logits.max())
        return {label: float(p) for label, p in zip(self.labels, exp / exp.sum(), strict=True)}


@dataclass(frozen=True)
class RequestsHead:
    """Which requests an email makes, each category judged on its own (one-vs-rest, calibrated per
    category): unlike the category head, two categories can both be likely — an email asking for two
    things. Each row is ``p(category asked) = sigmoid(2·beta·(x·w + b))``, the binary form of
    ``Head``."""

    labels: tuple[str, ...]
    weights: np.ndarray = field(repr=False)  # (labels, features)
    intercepts: np.ndarray = field(repr=False)  # (labels,)
    betas: np.ndarray = field(repr=False)  # (labels,) one inverse temperature per category

    def predict(self, indices: np.ndarray, values: np.ndarray) -> dict[str, float]:
        logits = 2.0 * self.betas * (self.weights[:, indices] @ values + self.intercepts)
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
    sklearn_version: str = sklearn.__version__
    features_version: int = FEATURES_VERSION


@dataclass(frozen=True)
class TrainedModel:
    features: FeatureSpace
    categories: tuple[str, ...]
    weights: np.ndarray = field(repr=False)  # (categories, features)
    intercepts: np.ndarray = field(repr=False)  # (categories,)
    beta: float  # inverse temperature
    card: ModelCard
    heads: Mapping[str, Head] = field(default_factory=dict)  # "intent", "topic", "several"
    requests: RequestsHead | None = None

    def probabilities(self, inputs: Sequence[ModelInput]) -> np.ndarray:
        """Calibrated probabilities, one row per input, columns in ``categories`` order."""
        scores = self.features.transform(inputs) @ self.weights.T + self.intercepts
        logits = self.beta * np.asarray(scores, dtype=np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, item: ModelInput) -> dict[str, float]:
        """The calibrated probability of each category for one email."""
        indices, values = self.features.row(item)
        logits = self.beta * (self.weights[:, indices] @ values + self.intercepts)
        exp = np.exp(logits - logits.max())
        return {category: float(p) for category, p in zip(self.categories, exp / exp.sum(), strict=True)}

    def predict_all(self, item: ModelInput) -> Prediction:
        indices, values = self.features.row(item)
        logits = self.beta * (self.weights[:, indices] @ values + self.intercepts)
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
        )

    def arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            **self.features.to_arrays(),
            "categories": np.array(self.categories, dtype=str),
            "weights": self.weights,
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


def train(
    examples: Iterable[Example],
    *,
    corpus: str = "",
    c: float = SVM_C,
    now: datetime | None = None,
    vectors: WordVectors | None = None,
    topics: Mapping[str, str] | None = None,
) -> TrainedModel:
    """Fit a model on labelled examples from any source; TrainingError when they cannot make one.

    Besides the category, heads for the intent (from the taxonomy), the topic (``topics``: the
    catalogue's topic of each category) and several requests are fitted on the same features.
    """
    chosen, left_out = _usable(list(examples))
    counts = Counter(example.category for example in chosen)
    inputs = [example.input for example in chosen]
    labels = np.array([example.category for example in chosen])
    features = FeatureSpace.fit(inputs, vectors)
    matrix = features.transform(inputs)
    folds = min(CALIBRATION_FOLDS, min(counts.values()))
    categories, weights, intercepts, beta = linear_form(fit_calibrated(matrix, labels, c=c, folds=folds))
    head_labels = {
        "intent": [intent_of(example.category) for example in chosen],
        "several": ["yes" if len(example.intents) > 1 else "no" for example in chosen],
    }
    if topics:
        head_labels["topic"] = [topics.get(example.category, "none") for example in chosen]
    heads = {}
    for name, values in head_labels.items():
        head_counts = Counter(values)
        if len(head_counts) < 2 or min(head_counts.values()) < MIN_EXAMPLES:
            continue
        head_folds = min(CALIBRATION_FOLDS, min(head_counts.values()))
        fitted = linear_form(fit_calibrated(matrix, np.array(values), c=c, folds=head_folds))
        heads[name] = Head(*fitted)
    requests = fit_requests(matrix, [example.intents or (example.category,) for example in chosen], c=c)
    when = now or datetime.now(UTC)
    model = TrainedModel(
        features=features,
        categories=categories,
        weights=weights,
        intercepts=intercepts,
        beta=beta,
        heads=heads,
        requests=requests,
        card=ModelCard(
            version="",
            trained_at=when.isoformat(timespec="seconds"),
            corpus=corpus,
            examples=dict(sorted(counts.items())),
            left_out=left_out,
            parameters={
                "model": "LinearSVC + CalibratedClassifierCV(temperature)",
                "C": c,
                "calibration_folds": folds,
                "features": features.size,
            },
        ),
    )
    version = f"{when:%Y%m%dT%H%M%SZ}-{content_hash(model.arrays())[:12]}"
    return replace(model, card=replace(model.card, version=version))


def fit_requests(
    matrix: sparse.csr_matrix, asked: Sequence[Sequence[str]], *, c: float
) -> RequestsHead | None:
    """One calibrated binary classifier per category asked in enough emails to learn from
    (``MIN_EXAMPLES`` with it and without it); None without a single email of several requests, for
    then nothing shows what a second request looks like."""
    if not any(len(requests) > 1 for requests in asked):
        return None
    counts = Counter(category for requests in asked for category in set(requests))
    labels = sorted(category for category, n in counts.items() if n >= MIN_EXAMPLES)
    rows = []
    for label in labels:
        target = np.array([label in requests for requests in asked])
        positives = int(target.sum())
        if len(target) - positives < MIN_EXAMPLES:
            continue
        folds = min(CALIBRATION_FOLDS, positives, len(target) - positives)
        _, weights, intercepts, beta = linear_form(fit_calibrated(matrix, target, c=c, folds=folds))
        rows.append((label, weights[1], intercepts[1], beta))
    if not rows:
        return None
    return RequestsHead(
        labels=tuple(row[0] for row in rows),
        weights=np.vstack([row[1] for row in rows]).astype(np.float32),
        intercepts=np.array([row[2] for row in rows], dtype=np.float64),
        betas=np.array([row[3] for row in rows], dtype=np.float64),
    )


def fit_calibrated(
    matrix: sparse.csr_matrix, labels: np.ndarray, *, c: float, folds: int
) -> CalibratedClassifierCV:
    calibrated = CalibratedClassifierCV(
        LinearSVC(C=c, random_state=SEED),
        method="temperature",
        ensemble=False,
        cv=StratifiedKFold(folds, shuffle=True, random_state=SEED),
    )
    with warnings.catch_warnings():
        # A few examples per category: liblinear may stop at its iteration limit, harmlessly here.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return calibrated.fit(matrix, labels)


def linear_form(
    calibrated: CalibratedClassifierCV,
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, float]:
    """(categories, weights, intercepts, beta) such that softmax(beta·(x·Wᵀ + b)) = predict_proba(x)."""
    (fitted,) = calibrated.calibrated_classifiers_
    svm, beta = fitted.estimator, float(fitted.calibrators[0].beta_)
    weights, intercepts = (
        np.asarray(svm.coef_, dtype=np.float32),
        np.asarray(svm.intercept_, dtype=np.float64),
    )
    if len(calibrated.classes_) == 2:
        # A binary SVM has one score; the calibration reads it as the logits (-s, s).
        weights, intercepts = np.vstack([-weights, weights]), np.concatenate([-intercepts, intercepts])
    # The SVM was fitted on the calibrator's encoded labels: its rows follow ``calibrated.classes_``.
    return tuple(str(c) for c in calibrated.classes_), weights, intercepts, beta


def content_hash(arrays: Mapping[str, np.ndarray]) -> str:
    """A hash of the numbers themselves (a file's hash also covers its container's timestamps)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _usable(examples: list[Example]) -> tuple[list[Example], dict[str, int]]:
    counts = Counter(example.category for example in examples)
    left_out = {category: n for category, n in sorted(counts.items()) if n < MIN_EXAMPLES}
    if left_out:
        log.warning(
            "left out of the model (fewer than %d examples): %s",
            MIN_EXAMPLES,
            ", ".join(f"{category} ({n})" for category, n in left_out.items()),
        )
    chosen = [example for example in examples if example.category not in left_out]
    if len({example.category for example in chosen}) < 2:
        raise TrainingError(
            f"a model needs at least two categories with {MIN_EXAMPLES} examples each "
            f"(got {len(examples)} examples in {len(counts)} categories)"
        )
    return chosen, left_out
