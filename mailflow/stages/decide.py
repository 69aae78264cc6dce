"""Decide: the action for a classified email, by the taxonomy's override rules and the catalogue.

Pure. The rules apply in the taxonomy's order; the first that applies wins:

1. machine mail (recognised by the screening, or classified as auto-reply, bounce or spam with
   enough confidence) is ignored, even when its sender is also unverified;
2. an unverified sender (DMARC fail; no verdict too when authentication is required) goes to triage;
3. several requests (``intents``) go to triage;
4. a confidence below what the action needs goes to triage, the category staying the best guess.
   Acting (``file``, ``request_documents``, ``book``, ``online``) needs more certainty than pointing a
   question to the Information Centre: each action group's threshold was chosen from a risk–coverage
   curve on held-out emails when the model was trained, and is stored with it
   (``DecisionPolicy.action_thresholds``); without one, ``confidence_threshold`` applies;

A category the catalogue holds for a person on this email (its ``held_when`` words: a child's card
where a parent is Belgian) goes to triage after rule 3, however sure the model is; otherwise the
product's channel from the catalogue, where a ``file`` product none of whose required
documents (any one of) is attached becomes ``request_documents``. When an attachment could not be
recognised (kind ``other``: a photo without readable text, say) it may be the very document asked
for, and asking the resident for it again would be wrong: such an email goes to triage instead (the
taxonomy's "anything risky"; ``DecisionPolicy.triage_unrecognised_attachments`` turns this off).
An email processed without the attachments over its limits (``parts_left_out``) goes to a person: what
was not read may be the document asked for. A required document known only by its file name
(``named_only``: its pages or picture show no such document) never completes a request either: a blank
``bijlage35.pdf`` goes to a person.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mailflow.classification.catalogue import Catalogue
from mailflow.classification.taxonomy import MACHINE_CATEGORIES
from mailflow.domain import Action, Classification, Decision, Screening

UNRECOGNISED = "other"  # the document kind of an attachment nothing could be read from
ACTING = frozenset({Action.FILE, Action.REQUEST_DOCUMENTS, Action.BOOK, Action.ONLINE})
_VERBS = {
    "act": "act on it",
    "redirect_info": "answer it as a question",
    "redirect_other": "send it to another service",
    "ignore": "ignore it",
}


def action_group(action: Action) -> str:
    """The group whose confidence threshold an action needs: "act", or the action's own name."""
    return "act" if action in ACTING else action.value


@dataclass(frozen=True)
class DecisionPolicy:
    confidence_threshold: float
    require_authentication: bool  # an email without a DMARC verdict counts as failed
    triage_unrecognised_attachments: bool = True
    # Per action group ("act", "redirect_info", "redirect_other", "ignore"): the confidence it needs.
    action_thresholds: Mapping[str, float] = field(default_factory=dict)

    def threshold(self, action: Action) -> float:
        return self.action_thresholds.get(action_group(action), self.confidence_threshold)


def decide(
    classification: Classification,
    *,
    language: str,
    documents: Sequence[str],
    screening: Screening,
    named_only: Sequence[str] = (),
    parts_left_out: bool = False,
    calendar_method: str | None = None,
    archives: int = 0,
    sender_usable: bool = True,
    catalogue: Catalogue,
    policy: DecisionPolicy,
) -> Decision:
    def decision(action: Action, reason: str, category: str = classification.category, **extra) -> Decision:
        return Decision(
            category=category,
            action=action,
            confidence=classification.confidence,
            language=language,
            intents=classification.intents,
            reasons=(*classification.reasons, reason),
            **extra,
        )

    if screening.machine_category is not None:
        return decision(Action.IGNORE, "rule 1: machine mail", category=screening.machine_category)
    confidence = classification.confidence
    if classification.category in MACHINE_CATEGORIES and confidence >= policy.threshold(Action.IGNORE):
        return decision(Action.IGNORE, f"rule 1: machine mail by its text ({classification.category})")
    if not sender_usable:
        return decision(Action.TRIAGE, "no_sender: no usable sender address to answer")
    if screening.sender_verdict == "fail":
        return decision(Action.TRIAGE, "rule 2: sender failed DMARC")
    if screening.sender_verdict != "pass" and policy.require_authentication:
        return decision(Action.TRIAGE, "rule 2: sender not authenticated and authentication is required")
    if len(classification.intents) > 1:
        return decision(Action.TRIAGE, f"rule 3: {len(classification.intents)} requests")
    if classification.category in classification.held:
        return decision(Action.TRIAGE, f"held by the catalogue: {classification.category}")
    if parts_left_out:
        # What was left out unread may be the very document or request: no reply can be sure of it.
        return decision(Action.TRIAGE, "attachments left out over the limits")
    if calendar_method is not None:
        # A calendar program's answer (REPLY, CANCEL, COUNTER…) answered automatically can loop.
        return decision(
            Action.TRIAGE, f"calendar message (METHOD:{calendar_method}): never answered automatically"
        )
    if archives:
        return decision(Action.TRIAGE, f"{archives} archive(s) attached: stored, never opened")
    product = catalogue.product(classification.category)
    if product.action is not Action.TRIAGE and confidence < policy.threshold(product.action):
        needed = policy.threshold(product.action)
        verb = _VERBS.get(action_group(product.action), "act on it")
        if needed > 1.0:
            return decision(Action.TRIAGE, f"rule 4: the model is never sure enough to {verb}")
        return decision(
            Action.TRIAGE, f"rule 4: confidence {confidence:.2f} below the {needed:.2f} needed to {verb}"
        )

    required = set(product.required_documents)
    if product.action is Action.FILE and required and not required & set(documents):
        if required & set(named_only):
            return decision(
                Action.TRIAGE, "required document named by its file name only: its content shows none"
            )
        if UNRECOGNISED in documents and policy.triage_unrecognised_attachments:
            return decision(Action.TRIAGE, "required document missing, but an attachment was not recognised")
        return decision(
            Action.REQUEST_DOCUMENTS,
            f"required document missing (any of {', '.join(product.required_documents)})",
            missing_documents=product.required_documents,
        )
    return decision(product.action, f"product {product.category}: {product.action.value}")
