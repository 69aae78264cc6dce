"""Thread: is this email a resident's answer in the thread of one of their cases?

Only our own signed Message-ID in ``In-Reply-To``/``References`` names a case; the sender must be that
case's resident and must not have failed DMARC. A reference typed into a subject attaches nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from mailflow.domain import (
    Action,
    CaseSummary,
    Classification,
    Decision,
    ParsedMessage,
    Screening,
    ThreadContext,
)
from mailflow.replies.thread_tokens import ThreadSigner

CaseLookup = Callable[[str], CaseSummary | None]

# Categories that say nothing of their own about a request: in a case's thread, they are that case.
NEUTRAL = frozenset({"unclear"})
THREAD_CONFIDENCE = 0.9
# What files an email into its thread's case (``act.CASE_ACTIONS``).
_FILING = frozenset({Action.FILE, Action.REQUEST_DOCUMENTS})


def find_thread(
    message: ParsedMessage, screening: Screening, *, signer: ThreadSigner, lookup: CaseLookup
) -> ThreadContext | None:
    if screening.is_machine or screening.sender_verdict == "fail":
        return None
    reference = signer.case_ref((message.in_reply_to, *message.references))
    if reference is None:
        return None
    case = lookup(reference)
    if case is None or case.resident_address.lower() != message.from_address.lower():
        return None
    return ThreadContext(case)


def follow_up_classification(
    classification: Classification, thread: ThreadContext | None, documents: tuple[str, ...]
) -> Classification:
    """An answer bringing documents for its case is about that case, unless it clearly asks something else."""
    if thread is None or not documents:
        return classification
    case = thread.case
    if classification.category not in NEUTRAL | {case.category}:
        return classification
    return replace(
        classification,
        category=case.category,
        confidence=max(classification.confidence, THREAD_CONFIDENCE),
        intents=(),
        intent="request",
        reasons=(*classification.reasons, f"answer in the thread of case {case.reference}"),
    )


def hold_for_closed_case(decision: Decision, thread: ThreadContext | None) -> Decision:
    """A person closed the case this email answers: whether it opens again is for a person to say.

    Filing it would reopen the case (``act`` never leaves new work in a closed case) and send the
    resident an automatic reply about a case staff consider done; so the email waits in triage, with
    the reason, and the case stays closed until someone files it there or reopens the case.
    """
    if thread is None or thread.case.status != "closed" or decision.action not in _FILING:
        return decision
    return replace(
        decision,
        action=Action.TRIAGE,
        missing_documents=(),
        reasons=(*decision.reasons, f"case {thread.case.reference} is closed"),
    )
