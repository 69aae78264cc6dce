"""Retraining: labelled corpora plus the staff's decisions, a held-out comparison, and installation.

One function, ``retrain``, used by ``mailflow train`` and by the worker's nightly job. It observes every
example through the real pipeline (staff-labelled emails are read from the blob store), lets
``promotion`` decide whether the new model is at least as good as the installed one, and installs it
only then — keeping the replaced model's manifest under ``history/`` and writing both models' held-out
figures into the new manifest. ``record_result`` adds the decision to the event log.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from mailflow.classification.learning.artefact import archive_manifest, load_model_or_none, save_model
from mailflow.classification.learning.model import TrainedModel
from mailflow.classification.taxonomy import CATEGORIES
from mailflow.domain import Action
from mailflow.evaluation.corpus import LabelledEmail, read_corpora
from mailflow.evaluation.metrics import figures
from mailflow.evaluation.promotion import Verdict, evaluate_candidate, promotion_record
from mailflow.evaluation.report import as_dict, summary
from mailflow.evaluation.run import (
    Observed,
    Stopping,
    cross_validate,
    give_up_if,
    never,
    observe_all,
    observe_raw,
    score,
)
from mailflow.pipeline import Analyser
from mailflow.storage.labels import iter_labelled_examples
from mailflow.storage.models import Event

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
_ACTIONS = frozenset(action.value for action in Action)


class Blobs(Protocol):
    def get(self, sha256: str) -> bytes: ...


@dataclass(frozen=True)
class Retrained:
    verdict: Verdict
    installed: Path | None  # the model directory written, None when the old model was kept
    record: dict[str, Any]  # what the manifest and the event log keep of the decision
    emails: int
    staff: int


def staff_emails(sessions: sessionmaker[Session], blobs: Blobs) -> list[tuple[LabelledEmail, bytes]]:
    """The staff's latest label of each email, with its bytes; one label per distinct email content."""
    found: dict[str, tuple[LabelledEmail, bytes]] = {}
    for label in iter_labelled_examples(sessions):
        if label.category not in CATEGORIES or label.action not in _ACTIONS:
            log.warning("staff label %s skipped: category or action no longer in the taxonomy", label.id)
            continue
        try:
            raw = blobs.get(label.sha256)
        except (OSError, ValueError):
            log.warning("staff label %s skipped: its email is not in the blob store", label.id)
            continue
        email = LabelledEmail(
            path=Path(f"staff-label-{label.id}.eml"),  # a name for reports; the bytes come from the blob
            category=label.category,
            action=label.action,
            language=label.language,
            intents=label.intents,
        )
        found.pop(label.sha256, None)  # the same email labelled twice: the later label counts
        found[label.sha256] = (email, raw)
    return list(found.values())


def retrain(
    analyser: Analyser,
    model_dir: Path,
    *,
    directories: Sequence[Path] = (),
    sessions: sessionmaker[Session] | None = None,
    blobs: Blobs | None = None,
    output: Path | None = None,
    force: bool = False,
    folds: int = 0,
    now: datetime | None = None,
    progress: Progress | None = None,
    jobs: int = 1,
    stopping: Stopping = never,
) -> Retrained:
    """Train on corpora and staff labels; install into ``output or model_dir`` when at least as good.

    ``analyser`` is the pipeline to score with (its own model is ignored): the installed model is read
    from ``model_dir``. With ``folds`` ≥ 2 an installed model's manifest also gets K-fold figures over
    every example, as ``mailflow bench classify --cv`` reports them. ``jobs``: processes observing
    the corpus emails (see ``run.observe_all``). TrainingError when the examples cannot make a model;
    CorpusError for a bad corpus; Interrupted, with nothing installed, once ``stopping`` turns true.
    """
    say = progress or log.info
    corpora = list(read_corpora(directories))
    staff = staff_emails(sessions, blobs) if sessions is not None and blobs is not None else []
    say(f"{len(corpora)} corpus emails, {len(staff)} staff-labelled emails")
    observed = observe_all(analyser, corpora, progress=say, jobs=jobs, stopping=stopping)
    for email, raw in staff:
        give_up_if(stopping)
        observed.append(observe_raw(analyser, email, raw))
    failed = [o.email.name for o in observed if o.seen is None]
    if failed:
        say(f"{len(failed)} could not be analysed and are left out: {', '.join(failed)}")
    usable = [o for o in observed if o.seen is not None]
    from_corpora = sum(o.seen is not None for o in observed[: len(corpora)])
    digests = [digest(o.seen.raw) for o in usable if o.seen is not None]
    corpus = describe(directories, len(usable), len(staff))
    current = load_model_or_none(model_dir)
    known = known_examples(current, digests, from_corpora)
    verdict = evaluate_candidate(
        analyser, usable, current, known=known, corpus=corpus, force=force, now=now, stopping=stopping
    )
    say(verdict.candidate.line())
    say(verdict.current.line())
    record = promotion_record(verdict, current) | {
        "staff_labels": len(staff),
        "corpora": describe_dirs(directories),
    }
    installed = None
    if verdict.promote and verdict.model is not None:
        evaluation = (
            cross_validation_summary(analyser, usable, folds, corpus, say, stopping) if folds >= 2 else {}
        )
        model = verdict.model.with_trained_on(digests)
        give_up_if(stopping)  # the last moment: an installation, once begun, is finished
        installed = install(model, output or model_dir, evaluation | {"promotion": record})
        say(f"model {verdict.model.card.version} installed in {installed}: {verdict.reason}")
    else:
        say(f"installed model kept: {verdict.reason}")
    return Retrained(verdict, installed, record, len(usable), len(staff))


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


def known_examples(current: TrainedModel | None, digests: Sequence[str], from_corpora: int) -> set[int]:
    """Which examples the installed model learnt from: its manifest says, or (older manifests) the corpora."""
    if current is None:
        return set()
    if current.card.trained_on:
        seen = set(current.card.trained_on)
        return {index for index, value in enumerate(digests) if value in seen}
    return set(range(from_corpora))


def install(model: TrainedModel, directory: Path, evaluation: dict[str, Any]) -> Path:
    archive_manifest(directory)
    return save_model(model.with_evaluation(evaluation), directory)


def cross_validation_summary(
    analyser: Analyser,
    observed: Sequence[Observed],
    folds: int,
    corpus: str,
    say: Progress,
    stopping: Stopping = never,
) -> dict[str, Any]:
    """K-fold figures of the recipe and the rules' own figures, with the settings they depend on."""
    run = cross_validate(analyser, observed, folds, progress=say, stopping=stopping)
    report = as_dict(figures(run.outcomes), run.outcomes, corpus=corpus, mode=run.mode)
    rules = score(replace(analyser, model=None), observed)
    baseline = as_dict(figures(rules.outcomes), rules.outcomes, corpus=corpus, mode=rules.mode)
    return summary(report) | {
        "rules_only": {
            key: baseline[key] for key in ("harmful_rate", "automation_rate", "category_accuracy")
        },
        "settings": {
            "confidence_threshold": analyser.policy.confidence_threshold,
            "trusted_authserv_id": analyser.trusted_authserv_id,
        },
    }


def record_result(sessions: sessionmaker[Session], result: Retrained, *, actor: str, now: datetime) -> None:
    """The decision in the event log: which model, which figures, promoted or kept and why."""
    model = result.verdict.model if result.installed is not None else None
    detail = result.record | {
        "emails": result.emails,
        "installed_version": model.card.version if model is not None else None,
    }
    with sessions.begin() as session:
        kind = "model_promoted" if model is not None else "model_kept"
        session.add(Event(message_id=None, at=now, actor=actor, kind=kind, detail=detail))


def describe_dirs(directories: Sequence[Path]) -> list[str]:
    """Each corpus down to the hash of its labels: enough to tell two trainings apart."""
    parts = []
    for directory in directories:
        labels = hashlib.sha256((directory / "labels.jsonl").read_bytes()).hexdigest()[:12]
        parts.append(f"{directory.resolve().name} (labels.jsonl sha256 {labels}…)")
    return parts


def describe(directories: Sequence[Path], emails: int, staff: int) -> str:
    sources = describe_dirs(directories) + ([f"{staff} staff labels"] if staff else [])
    return f"{emails} emails: {', '.join(sources) or 'none'}"
