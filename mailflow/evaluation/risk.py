"""Risk–coverage: how often acting on an email would be wrong, at each confidence it could be asked for.

Pure. A ``Point`` is one held-out email as the model would have handled it with no threshold at all:
the action group it would take, its confidence, and whether that would have harmed (a wrong category
or action sent or filed) — see ``metrics.Outcome.harmful``. ``choose_thresholds`` picks, per action
group, the lowest confidence at which the harmful share of what would be automated stays within that
group's risk budget: acting on a request (``act``) and ignoring an email as junk (``ignore``) may
harm least; pointing a question to the Information Centre or to another service may harm a little
more. The share is estimated with one harmful email added (Laplace), so that a threshold chosen on a
few emails does not promise more than they show.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

GROUPS = ("act", "redirect_info", "redirect_other", "ignore")
RISK_BUDGET = {"act": 0.01, "redirect_info": 0.02, "redirect_other": 0.02, "ignore": 0.01}
# No threshold is lower than this, whatever the held-out emails show.
FLOOR = 0.3
TABLE_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


@dataclass(frozen=True)
class Point:
    group: str  # the action group taken without a threshold, or "" when it goes to a person anyway
    confidence: float
    harmful: bool  # acting on it would harm
    correct: bool  # acting on it would be exactly right (counts towards automation)
    automatable: bool  # its expected action is not triage


def choose_thresholds(points: Sequence[Point], budget: Mapping[str, float] = RISK_BUDGET) -> dict[str, float]:
    """The lowest confidence per group whose estimated harmful share is within the group's budget."""
    chosen = {}
    for group in GROUPS:
        mine = sorted((p for p in points if p.group == group), key=lambda p: -p.confidence)
        threshold, harmful = 1.0, 0
        for count, point in enumerate(mine, 1):
            harmful += point.harmful
            if (harmful + 1) / (count + 1) <= budget[group]:
                threshold = point.confidence
        chosen[group] = round(max(FLOOR, min(threshold, 1.0)), 4)
    return chosen


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
    acted = [p for p in points if p.group and p.confidence >= thresholds.get(p.group, 1.01)]
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
    rows = [row(f"{t:.2f}", points, dict.fromkeys(GROUPS, t)) for t in TABLE_THRESHOLDS]
    rows.append(row("chosen", points, chosen))
    return rows


def render(rows: Iterable[Row], chosen: Mapping[str, float]) -> list[str]:
    lines = ["  threshold   harmful          automated        automation"]
    for r in rows:
        lines.append(
            f"  {r.label:>9}   {100 * r.harmful_rate:5.1f}% ({r.harmful:>3})   "
            f"{r.automated:>4}/{r.emails:<4}        {100 * r.automation:5.1f}%"
        )
    lines.append("  chosen: " + ", ".join(f"{group} ≥ {value:.2f}" for group, value in chosen.items()))
    return lines
