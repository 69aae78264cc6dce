"""The classification benchmark's report: as a dict (for ``--json`` and model manifests) and as text.

Only file names, categories, actions and figures appear: never an email's text or a resident's data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mailflow.evaluation.metrics import Figures, Outcome, Ratio, as_point
from mailflow.evaluation.risk import GROUPS, describe, risk_coverage, row

TARGETS = {
    "harmful_rate": ("≤", 0.01),
    "automation_rate": ("≥", 0.85),
    "category_accuracy": ("≥", 0.90),
    "reply_language": ("≥", 0.98),
    "several_requests_split": ("≥", 0.80),
    "language_nl_fr_en": ("≥", 0.97),
    "documents_text_pdf": ("≥", 0.90),
    "documents_image": ("≥", 0.75),
}
MS_TARGET = 30.0
MISS_LABELS = {
    "read_as_one": "read as one",
    "persons_miscounted": "persons miscounted",
    "requests_differ": "other requests",
    "split_needlessly": "one request split",
}


def as_dict(
    figures: Figures,
    outcomes: Sequence[Outcome],
    *,
    corpus: str,
    mode: str,
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    def ratio(r: Ratio | None) -> dict[str, Any] | None:
        return None if r is None else {"value": _round(r.value), "hits": r.hits, "total": r.total}

    return {
        "corpus": corpus,
        "mode": mode,
        "emails": figures.emails,
        "harmful_rate": ratio(figures.harmful),
        "automation_rate": ratio(figures.automation),
        "category_accuracy": ratio(figures.category),
        "action_accuracy": ratio(figures.action),
        "model_accuracy": ratio(figures.model),
        "intents": ratio(figures.intents),
        "intent_misses": figures.intent_misses,
        "language": {code: ratio(r) for code, r in figures.languages.items()},
        "documents": {form: ratio(r) for form, r in figures.documents.items()},
        "speed": {key: _round(value, 2) for key, value in figures.speed.items()},
        "categories": {
            category: {
                "precision": _round(c.precision),
                "recall": _round(c.recall),
                "support": c.support,
                "predicted": c.predicted,
            }
            for category, c in figures.categories.items()
        },
        "confusion": [{"expected": e, "predicted": p, "count": n} for e, p, n in figures.confusion],
        "risk_coverage": _risk_coverage(outcomes, thresholds or {}),
        "harmful": [
            {
                "file": o.name,
                "expected": f"{o.expected_category}/{o.expected_action}",
                "got": f"{o.category}/{o.action}",
            }
            for o in outcomes
            if o.harmful
        ],
    }


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The headline figures, for a model's manifest."""
    keys = ("emails", "mode", "harmful_rate", "automation_rate", "category_accuracy", "model_accuracy")
    return {key: report[key] for key in keys} | {"language": report["language"]}


def _risk_coverage(outcomes: Sequence[Outcome], thresholds: Mapping[str, float]) -> list[dict[str, Any]]:
    """The harmful and automation rates at common thresholds (several requests split as chosen),
    then as actually decided ("chosen")."""
    points = [o.unthresholded for o in outcomes]
    if not points or any(p is None for p in points):
        return []
    rows = risk_coverage([p for p in points if p is not None], thresholds)[:-1]
    actual = [as_point(o) for o in outcomes]
    return [r.as_dict() for r in rows] + [row("chosen", actual, dict.fromkeys(GROUPS, 0.0)).as_dict()]


def _render_risk(report: dict[str, Any]) -> list[str]:
    rows = report.get("risk_coverage") or []
    if not rows:
        return []
    lines = ["", "  risk–coverage (every action group at one threshold; 'chosen': as decided)"]
    lines.append("  threshold      harmful       automated    automation")
    for r in rows:
        lines.append(
            f"  {r['threshold']:>9}   {100 * r['harmful_rate']:5.1f}% ({r['harmful']:>3})   "
            f"{r['automated']:>5}/{r['emails']:<5}   {100 * r['automation_rate']:6.1f}%"
        )
    if report.get("operating_point"):
        lines.append(f"  operating point: {describe(report['operating_point'])}")
    return lines


def render(report: dict[str, Any]) -> str:
    lines = [
        f"Classification benchmark: {report['corpus']} — {report['emails']} emails, {report['mode']}",
        "",
    ]
    checks = {
        "harmful_rate": report["harmful_rate"],
        "automation_rate": report["automation_rate"],
        "category_accuracy": report["category_accuracy"],
        "reply_language": report["language"].get("reply"),
        "several_requests_split": report["intents"],
        "language_nl_fr_en": report["language"].get("nl+fr+en"),
        "documents_text_pdf": report["documents"].get("text_pdf"),
        "documents_image": report["documents"].get("image"),
    }
    for key, figure in checks.items():
        lines.append(_headline(key.replace("_", " "), figure, TARGETS[key]))
    ms = report["speed"].get("mean_ms_without_attachments")
    if ms is not None:
        mark = "ok " if ms < MS_TARGET else "MISS"
        lines.append(f"  {'mean ms without attachments':<28} {ms:8.1f} ms     [{mark} < {MS_TARGET:g} ms]")
    eps = report["speed"].get("emails_per_second")
    with_attachments = report["speed"].get("mean_ms_with_attachments")
    lines.append(
        f"  {'emails per second':<28} {eps or 0:8.1f}"
        + (f"        (mean {with_attachments:.0f} ms with attachments)" if with_attachments else "")
    )
    lines.append("")
    for label, key in (("category accuracy", "category_accuracy"), ("action accuracy", "action_accuracy")):
        lines.append(f"  {label:<28} {_ratio(report[key])}")
    if report["model_accuracy"]:
        lines.append(f"  {'model alone (best guess)':<28} {_ratio(report['model_accuracy'])}")
    lines.append(f"  {'several requests found':<28} {_ratio(report['intents'])}")
    if misses := report.get("intent_misses"):
        lines.append(f"  {'':<28} " + ", ".join(f"{MISS_LABELS[k]} {n}" for k, n in misses.items()))
    lines += _render_risk(report)
    lines.append("")
    lines.append("  language " + ", ".join(f"{code} {_ratio(r)}" for code, r in report["language"].items()))
    lines.append("  documents " + ", ".join(f"{form} {_ratio(r)}" for form, r in report["documents"].items()))
    lines += ["", f"  {'category':<28} {'precision':>9} {'recall':>7} {'support':>8}"]
    for category, c in report["categories"].items():
        lines.append(
            f"  {category:<28} {_percent(c['precision']):>9} {_percent(c['recall']):>7} {c['support']:>8}"
        )
    if report["confusion"]:
        lines += ["", "  confusions (expected → predicted: emails)"]
        lines += [f"    {c['expected']} → {c['predicted']}: {c['count']}" for c in report["confusion"]]
    if report["harmful"]:
        lines += ["", "  harmful (auto-handled wrongly)"]
        lines += [f"    {h['file']}: expected {h['expected']}, got {h['got']}" for h in report["harmful"]]
    return "\n".join(lines)


def _headline(label: str, figure: dict[str, Any] | None, target: tuple[str, float]) -> str:
    sign, bound = target
    if figure is None or figure["value"] is None:
        return f"  {label:<28} {'—':>8}"
    value = figure["value"]
    met = value <= bound if sign == "≤" else value >= bound
    return f"  {label:<28} {_ratio(figure)}  [{'ok ' if met else 'MISS'} {sign} {bound:.0%}]"


def _ratio(figure: dict[str, Any] | None) -> str:
    if figure is None or figure["value"] is None:
        return "—"
    return f"{figure['value']:7.1%} ({figure['hits']}/{figure['total']})"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)
