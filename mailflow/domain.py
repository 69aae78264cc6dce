"""The values that flow through the pipeline: plain, immutable data with no behaviour of note.

fetch → parse → screen → extract → classify → decide → act → record. Each stage reads the values of the
stages before it and returns its own; only ``act`` and ``record`` touch the outside world.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Action(StrEnum):
    FILE = "file"
    REQUEST_DOCUMENTS = "request_documents"
    BOOK = "book"
    ONLINE = "online"
    REDIRECT_INFO = "redirect_info"
    REDIRECT_OTHER = "redirect_other"
    IGNORE = "ignore"
    TRIAGE = "triage"

    @property
    def replies(self) -> bool:
        return self not in (Action.IGNORE, Action.TRIAGE)


class Status(StrEnum):
    """Where an email ended; each status has its own mailbox folder."""

    RECEIVED = "received"  # stored, outcome not yet committed
    PROCESSED = "processed"
    TRIAGE = "triage"
    IGNORED = "ignored"
    QUARANTINED = "quarantined"

    @property
    def folder(self) -> str:
        return {
            Status.PROCESSED: "Processed",
            Status.TRIAGE: "Triage",
            Status.IGNORED: "Ignored",
            Status.QUARANTINED: "Quarantine",
        }[self]


@dataclass(frozen=True)
class Attachment:
    filename: str  # as the sender named it, cleaned of path parts and control characters
    storage_name: str  # generated: never derived from the sender's name
    declared_type: str
    sniffed_type: str
    size: int
    sha256: str
    payload: bytes = field(repr=False)


@dataclass(frozen=True)
class ParsedMessage:
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    from_name: str
    from_address: str
    return_path: str | None  # None: header absent; "" : null sender "<>"
    subject: str
    date: datetime | None
    content_type: str
    text: str  # the body as text, from text/plain or else from HTML
    html: str | None
    headers: tuple[tuple[str, str], ...]  # every header, names lower-cased, values decoded
    attachments: tuple[Attachment, ...] = ()
    defects: tuple[str, ...] = ()
    # Parts left out because they were over a limit (attachments beyond the count or the bytes allowed).
    dropped: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((value for key, value in self.headers if key == name), None)

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]


@dataclass(frozen=True)
class Screening:
    """What the headers say about who sent the email."""

    machine_category: str | None  # auto_reply | bounce | spam when machine mail, else None
    sender_verdict: str  # "pass" | "fail" | "none" (DMARC by the trusted authserv-id)
    reasons: tuple[str, ...] = ()

    @property
    def is_machine(self) -> bool:
        return self.machine_category is not None


@dataclass(frozen=True)
class Document:
    filename: str
    kind: str  # a document kind of the taxonomy
    sha256: str
    size: int
    reasons: tuple[str, ...] = ()
    # Recognised by its file name alone: what it shows (a blank page, an unreadable photo) names no
    # such document, so it never counts as the document a case waits for.
    named_only: bool = False


@dataclass(frozen=True)
class Identifier:
    """An identifier found in the email: its kind, whether its check digits hold, and its masked form."""

    kind: str  # nrn | card | mrz | case_ref | pin | date
    valid: bool
    masked: str


@dataclass(frozen=True)
class Extraction:
    documents: tuple[Document, ...]
    language: str
    text: str  # the resident's own text, for the classifier (never logged)
    identifiers: tuple[Identifier, ...] = ()


@dataclass(frozen=True)
class Classification:
    category: str
    confidence: float
    intents: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    # The catalogue rules' evidence per category (scores above zero) and their question/request
    # balance (> 0: rather a question): what the learned model reads of the rules.
    scores: tuple[tuple[str, float], ...] = ()
    balance: float = 0.0
    intent: str = ""  # what is asked: request, question, status, cancel, nothing, machine, several
    topic: str = ""  # what it is about: the product family of the catalogue
    several: float = 0.0  # the model's probability that it asks for several things
    # How many persons a number in the text counts ("onze drie kinderen", "nous sommes cinq"), 0 when
    # none does: how often one request is asked, once the email is known to ask it for several.
    persons: int = 0
    # The categories the catalogue holds for a person here: the text says what may rule them out.
    held: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    category: str
    action: Action
    confidence: float
    language: str
    intents: tuple[str, ...] = ()
    missing_documents: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()

    @property
    def status(self) -> Status:
        if self.action is Action.IGNORE:
            return Status.IGNORED
        if self.action is Action.TRIAGE:
            return Status.TRIAGE
        return Status.PROCESSED


@dataclass(frozen=True)
class CaseSummary:
    """What the archive knows of an existing case, as the pipeline needs it."""

    reference: str
    category: str
    resident_address: str
    status: str
    documents: tuple[str, ...] = ()  # kinds already on file


@dataclass(frozen=True)
class ThreadContext:
    """The email answers one of our replies about ``case``, and comes from that case's resident."""

    case: CaseSummary


@dataclass(frozen=True)
class BounceReport:
    """A delivery-failure report: permanent or not, and which of our replies it returns."""

    hard: bool
    our_message_ids: tuple[str, ...]


@dataclass(frozen=True)
class Analysis:
    """Everything the pure stages found about one email."""

    message: ParsedMessage
    screening: Screening
    extraction: Extraction
    classification: Classification
    decision: Decision
    thread: ThreadContext | None = None
    bounce: BounceReport | None = None
