"""Document kinds of attachments, from what they say (PDF text, OCR, text files) helped by their names.

The cue phrases are data (``classifiers/documents.toml``); this module loads, compiles and scores
them. PDFs and images are read by a sandboxed worker (``text_sandbox``): the PDF's text layer, or
Tesseract's reading of scans and pictures. Without Tesseract only the file name speaks for them.
"""

from __future__ import annotations

import atexit
import logging
import re
import shutil
import threading
import tomllib
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from mailflow.domain import Attachment, Document
from mailflow.errors import ConfigurationError
from mailflow.stages.document_text import ReaderOptions
from mailflow.stages.text_sandbox import TextSandbox

log = logging.getLogger(__name__)

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
DEFAULT_RULES_PATH = Path(__file__).resolve().parents[2] / "classifiers" / "documents.toml"
MAX_TEXT_CHARS = 20_000
MIN_TEXT_LETTERS = 20  # below this a PDF is a scan: its text layer (if any) is noise

_FOLD = str.maketrans({"ı": "i", "ł": "l", "Ł": "l", "ß": "ss", "ø": "o", "æ": "ae", "œ": "oe", "’": "'"})
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")


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
    reader: ReaderOptions = field(default_factory=ReaderOptions)


def load_rules(path: Path | str = DEFAULT_RULES_PATH) -> DocumentRules:
    """Read and compile the cue file; ConfigurationError when it is missing or wrong."""
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
def default_rules(path: str = str(DEFAULT_RULES_PATH)) -> DocumentRules:
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
    return Cue(cue, re.compile(rf"(?<!\w){body}{ending}"), float(weight), raw=False)


def _matches(
    cues: tuple[Cue, ...], raw: str, normalised: str, title_chars: int, factor: float
) -> Iterator[tuple[str, float]]:
    """Yield (cue label, score) for each cue found; cues near the top of the text weigh more."""
    title_norm = len(normalise(raw[:title_chars])) if title_chars else 0
    for cue in cues:
        found = cue.pattern.search(raw if cue.raw else normalised)
        if found:
            in_title = found.start() < (title_chars if cue.raw else title_norm)
            yield cue.label, cue.weight * (factor if in_title else 1.0)


def score_kinds(rules: DocumentRules, text: str, filename: str) -> list[tuple[str, float, list[str]]]:
    """Every kind with a cue found: (kind, score, labels of the cues found), best first."""
    norm_text = normalise(text)
    norm_name = normalise(Path(filename).stem if "." in filename else filename, split_camel=True)
    scored = []
    for kind in rules.kinds:
        found = list(_matches(kind.content, text, norm_text, rules.title_chars, rules.title_factor))
        found += list(_matches(kind.filename, filename, norm_name, 0, 1.0))
        if found:
            scored.append((kind.kind, sum(score for _, score in found), [label for label, _ in found]))
    return sorted(scored, key=lambda item: -item[1])


def classify_attachment(
    attachment: Attachment, rules: DocumentRules | None = None, *, sandbox: TextSandbox | None = None
) -> Document:
    """The attachment's document kind; ``sandbox`` reads PDFs and images (default: a shared worker)."""
    rules = rules or default_rules()
    text, reasons = attachment_text(attachment, options=rules.reader, sandbox=sandbox)
    has_text = sum(ch.isalpha() for ch in text) >= MIN_TEXT_LETTERS
    if not has_text:
        text = ""
    scored = score_kinds(rules, text, attachment.filename)
    threshold = rules.min_score if has_text else rules.min_filename_score
    kind = "other"
    if scored and scored[0][1] >= threshold:
        kind = scored[0][0]
        source = "content" if has_text else "file name"
        reasons.append(f"{source} cues for {kind}: {', '.join(scored[0][2][:5])} (score {scored[0][1]:.1f})")
    else:
        reasons.append("no document kind recognised" + ("" if has_text else " from the file name"))
    return Document(
        filename=attachment.filename,
        kind=kind,
        sha256=attachment.sha256,
        size=attachment.size,
        reasons=tuple(reasons),
    )


def attachment_text(
    attachment: Attachment, *, options: ReaderOptions | None = None, sandbox: TextSandbox | None = None
) -> tuple[str, list[str]]:
    """The text an attachment shows, and reasons saying where it came from or why there is none.

    PDFs and images are read in the sandboxed worker; text files, harmless to decode, here.
    """
    sniffed = attachment.sniffed_type
    if sniffed == "text/plain":
        data = attachment.payload[: MAX_TEXT_CHARS * 4]
        try:
            return data.decode("utf-8")[:MAX_TEXT_CHARS], ["text attachment"]
        except UnicodeDecodeError:
            return data.decode("cp1252", errors="replace")[:MAX_TEXT_CHARS], ["text attachment"]
    if sniffed == "application/pdf" or sniffed.startswith("image/"):
        sandbox = sandbox or shared_sandbox(options or ReaderOptions())
        page = sandbox.read(attachment.payload, sniffed, ocr=ocr_available())
        return page.text, list(page.reasons)
    return "", [f"{sniffed}: content not read"]


_sandboxes: dict[ReaderOptions, TextSandbox] = {}
_sandboxes_lock = threading.Lock()


def shared_sandbox(options: ReaderOptions) -> TextSandbox:
    """One text worker per set of limits for the whole process, started on first use, stopped at exit."""
    with _sandboxes_lock:
        if options not in _sandboxes:
            if not _sandboxes:
                atexit.register(close_shared_sandboxes)
            _sandboxes[options] = TextSandbox(options)
        return _sandboxes[options]


def close_shared_sandboxes() -> None:
    with _sandboxes_lock:
        for sandbox in _sandboxes.values():
            sandbox.close()
        _sandboxes.clear()


@lru_cache(maxsize=1)
def ocr_available() -> bool:
    """Whether Tesseract is installed; says so once in the log when it is not."""
    if shutil.which("tesseract"):
        return True
    log.warning(
        "tesseract not found: images and scanned PDFs are recognised by their file names only "
        "(install Debian's tesseract-ocr, tesseract-ocr-nld and tesseract-ocr-fra)"
    )
    return False
