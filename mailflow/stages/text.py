"""The resident's own words in a body: quoted replies and signatures removed, forwarded mail set apart.

A reply's quoted history is the counter's own text (or older mail) and must not decide the category or
the language. Forwarded mail is different: a resident forwards a letter because it is the subject of
the request ("I received this, what must I do?"), so it is kept, after a marker, as context.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FORWARD_MARKER = "---------- Forwarded message ----------"

_SUBJECT_PREFIX = re.compile(
    r"^\s*((re|fw|fwd|tr|antw|aw|wg|doorst|sv|vs|rv|enc|odp|pd|r|i)\s*(\[\d+\]|\(\d+\))?\s*:"
    r"|\[(ext|extern|external)\])\s*",
    re.I,
)
_FORWARD_SUBJECT = re.compile(r"^\s*(fw|fwd|tr|wg|doorst|enc|rv|i)\s*:", re.I)

_REPLY_VERBS = (
    r"wrote|schreef|a [ée]crit|schrieb|escribi[óo]|escreveu|ha scritto|napisa[łl]\(a\)|napisa[łl]"
    r"|yazd[ıi]|a scris|het volgende geschreven|написал\(а\)|написал|كتب"
)
# "On <date>, <name> wrote:" / "Op <date> schreef <name> <address>:" / "Le <date>, <name> a écrit :"
_REPLY_INTRO = re.compile(rf"^.{{0,250}}\b({_REPLY_VERBS})\b.{{0,150}}:\s*$", re.I)
# A resident may write "Op 3 maart schreef ik u:" too; a client's intro carries an address, time or year.
_REPLY_INTRO_EVIDENCE = re.compile(r"@|\b\d{1,2}[:.h]\d{2}\b|\b(19|20)\d{2}\b")
_REPLY_INTRO_START = re.compile(r"^(on|op|le|am|el|em|il|w dniu|pe|în|in|tarihinde|\d)\b", re.I)
_ORIGINAL_SEPARATOR = re.compile(
    r"^-{2,}\s*(original message|oorspronkelijk bericht|origineel bericht|message d'origine"
    r"|ursprüngliche nachricht|mensaje original|mensagem original|messaggio originale)\s*-*\s*$",
    re.I,
)
_FORWARD_SEPARATOR = re.compile(
    r"^(-{2,}\s*(forwarded message|doorgestuurd bericht|message transf[ée]r[ée]|weitergeleitete nachricht"
    r"|mensaje reenviado|mensagem encaminhada|messaggio inoltrato|forwarded by)\b.*"
    r"|(begin forwarded message|begin doorgestuurd bericht|d[ée]but du message r[ée]exp[ée]di[ée])\s*:)$",
    re.I,
)
_HEADER_FIELD = re.compile(
    r"^\*?(from|van|de|von|da|od|date|datum|sent|verzonden|envoy[ée]|gesendet|enviado|data|to|aan|[àa]|an"
    r"|para|cc|subject|onderwerp|objet|betreff|asunto|assunto|oggetto|temat)\s*\*?\s*:",
    re.I,
)
_SENDER_FIELD = re.compile(r"^\*?(from|van|de|von|da|od)\s*\*?\s*:", re.I)
_SUBJECT_FIELD = re.compile(
    r"^\*?(subject|onderwerp|objet|betreff|asunto|assunto|oggetto|temat)\s*\*?\s*:\s*(.*)$", re.I
)
_MOBILE_SIGNATURE = re.compile(
    r"^(sent from|sent via|verzonden (vanaf|met|via|van)|verstuurd (vanaf|met|via|van)"
    r"|envoy[ée] (de|depuis|avec)|gesendet (von|vom|mit)|enviado (desde|do|de)|inviato da|wys[łl]ane z"
    r"|get outlook for|download outlook"
    r"|outlook voor|iphone'umdan g[öo]nderildi)\b.{0,60}$",
    re.I,
)
_OUTLOOK_RULE = re.compile(r"^_{10,}\s*$")


@dataclass(frozen=True)
class BodyParts:
    own: str  # what the sender wrote
    forwarded: str  # text of mail they forwarded, header lines dropped except its subject


def clean_subject(subject: str) -> str:
    """The subject without reply/forward prefixes (Re:, Fwd:, TR:, Antw: …), however many."""
    previous = None
    while previous != subject:
        previous, subject = subject, _SUBJECT_PREFIX.sub("", subject, count=1)
    return subject.strip()


def split_body(text: str, subject: str = "") -> BodyParts:
    lines = text.replace("\r\n", "\n").split("\n")
    is_forward = bool(_FORWARD_SUBJECT.match(subject))
    own: list[str] = []
    forwarded: list[str] = []
    target = own
    in_signature = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if _FORWARD_SEPARATOR.match(stripped):
            target, in_signature = forwarded, False
            forwarded.append("")
        elif target is forwarded and _HEADER_FIELD.match(stripped):
            subject_field = _SUBJECT_FIELD.match(stripped)
            if subject_field and subject_field.group(2).strip():
                forwarded.append(subject_field.group(2).strip())
        elif _is_history_start(lines, i):
            if is_forward and target is own:
                # Outlook forwards look like replies; the subject tells them apart.
                target, in_signature = forwarded, False
                forwarded.append("")
            else:
                break  # everything below is the earlier conversation
        elif stripped.startswith(">"):
            pass  # quoted line, inline or at the bottom
        elif target is own and (line.rstrip() == "--" or line == "-- "):
            in_signature = True
        elif _MOBILE_SIGNATURE.match(stripped):
            pass
        elif not in_signature:
            target.append(line)
    return BodyParts(own=_tidy(own), forwarded=_tidy(forwarded))


def _is_history_start(lines: list[str], i: int) -> bool:
    stripped = lines[i].strip()
    if _ORIGINAL_SEPARATOR.match(stripped):
        return True
    if _REPLY_INTRO_START.match(stripped):
        # Clients wrap a long "On <date>, <name> <address> wrote:" over two or three lines.
        for end in range(i, min(i + 3, len(lines))):
            candidate = " ".join(line.strip() for line in lines[i : end + 1])
            if _REPLY_INTRO.match(candidate) and _REPLY_INTRO_EVIDENCE.search(candidate):
                return True
    if _OUTLOOK_RULE.match(stripped) or _SENDER_FIELD.match(stripped):
        # An Outlook header block: a sender field and at least two more fields right below it.
        start = i + 1 if _OUTLOOK_RULE.match(stripped) else i
        block = [line.strip() for line in lines[start : start + 6] if line.strip()]
        fields = [line for line in block[:5] if _HEADER_FIELD.match(line)]
        return bool(block) and _SENDER_FIELD.match(block[0]) is not None and len(fields) >= 3
    return False


def _tidy(lines: list[str]) -> str:
    text = "\n".join(line.rstrip() for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def resident_text(subject: str, text: str) -> tuple[str, BodyParts]:
    """(text for the classifier, its parts): the cleaned subject, the own text, then forwarded mail."""
    parts = split_body(text, subject)
    pieces = [clean_subject(subject), parts.own]
    if parts.forwarded:
        pieces.append(f"{FORWARD_MARKER}\n{parts.forwarded}")
    return "\n\n".join(piece for piece in pieces if piece), parts
