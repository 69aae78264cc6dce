"""Everything mailflow keeps about one person, found by their email address(es) and/or national number.

Who the person is, the officer handling the request has established beforehand; this module only
gathers. What "concerns the person" (and what is kept out because it is someone else's) is decided
here and documented in docs/processing-record.md:

* **their emails**: sent from one of their addresses (case-insensitive), answered by a reply that went
  to one of their addresses, or carrying one of their national register numbers in the subject or text;
  each with its documents, the machine's and people's decisions, the replies to it and its events;
* **their cases**: opened for one of their addresses (``Case.resident_address``), whole: notes by staff
  and the case's events. An email of another sender filed in such a case is *withheld*: listed by number
  and date only, for the officer to review by hand (GDPR art. 15(4): others' data is not handed over);
* **linked cases**: someone else's case one of their emails was filed in: its reference, category and
  state only (no other emails, no notes, not the other resident's address);
* **addresses never answered again** (a bounce) and **exports and look-ups of this person**, found by
  the keyed digest the log keeps instead of the address or number.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from mailflow.identifiers import find_identifiers
from mailflow.identifiers.nrn import nrn_digits, parse_nrn
from mailflow.storage.desk_models import CaseNote, LabelledExample
from mailflow.storage.models import AttachmentRecord, Case, Event, Message, Reply, SuppressedAddress

CASE_EVENTS = frozenset({"case_opened", "case_joined", "case_note", "case_closed", "case_reopened"})
# Entries of the log that name a person only by digest (``identity_digest``) under "subject".
SUBJECT_EVENT_KINDS = frozenset({"exported", "viewed", "searched", "subject_erased"})
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ADDRESS_IN = re.compile(r"[^@\s,;:<>()\[\]\"']+@[^@\s,;:<>()\[\]\"']+\.\w+")
SCAN_BATCH = 200

TextOf = Callable[[bytes], str]  # the readable text (subject and body) of a raw email


class NotAnIdentifier(ValueError):
    """Neither an email address nor a valid national register (or BIS) number."""


@dataclass(frozen=True)
class Subject:
    addresses: frozenset[str] = frozenset()
    nrns: frozenset[str] = frozenset()  # eleven digits each

    @classmethod
    def parse(cls, identifiers: Iterable[str]) -> Subject:
        addresses, nrns = set(), set()
        for raw in identifiers:
            kind, value = normalise_identifier(raw)
            (addresses if kind == "address" else nrns).add(value)
        if not addresses and not nrns:
            raise NotAnIdentifier("give an email address or a national register number")
        return cls(frozenset(addresses), frozenset(nrns))

    def digests(self, key: str) -> list[str]:
        return sorted(identity_digest(value, key) for value in self.addresses | self.nrns)


def normalise_identifier(raw: str) -> tuple[str, str]:
    """("address", lower-cased address) or ("nrn", eleven digits); NotAnIdentifier otherwise."""
    text = raw.strip()
    if _ADDRESS.match(text):
        return "address", text.lower()
    digits = nrn_digits(text)
    if digits is not None and parse_nrn(digits) is not None:
        return "nrn", digits
    raise NotAnIdentifier("not an email address nor a valid national register number")


def identity_digest(value: str, key: str) -> str:
    """What the event log keeps instead of an address, a number or the words searched for: a keyed
    digest (HMAC-SHA-256 with the desk's secret key), so that the log can be searched for a person
    without holding their identifiers, and a national number cannot be recovered by trying them all."""
    try:
        _, normalised = normalise_identifier(value)
    except NotAnIdentifier:
        normalised = " ".join(value.lower().split())
    return hmac.new(key.encode(), normalised.encode(), hashlib.sha256).hexdigest()[:32]


def query_digests(query: str, key: str) -> list[str]:
    """What the log keeps of the words searched for: the digest of the whole query and of each
    address and national number in it, so that "was this person searched for?" has an answer."""
    values = {query, *_ADDRESS_IN.findall(query), *nrns_in(query)}
    return sorted({identity_digest(v, key) for v in values if v.strip()})


@dataclass
class Findings:
    subject: Subject
    messages: list[Message] = field(default_factory=list)  # their emails, oldest first
    cases: list[Case] = field(default_factory=list)  # their cases
    linked_cases: list[Case] = field(default_factory=list)  # others' cases their emails are in
    withheld: list[Message] = field(default_factory=list)  # others' emails in their cases
    notes: list[CaseNote] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)  # oldest first
    suppressed: list[SuppressedAddress] = field(default_factory=list)
    labelled: list[LabelledExample] = field(default_factory=list)

    @property
    def message_ids(self) -> set[int]:
        return {m.id for m in self.messages}

    @property
    def views(self) -> list[Event]:
        """Who looked at (or exported, or looked up) what of theirs, when."""
        return [e for e in self.events if e.kind in ("viewed", "exported", "searched")]


def nrns_in(text: str) -> set[str]:
    return {f.value for f in find_identifiers(text) if f.kind == "nrn" and f.valid}


def emails_with_nrn(
    session: Session,
    nrns: frozenset[str],
    read: Callable[[str], bytes],
    text_of: TextOf,
    pdf_text_of: Callable[[bytes], str] | None = None,
) -> set[int]:
    """The emails whose subject, text or (with ``pdf_text_of``) attached PDFs' text hold one of ``nrns``.
    Numbers are never stored apart from the emails (the log keeps only that one was found), so every
    email is read again."""
    found: set[int] = set()
    after = 0
    while True:
        rows = session.execute(
            select(Message.id, Message.sha256, Message.subject)
            .where(Message.id > after, Message.duplicate_of_id.is_(None))
            .order_by(Message.id)
            .limit(SCAN_BATCH)
        ).all()
        if not rows:
            return found
        pdfs: dict[int, list[str]] = {}
        if pdf_text_of is not None:
            for pk, sha256 in session.execute(
                select(AttachmentRecord.message_id, AttachmentRecord.sha256).where(
                    AttachmentRecord.message_id.in_([r[0] for r in rows]),
                    AttachmentRecord.sniffed_type == "application/pdf",
                )
            ):
                pdfs.setdefault(pk, []).append(sha256)
        for pk, sha256, subject in rows:
            texts = [subject or "", _safely(lambda sha256=sha256: text_of(read(sha256)))]
            if nrns & nrns_in("\n".join(texts)):
                found.add(pk)
                continue
            for document in pdfs.get(pk, []):
                if pdf_text_of and nrns & nrns_in(_safely(lambda d=document: pdf_text_of(read(d)))):
                    found.add(pk)
                    break
        after = rows[-1][0]


def _safely(read_text: Callable[[], str]) -> str:
    try:
        return read_text()
    except Exception:  # an unreadable or missing original: what else is known of it still counts
        return ""


def find_subject(
    session: Session,
    subject: Subject,
    *,
    key: str,
    read: Callable[[str], bytes] | None = None,
    text_of: TextOf | None = None,
    pdf_text_of: Callable[[bytes], str] | None = None,
) -> Findings:
    """Everything about ``subject`` (see the module's docstring). ``read`` and ``text_of`` are needed
    to look for national numbers in the emails' text, ``pdf_text_of`` in their PDFs
    (``mailflow.privacy.readers``); loaded objects stay attached to ``session``."""
    addresses = list(subject.addresses)
    ids: set[int] = set()
    if addresses:
        ids |= set(session.scalars(select(Message.id).where(func.lower(Message.from_address).in_(addresses))))
        ids |= set(
            session.scalars(select(Reply.message_id).where(func.lower(Reply.to_address).in_(addresses)))
        )
    if subject.nrns:
        if read is None or text_of is None:
            raise ValueError("looking for a national number needs the stored emails")
        ids |= emails_with_nrn(session, subject.nrns, read, text_of, pdf_text_of)
    findings = Findings(subject)
    findings.messages = _messages(session, ids)
    findings.cases = (
        list(
            session.scalars(
                select(Case).where(func.lower(Case.resident_address).in_(addresses)).order_by(Case.id)
            )
        )
        if addresses
        else []
    )
    own_cases = {c.id for c in findings.cases}
    linked = {m.case_id for m in findings.messages if m.case_id is not None} - own_cases
    findings.linked_cases = list(session.scalars(select(Case).where(Case.id.in_(linked)).order_by(Case.id)))
    if own_cases:
        findings.withheld = list(
            session.scalars(
                select(Message)
                .where(Message.case_id.in_(own_cases), Message.id.not_in(ids or {0}))
                .order_by(Message.received_at, Message.id)
            )
        )
        findings.notes = list(
            session.scalars(
                select(CaseNote)
                .where(CaseNote.case_id.in_(own_cases))
                .order_by(CaseNote.written_at, CaseNote.id)
            )
        )
    findings.events = list(
        _events(session, ids, {c.reference for c in findings.cases if c.reference}, subject, key)
    )
    if addresses:
        findings.suppressed = list(
            session.scalars(
                select(SuppressedAddress).where(func.lower(SuppressedAddress.address).in_(addresses))
            )
        )
    if ids:
        findings.labelled = list(
            session.scalars(
                select(LabelledExample)
                .where(LabelledExample.message_id.in_(ids))
                .order_by(LabelledExample.id)
            )
        )
    return findings


def _messages(session: Session, ids: set[int]) -> list[Message]:
    if not ids:
        return []
    query = (
        select(Message)
        .where(Message.id.in_(ids))
        .options(
            selectinload(Message.attachments), selectinload(Message.decisions), selectinload(Message.replies)
        )
        .order_by(Message.received_at, Message.id)
    )
    return list(session.scalars(query))


def _events(
    session: Session, ids: set[int], references: set[str], subject: Subject, key: str
) -> Iterator[Event]:
    """Their emails' entries; their cases' entries not about someone else's email; the log's entries
    that name them by digest. Read in order of the chain."""
    digests = set(subject.digests(key))
    by_message = session.scalars(select(Event).where(Event.message_id.in_(ids))) if ids else iter(())
    loose = session.scalars(
        select(Event).where(Event.message_id.is_(None), Event.kind.in_(SUBJECT_EVENT_KINDS))
    )
    about_cases = (
        session.scalars(select(Event).where(Event.kind.in_(CASE_EVENTS))) if references else iter(())
    )
    chosen: dict[int, Event] = {e.id: e for e in by_message}
    for event in loose:
        if _names_subject(event, digests) or (event.detail or {}).get("case") in references:
            chosen[event.id] = event
    for event in about_cases:
        if (event.detail or {}).get("case") in references and (
            event.message_id is None or event.message_id in ids
        ):
            chosen[event.id] = event
    yield from sorted(chosen.values(), key=lambda e: (e.seq or 0, e.id))


def _names_subject(event: Event, digests: set[str]) -> bool:
    named = (event.detail or {}).get("subject")
    if isinstance(named, str):
        named = [named]
    return bool(isinstance(named, list) and digests.intersection(named))
