"""Risk–coverage and the choice of the confidence each action group needs."""

from __future__ import annotations

from mailflow.evaluation.risk import (
    FLOOR,
    NEVER,
    Point,
    choose_thresholds,
    render,
    risk_coverage,
    row,
)

BUDGET = 0.008  # the examples below are built around it; the default may move with the corpora


def points(group: str, confidences_and_harm: list[tuple[float, bool]]) -> list[Point]:
    return [Point(group, c, harmful, not harmful, True) for c, harmful in confidences_and_harm]


def test_the_threshold_stops_above_the_harmful_emails():
    right = [(0.99 - i * 0.001, False) for i in range(200)]
    wrong = [(0.70 - i * 0.01, True) for i in range(10)]
    chosen = choose_thresholds(points("act", right + wrong), BUDGET)
    assert 0.70 < chosen["act"] <= 0.80  # all but the lowest few right answers (25 candidate thresholds)


def test_some_harm_is_accepted_within_the_budget():
    right = [(0.99 - i * 0.0001, False) for i in range(2000)]
    wrong = [(0.70, True), (0.69, True)]
    # 0.8 % of 2 002 emails allows 15 harmful ones (one counted in advance): both fit.
    assert choose_thresholds(points("act", right + wrong), BUDGET)["act"] == 0.69


def test_a_group_that_is_never_safe_enough_is_never_automated():
    mixed = [(0.99, i % 3 == 0) for i in range(300)]
    assert choose_thresholds(points("act", mixed))["act"] == NEVER


def test_a_group_without_held_out_emails_is_never_automated():
    assert choose_thresholds(points("act", [(0.9, False)] * 500))["ignore"] == NEVER


def test_a_few_emails_promise_little():
    """Laplace: with one harmful email counted in advance, 100 emails cannot show a 0.8 % risk."""
    assert choose_thresholds(points("act", [(0.95, False)] * 100), BUDGET)["act"] == NEVER


def test_acting_never_needs_less_confidence_than_answering_a_question():
    # Questions are safe only above 0.9; requests would be safe from 0.4 — but acting may not be
    # easier than answering a question.
    questions = [(0.9 + i * 0.00005, False) for i in range(1000)] + [(0.6, True)] * 20
    requests = [(0.4 + i * 0.00059, False) for i in range(1000)]
    chosen = choose_thresholds(points("redirect_info", questions) + points("act", requests), BUDGET)
    assert 0.9 <= chosen["redirect_info"] <= chosen["act"]


def test_thresholds_never_go_below_the_floor():
    assert choose_thresholds(points("act", [(0.01, False)] * 1000))["act"] == NEVER
    assert choose_thresholds(points("act", [(0.31, False)] * 1000))["act"] == FLOOR + 0.01


def test_rows_count_what_would_be_automated():
    pts = [*points("act", [(0.9, False), (0.8, True), (0.4, False)]), Point("", 0.99, False, False, False)]
    figures = row("x", pts, {"act": 0.5})
    assert (figures.automated, figures.harmful, figures.correct, figures.emails) == (2, 1, 1, 4)
    assert figures.automatable == 3
    table = risk_coverage(pts, {"act": 0.85})
    assert [r.label for r in table][-1] == "chosen" and table[-1].automated == 1
    assert "act ≥ 0.85" in render(table, {"act": 0.85})[-1]


def test_the_several_requests_threshold_is_chosen_with_the_others():
    single = [Point("act", 0.99 - i * 0.0001, False, True, True, several=0.05) for i in range(1000)]
    several = [Point("act", 0.99, True, False, False, several=0.65) for _ in range(30)]
    chosen = choose_thresholds(single + several)
    assert chosen["several"] <= 0.6  # split for a person before acting on one request of several
    assert row("chosen", single + several, chosen).harmful == 0
