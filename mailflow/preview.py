"""What mailflow would do with an email, without doing it: ``preview`` and ``poll-once --dry-run``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from mailflow.domain import Analysis
from mailflow.pipeline import Analyser
from mailflow.ports import Mailbox
from mailflow.replies.compose import ReplyComposer
from mailflow.stages.act import CASE_ACTIONS, compose_reply

ProductContext = Callable[[str, str], Mapping[str, Any]]


def preview_reply(
    analysis: Analysis, composer: ReplyComposer, product_context: ProductContext, case_prefix: str
) -> bytes | None:
    """The reply ``act`` would queue for this analysis (the case reference is a placeholder)."""
    decision, message = analysis.decision, analysis.message
    if not decision.action.replies:
        return None
    case_ref = None
    if decision.action in CASE_ACTIONS:
        case_ref = (
            analysis.thread.case.reference
            if analysis.thread
            else f"{case_prefix}-{datetime.now(UTC).year}-000000"
        )
    reply = compose_reply(
        composer,
        message,
        decision,
        case_ref=case_ref,
        product=product_context(decision.category, decision.language),
        idempotency_key=f"preview:{message.message_id}",
    )
    return reply.data


def describe(analysis: Analysis) -> str:
    d = analysis.decision
    lines = [
        f"category:   {d.category} (confidence {d.confidence:.2f})",
        f"action:     {d.action.value}",
        f"language:   {d.language}",
        f"documents:  {', '.join(doc.kind for doc in analysis.extraction.documents) or '—'}",
    ]
    if d.intents:
        lines.append(f"intents:    {', '.join(d.intents)}")
    if d.missing_documents:
        lines.append(f"missing:    any of {', '.join(d.missing_documents)}")
    lines.append(f"reasons:    {'; '.join(d.reasons) or '—'}")
    return "\n".join(lines)


def readable(data: bytes) -> str:
    """The reply as a person reads it: its headers as sent, then the plain-text part decoded."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("ascii", "replace")
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    return f"{head.replace(chr(13), '')}\n\n{text}"


def dry_run(mailbox: Mailbox, analyser: Analyser, batch_size: int) -> Iterator[str]:
    """One line per waiting email: what would be decided and answered. Nothing is stored or moved."""
    uids = mailbox.list_uids()
    for start in range(0, len(uids), batch_size):
        for uid, raw in mailbox.fetch(uids[start : start + batch_size]):
            try:
                analysis = analyser.analyse(raw)
            except Exception as exc:
                yield f"uid {uid}: would be quarantined ({type(exc).__name__})"
                continue
            d = analysis.decision
            reply = (
                f"reply ({d.language}) to {analysis.message.from_address}" if d.action.replies else "no reply"
            )
            yield (
                f"uid {uid}: {d.category} → {d.action.value} ({d.confidence:.2f}); {reply}; "
                f"would move to {d.status.folder}"
            )
