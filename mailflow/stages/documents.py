"""Document kinds of attachments, from what they say (PDF text, OCR, text files) helped by their names.

The cue phrases are data (``classifiers/documents.toml``); this module loads, compiles and scores
them. PDFs and images are read by a sandboxed worker (``text_sandbox``): the PDF's text layer, or
Tesseract's reading of scans and pictures. Without Tesseract only the file name speaks for them.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from mailflow.domain import Attachment, Document
from mailflow.errors import ConfigurationError
from mailflow.resources import shipped
from mailflow.stages.attachment_reader import read_attachment
from mailflow.stages.document_text import ReaderOptions
from mailflow.stages.text_sandbox import TextSandbox

# The document kinds of shared/taxonomy.md.
DOCUMENT_KINDS = frozenset(
    {
        "passport", "passport_stamp", "identity_card", "residence_card", "orange_card", "boarding_pass",
        "annex18", "annex35", "appeal_proof", "annex12_police", "annex26", "annex46", "annex49", "annex3bis",
        "cgrs_decision", "birth_certificate", "marriage_certificate", "court_decision",
        "naturalisation_decree", "employment_contract", "rental_contract", "payslip",
        "household_composition", "pin_puk_letter", "invitation_letter", "order_to_leave",
        "decision_letter", "photo", "other",
    }
)  # fmt: skip
MIN_TEXT_LETTERS = 20  # below this a PDF is a scan: its text layer (if any) is noise

_FOLD = str.maketrans({"ı": "i", "ł": "l", "Ł": "l", "ß": "ss", "ø": "o", "æ": "ae", "œ": "oe", "’": "'"})
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")
# OCR reads letters as look-alike digits; inside a word ("HUUROVEREENK0MST", "B1JLAGE") they are letters.
_DIGIT_IN_WORD = re.compile(r"(?<=[^\W\d_])[01568](?=[^\W\d_])")
_DIGIT_LOOKALIKES = {"0": "o", "1": "l", "5": "s", "6": "g", "8": "b"}


def normalise(text: str, *, split_camel: bool = False) -> str:
    """Lower case, accents folded, punctuation to spaces, digits apart: "Bijlage35" → "bijlage 35"."""
    if split_camel:
        text = _CAMEL.sub(" ", text)
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    text = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    text = _LETTER_DIGIT.sub(" ", text)
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


@dataclass(frozen=True)
class Cue:
    label: str
    pattern: re.Pattern[str]
    weight: float
    raw: bool  # matched on the original text rather than the normalised one
    phrase: str = ""  # the normalised words, for fuzzy matching of OCR text ("" when not a plain phrase)


@dataclass(frozen=True)
class KindRules:
    kind: str
    content: tuple[Cue, ...]
    filename: tuple[Cue, ...]


@dataclass(frozen=True)
class DocumentRules:
    kinds: tuple[KindRules, ...]
    min_score: float = 3.0
    min_filename_score: float = 2.0
    title_chars: int = 250
    title_factor: float = 1.5
    # OCR misreads letters ("T ERRITOIRE", "gezinssamenstel1ing"): in OCR text, phrases this long or
    # longer also count when they match this well (rapidfuzz partial ratio, 0-100).
    fuzzy_min_chars: int = 10
    fuzzy_min_ratio: float = 90.0
    reader: ReaderOptions = field(default_factory=ReaderOptions)


def default_rules_path() -> Path:
    return shipped("classifiers") / "documents.toml"


def load_rules(path: Path | str | None = None) -> DocumentRules:
    """Read and compile the cue file (default: the shipped one); ConfigurationError when missing or wrong."""
    path = path or default_rules_path()
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read document rules {path}: {exc}") from exc
    settings = data.get("settings", {})
    annex = "(?:" + "|".join(re.escape(normalise(word)) for word in settings.get("annex_words", [])) + ")"
    kinds = []
    for kind, table in data.get("kinds", {}).items():
        if kind not in DOCUMENT_KINDS:
            raise ConfigurationError(f"{path}: unknown document kind {kind!r}")
        try:
            kinds.append(
                KindRules(
                    kind,
                    tuple(_compile(cue, weight, annex) for cue, weight in table.get("content", {}).items()),
                    tuple(_compile(cue, weight, annex) for cue, weight in table.get("filename", {}).items()),
                )
            )
        except (re.error, TypeError, ValueError) as exc:
            raise ConfigurationError(f"{path}: bad cue for {kind}: {exc}") from exc
    try:
        reader = ReaderOptions(**data.get("reader", {}))
    except TypeError as exc:
        raise ConfigurationError(f"{path}: bad [reader]: {exc}") from exc
    try:
        return DocumentRules(
            kinds=tuple(kinds),
            reader=reader,
            **{key: value for key, value in settings.items() if key != "annex_words"},
        )
    except TypeError as exc:
        raise ConfigurationError(f"{path}: bad [settings]: {exc}") from exc


@lru_cache(maxsize=4)
def default_rules(path: str | None = None) -> DocumentRules:
    return load_rules(path)


def _compile(cue: str, weight: float, annex: str) -> Cue:
    if cue.startswith("re:"):
        return Cue(cue, re.compile(cue[3:]), float(weight), raw=True)
    prefix = cue.endswith("*")
    words = normalise(cue.rstrip("*").replace("{annex}", " ANNEXWORD ")).split()
    body = r"\s".join(annex if word == "annexword" else re.escape(word) for word in words)
    if not body:
        raise ValueError(f"empty cue {cue!r}")
    ending = r"\w*" if prefix else r"(?!\w)"
    # The annex number must be read exactly ("bijlage 35" is not "bijlage 36"): annex cues are not fuzzy.
    phrase = "" if "annexword" in words else " ".join(words)
    return Cue(cue, re.compile(rf"(?<!\w){body}{ending}"), float(weight), raw=False, phrase=phrase)


def _matches(
    cues: tuple[Cue, ...],
    raw: str,
    normalised: str,
    title_chars: int,
    factor: float,
    fuzzy: tuple[int, float] | None = None,
) -> Iterator[tuple[str, float]]:
    """Yield (cue label, score) for each cue found; cues near the top of the text weigh more.

    ``fuzzy`` (min chars, min ratio): long phrases also match approximately, for OCR text.
    """
    title_norm = len(normalise(raw[:title_chars])) if title_chars else 0
    for cue in cues:
        found = cue.pattern.search(raw if cue.raw else normalised)
        label, start = cue.label, found.start() if found else -1
        if not found and fuzzy and cue.weight > 0 and len(cue.phrase) >= fuzzy[0]:
            start = _fuzzy_find(cue.phrase, normalised, fuzzy[1])
            label = f"~{cue.label}"
        if start >= 0:
            in_title = start < (title_chars if cue.raw else title_norm)
            yield label, cue.weight * (factor if in_title else 1.0)


def _fuzzy_find(phrase: str, text: str, min_ratio: float) -> int:
    """Where ``phrase`` appears in ``text`` give or take a few misread letters; -1 when it does not.

    Besides the overall likeness, each word must be there: a short word exactly ("declaration de vol"
    is not "declaration de depart"), a longer one nearly (OCR may split it: "t erritoire").
    """
    from rapidfuzz import fuzz

    found = fuzz.partial_ratio_alignment(phrase, text, score_cutoff=min_ratio)
    if not found:
        return -1
    start = text.rfind(" ", 0, found.dest_start) + 1
    end = text.find(" ", found.dest_end)
    window = text[start : len(text) if end < 0 else end].split()
    for word in phrase.split():
        if len(word) <= 3:
            if word not in window:
                return -1
        elif not any(fuzz.ratio(word, seen) >= 75 for seen in window):
            return -1
    return found.dest_start


def score_kinds(
    rules: DocumentRules, text: str, filename: str, *, ocr: bool = False
) -> list[tuple[str, float, list[str]]]:
    """Every kind with a cue found: (kind, score, labels of the cues found), best first.

    ``ocr``: the text is an OCR reading, whose long phrases may match approximately ("~" before the label).
    """
    # Patterns (raw cues) see the text as read; phrases see OCR's look-alike digits as letters.
    norm_text = normalise(_DIGIT_IN_WORD.sub(lambda d: _DIGIT_LOOKALIKES[d.group()], text) if ocr else text)
    norm_name = normalise(Path(filename).stem if "." in filename else filename, split_camel=True)
    fuzzy = (rules.fuzzy_min_chars, rules.fuzzy_min_ratio) if ocr else None
    scored = []
    for kind in rules.kinds:
        found = list(_matches(kind.content, text, norm_text, rules.title_chars, rules.title_factor, fuzzy))
        found += list(_matches(kind.filename, filename, norm_name, 0, 1.0))
        if found:
            scored.append((kind.kind, sum(score for _, score in found), [label for label, _ in found]))
    return sorted(scored, key=lambda item: -item[1])


def classify_attachment(
    attachment: Attachment,
    rules: DocumentRules | None = None,
    *,
    sandbox: TextSandbox | None = None,
    timeout: float | None = None,
) -> Document:
    """The attachment's document kind; ``sandbox`` reads PDFs and images (default: a shared worker).

    ``timeout``: the seconds left for reading this email's documents.
    """
    rules = rules or default_rules()
    page = read_attachment(attachment, options=rules.reader, sandbox=sandbox, timeout=timeout)
    text, reasons = page.text, list(page.reasons)
    has_text = sum(ch.isalpha() for ch in text) >= MIN_TEXT_LETTERS
    if not has_text:
        text = ""
    ocr = page.ocr_pages > 0
    scored = score_kinds(rules, text, attachment.filename, ocr=ocr)
    # A picture whose reading names no document (a photo, a blurred card) leaves it to the file name.
    says_nothing = not has_text or (ocr and not score_kinds(rules, text, "", ocr=True))
    threshold = rules.min_filename_score if says_nothing else rules.min_score
    kind, named_only = "other", False
    if scored and scored[0][1] >= threshold:
        kind = scored[0][0]
        shown = {found for found, _, _ in score_kinds(rules, text, "", ocr=ocr)} if text else set()
        named_only = kind not in shown
        source = "file name" if named_only else "content"
        reasons.append(f"{source} cues for {kind}: {', '.join(scored[0][2][:5])} (score {scored[0][1]:.1f})")
    else:
        reasons.append("no document kind recognised" + (" from the file name" if says_nothing else ""))
    return Document(
        filename=attachment.filename,
        kind=kind,
        sha256=attachment.sha256,
        size=attachment.size,
        reasons=tuple(reasons),
        named_only=named_only,
    )


def attachment_text(
    attachment: Attachment, *, options: ReaderOptions | None = None, sandbox: TextSandbox | None = None
) -> tuple[str, list[str]]:
    """The text an attachment shows, and reasons saying where it came from or why there is none."""
    page = read_attachment(attachment, options=options, sandbox=sandbox)
    return page.text, list(page.reasons)
