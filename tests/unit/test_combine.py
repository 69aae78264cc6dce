"""Combining the rules' classification with the model's probabilities."""

from __future__ import annotations

import pytest

from mailflow.classification.combine import combine
from mailflow.domain import Classification, Screening

PERSON = Screening(machine_category=None, sender_verdict="pass")


def model(**probabilities: float) -> dict[str, float]:
    rest = (1.0 - sum(probabilities.values())) / 2
    return {"card_lost": rest, "card_renewal": rest, **probabilities}


def test_without_a_model_the_rules_stand():
    rules = Classification("card_lost", 0.8, (), ("cue 'lost'",))
    assert combine(rules, None, PERSON) is rules
    assert combine(rules, {}, PERSON) is rules


def test_machine_mail_from_the_screening_is_never_reconsidered():
    rules = Classification("bounce", 0.99, (), ("screening: bounce",))
    screening = Screening(machine_category="bounce", sender_verdict="none")
    assert combine(rules, model(spam=0.9), screening) is rules


def test_agreement_keeps_the_rules_confidence():
    rules = Classification("info_students", 0.5, (), ("cue 'student'",))
    combined = combine(rules, model(info_students=0.95), PERSON)
    assert (combined.category, combined.confidence) == ("info_students", 0.5)
    assert combined.reasons == ("cue 'student'", "model agrees: p=0.95")


@pytest.mark.parametrize(
    ("weight", "expected"), [(0.2, 0.8 * 0.9 + 0.2 * 0.05), (0.5, 0.5 * 0.9 + 0.5 * 0.05)]
)
def test_disagreement_lowers_the_rules_confidence(weight, expected):
    rules = Classification("info_students", 0.9, (), ())
    combined = combine(rules, model(spam=0.85, info_students=0.05), PERSON, weight=weight)
    assert combined.category == "info_students"
    assert combined.confidence == pytest.approx(expected, abs=1e-4)
    assert "model disagrees: p=0.85 for spam, p=0.05 for info_students" in combined.reasons


def test_disagreement_never_raises_the_confidence():
    rules = Classification("info_students", 0.3, (), ())
    combined = combine(rules, model(spam=0.4, info_students=0.35), PERSON, weight=0.5)
    assert combined.confidence == 0.3


def test_when_the_rules_find_nothing_the_model_decides():
    rules = Classification("unclear", 0.0, (), ("no cue matched",))
    combined = combine(rules, model(info_prolong_stay=0.83), PERSON)
    assert (combined.category, combined.confidence) == ("info_prolong_stay", 0.83)
    assert combined.reasons[-1] == "model: p=0.83 for info_prolong_stay (the rules found nothing)"


def test_unclear_with_evidence_of_its_own_is_the_rules_verdict():
    rules = Classification("unclear", 0.6, (), ("cue 'thank you'",))
    combined = combine(rules, model(info_prolong_stay=0.7, unclear=0.1), PERSON, weight=0.2)
    assert combined.category == "unclear"
    assert combined.confidence == pytest.approx(0.8 * 0.6 + 0.2 * 0.1)


def test_several_requests_stay_the_rules():
    rules = Classification("card_renewal", 0.9, ("card_renewal", "child_card"), ())
    combined = combine(rules, model(child_card=0.9), PERSON)
    assert combined.category == "card_renewal"
    assert combined.intents == ("card_renewal", "child_card")


def test_a_category_the_model_never_learnt_keeps_the_rules_verdict():
    rules = Classification("orange_card", 0.7, (), ())
    combined = combine(rules, model(spam=0.9), PERSON)
    assert (combined.category, combined.confidence) == ("orange_card", 0.7)
    assert combined.reasons[-1] == "model: not trained on orange_card"
