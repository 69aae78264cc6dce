"""The pure part of the pipeline: parse → screen → extract → classify → decide, without side effects."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailflow.catalogue import Catalogue
from mailflow.domain import Action, Analysis, ParsedMessage
from mailflow.stages.classify import classify
from mailflow.stages.decide import DecisionPolicy, decide
from mailflow.stages.documents import DocumentRules
from mailflow.stages.extract import extract
from mailflow.stages.language import LanguageDetector
from mailflow.stages.parse import parse
from mailflow.stages.screen import screen

log = logging.getLogger(__name__)


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

    def analyse(self, raw: bytes) -> Analysis:
        message = parse(raw)
        screening = screen(
            message, trusted_authserv_id=self.trusted_authserv_id, own_addresses=self.own_addresses
        )
        extraction = extract(
            message,
            language_detector=self.language_detector,
            default_language=self.default_language,
            document_rules=self.document_rules,
        )
        kinds = [document.kind for document in extraction.documents]
        classification = classify(
            extraction.text,
            message.subject,
            kinds,
            screening,
            self.catalogue,
            in_reply_to_ours=self.answers_our_mail(message),
        )
        decision = decide(
            classification,
            language=extraction.language,
            documents=kinds,
            screening=screening,
            catalogue=self.catalogue,
            policy=self.policy,
        )
        return Analysis(message, screening, extraction, classification, decision)

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
        "reasons": list(decision.reasons),
    }
