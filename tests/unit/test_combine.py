"""Combining the rules' classification with the model's prediction: category, intent, topic, several."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mailflow.classification.catalogue import load_catalogue
from mailflow.classification.combine import combine
from mailflow.classification.learning.model import Prediction
from mailflow.domain import Classification, Screening
from mailflow.settings import PROJECT_ROOT

PERSON = Screening(machine_category=None, sender_verdict="pass")


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue(PROJECT_ROOT / "classifiers")


def prediction(
    categories: dict[str, float],
    intent: str = "request",
    topic: str = "cards",
    *,
    intent_p: float = 0.95,
    topic_p: float = 0.95,
    several: float = 0.0,
) -> Prediction:
    rest = 1.0 - sum(categories.values())
    return Prediction(
        categories={"unclear": rest, **categories},
        intent={intent: intent_p, "question" if intent != "question" else "request": 1 - intent_p},
        topic={topic: topic_p, "asylum" if topic != "asylum" else "cards": 1 - topic_p},
        several=several,
    )


def test_without_a_model_the_rules_stand_with_their_intent_and_topic(catalogue):
    rules = Classification("card_lost", 0.8, (), ("cue 'lost'",))
    combined = combine(rules, None, PERSON, catalogue)
    assert (combined.category, combined.confidence, combined.reasons) == ("card_lost", 0.8, ("cue 'lost'",))
    assert (combined.intent, combined.topic) == ("request", "cards")


def test_machine_mail_from_the_screening_is_never_reconsidered(catalogue):
    rules = Classification("bounce", 0.99, (), ("screening: bounce",))
    screening = Screening(machine_category="bounce", sender_verdict="none")
    combined = combine(rules, prediction({"card_lost": 0.9}), screening, catalogue)
    assert (combined.category, combined.confidence, combined.intent) == ("bounce", 0.99, "machine")


def test_the_model_decides_the_category_and_its_probability_is_the_confidence(catalogue):
    rules = Classification("card_renewal", 0.08, (), ("cue 'renew'",))
    combined = combine(rules, prediction({"card_lost": 0.9, "card_renewal": 0.05}), PERSON, catalogue)
    assert (combined.category, combined.confidence) == ("card_lost", 0.9)
    assert (combined.intent, combined.topic) == ("request", "cards")
    assert "rules say card_renewal (0.08)" in combined.reasons


def test_rules_elsewhere_are_reported_but_not_counted_twice(catalogue):
    """The model read the rules' evidence among its features and weighed it on emails the cues were
    never written for: its probability already says how far their disagreement counts."""
    rules = Classification("other_service", 0.7, (), ("cue 'kids-id'",))
    combined = combine(rules, prediction({"child_card": 0.95, "other_service": 0.03}), PERSON, catalogue)
    assert (combined.category, combined.confidence) == ("child_card", 0.95)
    assert "rules say other_service (0.70)" in combined.reasons


def test_what_the_catalogue_holds_stays_held_whoever_decides(catalogue):
    rules = Classification("other_service", 0.6, (), ("cue 'belg'",), held=("child_card",))
    assert combine(rules, None, PERSON, catalogue).held == ("child_card",)
    combined = combine(rules, prediction({"child_card": 0.97, "other_service": 0.02}), PERSON, catalogue)
    assert (combined.category, combined.held) == ("child_card", ("child_card",))


def test_junk_keeps_its_probability_whatever_product_cue_words_it_contains(catalogue):
    """Advertising is written about anything: the rules find a "guarantee" in it, the model reads junk."""
    rules = Classification("guarantee_3bis", 0.6, (), ("cue 'guarantee'",))
    found = prediction({"spam": 0.97, "guarantee_3bis": 0.01}, intent="machine", topic="machine")
    combined = combine(rules, found, PERSON, catalogue)
    assert (combined.category, combined.confidence) == ("spam", 0.95)
    assert "rules say guarantee_3bis (0.60)" in combined.reasons


def test_a_question_read_as_a_request_is_not_understood(catalogue):
    """The category is a request, but the intent head reads a question: the confidence drops."""
    rules = Classification("switch_eplus_fplus", 0.7)
    found = prediction(
        {"switch_eplus_fplus": 0.9}, intent="question", topic="permanent_residence", intent_p=0.7
    )
    combined = combine(rules, found, PERSON, catalogue)
    assert combined.category == "switch_eplus_fplus"
    assert combined.intent == "question"
    assert combined.confidence == pytest.approx(0.3)
    assert any("intent or topic unsure" in reason for reason in combined.reasons)


def test_a_topic_at_odds_with_the_category_lowers_the_confidence(catalogue):
    rules = Classification("refugee_card", 0.7)
    found = prediction({"refugee_card": 0.9}, topic="cards", topic_p=0.8)
    combined = combine(rules, found, PERSON, catalogue)
    assert combined.topic == "cards"
    assert combined.confidence == pytest.approx(0.2)


def test_several_requests_take_the_rules_split_when_the_model_agrees(catalogue):
    rules = Classification("card_renewal", 0.6, ("card_renewal", "child_card"))
    combined = combine(rules, prediction({"card_renewal": 0.8}, several=0.6), PERSON, catalogue)
    assert combined.intents == ("card_renewal", "child_card")
    assert (combined.intent, combined.several) == ("several", 0.6)


def test_the_rules_split_stands_even_when_the_model_doubts_it(catalogue):
    rules = Classification("card_renewal", 0.6, ("card_renewal", "child_card"))
    combined = combine(rules, prediction({"card_renewal": 0.8}, several=0.05), PERSON, catalogue)
    assert combined.intents == ("card_renewal", "child_card")


def test_the_model_decides_whether_there_are_several_from_its_threshold(catalogue):
    rules = Classification("card_renewal", 0.6)
    found = prediction({"card_renewal": 0.8}, several=0.3)
    combined = combine(rules, found, PERSON, catalogue)
    assert combined.intents == ()
    assert combined.confidence == pytest.approx(0.8 * 0.7)  # doubt about several counts against it
    lower = combine(rules, found, PERSON, catalogue, several_from=0.3)
    assert lower.intents == ("card_renewal", "card_renewal")


def test_several_requests_found_by_the_model_alone(catalogue):
    rules = Classification("card_lost", 0.6)
    two_products = prediction({"card_lost": 0.6, "departure_temporary": 0.3}, several=0.8)
    assert combine(rules, two_products, PERSON, catalogue).intents == ("card_lost", "departure_temporary")
    one_product = prediction({"card_lost": 0.95}, several=0.8)
    assert combine(rules, one_product, PERSON, catalogue).intents == ("card_lost", "card_lost")


def test_nothing_asked_is_never_several_requests(catalogue):
    rules = Classification("unclear", 0.3)
    found = prediction({"status_followup": 0.9}, intent="status", topic="status", several=0.9)
    assert combine(rules, found, PERSON, catalogue).intents == ()


def test_a_category_the_model_never_learnt_keeps_the_rules_verdict(catalogue):
    rules = Classification("guarantee_3bis", 0.8, (), ("cue '3bis'",))
    combined = combine(rules, prediction({"card_lost": 0.9}), PERSON, catalogue)
    assert (combined.category, combined.confidence) == ("guarantee_3bis", 0.8)


def test_without_a_several_head_the_rules_split_stands(catalogue):
    rules = Classification("card_renewal", 0.6, ("card_renewal", "child_card"))
    found = replace(prediction({"card_renewal": 0.8}), has_several_head=False)
    assert combine(rules, found, PERSON, catalogue).intents == ("card_renewal", "child_card")


def test_a_question_is_not_split_per_person_and_never_next_to_another_question(catalogue):
    rules = Classification("info_students", 0.6)
    alone = prediction({"info_students": 0.95}, intent="question", topic="students", several=0.9)
    assert combine(rules, alone, PERSON, catalogue).intents == ()
    two = prediction(
        {"info_students": 0.6, "info_asylum": 0.3}, intent="question", topic="students", several=0.9
    )
    assert combine(rules, two, PERSON, catalogue).intents == ()


def test_the_requests_head_names_the_requests_each_on_its_own(catalogue):
    rules = Classification("card_lost", 0.6)
    found = replace(
        prediction({"card_lost": 0.9, "card_renewal": 0.02}, several=0.8),
        requests={"card_lost": 0.97, "departure_temporary": 0.7, "card_renewal": 0.1},
    )
    # The category head barely knows the second request; the requests head does.
    assert combine(rules, found, PERSON, catalogue).intents == ("card_lost", "departure_temporary")


def test_the_requests_head_keeps_of_the_rules_split_only_what_is_asked(catalogue):
    rules = Classification("cgrs_papers", 0.6, ("cgrs_papers", "refugee_card", "orange_card"))
    found = replace(
        prediction({"cgrs_papers": 0.8}, topic="asylum"),
        requests={"cgrs_papers": 0.9, "refugee_card": 0.8, "orange_card": 0.2},
    )
    assert combine(rules, found, PERSON, catalogue).intents == ("cgrs_papers", "refugee_card")


def test_one_product_for_the_persons_the_rules_counted(catalogue):
    rules = Classification("orange_card", 0.6, ("orange_card",) * 3)
    found = replace(
        prediction({"orange_card": 0.9}, topic="asylum", several=0.9),
        requests={"orange_card": 0.95, "info_asylum": 0.3},
    )
    assert combine(rules, found, PERSON, catalogue).intents == ("orange_card",) * 3
    alone = Classification("orange_card", 0.6)
    unlikely = replace(found, requests={"orange_card": 0.95, "info_asylum": 0.1})
    assert combine(alone, unlikely, PERSON, catalogue).intents == ("orange_card", "orange_card")


def test_with_nobody_named_or_counted_the_likeliest_second_request_is_preferred(catalogue):
    found = replace(
        prediction({"return_report": 0.9}, topic="departure_return", several=0.9),
        requests={"return_report": 0.95, "info_permanent_residence": 0.35, "switch_eplus_fplus": 0.2},
    )
    alone = Classification("return_report", 0.6)
    expected = ("return_report", "info_permanent_residence")
    assert combine(alone, found, PERSON, catalogue).intents == expected
    # ... also to a product the rules found that the head holds less likely,
    by_rules = Classification("return_report", 0.6, ("return_report", "switch_eplus_fplus"))
    assert combine(by_rules, found, PERSON, catalogue).intents == expected
    # ... but not when the text counts persons.
    counted = replace(alone, persons=3)
    assert combine(counted, found, PERSON, catalogue).intents == ("return_report",) * 3


def test_with_a_requests_head_two_questions_are_two_requests(catalogue):
    rules = Classification("info_students", 0.6)
    found = replace(
        prediction(
            {"info_students": 0.7, "info_asylum": 0.2}, intent="question", topic="students", several=0.9
        ),
        requests={"info_students": 0.9, "info_asylum": 0.8},
    )
    assert combine(rules, found, PERSON, catalogue).intents == ("info_students", "info_asylum")


def test_a_product_the_rules_found_needs_less_support_from_the_requests_head(catalogue):
    rules = Classification(
        "appointment_cancel", 0.6, ("appointment_cancel", "child_card", "card_renewal", "card_defect")
    )
    found = replace(
        prediction({"appointment_cancel": 0.8}, intent="cancel", topic="appointments", several=0.9),
        requests={"appointment_cancel": 0.9, "card_defect": 0.3, "child_card": 0.05, "card_renewal": 0.1},
    )
    assert combine(rules, found, PERSON, catalogue).intents == ("appointment_cancel", "card_defect")


def test_a_product_the_requests_head_never_learnt_and_the_persons_counted_stay(catalogue):
    rules = Classification("cgrs_papers", 0.6, ("cgrs_papers", "cgrs_papers", "refugee_card"))
    found = replace(
        prediction({"cgrs_papers": 0.8}, topic="asylum", several=0.9),
        requests={"cgrs_papers": 0.9, "card_lost": 0.8},  # no row for refugee_card
    )
    assert combine(rules, found, PERSON, catalogue).intents == (
        "cgrs_papers",
        "cgrs_papers",
        "card_lost",
        "refugee_card",
    )


def test_when_the_requests_head_doubts_every_product_the_rules_found_a_person_sees_them(catalogue):
    rules = Classification(
        "appointment_cancel", 0.6, ("appointment_cancel", "child_card", "card_renewal", "card_defect")
    )
    found = replace(
        prediction({"appointment_cancel": 0.8}, intent="cancel", topic="appointments", several=0.9),
        requests={"appointment_cancel": 0.9, "card_defect": 0.1, "child_card": 0.05, "card_renewal": 0.1},
    )
    assert combine(rules, found, PERSON, catalogue).intents == (
        "appointment_cancel",
        "child_card",
        "card_renewal",
    )


def test_products_the_rules_found_only_named_in_passing_do_not_split(catalogue):
    """A story names the cards it went through on the way to one request: when the model sees one
    request and its requests head none of the rules' other products, the email is not split."""
    rules = Classification("info_decision", 0.6, ("info_decision", "refugee_card", "orange_card"))
    found = replace(
        prediction({"info_decision": 0.9}, intent="question", topic="decision", several=0.05),
        requests={"info_decision": 0.95, "refugee_card": 0.1, "orange_card": 0.05},
        several_examples=500,
    )
    combined = combine(rules, found, PERSON, catalogue)
    assert combined.intents == ()
    assert combined.confidence == pytest.approx(0.9 * 0.95)
    supported = replace(found, requests={**found.requests, "refugee_card": 0.3})
    assert combine(rules, supported, PERSON, catalogue).intents == ("info_decision", "refugee_card")
    # A product the requests head never learnt (refugee_card here) is one it cannot doubt.
    unlearnt = replace(found, requests={"info_decision": 0.95, "orange_card": 0.05})
    assert combine(rules, unlearnt, PERSON, catalogue).intents == ("info_decision", "refugee_card")
    # A model that learnt several requests from a handful of emails does not overrule the rules.
    novice = replace(found, several_examples=8)
    assert combine(rules, novice, PERSON, catalogue).intents == (
        "info_decision",
        "refugee_card",
        "orange_card",
    )
    unsure = replace(found, several=0.25)
    assert combine(rules, unsure, PERSON, catalogue).intents == (
        "info_decision",
        "refugee_card",
        "orange_card",
    )


def test_one_product_for_as_many_persons_as_a_number_counts(catalogue):
    """ "De kaarten van onze drie kinderen": three requests, not the two assumed without a count."""
    found = replace(
        prediction({"card_renewal": 0.9}, several=0.9), requests={"card_renewal": 0.95, "card_lost": 0.1}
    )
    counted = Classification("card_renewal", 0.6, persons=3)
    assert combine(counted, found, PERSON, catalogue).intents == ("card_renewal",) * 3
    # The persons the rules named for the request ("voor mij en mijn vrouw") are not recounted.
    by_rules = Classification("card_renewal", 0.6, ("card_renewal",) * 2, persons=4)
    assert combine(by_rules, found, PERSON, catalogue).intents == ("card_renewal",) * 2
    assert combine(counted, found, PERSON, catalogue).persons == 3
    uncounted = Classification("card_renewal", 0.6)
    assert combine(uncounted, found, PERSON, catalogue).intents == ("card_renewal",) * 2
    single = replace(found, several=0.1)
    assert combine(counted, single, PERSON, catalogue).intents == ()


def test_the_persons_the_rules_named_stay_when_the_other_product_was_named_in_passing(catalogue):
    rules = Classification("card_renewal", 0.6, ("card_renewal", "card_renewal", "orange_card"))
    found = replace(
        prediction({"card_renewal": 0.9}, several=0.1),
        requests={"card_renewal": 0.95, "orange_card": 0.05},
        several_examples=500,
    )
    assert combine(rules, found, PERSON, catalogue).intents == ("card_renewal", "card_renewal")
