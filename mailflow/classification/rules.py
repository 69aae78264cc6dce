"""Classify: which category an email asks for, how sure that is, and whether it asks for several things.

A pure keyword scorer over the catalogue's cue phrases. For every category it sums the weights of
the cues found in the subject and the resident's own text (words already counted by a stronger cue
count only in part), subtracts its negative cues and adds the evidence of attached documents. A
question ("what are the conditions…?") lifts the Information Centre topics, a request ("I want…",
"attached…", "an appointment", "can I get…") the products. Confidence is a softmax over the scores
of the categories with evidence, ``unclear`` competing at a fixed baseline: it is low when the lead
is small or nothing matched. Several requests are found from evidence of a second category that is
its own (not the words of the first), and from "voor mij en mijn vrouw"-like phrases. Machine mail
recognised by the screening stage is classified as such outright.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mailflow.classification.catalogue import Catalogue, Product
from mailflow.classification.cues import Cue, normalise
from mailflow.classification.markers import Markers
from mailflow.classification.persons import counted, named
from mailflow.classification.taxonomy import (
    INFO_CATEGORIES,
    MACHINE_CATEGORIES,
    OTHER_SERVICE,
    REQUEST_CATEGORIES,
    STATUS_FOLLOWUP,
    UNCLEAR,
)
from mailflow.domain import Classification, Screening

MACHINE_CONFIDENCE = 0.99
# What ``unclear`` scores before its own cues: a category needs more evidence than this to win.
UNCLEAR_BASELINE = 2.5
# Softmax temperature over the candidates' scores: a lead of 1.5 points is about e:1 odds.
TEMPERATURE = 1.5
# The question/request balance is capped so that it tips a choice between topics, never makes one.
MODE_CAP = 2.0
MODE_GAIN = 2.0
# What a cue adds when its words were already counted by a stronger cue of the same category.
OVERLAP_FACTOR = 0.5
# A reply in one of our own threads: its subject is ours and names the product.
OUR_SUBJECT_FACTOR = 1.5
# A second category is a second request when this much of its evidence is its own, or this much
# when the email announces a further request ("also", "ook", "aussi").
SECOND_REQUEST_EVIDENCE = 6.0
ANNOUNCED_REQUEST_EVIDENCE = 3.0
# These are never one of several requests; another service is not a second request next to ours.
_NO_SECOND_REQUEST = frozenset({UNCLEAR, STATUS_FOLLOWUP, *MACHINE_CATEGORIES})
_NEVER_SECOND = _NO_SECOND_REQUEST | {OTHER_SERVICE}
_INFO = frozenset(INFO_CATEGORIES)
_REQUESTS = frozenset(REQUEST_CATEGORIES)

Span = tuple[int, int, int]  # (0 subject | 1 body, start, end)


@dataclass(frozen=True)
class _Mode:
    """Whether the email asks something or requests something."""

    balance: float  # > 0: rather a question, < 0: rather a request; capped at ±MODE_CAP
    worded: bool  # the question is in words ("what are the conditions"), not only a "?"
    asks: bool  # there is a question at all


@dataclass
class _Evidence:
    score: float = 0.0
    spans: list[Span] = field(default_factory=list)
    own: dict[Span, float] = field(default_factory=dict)  # cue hits by span, for independence
    documents: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @property
    def first(self) -> tuple[int, int]:
        return min(((part, start) for part, start, _ in self.spans), default=(2, 0))


def classify(
    text: str,
    subject: str,
    documents: Sequence[str],
    screening: Screening,
    catalogue: Catalogue,
    *,
    in_reply_to_ours: bool = False,
) -> Classification:
    """Classify one email.

    ``text`` is the resident's own text (quoted history removed, forwarded text kept), ``documents``
    the kinds of its attachments, ``in_reply_to_ours`` whether it answers one of our own emails.
    """
    if screening.machine_category is not None:
        return Classification(
            category=screening.machine_category,
            confidence=MACHINE_CONFIDENCE,
            reasons=(f"screening: {screening.machine_category}",),
        )
    parts = (normalise(subject), normalise(text))
    factors = (OUR_SUBJECT_FACTOR if in_reply_to_ours else 1.0, 1.0)
    kinds = sorted(set(documents))
    evidence = {p.category: _evidence(p, parts, factors, kinds) for p in catalogue}
    mode = _mode(subject + "\n" + text, parts, catalogue.markers)
    _weigh_mode(mode, evidence, catalogue)
    evidence[UNCLEAR].score += UNCLEAR_BASELINE

    candidates = {c: e.score for c, e in evidence.items() if e.score > 0 or c == UNCLEAR}
    best = max(candidates, key=lambda c: (candidates[c], c == UNCLEAR))
    confidence = _softmax(candidates)[best]
    if best == UNCLEAR:
        # "Nothing else fits" is no evidence that nothing is asked: only unclear's own cues are.
        own = candidates[UNCLEAR] - UNCLEAR_BASELINE
        confidence *= own / (own + UNCLEAR_BASELINE)
    intents = _intents(best, evidence, parts, text, mode, catalogue)
    if best in _INFO and intents:
        # A question next to a request: the request is the main one.
        best = max((c for c in intents if c in _REQUESTS), key=lambda c: evidence[c].score, default=best)
    reasons = evidence[best].reasons or ["no cue matched" if len(candidates) == 1 else "nothing stood out"]
    if intents:
        reasons = [*reasons, f"several requests: {', '.join(intents)}"]
    scores = tuple(sorted((c, round(e.score, 3)) for c, e in evidence.items() if e.score > 0))
    return Classification(
        category=best,
        confidence=round(confidence, 4),
        intents=intents,
        reasons=tuple(reasons),
        scores=scores,
        balance=mode.balance,
        persons=counted(parts[1], catalogue.markers),
        held=tuple(p.category for p in catalogue if any(_hits(cue, parts) for cue in p.held_when)),
    )


def _weigh_mode(mode: _Mode, evidence: dict[str, _Evidence], catalogue: Catalogue) -> None:
    """Tip the balance between a topic's question (``info_*``) and its requests.

    A question in words ("what are the conditions for a K card?", not a bare "?") about a topic's
    requests is about the topic: their evidence counts for it too. Then questions lift the
    Information Centre topics and requests the products that already have evidence of their own.
    """
    strength = abs(mode.balance) / MODE_CAP
    if mode.balance > 0 and mode.worded:
        base = {category: found.score for category, found in evidence.items()}
        for product in catalogue:
            related = max((base[r] for r in product.related_requests), default=0.0) * strength
            if related > 0:
                evidence[product.category].score += related
                evidence[product.category].reasons.append(f"question about a request (+{related:g})")
    if not mode.balance:
        return
    favoured, kind = (_INFO, "question") if mode.balance > 0 else (_REQUESTS, "request")
    for category in favoured:
        if evidence[category].score > 0:
            evidence[category].score += strength * MODE_GAIN
            evidence[category].reasons.append(f"{kind} (+{strength * MODE_GAIN:g})")


def _evidence(
    product: Product, parts: tuple[str, str], factors: tuple[float, float], kinds: Iterable[str]
) -> _Evidence:
    found = _Evidence()
    matched = []
    for cue in product.cues:
        hits = _hits(cue, parts)
        if hits:
            matched.append((cue.weight * max(factors[span[0]] for span in hits), cue, hits))
    # Strongest first; words already counted count again only in part ("kids-ID" for "my son" is one
    # piece of evidence, not four), and exactly the same words (one cue per language) not at all.
    for weight, cue, hits in sorted(matched, key=lambda item: -item[0]):
        if hits[0] in found.own:
            continue
        if any(_overlap(hit, span) for hit in hits for span in found.spans):
            weight *= OVERLAP_FACTOR
        found.score += weight
        found.spans.extend(hits)
        found.own[hits[0]] = weight
        found.reasons.append(f"cue '{cue.phrase}' (+{weight:g})")
    for cue in product.negative_cues:
        if _hits(cue, parts):
            found.score -= cue.weight
            found.reasons.append(f"against '{cue.phrase}' (-{cue.weight:g})")
    for kind in kinds:
        weight = product.document_weight(kind)
        if weight:
            found.score += weight
            found.documents[kind] = weight
            found.reasons.append(f"document {kind} (+{weight:g})")
    return found


def _overlap(one: Span, other: Span) -> bool:
    return one[0] == other[0] and one[1] < other[2] and other[1] < one[2]


def _hits(cue: Cue, parts: tuple[str, str]) -> list[Span]:
    if cue.absent_from(parts[0]) and cue.absent_from(parts[1]):
        return []  # the common case, decided without the regex
    hits = []
    for index, part in enumerate(parts):
        span = cue.search(part)
        if span:
            hits.append((index, *span))
    return hits


def _mode(raw: str, parts: tuple[str, str], markers: Markers) -> _Mode:
    worded = sum(cue.weight for cue in markers.question if _hits(cue, parts))
    question = worded + markers.question_mark * min(raw.count("?"), 2)
    request = sum(cue.weight for cue in markers.request if _hits(cue, parts))
    balance = max(-MODE_CAP, min(MODE_CAP, question - request))
    return _Mode(balance=balance, worded=worded > 0, asks=question > 0)


def _softmax(scores: dict[str, float]) -> dict[str, float]:
    top = max(scores.values())
    weights = {c: math.exp((s - top) / TEMPERATURE) for c, s in scores.items()}
    total = sum(weights.values())
    return {c: w / total for c, w in weights.items()}


def _intents(
    best: str,
    evidence: dict[str, _Evidence],
    parts: tuple[str, str],
    text: str,
    mode: _Mode,
    catalogue: Catalogue,
) -> tuple[str, ...]:
    """One entry per request when the email asks for several products or for several persons.

    Another category is another request when enough of its evidence is its own (not the words that
    made the best one); a bit of evidence suffices when the email announces it ("I also want…").
    A question is another request only next to a request, and never about the same topic.
    """
    if best in _NO_SECOND_REQUEST:
        return ()
    markers = catalogue.markers
    also = any(_hits(cue, parts) for cue in markers.also)
    chosen = [best]
    for category, found in evidence.items():
        if category in _NEVER_SECOND or category == best:
            continue
        if _same_request(best, category, catalogue):
            continue
        if category in _INFO and (best in _INFO or not mode.asks):
            continue
        own = min(found.score, _independent(found, evidence[best]))
        if own >= SECOND_REQUEST_EVIDENCE or (also and own >= ANNOUNCED_REQUEST_EVIDENCE):
            chosen.append(category)
    persons = named(text, markers) if best in _REQUESTS else 1
    if len(chosen) == 1 and persons == 1:
        return ()
    chosen.sort(key=lambda c: evidence[c].first)
    return tuple(c for c in chosen for _ in range(persons if c == best else 1))


def _same_request(first: str, second: str, catalogue: Catalogue) -> bool:
    return (
        second in catalogue.product(first).same_request_as
        or first in catalogue.product(second).same_request_as
    )


def _independent(found: _Evidence, best: _Evidence) -> float:
    """The evidence of ``found`` that does not rest on the phrases or documents of ``best``."""
    own = sum(weight for span, weight in found.own.items() if not any(_overlap(span, o) for o in best.spans))
    own += sum(w for kind, w in found.documents.items() if kind not in best.documents)
    return own
