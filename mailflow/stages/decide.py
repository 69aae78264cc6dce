"""Decide: the action for a classified email, by the taxonomy's override rules and the catalogue.

Pure. The rules apply in the taxonomy's order; the first that applies wins:

1. machine mail (recognised by the screening, or classified as auto-reply, bounce or spam with
   enough confidence) is ignored, even when its sender is also unverified;
2. an unverified sender (DMARC fail; no verdict too when authentication is required) goes to triage;
3. several requests (``intents``) go to triage;
4. a confidence below the threshold goes to triage, the category staying the best guess;

otherwise the product's channel from the catalogue, where a ``file`` product none of whose required
documents (any one of) is attached becomes ``request_documents``. When an attachment could not be
recognised (kind ``other``: a photo without readable text, say) it may be the very document asked
for, and asking the resident for it again would be wrong: such an email goes to triage instead (the
taxonomy's "anything risky"; ``DecisionPolicy.triage_unrecognised_attachments`` turns this off).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailflow.classification.catalogue import Catalogue
from mailflow.classification.taxonomy import MACHINE_CATEGORIES
from mailflow.domain import Action, Classification, Decision, Screening

UNRECOGNISED = "other"  # the document kind of an attachment nothing could be read from


@dataclass(frozen=True)
class DecisionPolicy:
    confidence_threshold: float
    require_authentication: bool  # an email without a DMARC verdict counts as failed
    triage_unrecognised_attachments: bool = True


def decide(
    classification: Classification,
    *,
    language: str,
    documents: Sequence[str],
    screening: Screening,
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
    confident = classification.confidence >= policy.confidence_threshold
    if classification.category in MACHINE_CATEGORIES and confident:
        return decision(Action.IGNORE, f"rule 1: machine mail by its text ({classification.category})")
    if screening.sender_verdict == "fail":
        return decision(Action.TRIAGE, "rule 2: sender failed DMARC")
    if screening.sender_verdict != "pass" and policy.require_authentication:
        return decision(Action.TRIAGE, "rule 2: sender not authenticated and authentication is required")
    if len(classification.intents) > 1:
        return decision(Action.TRIAGE, f"rule 3: {len(classification.intents)} requests")
    if not confident:
        return decision(
            Action.TRIAGE,
            f"rule 4: confidence {classification.confidence:.2f} below {policy.confidence_threshold:.2f}",
        )

    product = catalogue.product(classification.category)
    required = set(product.required_documents)
    if product.action is Action.FILE and required and not required & set(documents):
        if UNRECOGNISED in documents and policy.triage_unrecognised_attachments:
            return decision(Action.TRIAGE, "required document missing, but an attachment was not recognised")
        return decision(
            Action.REQUEST_DOCUMENTS,
            f"required document missing (any of {', '.join(product.required_documents)})",
            missing_documents=product.required_documents,
        )
    return decision(product.action, f"product {product.category}: {product.action.value}")
