"""Training the learned classifier, with scikit-learn (serving needs none of it: ``model``).

The TF-IDF vocabularies and IDF weights are fitted by ``TfidfVectorizer`` and handed over as plain
arrays (``tfidf.Tfidf``); the matrix the classifiers learn from is built with the same ``row`` that
serving uses, so a model learns from exactly the numbers it will be shown. Classifier: a linear SVM
(fast and strong on sparse text) inside ``CalibratedClassifierCV`` with temperature scaling, fitted on
cross-validated decision values (``ensemble=False``: one SVM fitted on every example, one
temperature). Temperature scaling has a single parameter, which is what a few examples per category
can support; it keeps the SVM's ranking and only makes its scores honest probabilities.

Examples come from any source — labelled corpora today, staff corrections later — as an iterable of
``Example``. A category with fewer than ``MIN_EXAMPLES`` examples cannot be calibrated and is left
out (the rules still know it); the model then has no opinion on it.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np
import sklearn
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from mailflow.classification.learning.features import (
    CHAR_MIN_DF,
    CHAR_NGRAMS,
    WORD_MIN_DF,
    WORD_NGRAMS,
    FeatureSpace,
    ModelInput,
    ask_text,
)
from mailflow.classification.learning.model import Head, ModelCard, RequestsHead, TrainedModel, content_hash
from mailflow.classification.learning.tfidf import Analyser, Tfidf
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
    features = fit_features(inputs, vectors)
    matrix = feature_matrix(features, inputs)
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
                "several_examples": sum(len(example.intents) > 1 for example in chosen),
            },
            sklearn_version=sklearn.__version__,
        ),
    )
    version = f"{when:%Y%m%dT%H%M%SZ}-{content_hash(model.arrays())[:12]}"
    return replace(model, card=replace(model.card, version=version))


def fit_features(inputs: Sequence[ModelInput], vectors: WordVectors | None = None) -> FeatureSpace:
    """The feature space of these inputs: TF-IDF vocabularies and IDF weights, the facts seen."""
    texts = [item.text for item in inputs]
    words = _fit_tfidf("word", WORD_NGRAMS, WORD_MIN_DF, texts)
    chars = _fit_tfidf("char_wb", CHAR_NGRAMS, CHAR_MIN_DF, texts)
    asks = _fit_tfidf("word", WORD_NGRAMS, WORD_MIN_DF, [ask_text(item.plain) for item in inputs])
    facts = tuple(sorted({fact for item in inputs for fact in item.facts}))
    return FeatureSpace(words=words, chars=chars, facts=facts, vectors=vectors, asks=asks)


def feature_matrix(features: FeatureSpace, inputs: Sequence[ModelInput]) -> sparse.csr_matrix:
    """The inputs' feature rows (``FeatureSpace.row``, as served) as one float32 sparse matrix."""
    rows = [features.row(item) for item in inputs]
    indptr = np.cumsum([0, *(len(indices) for indices, _ in rows)])
    indices = np.concatenate([np.zeros(0, dtype=np.intp), *(indices for indices, _ in rows)])
    values = np.concatenate([np.zeros(0), *(values for _, values in rows)]).astype(np.float32)
    matrix = sparse.csr_matrix((values, indices, indptr), shape=(len(inputs), features.size))
    matrix.sum_duplicates()  # also sorts each row's columns
    return matrix


def vectoriser(
    analyser: Analyser,
    ngram_range: tuple[int, int],
    *,
    min_df: int = 1,
    vocabulary: Mapping[str, int] | None = None,
) -> TfidfVectorizer:
    """scikit-learn's vectoriser for one TF-IDF block: the recipe ``tfidf.Tfidf`` serves."""
    return TfidfVectorizer(
        analyzer=analyser,
        ngram_range=ngram_range,
        sublinear_tf=True,
        min_df=min_df,
        dtype=np.float32,
        vocabulary=vocabulary,
    )


def _fit_tfidf(analyser: Analyser, ngram_range: tuple[int, int], min_df: int, texts: Sequence[str]) -> Tfidf:
    try:
        fitted = vectoriser(analyser, ngram_range, min_df=min_df).fit(texts)
    except ValueError:  # too few emails for any term to occur twice
        try:
            fitted = vectoriser(analyser, ngram_range).fit(texts)
        except ValueError:  # no term at all (no email has an asking sentence): an empty block
            return Tfidf.from_terms(analyser, ngram_range, [], np.zeros(0))
    terms = sorted(fitted.vocabulary_, key=fitted.vocabulary_.__getitem__)  # sorted: columns in term order
    return Tfidf.from_terms(analyser, ngram_range, terms, fitted.idf_)


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
