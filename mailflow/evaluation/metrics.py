"""The classification benchmark's figures, computed from expected and predicted outcomes. Pure.

The two figures that matter most:

- **harmful rate**: the share of *all* emails that were handled automatically (any action but
  ``triage``) with a wrong category or a wrong action. Machine mail ignored under another machine
  category (a bounce read as an auto-reply) harms no one and does not count; a resident's email
  ignored does, as does a reply sent to an email that needed a person.
- **automation rate**: the share of the emails whose expected action is not ``triage`` that were
  handled automatically and correctly: the right action, and the right category (for ignored
  machine mail the action alone).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mailflow.domain import Action
from mailflow.evaluation.risk import Point
from mailflow.stages.decide import action_group

TRIAGE = "triage"
IGNORE = "ignore"
OWN_LANGUAGES = ("nl", "fr", "en")


@dataclass(frozen=True)
class Outcome:
    """One email: what its labels expect and what the pipeline did."""

    name: str
    expected_category: str
    expected_action: str
    category: str
    action: str
    expected_language: str = ""
    language: str = ""
    expected_intents: tuple[str, ...] = ()
    intents: tuple[str, ...] = ()
    # Per attachment, in order: (expected kind, found kind, format: "text_pdf" | "image" | "other").
    documents: tuple[tuple[str, str, str], ...] = ()
    milliseconds: float = 0.0
    confidence: float = 0.0
    several: float = 0.0  # the model's probability of several requests
    screened: bool = False  # machine mail by its headers: no threshold changes its outcome
    attachments: int = 0
    model_category: str | None = None  # the model's own best guess, when a model was used
    # How it would have been handled had no action needed any confidence (with a model only).
    unthresholded: Point | None = None

    @property
    def automated(self) -> bool:
        return self.action != TRIAGE

    @property
    def harmful(self) -> bool:
        if not self.automated:
            return False
        if self.expected_action == IGNORE and self.action == IGNORE:
            return False  # machine mail, whichever kind: ignored as it should be
        return self.category != self.expected_category or self.action != self.expected_action

    @property
    def correct_automation(self) -> bool:
        if self.expected_action == TRIAGE or self.action != self.expected_action:
            return False
        return self.action == IGNORE or self.category == self.expected_category


def as_point(outcome: Outcome) -> Point:
    """An outcome as a point of a risk–coverage curve."""
    return Point(
        group=action_group(Action(outcome.action)) if outcome.action != TRIAGE else "",
        confidence=outcome.confidence,
        harmful=outcome.harmful,
        correct=outcome.correct_automation,
        automatable=outcome.expected_action != TRIAGE,
        several=outcome.several,
        fixed=outcome.screened,
    )


@dataclass(frozen=True)
class Ratio:
    hits: int
    total: int

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None


@dataclass(frozen=True)
class CategoryFigures:
    support: int  # emails expected in the category
    predicted: int  # emails classified into it
    correct: int

    @property
    def precision(self) -> float | None:
        return self.correct / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.correct / self.support if self.support else None


@dataclass(frozen=True)
class Figures:
    emails: int
    harmful: Ratio
    automation: Ratio
    category: Ratio
    action: Ratio
    categories: dict[str, CategoryFigures]
    confusion: list[tuple[str, str, int]]  # (expected, predicted, count), off the diagonal only
    languages: dict[str, Ratio]  # "nl", "fr", "en", "nl+fr+en", "all", "reply" (the reply's language)
    documents: dict[str, Ratio]  # by attachment format
    intents: Ratio  # emails with several requests whose requests were all found
    intent_misses: dict[str, int]  # how the others went wrong (``intent_misses``)
    model: Ratio | None  # the model's own best guess, where one was made
    speed: dict[str, float | None] = field(default_factory=dict)


def harmful_rate(outcomes: Sequence[Outcome]) -> Ratio:
    return Ratio(sum(o.harmful for o in outcomes), len(outcomes))


def automation_rate(outcomes: Sequence[Outcome]) -> Ratio:
    eligible = [o for o in outcomes if o.expected_action != TRIAGE]
    return Ratio(sum(o.correct_automation for o in eligible), len(eligible))


def category_figures(outcomes: Iterable[Outcome]) -> dict[str, CategoryFigures]:
    outcomes = list(outcomes)
    support = Counter(o.expected_category for o in outcomes)
    predicted = Counter(o.category for o in outcomes)
    correct = Counter(o.category for o in outcomes if o.category == o.expected_category)
    return {
        category: CategoryFigures(support[category], predicted[category], correct[category])
        for category in sorted(support | predicted)
    }


def confusion(outcomes: Iterable[Outcome]) -> list[tuple[str, str, int]]:
    cells = Counter((o.expected_category, o.category) for o in outcomes if o.category != o.expected_category)
    return [
        (expected, found, n) for (expected, found), n in sorted(cells.items(), key=lambda c: (-c[1], c[0]))
    ]


def language_accuracy(outcomes: Sequence[Outcome]) -> dict[str, Ratio]:
    def ratio(selected: list[Outcome]) -> Ratio:
        return Ratio(sum(o.language == o.expected_language for o in selected), len(selected))

    labelled = [o for o in outcomes if o.expected_language]
    figures = {code: ratio([o for o in labelled if o.expected_language == code]) for code in OWN_LANGUAGES}
    figures["nl+fr+en"] = ratio([o for o in labelled if o.expected_language in OWN_LANGUAGES])
    figures["all"] = ratio(labelled)
    figures["reply"] = Ratio(
        sum(reply_language(o.language) == reply_language(o.expected_language) for o in labelled),
        len(labelled),
    )
    return figures


def reply_language(language: str) -> str:
    """The language a reply is written in: the resident's when nl, fr or en, else English with a Dutch
    line on top (``taxonomy.md``) — the same reply for every other language."""
    return language if language in OWN_LANGUAGES else "other"


def document_accuracy(outcomes: Iterable[Outcome]) -> dict[str, Ratio]:
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for outcome in outcomes:
        for expected, found, form in outcome.documents:
            totals[form] += 1
            hits[form] += expected == found
    return {form: Ratio(hits[form], totals[form]) for form in sorted(totals)}


def intent_accuracy(outcomes: Iterable[Outcome]) -> Ratio:
    several = [o for o in outcomes if len(o.expected_intents) > 1]
    return Ratio(sum(Counter(o.intents) == Counter(o.expected_intents) for o in several), len(several))


MISS_KINDS = ("read_as_one", "persons_miscounted", "requests_differ", "split_needlessly")


def intent_misses(outcomes: Iterable[Outcome]) -> dict[str, int]:
    """How the several-requests split went wrong, counted: emails asking several things read as one
    (``read_as_one``); split with the right products but for the wrong number of persons
    (``persons_miscounted``); split with a product not asked or one missing (``requests_differ``); and
    emails asking one thing that were split (``split_needlessly``)."""
    misses = Counter({kind: 0 for kind in MISS_KINDS})
    for o in outcomes:
        expected, found = Counter(o.expected_intents), Counter(o.intents)
        if len(o.expected_intents) <= 1:
            misses["split_needlessly"] += len(o.intents) > 1
        elif found == expected:
            continue
        elif len(o.intents) <= 1:
            misses["read_as_one"] += 1
        elif set(found) == set(expected):
            misses["persons_miscounted"] += 1
        else:
            misses["requests_differ"] += 1
    return dict(misses)


def model_accuracy(outcomes: Iterable[Outcome]) -> Ratio | None:
    guessed = [o for o in outcomes if o.model_category is not None]
    if not guessed:
        return None
    return Ratio(sum(o.model_category == o.expected_category for o in guessed), len(guessed))


def speed(outcomes: Sequence[Outcome]) -> dict[str, float | None]:
    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    total = sum(o.milliseconds for o in outcomes)
    return {
        "emails_per_second": 1000 * len(outcomes) / total if total else None,
        "mean_ms": mean([o.milliseconds for o in outcomes]),
        "mean_ms_without_attachments": mean([o.milliseconds for o in outcomes if not o.attachments]),
        "mean_ms_with_attachments": mean([o.milliseconds for o in outcomes if o.attachments]),
    }


def figures(outcomes: Sequence[Outcome]) -> Figures:
    return Figures(
        emails=len(outcomes),
        harmful=harmful_rate(outcomes),
        automation=automation_rate(outcomes),
        category=Ratio(sum(o.category == o.expected_category for o in outcomes), len(outcomes)),
        action=Ratio(sum(o.action == o.expected_action for o in outcomes), len(outcomes)),
        categories=category_figures(outcomes),
        confusion=confusion(outcomes),
        languages=language_accuracy(outcomes),
        documents=document_accuracy(outcomes),
        intents=intent_accuracy(outcomes),
        intent_misses=intent_misses(outcomes),
        model=model_accuracy(outcomes),
        speed=speed(outcomes),
    )
