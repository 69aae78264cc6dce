"""The trained model on disk: plain arrays plus a manifest, checked before use.

A model directory holds ``model.npz`` (vocabularies, IDF weights, weight matrix, intercepts, the
calibration's inverse temperature — strings and numbers only, read with ``allow_pickle=False``, so
loading one runs no code) and ``manifest.json``: the file's SHA-256, the artefact format, the feature
recipe, the versions it was made with, the training corpus and the evaluation figures.

``load_model`` refuses an artefact whose hash, format, feature recipe, scikit-learn major version
(its tokenisers chose the n-grams, which ``tfidf`` reproduces) or shapes do not match, or that names
categories the taxonomy does not know; ``load_model_or_none`` turns every such refusal into one
warning and ``None``, so that the pipeline degrades to the rules instead of stopping.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from mailflow.classification.learning.features import FEATURES_VERSION, FeatureSpace
from mailflow.classification.learning.model import Head, ModelCard, RequestsHead, TrainedModel
from mailflow.classification.learning.sparse_weights import served
from mailflow.classification.taxonomy import CATEGORIES

log = logging.getLogger(__name__)

FORMAT = 1
MODEL_FILE = "model.npz"
MANIFEST_FILE = "manifest.json"
HISTORY_DIR = "history"  # the manifests of models since replaced, one per version
_ARRAYS = frozenset(
    {
        "facts",
        "words_terms",
        "words_idf",
        "chars_terms",
        "chars_idf",
        "categories",
        "weights",
        "intercepts",
        "beta",
    }
)


class ArtefactError(Exception):
    """The model artefact is missing, damaged or made for other code."""


def save_model(model: TrainedModel, directory: Path) -> Path:
    """Write the model and its manifest (the manifest last, so a half-written model is never loaded)."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = model.arrays()
    arrays["weights"] = arrays["weights"].astype(np.float32)
    _atomic_write(directory / MODEL_FILE, lambda handle: np.savez_compressed(handle, **arrays))
    card = model.card
    manifest = {
        "format": FORMAT,
        "file": MODEL_FILE,
        "sha256": _sha256(directory / MODEL_FILE),
        "model_version": card.version,
        "trained_at": card.trained_at,
        "features_version": card.features_version,
        "sklearn_version": card.sklearn_version,
        "numpy_version": np.__version__,
        "corpus": card.corpus,
        "categories": list(model.categories),
        "examples": dict(card.examples),
        "left_out": dict(card.left_out),
        "parameters": dict(card.parameters),
        "evaluation": dict(card.evaluation),
    }
    if card.thresholds:
        manifest["thresholds"] = dict(card.thresholds)
        manifest["risk_coverage"] = [dict(row) for row in card.risk_coverage]
    if card.trained_on:
        manifest["trained_on"] = list(card.trained_on)
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    _atomic_write(directory / MANIFEST_FILE, lambda handle: handle.write(text.encode()))
    return directory


def archive_manifest(directory: Path) -> Path | None:
    """Keep the installed model's manifest as ``history/<version>.json`` before it is replaced."""
    source = directory / MANIFEST_FILE
    try:
        text = source.read_text(encoding="utf-8")
        version = str(json.loads(text).get("model_version") or "unversioned")
    except (OSError, ValueError, AttributeError):
        return None  # nothing (readable) installed: nothing to keep
    history = directory / HISTORY_DIR
    history.mkdir(exist_ok=True)
    target = history / f"{Path(version).name}.json"
    _atomic_write(target, lambda handle: handle.write(text.encode()))
    return target


def load_model(directory: Path) -> TrainedModel:
    """The model in ``directory``; ArtefactError says what is wrong with it."""
    manifest = _manifest(directory)
    path = directory / MODEL_FILE
    if not path.is_file():
        raise ArtefactError(f"{path} is missing")
    if _sha256(path) != manifest["sha256"]:
        raise ArtefactError(f"{path} does not match the SHA-256 in its manifest (damaged or replaced)")
    # Each array is read from the file when the model takes it (and a weight matrix is made sparse at
    # once), not all first: loading never holds the whole file and the model side by side.
    try:
        with np.load(path, allow_pickle=False) as stored:
            try:
                return _model(stored, manifest)
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise ArtefactError(f"{path} is inconsistent: {type(exc).__name__}: {exc}") from exc
    except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile) as exc:  # arrays read lazily too
        raise ArtefactError(f"{path} cannot be read: {exc}") from exc


def load_model_or_none(directory: Path) -> TrainedModel | None:
    """The model, or None with a warning: classification then rests on the rules alone."""
    try:
        model = load_model(directory)
    except ArtefactError as exc:
        log.warning("learned model not used, classifying by the rules alone: %s", exc)
        return None
    log.info("learned model %s loaded from %s", model.card.version, directory)
    return model


def _manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ArtefactError(f"no model at {directory} ({MANIFEST_FILE} missing)") from exc
    except (OSError, ValueError) as exc:
        raise ArtefactError(f"{path} is not readable JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ArtefactError(f"{path} is not a JSON object")
    if manifest.get("format") != FORMAT:
        raise ArtefactError(f"artefact format {manifest.get('format')!r}, this code reads format {FORMAT}")
    if manifest.get("features_version") != FEATURES_VERSION:
        raise ArtefactError(
            f"model made with feature recipe {manifest.get('features_version')!r}, "
            f"this code makes recipe {FEATURES_VERSION}: retrain it"
        )
    made_with, installed = str(manifest.get("sklearn_version", "")), _sklearn_version()
    if made_with.split(".")[0] != installed.split(".")[0]:
        raise ArtefactError(f"model made with scikit-learn {made_with or '?'}, this is {installed or 'none'}")
    if not isinstance(manifest.get("sha256"), str):
        raise ArtefactError(f"{path} has no sha256")
    return manifest


def _sklearn_version() -> str:
    """The installed scikit-learn's version, read from its metadata: importing it costs ~75 MB."""
    try:
        return metadata.version("scikit-learn")
    except metadata.PackageNotFoundError:
        return ""


def _model(arrays: Mapping[str, np.ndarray], manifest: Mapping[str, Any]) -> TrainedModel:
    missing = _ARRAYS - set(arrays)
    if missing:
        raise ArtefactError(f"model file lacks {', '.join(sorted(missing))}")
    categories = tuple(str(c) for c in arrays["categories"])
    unknown = set(categories) - set(CATEGORIES)
    if unknown:
        raise ArtefactError(f"model knows categories the taxonomy does not: {', '.join(sorted(unknown))}")
    if categories != tuple(manifest.get("categories", ())):
        raise ArtefactError("the model's categories differ from its manifest's")
    try:
        features = FeatureSpace.from_arrays(arrays)
    except ValueError as exc:
        raise ArtefactError(f"model vocabulary is inconsistent: {exc}") from exc
    weights, intercepts = arrays["weights"], arrays["intercepts"]
    if weights.shape != (len(categories), features.size) or intercepts.shape != (len(categories),):
        raise ArtefactError(
            f"weights {weights.shape} and intercepts {intercepts.shape} do not fit "
            f"{len(categories)} categories × {features.size} features"
        )
    beta = float(arrays["beta"][0])
    if not np.isfinite(beta) or not np.all(np.isfinite(weights)):
        raise ArtefactError("model holds non-finite numbers")
    weights = served(weights)
    card = ModelCard(
        version=str(manifest.get("model_version", "")),
        trained_at=str(manifest.get("trained_at", "")),
        corpus=str(manifest.get("corpus", "")),
        examples=dict(manifest.get("examples", {})),
        left_out=dict(manifest.get("left_out", {})),
        parameters=dict(manifest.get("parameters", {})),
        evaluation=dict(manifest.get("evaluation", {})),
        trained_on=tuple(str(digest) for digest in manifest.get("trained_on", ())),
        thresholds=_thresholds(manifest.get("thresholds", {})),
        risk_coverage=tuple(dict(row) for row in manifest.get("risk_coverage", ())),
        sklearn_version=str(manifest.get("sklearn_version", "")),
        features_version=int(manifest["features_version"]),
    )
    return TrainedModel(
        features,
        categories,
        weights,
        intercepts.astype(np.float64),
        beta,
        card,
        _heads(arrays, features.size),
        _requests(arrays, features.size),
    )


_THRESHOLD_KEYS = frozenset({"act", "redirect_info", "redirect_other", "ignore", "several"})


def _thresholds(raw: Any) -> dict[str, float]:
    """The confidence each action needs; a damaged value would let every email through, so refuse."""
    if not isinstance(raw, dict) or set(raw) - _THRESHOLD_KEYS:
        raise ArtefactError(f"thresholds must be a table of {', '.join(sorted(_THRESHOLD_KEYS))}")
    values = {}
    for key, value in raw.items():
        if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.01:
            raise ArtefactError(f"threshold {key} = {value!r} is not a number between 0 and 1.01")
        values[str(key)] = float(value)
    return values


def _heads(arrays: Mapping[str, np.ndarray], size: int) -> dict[str, Head]:
    heads = {}
    for name in ("intent", "topic", "several"):
        if f"head_{name}_labels" not in arrays:
            continue
        labels = tuple(str(label) for label in arrays[f"head_{name}_labels"])
        weights, intercepts = arrays[f"head_{name}_weights"], arrays[f"head_{name}_intercepts"]
        if weights.shape != (len(labels), size) or intercepts.shape != (len(labels),):
            raise ArtefactError(f"the {name} head's weights do not fit its labels and the features")
        if not np.all(np.isfinite(weights)) or not np.all(np.isfinite(intercepts)):
            raise ArtefactError(f"the {name} head holds non-finite numbers")
        if name == "several" and "yes" not in labels:
            raise ArtefactError("the several-requests head has no 'yes' label")
        heads[name] = Head(
            labels,
            served(weights),
            intercepts.astype(np.float64),
            float(arrays[f"head_{name}_beta"][0]),
        )
    return heads


def _requests(arrays: Mapping[str, np.ndarray], size: int) -> RequestsHead | None:
    if "requests_labels" not in arrays:
        return None
    labels = tuple(str(label) for label in arrays["requests_labels"])
    try:
        weights = arrays["requests_weights"]
        intercepts, betas = arrays["requests_intercepts"], arrays["requests_betas"]
    except KeyError as exc:
        raise ArtefactError(f"the requests head lacks {exc.args[0]}") from exc
    if set(labels) - set(CATEGORIES):
        raise ArtefactError("the requests head names categories the taxonomy does not know")
    rows = (len(labels),)
    if weights.shape != (len(labels), size) or intercepts.shape != rows or betas.shape != rows:
        raise ArtefactError("the requests head's weights do not fit its categories and the features")
    if not all(np.all(np.isfinite(array)) for array in (weights, intercepts, betas)):
        raise ArtefactError("the requests head holds non-finite numbers")
    return RequestsHead(labels, served(weights), intercepts.astype(np.float64), betas.astype(np.float64))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(descriptor, 0o644)  # mkstemp's 0600 would hide the model from the service's user
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
