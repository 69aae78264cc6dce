"""Risk–coverage: how often acting on an email would be wrong, at each confidence it could be asked for.

Pure. A ``Point`` is one held-out email as the model would have handled it with no threshold at all:
the action group it would take, its confidence, and whether that would have harmed (a wrong category
or action sent or filed) — see ``metrics.Outcome.harmful``. ``choose_thresholds`` picks one threshold
per action group — acting on a request (``act``), answering a question (``redirect_info``), pointing
to another service (``redirect_other``), ignoring junk (``ignore``) — so that the most emails are
handled rightly while the harmful share of all emails stays within one budget, estimated with one
harmful email added (Laplace) so that thresholds chosen on a few emails do not promise more than
they show. Acting never needs less confidence than answering a question.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

GROUPS = ("act", "redirect_info", "redirect_other", "ignore")
# The harmful share of all held-out emails the chosen thresholds may reach, one harmful email added
# (Laplace), so that thresholds chosen on a few emails do not promise more than they show. The
# held-out emails are the training corpora's, written to be hard (a fifth ask for several things, and
# as many are near misses): on them a model harms several times as often as on mail written as
# residents write it. With 1.5 % here, the open half of the blind corpus was harmed 1 time in 324
# (0.3 %), within the 1 % allowed to reach residents.
RISK_BUDGET = 0.015
# No threshold is lower than this, whatever the held-out emails show.
FLOOR = 0.3
NEVER = 1.01  # a threshold no confidence reaches: the group is never automated
CANDIDATES = 25  # thresholds tried per group: quantiles of its confidences
SEVERAL_CANDIDATES = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
TABLE_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


@dataclass(frozen=True)
class Point:
    group: str  # the action group taken without a threshold, or "" when it goes to a person anyway
    confidence: float
    harmful: bool  # acting on it would harm
    correct: bool  # acting on it would be exactly right (counts towards automation)
    automatable: bool  # its expected action is not triage
    several: float = 0.0  # the probability that it asks for several things
    fixed: bool = False  # handled whatever the thresholds (machine mail recognised by its headers)


def choose_thresholds(points: Sequence[Point], budget: float = RISK_BUDGET) -> dict[str, float]:
    """Per group, the thresholds that automate most emails rightly while the estimated harmful share
    of all emails, (harmful + 1) / (emails + 1), stays within ``budget``; acting on a request never
    needs less confidence than answering a question. A group never seen is never automated.

    Chosen with them is ``several``: the probability of several requests from which an email is
    split for a person rather than handled as one request."""
    fixed = [p for p in points if p.fixed]
    allowed = budget * (len(points) + 1) - 1 - sum(p.harmful for p in fixed)
    points = [p for p in points if not p.fixed]
    best_score, chosen = -np.inf, dict.fromkeys((*GROUPS, "several"), NEVER)
    for several in SEVERAL_CANDIDATES:
        single = [p for p in points if p.several < several]
        found = _best(single, allowed, len(points) + len(fixed))
        if found is not None and found[0] > best_score:
            best_score, chosen = found[0], {**found[1], "several": several}
    return chosen


def _best(points: Sequence[Point], allowed: float, total: int) -> tuple[float, dict[str, float]] | None:
    curves = {group: _curve([p for p in points if p.group == group]) for group in GROUPS}
    grids = [np.array(curves[g][0]) for g in GROUPS]

    def spread(values: list[int], k: int) -> np.ndarray:
        return np.array(values).reshape([-1 if i == k else 1 for i in range(len(GROUPS))])

    harm = sum(spread(curves[g][1], k) for k, g in enumerate(GROUPS))
    right = sum(spread(curves[g][2], k) for k, g in enumerate(GROUPS))
    act, info = GROUPS.index("act"), GROUPS.index("redirect_info")
    info_grid = grids[info].reshape(1, -1, 1, 1)
    ordered = (grids[act].reshape(-1, 1, 1, 1) >= info_grid) | (info_grid >= NEVER)
    feasible = (harm <= allowed) & ordered
    if not feasible.any():
        return None
    # Most right answers; among those, least harm.
    score = np.where(feasible, right * (total + 1) - harm, -np.inf)
    best = np.unravel_index(int(np.argmax(score)), score.shape)
    return float(score[best]), {g: round(float(grids[k][best[k]]), 4) for k, g in enumerate(GROUPS)}


def _curve(points: Sequence[Point]) -> tuple[list[float], list[int], list[int]]:
    """(thresholds, harmful, right) when the group acts at or above each threshold; NEVER on none."""
    confidences = sorted({p.confidence for p in points if p.confidence >= FLOOR}, reverse=True)
    if len(confidences) > CANDIDATES:
        confidences = [
            confidences[round(i * (len(confidences) - 1) / (CANDIDATES - 1))] for i in range(CANDIDATES)
        ]
    thresholds = [NEVER, *confidences]
    harmful = [sum(p.harmful for p in points if p.confidence >= t) for t in thresholds]
    right = [sum(p.correct for p in points if p.confidence >= t) for t in thresholds]
    return thresholds, harmful, right


@dataclass(frozen=True)
class Row:
    label: str
    harmful: int
    automated: int
    correct: int
    emails: int
    automatable: int

    @property
    def harmful_rate(self) -> float:
        return self.harmful / self.emails if self.emails else 0.0

    @property
    def automation(self) -> float:
        return self.correct / self.automatable if self.automatable else 0.0

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "threshold": self.label,
            "harmful": self.harmful,
            "harmful_rate": round(self.harmful_rate, 4),
            "automated": self.automated,
            "automation_rate": round(self.automation, 4),
            "emails": self.emails,
        }


def row(label: str, points: Sequence[Point], thresholds: Mapping[str, float]) -> Row:
    """The figures when each group acts at or above its threshold."""
    acted = [
        p
        for p in points
        if p.fixed
        or (
            p.group
            and p.confidence >= thresholds.get(p.group, NEVER)
            and p.several < thresholds.get("several", NEVER)
        )
    ]
    return Row(
        label=label,
        harmful=sum(p.harmful for p in acted),
        automated=len(acted),
        correct=sum(p.correct for p in acted),
        emails=len(points),
        automatable=sum(p.automatable for p in points),
    )


def risk_coverage(points: Sequence[Point], chosen: Mapping[str, float]) -> list[Row]:
    """One row per common threshold, then the chosen per-group operating point."""
    several = {"several": chosen.get("several", NEVER)}
    rows = [row(f"{t:.2f}", points, {**dict.fromkeys(GROUPS, t), **several}) for t in TABLE_THRESHOLDS]
    rows.append(row("chosen", points, chosen))
    return rows


def describe(chosen: Mapping[str, float]) -> str:
    parts = [
        f"{group} never" if value >= NEVER else f"{group} ≥ {value:.2f}"
        for group, value in chosen.items()
        if group != "several"
    ]
    if "several" in chosen:
        parts.append(f"several requests from p ≥ {chosen['several']:.2f}")
    return ", ".join(parts)


def render(rows: Iterable[Row], chosen: Mapping[str, float]) -> list[str]:
    lines = ["  threshold   harmful          automated        automation"]
    for r in rows:
        lines.append(
            f"  {r.label:>9}   {100 * r.harmful_rate:5.1f}% ({r.harmful:>3})   "
            f"{r.automated:>4}/{r.emails:<4}        {100 * r.automation:5.1f}%"
        )
    lines.append("  chosen: " + describe(chosen))
    return lines
