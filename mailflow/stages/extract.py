"""extract: the resident's own text, its language, the kind of each attached document, its identifiers.

The language is read from what the resident wrote: the body without quoted history and signatures;
only when that says too little, from the subject with it (unless the subject is a reply's or a
forward's), then from forwarded mail, and finally the mailbox's default language.
"""

from __future__ import annotations

import time

from mailflow.domain import Extraction, Identifier, ParsedMessage
from mailflow.identifiers import find_identifiers, mask
from mailflow.stages.documents import DocumentRules, classify_attachment, default_rules
from mailflow.stages.language import LanguageDetector
from mailflow.stages.text import clean_subject, resident_text


def extract(
    message: ParsedMessage,
    *,
    language_detector: LanguageDetector,
    default_language: str = "nl",
    document_rules: DocumentRules | None = None,
) -> Extraction:
    rules = document_rules or default_rules()
    text, parts = resident_text(message.subject, message.text)
    # A reply's or forward's subject was written by someone else (often by us): it says nothing of the
    # resident's language.
    own_subject = (
        ""
        if message.in_reply_to or clean_subject(message.subject) != message.subject.strip()
        else message.subject
    )
    candidates = (parts.own, f"{own_subject}\n{parts.own}", parts.forwarded)
    language = next(
        (found for found in map(language_detector.detect, candidates) if found),
        default_language,
    )
    deadline = time.monotonic() + rules.reader.email_seconds
    documents = tuple(
        classify_attachment(attachment, rules, timeout=deadline - time.monotonic())
        for attachment in message.attachments
    )
    return Extraction(documents=documents, language=language, text=text, identifiers=identifiers_in(text))


def identifiers_in(text: str) -> tuple[Identifier, ...]:
    """Register and card numbers, MRZ lines, PIN codes, case references and dates: validated, kept masked."""
    return tuple(
        Identifier(found.kind, found.valid, mask(text[found.span[0] : found.span[1]]))
        for found in find_identifiers(text)
    )
