"""Composing the reply to a resident: the text from Jinja templates, the headers by hand.

Templates live in ``templates/replies``: ``<action>.<language>.txt.j2`` and ``.html.j2`` extending
``base.txt.j2`` / ``base.html.j2``; ``phrases.toml`` holds the greeting and signature per language and
``documents.toml`` the human names of document kinds. Product facts (title, link, what to bring,
notes) come in already translated, so the templates stay generic.

A reply repeats nothing of the incoming email but the resident's name and (masked) subject: both are
cleaned of control characters before they reach the body or a header (see ``mailflow.replies.mime``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parseaddr
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError

from mailflow.errors import ConfigurationError
from mailflow.identifiers import mask
from mailflow.replies.context import LANGUAGES, ProductFacts, load_documents, load_phrases, usable_name
from mailflow.replies.mime import (
    build_message,
    clean_text,
    phrase_token,
    text_tokens,
    verify_header_block,
)
from mailflow.replies.thread_tokens import ThreadSigner

REPLY_ACTIONS = ("file", "request_documents", "book", "online", "redirect_info", "redirect_other")
_CASE_ACTIONS = frozenset({"file", "request_documents"})
_SUBJECT_LIMIT = 120
_MAX_REFERENCES = 20
# Reply and forward markers of the mail clients residents use, repeated any number of times.
_REPLY_PREFIX = re.compile(
    r"^(?:\s*(?:re|aw|antw|antwoord|rép|rif|sv|vs|odp|ynt|fw|fwd|tr|doorst|wg)\s*(?:\[\d+\])?\s*:)+\s*",
    re.IGNORECASE,
)
# Nine or more digits in a row (separators allowed): national register, card, phone or account numbers.
_LONG_NUMBER = re.compile(r"(?<![A-Za-z]-)(?<!\d)\d(?:[ ./-]?\d){8,}(?!\d)")
_CASE_REF = re.compile(r"[A-Z0-9][A-Z0-9-]{2,40}")
_MSG_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,250}>")
_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


@dataclass(frozen=True)
class OutgoingReply:
    to: str
    subject: str
    message_id: str
    language: str
    in_reply_to: str | None
    data: bytes = field(repr=False)


def normalise_address(value: str) -> str:
    """A bare ASCII addr-spec (IDN domains converted), or ValueError."""
    address = value.strip().removeprefix("<").removesuffix(">")
    local, at, domain = address.rpartition("@")
    if at and not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError("address has an invalid domain") from exc
    address = f"{local}@{domain}"
    if len(address) > 254 or not _ADDRESS.fullmatch(address):
        raise ValueError("not a plain email address that can be replied to")
    return address


def normalise_message_id(value: str | None) -> str | None:
    """``<id>`` when ``value`` holds one usable message id, else None."""
    if not value:
        return None
    value = value.strip()
    if not value.startswith("<"):
        value = f"<{value}>"
    return value if _MSG_ID.fullmatch(value) else None


def reply_subject(original: str, case_ref: str | None, fallback: str) -> str:
    """``Re: [case] subject`` with reply markers, our own tag and long numbers taken out."""
    subject = clean_text(original)
    if case_ref:
        subject = subject.replace(f"[{case_ref}]", " ")
    subject = " ".join(_REPLY_PREFIX.sub("", subject).split())
    subject = mask(_LONG_NUMBER.sub("***", subject))  # and PIN codes: kept, sent and shown masked
    if len(subject) > _SUBJECT_LIMIT:
        cut = subject[: _SUBJECT_LIMIT - 1]
        space = cut.rfind(" ")
        subject = (cut[:space] if space > _SUBJECT_LIMIT // 2 else cut).rstrip(" ,.;:-") + "…"
    tag = f"[{case_ref}] " if case_ref else ""
    return f"Re: {tag}{subject or fallback}"


def reply_message_id(idempotency_key: str, domain: str, case_token: str | None = None) -> str:
    """Deterministic, so a reply rendered again for the same email keeps its id.

    ``case_token`` (see ``mailflow.replies.thread_tokens``) lets an answer in the thread be tied to its case.
    """
    # Short enough that "In-Reply-To: <id>" fits one line: clients then never fold or encode it.
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[: 16 if case_token else 32]
    middle = f"{digest}.{case_token}" if case_token else digest
    return f"<mailflow.{middle}@{domain}>"


class ReplyComposer:
    def __init__(
        self,
        templates_dir: Path,
        *,
        from_address: str,
        message_id_domain: str,
        default_language: str = "nl",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        signer: ThreadSigner | None = None,
    ) -> None:
        """``templates_dir`` is the templates directory or its ``replies`` subdirectory.

        Loads and compiles every template now, so a missing or broken one stops start-up.
        """
        root = Path(templates_dir)
        if (root / "replies").is_dir():
            root = root / "replies"
        display_name, address = parseaddr(from_address)
        try:
            self.envelope_from = normalise_address(address)
        except ValueError as exc:
            raise ConfigurationError(f"from_address {from_address!r} is not usable") from exc
        self._from_tokens = (
            [*phrase_token(display_name), f"<{self.envelope_from}>"] if display_name else [self.envelope_from]
        )
        domain = message_id_domain.strip().lower()
        if not domain.isascii():
            domain = domain.encode("idna").decode("ascii")
        if not _DOMAIN.fullmatch(domain):
            raise ConfigurationError(f"message_id_domain {message_id_domain!r} is not a domain name")
        self._domain = domain
        self._default_language = default_language
        self._clock = clock
        self._signer = signer
        self._phrases, self._fallback = load_phrases(root / "phrases.toml")
        self._documents = load_documents(root / "documents.toml")
        self._env = Environment(
            loader=FileSystemLoader(root),
            autoescape=lambda name: name is None or not name.endswith(".txt.j2"),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        try:
            for action in REPLY_ACTIONS:
                for language in LANGUAGES:
                    for fmt in ("txt", "html"):
                        self._env.get_template(f"{action}.{language}.{fmt}.j2")
        except TemplateError as exc:
            raise ConfigurationError(f"reply template missing or invalid: {exc}") from exc

    def reply_language(self, language: str | None) -> tuple[str, bool]:
        """The language to write in, and whether it is the fallback for one we do not write."""
        primary = re.split(r"[-_]", (language or "").strip().lower())[0] or self._default_language
        if primary in LANGUAGES:
            return primary, False
        return self._fallback["language"], True

    def document_name(self, kind: str, language: str) -> str:
        try:
            return self._documents[language][kind]
        except KeyError:
            raise ValueError(f"unknown document kind {kind!r}") from None

    def compose(
        self,
        *,
        action: str,
        language: str,
        to_address: str,
        to_name: str,
        original_subject: str,
        original_message_id: str | None,
        original_references: Sequence[str],
        case_ref: str | None,
        product: Mapping[str, object],
        missing_documents: Sequence[str],
        idempotency_key: str,
        automatic: bool = True,
    ) -> OutgoingReply:
        """Render the reply for ``action``; ValueError when the inputs cannot make a sensible one.

        ``automatic`` False: a draft for a person to write from, without the automatic-reply notice."""
        if action not in REPLY_ACTIONS:
            raise ValueError(f"action {action!r} does not reply")
        if case_ref is not None and not _CASE_REF.fullmatch(case_ref):
            raise ValueError("case reference has an unexpected form")
        if action in _CASE_ACTIONS and not case_ref:
            raise ValueError(f"a {action} reply needs a case reference")
        if action == "request_documents" and not missing_documents:
            raise ValueError("a request_documents reply needs the missing documents")
        lang, fell_back = self.reply_language(language)
        phrases = self._phrases[lang]
        to = normalise_address(to_address)
        name = usable_name(to_name)
        facts = ProductFacts.from_mapping(product, action)
        subject = reply_subject(original_subject, case_ref, phrases["subject_fallback"])
        context = {
            "language": lang,
            "fallback_notice": self._fallback["notice"] if fell_back else None,
            "fallback_notice_language": self._fallback["notice_language"],
            "greeting": phrases["greeting_named"].format(name=name)
            if name
            else phrases["greeting_anonymous"],
            "phrases": phrases,
            "signature_lines": phrases["signature"].strip().splitlines(),
            "case_ref": case_ref,
            "product": facts,
            "missing_documents": [self.document_name(kind, lang) for kind in missing_documents],
            "automatic": automatic,
        }
        text = _tidy_text(self._env.get_template(f"{action}.{lang}.txt.j2").render(context))
        html = self._env.get_template(f"{action}.{lang}.html.j2").render(context)

        token = self._signer.token(case_ref) if case_ref and self._signer else None
        message_id = reply_message_id(idempotency_key, self._domain, token)
        in_reply_to = normalise_message_id(original_message_id)
        headers: list[tuple[str, Sequence[str]]] = [
            ("From", self._from_tokens),
            ("To", [to]),
            ("Subject", text_tokens(subject)),
            ("Date", format_datetime(self._now()).split(" ")),
            ("Message-ID", [message_id]),
        ]
        if in_reply_to:
            headers.append(("In-Reply-To", [in_reply_to]))
            headers.append(("References", _references(original_references, in_reply_to)))
        headers += [
            ("Auto-Submitted", ["auto-replied"]),
            ("X-Auto-Response-Suppress", ["All"]),
            ("X-Loop", [self.envelope_from]),
            (
                "Content-Language",
                [lang] if not fell_back else [f"{lang},", self._fallback["notice_language"]],
            ),
        ]
        boundary = "=_mailflow_" + message_id[10:34]
        data = build_message(headers, text, html, boundary)
        verify_header_block(data, [name for name, _ in headers] + ["MIME-Version", "Content-Type"])
        return OutgoingReply(to, subject, message_id, lang, in_reply_to, data)

    def _now(self) -> datetime:
        now = self._clock()
        return now if now.tzinfo else now.replace(tzinfo=UTC)


def _references(original: Sequence[str], parent: str) -> list[str]:
    """The parent's References plus its id: the thread root and the most recent ids when long."""
    ids: list[str] = []
    for value in original:
        found = re.findall(r"<[^<>\s]+>", value) or [value]
        for candidate in found:
            msg_id = normalise_message_id(candidate)
            if msg_id and msg_id not in ids and msg_id != parent:
                ids.append(msg_id)
    if len(ids) >= _MAX_REFERENCES:
        ids = [ids[0], *ids[-(_MAX_REFERENCES - 2) :]]
    return [*ids, parent]


def _tidy_text(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"
