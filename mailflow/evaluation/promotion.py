"""Whether a newly trained model may replace the installed one: both scored on the same held-out emails.

The examples (labelled corpora and staff decisions, already observed) are split once, stratified by
category with a fixed seed, into a training part and a held-out part (``HELD_OUT`` of each category,
never so much that fewer than ``MIN_EXAMPLES`` remain to train on). A candidate is trained on the
training part; the candidate and the installed model (or the rules alone when none is installed) each
run the whole pipeline — rules and model combined, then the decision — on the held-out part, measured
as ``mailflow bench classify`` measures: harmful rate, automation rate, category accuracy.

The candidate is at least as good when it harms no more emails *and* automates no fewer correctly
(counts over the same emails, so no rounding decides). Only then is a model installed — one retrained on
every example, training and held-out alike: the held-out figures describe the recipe on this data,
and the emails set aside are too valuable to leave out of the model that serves. Pure apart from the
training itself.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np

from mailflow.classification.learning.model import TrainedModel
from mailflow.classification.learning.training import MIN_EXAMPLES, TrainingError
from mailflow.evaluation.metrics import Ratio, automation_rate, harmful_rate
from mailflow.evaluation.run import Observed, Stopping, fit, never, score
from mailflow.pipeline import Analyser

log = logging.getLogger(__name__)

HELD_OUT = 0.2
SEED = 0


@dataclass(frozen=True)
class Scores:
    """The pipeline's headline figures on the held-out emails."""

    mode: str  # "model <version>" or "rules only"
    harmful: Ratio
    automation: Ratio
    category: Ratio

    def as_dict(self) -> dict[str, Any]:
        def ratio(r: Ratio) -> dict[str, Any]:
            return {"value": None if r.value is None else round(r.value, 4), "hits": r.hits, "total": r.total}

        return {
            "mode": self.mode,
            "harmful_rate": ratio(self.harmful),
            "automation_rate": ratio(self.automation),
            "category_accuracy": ratio(self.category),
        }

    def line(self) -> str:
        def pct(r: Ratio) -> str:
            return "—" if r.value is None else f"{r.value:.1%} ({r.hits}/{r.total})"

        return (
            f"{self.mode}: harmful {pct(self.harmful)}, automation {pct(self.automation)}, "
            f"category {pct(self.category)}"
        )


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str
    candidate: Scores
    current: Scores
    held_out: int
    trained_on: int
    model: TrainedModel | None  # the model to install (trained on every example); None when kept


def held_out_split(observed: Sequence[Observed], fraction: float = HELD_OUT) -> tuple[list[int], list[int]]:
    """(training, held-out) indices: per category, a seeded shuffle, ``fraction`` of it held out."""
    by_category: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(observed):
        if item.seen is not None:
            by_category[item.email.category].append(index)
    rng = np.random.default_rng(SEED)
    training: list[int] = []
    held: list[int] = []
    for category in sorted(by_category):
        # Sorted by name first, so the split depends on which emails there are, not on reading order.
        members = sorted(by_category[category], key=lambda i: observed[i].email.name)
        order = [members[i] for i in rng.permutation(len(members))]
        count = min(round(len(order) * fraction), max(0, len(order) - MIN_EXAMPLES))
        held += order[:count]
        training += order[count:]
    return sorted(training), sorted(held)


def measure(analyser: Analyser, model: TrainedModel | None, observed: Sequence[Observed]) -> Scores:
    run = score(replace(analyser, model=model), observed)
    outcomes = run.outcomes
    category = Ratio(sum(o.category == o.expected_category for o in outcomes), len(outcomes))
    return Scores(run.mode, harmful_rate(outcomes), automation_rate(outcomes), category)


def at_least_as_good(candidate: Scores, current: Scores) -> tuple[bool, str]:
    """Not more harmful and not less automated, counted on the same emails; the reason in words."""
    if candidate.harmful.hits > current.harmful.hits:
        return False, (
            f"the candidate handles {candidate.harmful.hits} held-out emails harmfully, "
            f"the installed pipeline {current.harmful.hits}"
        )
    if candidate.automation.hits < current.automation.hits:
        return False, (
            f"the candidate automates {candidate.automation.hits} held-out emails correctly, "
            f"the installed pipeline {current.automation.hits}"
        )
    return True, (
        f"harmful {candidate.harmful.hits} ≤ {current.harmful.hits} and "
        f"automated {candidate.automation.hits} ≥ {current.automation.hits} on the held-out emails"
    )


def evaluate_candidate(
    analyser: Analyser,
    observed: Sequence[Observed],
    current: TrainedModel | None,
    *,
    known: Collection[int] = (),
    corpus: str,
    force: bool = False,
    now: datetime | None = None,
    stopping: Stopping = never,
) -> Verdict:
    """Train a candidate on the training part, compare it with ``current``; train the final model if it wins.

    ``known``: the indices of the examples ``current`` was trained on. Scored on held-out emails it has
    seen, the installed model would look better than it is, and a candidate could never win; it is then
    represented by the same recipe trained on its own examples less the held-out ones, which is what
    the comparison is about: whether the examples added since (or relabelled) make a better model.
    TrainingError propagates when the examples cannot make a model at all; Interrupted when
    ``stopping`` turns true.
    """
    known = frozenset(known)
    if current is not None and known >= set(range(len(observed))) and not force:
        empty = Scores("—", Ratio(0, 0), Ratio(0, 0), Ratio(0, 0))
        reason = "no examples the installed model has not already learnt from"
        return Verdict(False, reason, empty, empty, 0, 0, None)
    training, held = held_out_split(observed)
    held_observed = [observed[i] for i in held]
    candidate = fit(
        analyser,
        [observed[i] for i in training],
        corpus=f"{corpus} (training part)",
        now=now,
        stopping=stopping,
    )
    candidate_scores = measure(analyser, candidate, held_observed)
    baseline = _baseline(analyser, current, observed, training, held, known, stopping)
    current_scores = measure(analyser, baseline, held_observed)
    if current is not None and current_scores.mode != f"model {current.card.version}":
        current_scores = replace(current_scores, mode=f"model {current.card.version}'s examples, re-fitted")
    if not held:
        promote, reason = False, "too few examples per category to hold any out: nothing to compare on"
    else:
        promote, reason = at_least_as_good(candidate_scores, current_scores)
    if force and not promote:
        promote, reason = True, f"forced (otherwise kept: {reason})"
    model = fit(analyser, observed, corpus=corpus, now=now, stopping=stopping) if promote else None
    return Verdict(promote, reason, candidate_scores, current_scores, len(held), len(training), model)


def _baseline(
    analyser: Analyser,
    current: TrainedModel | None,
    observed: Sequence[Observed],
    training: Sequence[int],
    held: Sequence[int],
    known: frozenset[int],
    stopping: Stopping,
) -> TrainedModel | None:
    if current is None or known.isdisjoint(held):
        return current  # the installed pipeline itself, on emails new to it
    try:
        return fit(
            analyser, [observed[i] for i in training if i in known], corpus="baseline", stopping=stopping
        )
    except TrainingError:
        log.warning("the installed model's examples cannot be re-fitted; comparing with it as installed")
        return current


def promotion_record(verdict: Verdict, previous: TrainedModel | None) -> dict[str, Any]:
    """What the manifest and the event log keep of one decision."""
    return {
        "promoted": verdict.promote,
        "reason": verdict.reason,
        "held_out": verdict.held_out,
        "trained_on_for_comparison": verdict.trained_on,
        "held_out_fraction": HELD_OUT,
        "seed": SEED,
        "candidate": verdict.candidate.as_dict(),
        "previous": verdict.current.as_dict(),
        "previous_version": previous.card.version if previous is not None else None,
    }
