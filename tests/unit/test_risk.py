"""Risk–coverage and the choice of the confidence each action group needs."""

from __future__ import annotations

from mailflow.evaluation.risk import FLOOR, Point, choose_thresholds, render, risk_coverage, row


def points(group: str, confidences_and_harm: list[tuple[float, bool]]) -> list[Point]:
    return [Point(group, c, harmful, not harmful, True) for c, harmful in confidences_and_harm]


def test_the_threshold_stops_above_the_harmful_emails():
    # 150 right answers from 0.99 down to 0.84, then harmful ones below: a single one would already
    # make the estimated share (1 + 1) / 152 exceed the 1 % budget of acting.
    right = [(0.99 - i * 0.001, False) for i in range(150)]
    wrong = [(0.80 - i * 0.01, True) for i in range(10)]
    chosen = choose_thresholds(points("act", right + wrong))
    assert chosen["act"] == round(right[-1][0], 4)
    # With twice as many right answers above them, two harmful emails fit in the budget: 3 / 303 ≤ 1 %.
    more = [(0.99 - i * 0.0005, False) for i in range(300)]
    assert choose_thresholds(points("act", more + wrong))["act"] == 0.79


def test_a_group_that_is_never_safe_enough_is_never_automated():
    mixed = [(0.99, i % 3 == 0) for i in range(60)]
    assert choose_thresholds(points("act", mixed))["act"] == 1.0


def test_a_group_without_held_out_emails_is_never_automated():
    assert choose_thresholds(points("act", [(0.9, False)] * 500))["ignore"] == 1.0


def test_a_few_emails_promise_little():
    """Laplace: five right answers alone cannot show a 1 % risk."""
    assert choose_thresholds(points("act", [(0.95, False)] * 5))["act"] == 1.0


def test_questions_may_risk_more_than_acting():
    # One harmful email in 80: 2.5 % — too much to act on, acceptable for a question? Not at 2 % either.
    same = [(0.9 - i * 0.001, i == 40) for i in range(150)]
    chosen = choose_thresholds(points("act", same) + points("redirect_info", same))
    assert chosen["redirect_info"] <= chosen["act"]


def test_thresholds_never_go_below_the_floor():
    assert choose_thresholds(points("act", [(0.01, False)] * 1000))["act"] == FLOOR


def test_rows_count_what_would_be_automated():
    pts = points("act", [(0.9, False), (0.8, True), (0.4, False)]) + [Point("", 0.99, False, False, False)]
    figures = row("x", pts, {"act": 0.5})
    assert (figures.automated, figures.harmful, figures.correct, figures.emails) == (2, 1, 1, 4)
    assert figures.automatable == 3
    table = risk_coverage(pts, {"act": 0.85})
    assert [r.label for r in table][-1] == "chosen" and table[-1].automated == 1
    assert "act ≥ 0.85" in render(table, {"act": 0.85})[-1]
