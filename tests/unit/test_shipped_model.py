"""The model shipped in classifiers/model: loadable by this code, complete, and honest about itself."""

from __future__ import annotations

import json

from mailflow.classification.learning.artefact import MANIFEST_FILE, load_model
from mailflow.classification.taxonomy import CATEGORIES
from mailflow.evaluation.risk import RISK_BUDGET
from mailflow.settings import PROJECT_ROOT

MODEL_DIR = PROJECT_ROOT / "classifiers" / "model"


def test_the_shipped_model_loads_with_its_heads_vectors_and_thresholds():
    model = load_model(MODEL_DIR)
    assert set(model.heads) == {"intent", "topic", "several"}
    assert model.features.vectors is not None
    assert set(model.card.thresholds) == {"act", "redirect_info", "redirect_other", "ignore", "several"}
    assert model.card.thresholds["act"] >= model.card.thresholds["redirect_info"]
    assert set(model.categories) == set(CATEGORIES)


def test_its_thresholds_come_from_a_held_out_risk_coverage_table():
    manifest = json.loads((MODEL_DIR / MANIFEST_FILE).read_text())
    chosen = manifest["risk_coverage"][-1]
    assert chosen["threshold"] == "chosen"
    assert chosen["emails"] > 1000
    # Within the budget the thresholds were chosen for: (harmful + 1) / (emails + 1) ≤ RISK_BUDGET.
    assert (chosen["harmful"] + 1) / (chosen["emails"] + 1) <= RISK_BUDGET
