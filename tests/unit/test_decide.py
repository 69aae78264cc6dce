"""The decision rules of the taxonomy, in their order, and the file / request_documents split."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from mailflow.classification.catalogue import Catalogue, Product
from mailflow.classification.markers import Markers
from mailflow.domain import Action, Classification, Screening
from mailflow.stages.decide import DecisionPolicy, decide

TITLE = MappingProxyType({"nl": "t", "fr": "t", "en": "t"})
PRODUCTS = {
    "return_report": Product(
        "return_report", Action.FILE, TITLE, required_documents=("passport_stamp", "boarding_pass", "annex18")
    ),
    "switch_c_d": Product("switch_c_d", Action.FILE, TITLE),
    "card_lost": Product("card_lost", Action.BOOK, TITLE, product_id="lost"),
    "departure_permanent": Product("departure_permanent", Action.ONLINE, TITLE, link="https://stad.gent/x"),
    "info_asylum": Product("info_asylum", Action.REDIRECT_INFO, TITLE, product_id="asylum"),
    "other_service": Product("other_service", Action.REDIRECT_OTHER, TITLE, link="https://stad.gent/eid"),
    "unclear": Product("unclear", Action.TRIAGE, TITLE),
    "spam": Product("spam", Action.IGNORE, TITLE),
}
CATALOGUE = Catalogue(
    products=MappingProxyType(PRODUCTS),
    markers=Markers((), (), 1.0, (), frozenset(), frozenset(), frozenset(), MappingProxyType({}), ()),
)
POLICY = DecisionPolicy(confidence_threshold=0.6, require_authentication=False)
STRICT = DecisionPolicy(confidence_threshold=0.6, require_authentication=True)
PASS = Screening(machine_category=None, sender_verdict="pass")
FAIL = Screening(machine_category=None, sender_verdict="fail")
NONE = Screening(machine_category=None, sender_verdict="none")


def decided(
    category,
    confidence=0.9,
    *,
    intents=(),
    documents=(),
    named_only=(),
    parts_left_out=False,
    screening=PASS,
    policy=POLICY,
    language="fr",
):
    classification = Classification(category, confidence, intents=intents, reasons=("cue x",))
    return decide(
        classification,
        language=language,
        documents=list(documents),
        named_only=list(named_only),
        parts_left_out=parts_left_out,
        screening=screening,
        catalogue=CATALOGUE,
        policy=policy,
    )


def rule(decision) -> str:
    return decision.reasons[-1]


# --- rule 1: machine mail ---------------------------------------------------------------------------


def test_machine_mail_is_ignored_even_when_the_sender_failed_dmarc():
    screening = Screening(machine_category="auto_reply", sender_verdict="fail")
    decision = decided("return_report", intents=("return_report", "card_lost"), screening=screening)
    assert decision.action is Action.IGNORE
    assert decision.category == "auto_reply"
    assert rule(decision).startswith("rule 1")


def test_machine_mail_recognised_by_its_text_is_ignored_before_the_dmarc_rule():
    decision = decided("spam", 0.8, screening=FAIL)
    assert decision.action is Action.IGNORE
    assert rule(decision).startswith("rule 1")


def test_text_that_only_may_be_spam_is_not_ignored():
    decision = decided("spam", 0.3, screening=FAIL)
    assert decision.action is Action.TRIAGE
    assert rule(decision).startswith("rule 2")


# --- rule 2: unverified sender ----------------------------------------------------------------------


def test_dmarc_failure_goes_to_triage_before_several_requests_and_confidence():
    decision = decided("switch_c_d", 0.2, intents=("switch_c_d", "switch_c_d"), screening=FAIL)
    assert decision.action is Action.TRIAGE
    assert rule(decision).startswith("rule 2")
    assert decision.category == "switch_c_d"


def test_missing_verdict_is_handled_normally_unless_authentication_is_required():
    assert decided("card_lost", screening=NONE).action is Action.BOOK
    strict = decided("card_lost", screening=NONE, policy=STRICT)
    assert strict.action is Action.TRIAGE
    assert rule(strict).startswith("rule 2")
    assert decided("card_lost", screening=PASS, policy=STRICT).action is Action.BOOK


# --- rule 3: several requests -----------------------------------------------------------------------


def test_several_requests_go_to_triage_before_low_confidence():
    decision = decided("card_lost", 0.1, intents=("card_lost", "return_report"))
    assert decision.action is Action.TRIAGE
    assert rule(decision).startswith("rule 3")
    assert decision.intents == ("card_lost", "return_report")


def test_one_request_for_several_persons_is_several_requests():
    decision = decided("switch_c_d", intents=("switch_c_d", "switch_c_d"))
    assert decision.action is Action.TRIAGE
    assert rule(decision).startswith("rule 3")


# --- held by the catalogue --------------------------------------------------------------------------


def test_a_category_the_catalogue_holds_goes_to_a_person_however_sure_the_model_is():
    held = Classification("card_lost", 0.99, reasons=("cue x",), held=("card_lost",))
    decision = decide(held, language="nl", documents=[], screening=PASS, catalogue=CATALOGUE, policy=POLICY)
    assert decision.action is Action.TRIAGE
    assert decision.category == "card_lost"
    assert rule(decision) == "held by the catalogue: card_lost"


def test_words_that_hold_another_category_change_nothing():
    other = Classification("card_lost", 0.99, reasons=("cue x",), held=("return_report",))
    decision = decide(other, language="nl", documents=[], screening=PASS, catalogue=CATALOGUE, policy=POLICY)
    assert decision.action is Action.BOOK


# --- rule 4: confidence -----------------------------------------------------------------------------


def test_low_confidence_goes_to_triage_and_keeps_the_best_guess():
    decision = decided("card_lost", 0.59)
    assert decision.action is Action.TRIAGE
    assert decision.category == "card_lost"
    assert rule(decision).startswith("rule 4")


def test_confidence_at_the_threshold_is_enough():
    assert decided("card_lost", 0.6).action is Action.BOOK


MODEL_POLICY = DecisionPolicy(
    confidence_threshold=0.6,
    require_authentication=False,
    action_thresholds={"act": 0.9, "redirect_info": 0.7, "redirect_other": 0.8, "ignore": 0.95},
)


@pytest.mark.parametrize(
    ("category", "enough", "too_little", "verb"),
    [
        ("card_lost", 0.9, 0.89, "act on it"),
        ("return_report", 0.9, 0.89, "act on it"),
        ("departure_permanent", 0.9, 0.89, "act on it"),
        ("info_asylum", 0.7, 0.69, "answer it as a question"),
        ("other_service", 0.8, 0.79, "send it to another service"),
    ],
)
def test_each_action_needs_the_confidence_chosen_for_it(category, enough, too_little, verb):
    assert decided(category, enough, policy=MODEL_POLICY).action is not Action.TRIAGE
    doubtful = decided(category, too_little, policy=MODEL_POLICY)
    assert doubtful.action is Action.TRIAGE and doubtful.category == category
    assert rule(doubtful) == f"rule 4: confidence {too_little:.2f} below the {enough:.2f} needed to {verb}"


def test_spam_by_its_text_needs_the_ignore_threshold():
    assert decided("spam", 0.96, policy=MODEL_POLICY).action is Action.IGNORE
    assert decided("spam", 0.9, policy=MODEL_POLICY).action is Action.TRIAGE


def test_nothing_asked_goes_to_a_person_whatever_the_confidence():
    assert decided("unclear", 0.99, policy=MODEL_POLICY).action is Action.TRIAGE


# --- the product's channel --------------------------------------------------------------------------


@pytest.mark.parametrize("document", ["passport_stamp", "boarding_pass", "annex18"])
def test_file_product_with_any_one_required_document_is_filed(document):
    decision = decided("return_report", documents=["photo", document])
    assert decision.action is Action.FILE
    assert decision.missing_documents == ()


def test_file_product_without_its_documents_asks_for_them():
    decision = decided("return_report", documents=["passport", "photo"])
    assert decision.action is Action.REQUEST_DOCUMENTS
    assert decision.missing_documents == ("passport_stamp", "boarding_pass", "annex18")


def test_an_unrecognised_attachment_may_be_the_missing_document():
    decision = decided("return_report", documents=["other"])
    assert decision.action is Action.TRIAGE
    assert "not recognised" in rule(decision)
    lenient = DecisionPolicy(0.6, require_authentication=False, triage_unrecognised_attachments=False)
    assert decided("return_report", documents=["other"], policy=lenient).action is Action.REQUEST_DOCUMENTS
    assert decided("return_report", documents=["other", "boarding_pass"]).action is Action.FILE


def test_a_required_document_known_only_by_its_file_name_goes_to_a_person():
    decision = decided("return_report", documents=["photo"], named_only=["boarding_pass"])
    assert decision.action is Action.TRIAGE
    assert "file name only" in rule(decision)
    # Shown by another attachment's content, the request is complete whatever the names say.
    assert decided("return_report", documents=["annex18"], named_only=["boarding_pass"]).action is Action.FILE
    # A named-only document that is not required changes nothing: the resident is asked.
    assert decided("return_report", named_only=["passport"]).action is Action.REQUEST_DOCUMENTS


def test_an_email_whose_attachments_were_left_out_goes_to_a_person():
    decision = decided("return_report", documents=["annex18"], parts_left_out=True)
    assert decision.action is Action.TRIAGE
    assert rule(decision) == "attachments left out over the limits"
    assert decided("info_asylum", parts_left_out=True).action is Action.TRIAGE
    # Machine mail stays ignored, whatever it carried.
    assert decided("spam", parts_left_out=True).action is Action.IGNORE


def test_file_product_without_required_documents_is_filed_directly():
    decision = decided("switch_c_d")
    assert decision.action is Action.FILE
    assert decision.missing_documents == ()


@pytest.mark.parametrize(
    ("category", "action"),
    [
        ("card_lost", Action.BOOK),
        ("departure_permanent", Action.ONLINE),
        ("info_asylum", Action.REDIRECT_INFO),
        ("unclear", Action.TRIAGE),
        ("spam", Action.IGNORE),
    ],
)
def test_other_channels_come_from_the_catalogue(category, action):
    decision = decided(category, documents=["passport"])
    assert decision.action is action
    assert decision.missing_documents == ()


def test_decision_carries_language_confidence_and_reasons():
    decision = decided("card_lost", 0.75, language="tr")
    assert decision.language == "tr"
    assert decision.confidence == 0.75
    assert decision.reasons[0] == "cue x"
    assert "card_lost" in rule(decision)
