"""The pure part of the pipeline: parse → screen → extract → classify → combine → decide, no side effects.

``observe`` runs the stages that read the email (up to the rules' classification and the model's
input), ``conclude`` those that judge it; ``analyse`` is both. A benchmark observes each email once
and concludes it with an analyser holding the model of its cross-validation fold.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mailflow.classification.catalogue import Catalogue
from mailflow.classification.combine import SEVERAL, combine
from mailflow.classification.learning.features import ModelInput, model_input
from mailflow.classification.learning.model import TrainedModel
from mailflow.classification.rules import classify
from mailflow.classification.word_vectors import WordVectors
from mailflow.domain import (
    Action,
    Analysis,
    Classification,
    Extraction,
    ParsedMessage,
    Screening,
    ThreadContext,
)
from mailflow.replies.thread_tokens import ThreadSigner
from mailflow.stages.bounces import read_bounce
from mailflow.stages.decide import DecisionPolicy, decide
from mailflow.stages.documents import DocumentRules
from mailflow.stages.extract import extract
from mailflow.stages.headers import usable_address
from mailflow.stages.held_parts import archives, calendar_method
from mailflow.stages.language import LanguageDetector
from mailflow.stages.parse import parse
from mailflow.stages.screen import screen
from mailflow.stages.thread import CaseLookup, find_thread, follow_up_classification, hold_for_closed_case

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Observation:
    """What the stages before classification read from one email."""

    raw: bytes = field(repr=False)
    message: ParsedMessage
    screening: Screening
    extraction: Extraction
    thread: ThreadContext | None
    rules: Classification  # the catalogue's rules alone
    features: ModelInput  # what the learned model reads

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(document.kind for document in self.extraction.documents)


@dataclass(frozen=True)
class Analyser:
    catalogue: Catalogue
    language_detector: LanguageDetector
    document_rules: DocumentRules
    policy: DecisionPolicy
    trusted_authserv_id: str | None
    own_addresses: frozenset[str]
    own_domain: str
    default_language: str
    signer: ThreadSigner | None = None
    case_lookup: CaseLookup | None = None
    model: TrainedModel | None = None  # None: the rules alone
    word_vectors: WordVectors | None = None  # what a newly trained model reads words with
    spam_verdicts: bool = True  # honour the receiving server's spam-filter headers
    # raw bytes → ParsedMessage; the worker's parses in a sandboxed child with limits (``parse_sandbox``)
    parser: Callable[[bytes], ParsedMessage] = parse

    def analyse(self, raw: bytes) -> Analysis:
        return self.conclude(self.observe(raw))

    def observe(self, raw: bytes) -> Observation:
        """Everything read from the email itself: the input of both the rules and the model."""
        message = self.parser(raw)
        screening = screen(
            message,
            trusted_authserv_id=self.trusted_authserv_id,
            own_addresses=self.own_addresses,
            spam_verdicts=self.spam_verdicts,
        )
        extraction = extract(
            message,
            language_detector=self.language_detector,
            default_language=self.default_language,
            document_rules=self.document_rules,
        )
        kinds = tuple(document.kind for document in extraction.documents)
        thread = None
        if self.signer is not None and self.case_lookup is not None:
            thread = find_thread(message, screening, signer=self.signer, lookup=self.case_lookup)
        in_reply_to_ours = self.answers_our_mail(message)
        rules = classify(
            extraction.text,
            message.subject,
            kinds,
            screening,
            self.catalogue,
            in_reply_to_ours=in_reply_to_ours,
        )
        features = model_input(
            message.subject, extraction.text, kinds, screening, in_reply_to_ours=in_reply_to_ours, rules=rules
        )
        return Observation(raw, message, screening, extraction, thread, rules, features)

    def conclude(self, seen: Observation) -> Analysis:
        """Classify (rules and model combined) and decide."""
        kinds = seen.kinds
        prediction = self.model.predict_all(seen.features) if self.model is not None else None
        several_from = self.model.card.thresholds.get("several", SEVERAL) if self.model else SEVERAL
        classification = combine(
            seen.rules, prediction, seen.screening, self.catalogue, several_from=several_from
        )
        classification = follow_up_classification(classification, seen.thread, kinds)
        thread = seen.thread
        on_file = thread.case.documents if thread and thread.case.category == classification.category else ()
        shown = tuple(d.kind for d in seen.extraction.documents if not d.named_only)
        decision = decide(
            classification,
            language=seen.extraction.language,
            documents=(*shown, *on_file),
            named_only=tuple(d.kind for d in seen.extraction.documents if d.named_only),
            parts_left_out=bool(seen.message.dropped),
            calendar_method=calendar_method(seen.message.attachments),
            archives=archives(seen.message.attachments),
            sender_usable=usable_address(seen.message.from_address),
            screening=seen.screening,
            catalogue=self.catalogue,
            policy=self.policy_for_model(),
        )
        decision = hold_for_closed_case(decision, thread)
        bounce = read_bounce(seen.raw, self.own_domain) if decision.category == "bounce" else None
        return Analysis(
            seen.message, seen.screening, seen.extraction, classification, decision, thread, bounce
        )

    def policy_for_model(self) -> DecisionPolicy:
        """The decision policy with the confidence each action needs, as chosen for the installed model."""
        thresholds = self.model.card.thresholds if self.model is not None else {}
        actions = {group: value for group, value in thresholds.items() if group != "several"}
        return replace(self.policy, action_thresholds=actions) if actions else self.policy

    def answers_our_mail(self, message: ParsedMessage) -> bool:
        suffix = f"@{self.own_domain.lower()}>"
        return any(i.lower().endswith(suffix) for i in (message.in_reply_to, *message.references) if i)


def classify_file(analyser: Analyser, path: Path) -> dict[str, Any]:
    """The ``classify --json`` line for one file; a file that cannot be analysed is reported, not raised."""
    try:
        analysis = analyser.analyse(path.read_bytes())
    except Exception as exc:  # one bad file must not stop the others
        log.warning("%s: cannot be analysed: %s", path, type(exc).__name__)
        return {
            "file": str(path),
            "category": "unclear",
            "action": Action.TRIAGE.value,
            "confidence": 0.0,
            "language": analyser.default_language,
            "documents": [],
            "intents": [],
            "intent": "",
            "topic": "",
            "why_not_automated": f"not analysable: {type(exc).__name__}",
            "reasons": [f"not analysable: {type(exc).__name__}: {str(exc)[:200]}"],
        }
    decision = analysis.decision
    return {
        "file": str(path),
        "category": decision.category,
        "action": decision.action.value,
        "confidence": round(decision.confidence, 4),
        "language": decision.language,
        "documents": [document.kind for document in analysis.extraction.documents],
        "intents": list(decision.intents),
        "intent": analysis.classification.intent,
        "topic": analysis.classification.topic,
        "why_not_automated": decision.reasons[-1] if decision.action is Action.TRIAGE else None,
        "reasons": list(decision.reasons),
    }
