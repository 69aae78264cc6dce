"""Running the classification benchmark: every labelled email through the real pipeline.

Each email is observed once (parse → screen → extract, the rules' classification and the model's
input) and concluded once (combine → decide). With cross-validation the emails are split into K
stratified folds; each fold is concluded by a model trained on the other folds only, from the
observations already made, so no email is ever scored by a model that has seen it.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import pypdfium2
from sklearn.model_selection import StratifiedKFold

from mailflow.classification.combine import SEVERAL
from mailflow.classification.learning.model import TrainedModel
from mailflow.classification.learning.training import Example, TrainingError, train
from mailflow.classification.taxonomy import MACHINE_CATEGORIES
from mailflow.domain import Attachment
from mailflow.errors import Interrupted
from mailflow.evaluation.corpus import LabelledEmail
from mailflow.evaluation.metrics import Outcome, as_point
from mailflow.evaluation.risk import GROUPS, NEVER, Point, choose_thresholds, risk_coverage
from mailflow.pipeline import Analyser, Observation
from mailflow.stages.attachment_reader import forget_inherited_readers

log = logging.getLogger(__name__)

SEED = 0
THRESHOLD_FOLDS = 4
# A PDF with fewer letters than this in its text layer is a scan.
TEXT_LAYER_LETTERS = 20

Progress = Callable[[str], None]
# Asked between steps of long work (the worker's nightly retraining): True once the process is stopping.
Stopping = Callable[[], bool]


def never() -> bool:
    return False


def give_up_if(stopping: Stopping) -> None:
    if stopping():
        raise Interrupted("given up: the process is stopping")


@dataclass(frozen=True)
class Observed:
    email: LabelledEmail
    seen: Observation | None  # None: the email could not be analysed
    milliseconds: float
    formats: tuple[str, ...] = ()  # per attachment: "text_pdf", "image" or "other"
    error: str = ""


@dataclass(frozen=True)
class Run:
    outcomes: list[Outcome]
    mode: str  # "rules", "model <version>", "cross-validation (K folds)"
    notes: list[str]


def observe_all(
    analyser: Analyser,
    emails: Sequence[LabelledEmail],
    progress: Progress | None = None,
    *,
    jobs: int = 1,
    stopping: Stopping = never,
) -> list[Observed]:
    """Observe every email once, timed; the slow first-use set-up (language models) comes before.

    With ``jobs`` > 1 the emails are observed by that many forked processes (reading photographed
    documents dominates, and one process uses one core), each with its own document reader; the
    order and the observations are the same, the timings are not comparable (taken under load).
    ``stopping`` is asked before each email observed in this process (the worker's nightly job
    observes in one); forked processes finish the corpus."""
    analyser.language_detector.build()
    if emails:
        _observe(analyser, emails[0])  # warms up the document reader and lazy imports
    give_up_if(stopping)
    if jobs > 1 and len(emails) > jobs and "fork" in multiprocessing.get_all_start_methods():
        return _observe_forked(analyser, emails, progress, jobs)
    observed = []
    for index, email in enumerate(emails, 1):
        give_up_if(stopping)
        observed.append(_observe(analyser, email))
        if progress and index % 50 == 0:
            progress(f"observed {index}/{len(emails)}")
    return observed


_forked_analyser: Analyser | None = None  # the analyser of a process forked by _observe_forked


def _observe_forked(
    analyser: Analyser, emails: Sequence[LabelledEmail], progress: Progress | None, jobs: int
) -> list[Observed]:
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_start_child, initargs=(analyser,)
    ) as pool:
        observed = []
        for index, found in enumerate(pool.map(_observe_in_child, emails, chunksize=8), 1):
            observed.append(found)
            if progress and index % 50 == 0:
                progress(f"observed {index}/{len(emails)}")
        return observed


def _start_child(analyser: Analyser) -> None:
    global _forked_analyser
    forget_inherited_readers()
    _forked_analyser = analyser


def _observe_in_child(email: LabelledEmail) -> Observed:
    assert _forked_analyser is not None, "only called in a process started by _observe_forked"
    return _observe(_forked_analyser, email)


def examples(observed: Sequence[Observed]) -> list[Example]:
    """What the model learns from. An email the screening takes for machine mail never reaches the
    model; labelled as something else (a mailing list's post: nothing asked of the counter), it
    would only teach it that machine-mail facts mean that label."""
    return [
        Example(o.seen.features, o.email.category, o.email.name, o.email.intents)
        for o in observed
        if o.seen is not None
        and (o.seen.screening.machine_category is None or o.email.category in MACHINE_CATEGORIES)
    ]


def fit(
    analyser: Analyser,
    observed: Sequence[Observed],
    *,
    corpus: str = "",
    now: datetime | None = None,
    folds: int = THRESHOLD_FOLDS,
    stopping: Stopping = never,
) -> TrainedModel:
    """A model trained on ``observed``, with the confidence each action needs chosen on held-out emails.

    The thresholds come from a K-fold run inside ``observed`` (``risk.choose_thresholds``): every
    email is judged by a model that did not learn from it, so the thresholds are set on what unseen
    emails look like, and a benchmark that holds emails out of ``observed`` never leaks them here.
    """
    give_up_if(stopping)
    model = _train(analyser, observed, corpus, now)
    points = held_out_points(analyser, observed, folds, stopping)
    if not points:
        # Nothing held out to show how sure it may be: it acts on nothing (screening aside).
        log.warning("too few emails to choose thresholds on held-out emails: the model automates nothing")
        return model.with_thresholds({**dict.fromkeys(GROUPS, NEVER), "several": SEVERAL})
    thresholds = choose_thresholds(points)
    table = [row.as_dict() for row in risk_coverage(points, thresholds)]
    return model.with_thresholds(thresholds, table)


def _train(
    analyser: Analyser, observed: Sequence[Observed], corpus: str, now: datetime | None = None
) -> TrainedModel:
    topics = {product.category: product.topic for product in analyser.catalogue}
    return train(examples(observed), corpus=corpus, now=now, vectors=analyser.word_vectors, topics=topics)


def held_out_points(
    analyser: Analyser, observed: Sequence[Observed], folds: int, stopping: Stopping = never
) -> list[Point]:
    """Every email as a model trained without it would handle it, with no confidence threshold."""
    usable = [o for o in observed if o.seen is not None]
    if folds < 2 or len(usable) < 2 * folds:
        return []
    labels = np.array([o.email.category for o in usable])
    permissive = replace(analyser.policy, confidence_threshold=0.0, action_thresholds={})
    unsplit = {"several": NEVER}  # every email as one request: the threshold is chosen from these
    points = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the least populated class has only n members"
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=SEED).split(usable, labels))
    for train_index, test_index in splits:
        give_up_if(stopping)
        try:
            model = _train(analyser, [usable[i] for i in train_index], "threshold fold")
        except TrainingError:
            return []
        fold = replace(analyser, model=model.with_thresholds(unsplit), policy=permissive)
        points.extend(as_point(_conclude(fold, usable[i])) for i in test_index)
    return points


def score(analyser: Analyser, observed: Sequence[Observed]) -> Run:
    """Every email concluded by the analyser as configured (its installed model, or the rules)."""
    mode = f"model {analyser.model.card.version}" if analyser.model else "rules only"
    return Run([_conclude(analyser, o) for o in observed], mode, [])


def cross_validate(
    analyser: Analyser,
    observed: Sequence[Observed],
    folds: int,
    progress: Progress | None = None,
    stopping: Stopping = never,
) -> Run:
    if folds < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    labels = np.array([o.email.category for o in observed])
    splitter = StratifiedKFold(folds, shuffle=True, random_state=SEED)
    outcomes: dict[int, Outcome] = {}
    notes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the least populated class has only n members"
        splits = list(splitter.split(np.zeros(len(labels)), labels))
    for number, (train_index, test_index) in enumerate(splits, 1):
        try:
            model: TrainedModel | None = fit(
                analyser, [observed[i] for i in train_index], corpus=f"fold {number}", stopping=stopping
            )
        except TrainingError as exc:
            model = None
            notes.append(f"fold {number}: rules only ({exc})")
        fold = replace(analyser, model=model)
        for i in test_index:
            outcomes[i] = _conclude(fold, observed[i])
        if progress:
            progress(f"fold {number}/{folds} scored")
    return Run([outcomes[i] for i in range(len(observed))], f"cross-validation ({folds} folds)", notes)


def attachment_format(attachment: Attachment) -> str:
    """ "text_pdf" (a PDF with a text layer), "image" (a picture or a scanned PDF) or "other"."""
    if attachment.sniffed_type.startswith("image/"):
        return "image"
    if attachment.sniffed_type != "application/pdf":
        return "other"
    try:
        document = pypdfium2.PdfDocument(attachment.payload)
        try:
            text = "".join(page.get_textpage().get_text_range() for page in document)
        finally:
            document.close()
    except pypdfium2.PdfiumError:
        return "image"  # nothing readable in it: for a reader it is no better than a scan
    return "text_pdf" if sum(ch.isalpha() for ch in text) >= TEXT_LAYER_LETTERS else "image"


def _observe(analyser: Analyser, email: LabelledEmail) -> Observed:
    return observe_raw(analyser, email, email.path.read_bytes())


def observe_raw(analyser: Analyser, email: LabelledEmail, raw: bytes) -> Observed:
    """One labelled email whose bytes come from elsewhere than ``email.path`` (the blob store)."""
    started = time.perf_counter()
    try:
        seen = analyser.observe(raw)
    except Exception as exc:  # a benchmark reports the email that breaks the pipeline, and goes on
        log.warning("%s: cannot be analysed: %s", email.name, type(exc).__name__)
        return Observed(email, None, 0.0, error=f"{type(exc).__name__}: {exc}")
    elapsed = 1000 * (time.perf_counter() - started)
    return Observed(email, seen, elapsed, tuple(attachment_format(a) for a in seen.message.attachments))


def _conclude(analyser: Analyser, observed: Observed) -> Outcome:
    email, seen = observed.email, observed.seen
    base = {
        "name": email.name,
        "expected_category": email.category,
        "expected_action": email.action,
        "expected_language": email.language,
        "expected_intents": email.intents,
    }
    if seen is None:
        found = [(kind, "(not analysed)", "other") for kind in email.documents]
        return Outcome(**base, category="unclear", action="triage", documents=tuple(found))
    started = time.perf_counter()
    analysis = analyser.conclude(seen)
    decision = analysis.decision
    elapsed = observed.milliseconds + 1000 * (time.perf_counter() - started)
    kinds = seen.kinds
    documents = tuple(
        (
            kind,
            kinds[i] if i < len(kinds) else "(none)",
            observed.formats[i] if i < len(observed.formats) else "other",
        )
        for i, kind in enumerate(email.documents)
    )
    model_category = None
    unthresholded = None
    if analyser.model is not None:
        guesses = analyser.model.predict(seen.features)
        model_category = max(guesses, key=guesses.__getitem__)
        if not _permissive(analyser):
            unthresholded = _unthresholded(analyser, observed)
    return Outcome(
        **base,
        category=decision.category,
        action=decision.action.value,
        language=decision.language,
        intents=decision.intents,
        documents=documents,
        milliseconds=elapsed,
        confidence=decision.confidence,
        several=analysis.classification.several,
        screened=seen.screening.machine_category is not None,
        attachments=len(seen.message.attachments),
        model_category=model_category,
        unthresholded=unthresholded,
    )


def _permissive(analyser: Analyser) -> bool:
    """Whether the analyser already acts on every email as one request, whatever its confidence."""
    assert analyser.model is not None
    thresholds = analyser.model.card.thresholds
    return (
        analyser.policy.confidence_threshold == 0
        and not analyser.policy_for_model().action_thresholds
        and thresholds.get("several", SEVERAL) >= NEVER
    )


def _unthresholded(analyser: Analyser, observed: Observed) -> Point:
    """The email as it would be handled if no action needed any confidence: a risk–coverage point."""
    assert analyser.model is not None
    permissive = replace(
        analyser,
        model=analyser.model.with_thresholds({"several": NEVER}),
        policy=replace(analyser.policy, confidence_threshold=0.0, action_thresholds={}),
    )
    outcome = _conclude(permissive, replace(observed, milliseconds=0.0))
    return as_point(outcome)
