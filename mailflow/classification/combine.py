"""Combine: the catalogue's rules and the learned model, one classification with one confidence.

The rules carry the catalogue's knowledge of every category; the model only what its examples showed
(a few hundred emails so far). Measured on emails neither was written or trained on, the model is
right far less often than the rules where both speak, but its calibrated probabilities are honest
where the rules find nothing at all. Hence three cases:

- **the rules abstain** (``unclear`` without any evidence of its own, confidence 0): the model's best
  guess and its calibrated probability decide, the decision threshold applying as always;
- **the model agrees** (its best guess is the rules' category): the rules' verdict stands. Agreement
  does not raise the confidence: two weak signals that agree are often wrong together, and a verdict
  the rules thought doubtful goes to a person;
- **the model disagrees**: a linear opinion pool lowers the rules' confidence,
  (1 − w)·r + w·m(category), so a doubtful verdict of the rules goes to triage while a confident one
  stands. The weight ``w`` (setting ``model_weight``) can grow as the model learns from more emails.

The rules keep what the model cannot judge: machine mail recognised by the screening, the several
requests of ``intents``, and categories the model was not trained on. The reasons are the rules'
with the model's opinion added.
"""

from __future__ import annotations

from collections.abc import Mapping

from mailflow.classification.taxonomy import UNCLEAR
from mailflow.domain import Classification, Screening

DEFAULT_MODEL_WEIGHT = 0.2
# Below this, ``unclear`` from the rules means no cue of any kind matched: they have no opinion.
ABSTAIN_BELOW = 0.05


def combine(
    rules: Classification,
    model: Mapping[str, float] | None,
    screening: Screening,
    *,
    weight: float = DEFAULT_MODEL_WEIGHT,
) -> Classification:
    """The rules' classification with the model's probabilities (``None``: no model) taken into account."""
    if not model or screening.machine_category is not None:
        return rules
    guess = max(model, key=model.__getitem__)
    if rules.category == UNCLEAR and rules.confidence < ABSTAIN_BELOW and not rules.intents:
        note = f"model: p={model[guess]:.2f} for {guess} (the rules found nothing)"
        return Classification(guess, round(model[guess], 4), (), (*rules.reasons, note))
    if rules.category not in model:
        return _with(rules, rules.confidence, f"model: not trained on {rules.category}")
    if guess == rules.category:
        return _with(rules, rules.confidence, f"model agrees: p={model[guess]:.2f}")
    pooled = (1.0 - weight) * rules.confidence + weight * model[rules.category]
    note = (
        f"model disagrees: p={model[guess]:.2f} for {guess}, p={model[rules.category]:.2f} "
        f"for {rules.category}"
    )
    return _with(rules, min(rules.confidence, pooled), note)


def _with(rules: Classification, confidence: float, note: str) -> Classification:
    return Classification(rules.category, round(confidence, 4), rules.intents, (*rules.reasons, note))
