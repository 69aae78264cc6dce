"""Language of a resident's text, with lingua restricted to the languages the counter receives.

The detector's models take seconds and a few hundred MB to load, so they are loaded on first use (or
by an explicit ``build()`` at start-up), never at import. Short texts are where detectors fail, so the
text is stripped of what carries no language (addresses, numbers, case references) and, when the
counter's own languages are nearly as likely as the winner, one of them is preferred: a Dutch mail
read as Afrikaans-ish German costs more than the reverse.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lingua import LanguageDetector as LinguaDetector

DEFAULT_LANGUAGES = (
    *("nl", "fr", "en", "de", "tr", "ar", "es", "pl", "ro", "bg", "pt", "it", "ru", "uk"),
    *("fa", "so", "sq", "sk", "cs", "hu", "el", "hy", "ka"),
)
PREFERRED = ("nl", "fr", "en")
SENTENCE_WORDS = 4
SHORT_LINE_WEIGHT = 0.25

_NOISE = re.compile(
    r"https?://\S+|www\.\S+|\S+@\S+|<[^>]*>"  # links and addresses
    r"|\b[A-Z]{2,}[-/ ]?\d[\w./-]*"  # case and document references: MIG-2026-004410, RvV 315 902
    r"|[\d.,:/()+-]*\d[\d.,:/()+-]*",  # numbers, dates, phone and national register numbers
)


class LanguageDetector:
    """ISO 639-1 language of a text, or None when the text says too little to tell."""

    def __init__(
        self,
        languages: Iterable[str] = DEFAULT_LANGUAGES,
        *,
        preferred: Iterable[str] = PREFERRED,
        min_letters: int = 12,
        min_confidence: float = 0.35,
        preference_margin: float = 0.25,
        per_line: bool = True,
        low_accuracy: bool = True,
    ) -> None:
        self.languages = tuple(code.lower() for code in languages)
        self.preferred = tuple(code for code in preferred if code in self.languages)
        self.min_letters = min_letters
        self.min_confidence = min_confidence
        self.preference_margin = preference_margin
        self.per_line = per_line  # False: one score for the whole text (faster, worse on mixed text)
        # Trigram models only: a fraction of the memory, a little less sure on very short lines.
        self.low_accuracy = low_accuracy
        self._detector: LinguaDetector | None = None
        self._lock = threading.Lock()

    def build(self) -> LanguageDetector:
        """Load the language models now (takes a few seconds); later calls do nothing."""
        with self._lock:
            if self._detector is None:
                from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

                chosen = [
                    Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in self.languages
                ]
                builder = LanguageDetectorBuilder.from_languages(*chosen).with_preloaded_language_models()
                if self.low_accuracy:
                    builder = builder.with_low_accuracy_mode()
                self._detector = builder.build()
        return self

    def confidences(self, text: str, *, min_letters: int | None = None) -> list[tuple[str, float]]:
        """(language, confidence) pairs, most likely first; empty when the text has too few letters."""
        cleaned = clean_for_detection(text)
        if sum(ch.isalpha() for ch in cleaned) < (self.min_letters if min_letters is None else min_letters):
            return []
        detector = self.build()._detector
        assert detector is not None
        values = detector.compute_language_confidence_values(cleaned)
        return [(value.language.iso_code_639_1.name.lower(), value.value) for value in values]

    def ranked(self, text: str) -> list[tuple[str, float]]:
        """Languages by their share of the text: each line's confidences weighted by its letters.

        Scoring line by line keeps a greeting or a closing formula in another language from outvoting
        the sentences that carry the request, which a whole-text score lets long words do.
        """
        totals: dict[str, float] = {}
        weight_seen = 0.0
        letters_seen = 0
        for line in re.split(r"\n+|(?<=[.!?])\s+", text):
            cleaned = clean_for_detection(line)
            letters = sum(ch.isalpha() for ch in cleaned)
            if letters < 3:
                continue
            letters_seen += letters
            # Greetings, closings, names and street addresses are short lines and say little about
            # the language the request is written in.
            weight = letters * (1.0 if len(cleaned.split()) >= SENTENCE_WORDS else SHORT_LINE_WEIGHT)
            weight_seen += weight
            for code, value in self.confidences(cleaned, min_letters=1):
                totals[code] = totals.get(code, 0.0) + value * weight
        if letters_seen < self.min_letters:
            return []
        return sorted(((code, total / weight_seen) for code, total in totals.items()), key=lambda x: -x[1])

    def detect(self, text: str) -> str | None:
        ranked = self.ranked(text) if self.per_line else self.confidences(text)
        if not ranked:
            return None
        best, best_value = ranked[0]
        if best not in self.preferred:
            runner = next(((code, value) for code, value in ranked if code in self.preferred), None)
            if runner is not None and best_value - runner[1] < self.preference_margin:
                best, best_value = runner
        return best if best_value >= self.min_confidence else None


def clean_for_detection(text: str) -> str:
    return re.sub(r"\s+", " ", _NOISE.sub(" ", text)).strip()
