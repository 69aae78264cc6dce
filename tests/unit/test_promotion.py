"""The promotion rule: a new model replaces the installed one only if at least as good on held-out emails."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from mailflow.classification.learning.training import MIN_EXAMPLES
from mailflow.evaluation import promotion
from mailflow.evaluation.corpus import LabelledEmail
from mailflow.evaluation.metrics import Ratio
from mailflow.evaluation.promotion import Scores, at_least_as_good, evaluate_candidate, held_out_split
from mailflow.evaluation.run import Observed
from mailflow.web.admin import promotion_summary


def scores(harmful: int, automated: int, total: int = 20) -> Scores:
    return Scores("x", Ratio(harmful, total), Ratio(automated, total - 2), Ratio(total - harmful, total))


def observed(counts: dict[str, int]) -> list[Observed]:
    return [
        Observed(
            LabelledEmail(Path(f"{category}-{i:02d}.eml"), category, "file"),
            SimpleNamespace(features=f"{category}-{i}"),  # type: ignore[arg-type]
            1.0,
        )
        for category, n in counts.items()
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("candidate", "current", "promote"),
    [
        (scores(0, 15), scores(0, 15), True),  # as good: the newer data wins the tie
        (scores(0, 16), scores(1, 15), True),
        (scores(1, 18), scores(0, 15), False),  # one more harmful email outweighs any automation
        (scores(0, 14), scores(0, 15), False),
    ],
)
def test_at_least_as_good(candidate, current, promote):
    verdict, reason = at_least_as_good(candidate, current)
    assert verdict is promote
    assert reason


def test_split_is_stratified_seeded_and_leaves_enough_to_train_on():
    items = observed({"card_lost": 10, "spam": 5, "bounce": MIN_EXAMPLES})
    training, held = held_out_split(items)
    assert sorted(training + held) == list(range(len(items)))
    by_category = {
        c: sum(items[i].email.category == c for i in held) for c in ("card_lost", "spam", "bounce")
    }
    assert by_category == {"card_lost": 2, "spam": 1, "bounce": 0}
    assert held_out_split(items) == (training, held)
    # The split follows the emails, not the order they were read in.
    reordered = list(reversed(items))
    _, held_again = held_out_split(reordered)
    assert {reordered[i].email.name for i in held_again} == {items[i].email.name for i in held}


@pytest.fixture
def fake_training(monkeypatch):
    """Training replaced by a record of what was trained on; measuring by the scores given."""
    trained: list[list[str]] = []

    def fit(analyser, observed, *, corpus="", now=None, stopping=None):
        trained.append([o.email.name for o in observed])
        return SimpleNamespace(card=SimpleNamespace(version=f"v{len(trained)}"), corpus=corpus)

    monkeypatch.setattr(promotion, "fit", fit)
    return trained


def use_scores(monkeypatch, candidate: Scores, current: Scores) -> None:
    def measure(analyser, model, held):
        return candidate if getattr(model, "corpus", "").endswith("(training part)") else current

    monkeypatch.setattr(promotion, "measure", measure)


INSTALLED = SimpleNamespace(card=SimpleNamespace(version="installed"))


def test_promoted_when_at_least_as_good_and_final_model_sees_every_example(monkeypatch, fake_training):
    use_scores(monkeypatch, scores(0, 15), scores(0, 15))
    items = observed({"card_lost": 10, "spam": 10})
    verdict = evaluate_candidate(None, items, INSTALLED, known=range(15), corpus="c")  # type: ignore[arg-type]
    assert verdict.promote and verdict.model is not None
    assert verdict.held_out == 4
    candidate, baseline, final = fake_training
    assert len(candidate) == 16 and len(final) == 20
    # The installed model saw held-out emails: it is represented by its own examples, re-fitted without them.
    assert set(baseline) <= set(candidate) and len(baseline) < 15


def test_kept_when_worse_unless_forced(monkeypatch, fake_training):
    use_scores(monkeypatch, scores(1, 15), scores(0, 15))
    items = observed({"card_lost": 10, "spam": 10})
    kept = evaluate_candidate(None, items, INSTALLED, corpus="c")  # type: ignore[arg-type]
    assert not kept.promote and kept.model is None
    assert "harmful" in kept.reason
    forced = evaluate_candidate(None, items, INSTALLED, corpus="c", force=True)  # type: ignore[arg-type]
    assert forced.promote and forced.model is not None and forced.reason.startswith("forced")


def test_nothing_new_keeps_the_installed_model_without_training(monkeypatch, fake_training):
    items = observed({"card_lost": 10, "spam": 10})
    verdict = evaluate_candidate(None, items, INSTALLED, known=range(20), corpus="c")  # type: ignore[arg-type]
    assert not verdict.promote and fake_training == []


def test_admin_summary_of_a_manifest():
    manifest = {
        "model_version": "v2",
        "evaluation": {
            "promotion": {
                "reason": "harmful 0 ≤ 0",
                "candidate": {"harmful_rate": {"value": 0.0}, "automation_rate": {"value": 0.95}},
                "previous": {"harmful_rate": {"value": 0.0}, "automation_rate": {"value": 0.9}},
            }
        },
    }
    row = promotion_summary(manifest)
    assert row["automation"] == "95.0% (was 90.0%)"
    assert row["category"] == "— (was —)"
    assert promotion_summary({"model_version": "v1"})["reason"].startswith("installed before")
