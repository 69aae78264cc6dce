"""An email answering a closed case is held for a person; an open case's thread is left as it was."""

from __future__ import annotations

import pytest

from mailflow.domain import Action, CaseSummary, Decision, ThreadContext
from mailflow.stages.thread import hold_for_closed_case
from mailflow.web.labels import waiting_reason


def thread(status: str) -> ThreadContext:
    return ThreadContext(CaseSummary("MIG-2026-000007", "return_report", "youssef@example.org", status))


def decision(action: Action, missing: tuple[str, ...] = ()) -> Decision:
    return Decision(
        category="return_report",
        action=action,
        confidence=0.95,
        language="en",
        missing_documents=missing,
        reasons=("product return_report: file",),
    )


@pytest.mark.parametrize("action", [Action.FILE, Action.REQUEST_DOCUMENTS])
def test_filing_into_a_closed_case_waits_for_a_person_and_says_why(action):
    held = hold_for_closed_case(decision(action, ("boarding_pass",)), thread("closed"))
    assert held.action is Action.TRIAGE and held.missing_documents == ()
    assert held.reasons[-1] == "case MIG-2026-000007 is closed"
    assert held.category == "return_report" and held.confidence == 0.95  # the guess stays for the person
    assert waiting_reason(list(held.reasons)) == "closed"


@pytest.mark.parametrize("status", ["complete", "incomplete"])
def test_an_open_case_is_joined_as_before(status):
    filed = decision(Action.FILE)
    assert hold_for_closed_case(filed, thread(status)) is filed


def test_what_files_nothing_or_answers_no_case_is_left_alone():
    booked = decision(Action.BOOK)
    assert hold_for_closed_case(booked, thread("closed")) is booked
    filed = decision(Action.FILE)
    assert hold_for_closed_case(filed, None) is filed
