"""Combine: one classification — category, intent, topic, several requests, confidence — from what
the catalogue's rules and the learned model found.

The model reads the rules' evidence among its features (``learning.features``), so where it exists it
has the last word on the category: it has learnt on emails the rules were never tuned on how far each
piece of evidence can be trusted — also when the rules point elsewhere, which is why their
disagreement is reported but not counted against the model a second time. Its confidence is the
category's calibrated probability, lowered when the intent or topic heads disagree with that
category: an email the model reads as a question but files as a request, or about cards but files
under asylum, is one it does not understand, and such an email must go to a person rather than get
a wrong reply.

Several requests: when the rules find them (two products' own evidence, or one request for several
persons) the email is split, unless the model sees one request and none of the rules' other
products among those asked (they are named in passing: the story around one request; the persons
the rules named for that request stay); otherwise the model's several-requests head decides, from
the probability chosen with the model's thresholds (``several_from``). Which requests it makes, the
model's requests head says — one calibrated yes/no per category, so that two can be likely at once;
when it holds no second product likely, its likeliest one, unless the text names or counts persons;
when it sees none at all, it is the same product for several persons, as many as a number in the
text counts (``Classification.persons``), two at least.

Without a model (or for machine mail recognised by the screening), the rules' classification stands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mailflow.classification.catalogue import Catalogue
from mailflow.classification.learning.model import Prediction
from mailflow.classification.taxonomy import (
    INFO_CATEGORIES,
    MACHINE_CATEGORIES,
    OTHER_SERVICE,
    REQUEST_CATEGORIES,
    STATUS_FOLLOWUP,
    UNCLEAR,
    intent_of,
)
from mailflow.domain import Classification, Screening

# The several-requests head's probability from which an email asks for several things, unless the
# model's thresholds say otherwise.
SEVERAL = 0.5
# A second category is one of the several requests when the model gives it this much probability
# (``SECOND_REQUEST``: of the category head, for a model without a requests head; ``REQUESTED``: of
# the requests head, which judges each category on its own).
SECOND_REQUEST = 0.15
REQUESTED = 0.5
SUPPORTED = 0.25  # of the requests head, for a product the rules also found
LIKELIEST = 0.15  # of the requests head, for its likeliest product when it holds none likely
# Below this several-requests probability, a second product the rules found stands only with the
# requests head's support (``SUPPORTED``): otherwise the rules read a product named in passing.
RULES_DOUBTED = 0.2
# ... and only from a model that learnt several requests from this many emails: one that saw a handful
# cannot tell a second request from a product named in passing.
DOUBTING_EXAMPLES = 100
MAX_OTHERS = 2  # four requests in one email are rare; more are the rules reading every card named
_NEVER_SEVERAL = frozenset({UNCLEAR, STATUS_FOLLOWUP, *MACHINE_CATEGORIES})


def combine(
    rules: Classification,
    prediction: Prediction | None,
    screening: Screening,
    catalogue: Catalogue,
    *,
    several_from: float = SEVERAL,
) -> Classification:
    """The classification of one email (``prediction`` None: no model, the rules alone)."""
    if (
        prediction is None
        or screening.machine_category is not None
        or rules.category not in prediction.categories  # a category the model was not trained on
    ):
        topic = catalogue.product(rules.category).topic
        return _with(rules, intent=intent_of(rules.category), topic=topic)
    probabilities = prediction.categories
    best = max(probabilities, key=probabilities.__getitem__)
    product = catalogue.product(best)
    intent, topic = _top(prediction.intent) or product.intent, _top(prediction.topic) or product.topic
    confidence = probabilities[best]
    reasons = [f"model: {best} p={confidence:.2f}"]
    agreeing = _agreement(prediction, product.intent, product.topic)
    if agreeing < confidence:
        reasons.append(f"intent or topic unsure: p={agreeing:.2f}")
        confidence = agreeing
    if rules.category == best:
        reasons.append(f"rules agree ({rules.category})")
    else:
        reasons.append(f"rules say {rules.category} ({rules.confidence:.2f})")
    reasons.extend(reason for reason in rules.reasons if reason.startswith("cue ") or "document" in reason)
    intents = several_requests(best, rules.intents, prediction, catalogue, several_from, rules.persons)
    several = 0.0 if best in _NEVER_SEVERAL else prediction.several  # junk or nothing: never split
    if not intents and several > 0:
        # Acting on one request of several harms: doubt about it counts against acting at all.
        confidence *= 1.0 - several
    if intents:
        intent = "several"
        reasons.append(f"several requests: {', '.join(intents)} (p={prediction.several:.2f})")
    return Classification(
        category=best,
        confidence=round(confidence, 4),
        intents=intents,
        reasons=tuple(reasons),
        scores=rules.scores,
        balance=rules.balance,
        intent=intent,
        topic=topic,
        several=round(several, 4),
        persons=rules.persons,
        held=rules.held,
    )


def several_requests(
    best: str,
    found_by_rules: Sequence[str],
    prediction: Prediction,
    catalogue: Catalogue,
    several_from: float = SEVERAL,
    counted: int = 0,
) -> tuple[str, ...]:
    """The requests of an email that asks for several things, or () when it asks for one.

    Whether it asks for several: the rules' finding (two products' own evidence, or "for me and my
    wife") or the several-requests head. Which: the requests head, each category judged on its own;
    when it finds no other category likely, the rules' requests (the persons they counted) or, with
    nobody named or counted, its likeliest other category; or else one request for as many persons as
    a number in the text counts (``counted``), two at least.
    Without a several-requests head (too few examples to train one) the rules' finding stands."""
    if best in _NEVER_SEVERAL:
        return ()
    by_rules = len(found_by_rules) > 1 and best in found_by_rules
    if not prediction.has_several_head:
        return tuple(found_by_rules) if by_rules else ()
    if by_rules and _named_in_passing(best, found_by_rules, prediction):
        # Only the persons the rules counted for the one request remain.
        found_by_rules = (best,) * found_by_rules.count(best)
        by_rules = len(found_by_rules) > 1
        if not by_rules:
            return ()
    if not by_rules and prediction.several < several_from:
        return ()
    if not prediction.requests:
        return tuple(found_by_rules) if by_rules else _from_categories(best, prediction, catalogue, counted)
    likely = {
        category: p
        for category, p in prediction.requests.items()
        if category != best and _may_follow(best, category, catalogue)
    }
    persons = found_by_rules.count(best) if by_rules else 1
    found = (
        [c for c in dict.fromkeys(found_by_rules) if c != best and _may_follow(best, c, catalogue)]
        if by_rules
        else []
    )
    others = _other_requests(likely, found, persons, counted)
    if others or persons > 1:
        return (best,) * persons + tuple(others)
    if by_rules:
        return tuple(found_by_rules)[: 1 + MAX_OTHERS]
    return _for_persons(best, counted)


def _other_requests(
    likely: Mapping[str, float], found: Sequence[str], persons: int, counted: int
) -> list[str]:
    """The other products asked, next to the one request (``persons`` times): those the requests
    head holds likely (``REQUESTED``) and those the rules found on their own evidence that it supports
    (``SUPPORTED``; one it never learnt counts as supported). When there are none, for one person:
    with nobody else counted, the head's likeliest product from ``LIKELIEST`` on — an email known to
    ask several things with nobody else named or counted asks a second thing far more often than the
    same for another person (measured on the training corpora's held-out folds) — else the rules'
    products though the head doubts them: a person sees them all."""
    ranked = sorted(likely, key=lambda c: -likely[c])
    others = [c for c in ranked if likely[c] >= REQUESTED]
    others += [c for c in found if c not in others and likely.get(c, 1.0) >= SUPPORTED]
    if others or persons > 1:
        return others[:MAX_OTHERS]
    if counted < 2 and ranked and likely[ranked[0]] >= LIKELIEST:
        return ranked[:1]
    return list(found[:MAX_OTHERS])


def _for_persons(best: str, counted: int) -> tuple[str, ...]:
    """One request for several persons: as many as a number counts, two at least. A question or
    another service is asked once whoever asks."""
    return (best,) * max(2, counted) if best in REQUEST_CATEGORIES else ()


def _named_in_passing(best: str, found_by_rules: Sequence[str], prediction: Prediction) -> bool:
    """Whether the other products the rules found are only named, not asked: the model, having learnt
    several requests from enough emails (``DOUBTING_EXAMPLES``), sees one request (several-requests
    probability below ``RULES_DOUBTED``) and its requests head supports none of them. A story names
    the cards and annexes it went through on the way to its one request; splitting it would send a
    request the model understood to a person."""
    others = set(found_by_rules) - {best}
    return (
        bool(others)
        and prediction.several_examples >= DOUBTING_EXAMPLES
        and bool(prediction.requests)
        and prediction.several < RULES_DOUBTED
        # A product the requests head never learnt counts as supported: it cannot doubt it.
        and not any(prediction.requests.get(category, 1.0) >= SUPPORTED for category in others)
    )


def _from_categories(
    best: str, prediction: Prediction, catalogue: Catalogue, counted: int = 0
) -> tuple[str, ...]:
    """A model without a requests head: its next best category is the second request."""
    others = [
        category
        for category, p in sorted(prediction.categories.items(), key=lambda item: -item[1])
        if category != best
        and p >= SECOND_REQUEST
        and _may_follow(best, category, catalogue)
        and not (category in INFO_CATEGORIES and best in INFO_CATEGORIES)
    ]
    if others:
        return (best, others[0])
    return _for_persons(best, counted)


def _may_follow(best: str, category: str, catalogue: Catalogue) -> bool:
    """Whether ``category`` can be a second request next to ``best``: not junk, not another service
    (that is where to send it, not what we do), not the same request under another name."""
    return (
        category not in _NEVER_SEVERAL
        and category != OTHER_SERVICE
        and best not in catalogue.product(category).same_request_as
        and category not in catalogue.product(best).same_request_as
    )


def _agreement(prediction: Prediction, intent: str, topic: str) -> float:
    """How far the intent and topic heads agree with a category's own intent and topic."""
    values = [1.0]
    if prediction.intent:
        values.append(prediction.intent.get(intent, 0.0))
    if prediction.topic:
        values.append(prediction.topic.get(topic, 0.0))
    return min(values)


def _top(probabilities: Mapping[str, float]) -> str:
    return max(probabilities, key=probabilities.__getitem__) if probabilities else ""


def _with(rules: Classification, *, intent: str, topic: str) -> Classification:
    return Classification(
        rules.category,
        rules.confidence,
        rules.intents,
        rules.reasons,
        rules.scores,
        rules.balance,
        "several" if len(rules.intents) > 1 else intent,
        topic,
        persons=rules.persons,
        held=rules.held,
    )
