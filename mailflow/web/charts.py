"""Charts drawn on the server as inline SVG: no script, nothing fetched, readable without colour alone."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from flask_babel import gettext
from markupsafe import Markup

PALETTE = (
    "#1f6feb", "#e8590c", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599",
    "#e03131", "#5c940d", "#6741d9", "#868e96",
)  # fmt: skip
WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 34


def _frame(title: str, body: str, legend: Sequence[tuple[str, str]] = ()) -> Markup:
    items = "".join(
        f'<span class="key"><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" '
        f'fill="{colour}"/></svg>{escape(name)}</span>'
        for name, colour in legend
    )
    svg = (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{body}</svg>'
    )
    return Markup(f'<figure class="chart"><figcaption>{escape(title)}</figcaption>{svg}'
                  f'<div class="legend">{items}</div></figure>')  # fmt: skip


def _axis(maximum: float, fmt: str = "{:.0f}") -> str:
    plot_h = HEIGHT - TOP - BOTTOM
    lines = []
    for step in range(5):
        value = maximum * step / 4
        y = TOP + plot_h - plot_h * step / 4
        lines.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{fmt.format(value)}</text>'
        )
    return "".join(lines)


def _x_labels(labels: Sequence[str], slot: float) -> str:
    every = max(1, len(labels) // 10)
    return "".join(
        f'<text x="{LEFT + slot * (i + 0.5):.1f}" y="{HEIGHT - BOTTOM + 16}" class="tick" '
        f'text-anchor="middle">{escape(label)}</text>'
        for i, label in enumerate(labels)
        if i % every == 0
    )


def stacked_bars(title: str, labels: Sequence[str], series: dict[str, Sequence[int]]) -> Markup:
    """One bar per label, stacked by series (in the order given)."""
    if not labels:
        return _frame(title, _empty())
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    maximum = 4 * math.ceil(max(1, max(totals)) / 4)  # whole numbers on each of the four grid lines
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / len(labels)
    bars = []
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    for i, label in enumerate(labels):
        y = TOP + plot_h
        for name, values in series.items():
            if not values[i]:
                continue
            h = plot_h * values[i] / maximum
            y -= h
            bars.append(
                f'<rect x="{LEFT + slot * i + slot * 0.15:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
                f'height="{h:.1f}" fill="{colours[name]}"><title>{escape(label)} · {escape(name)}: '
                f"{values[i]}</title></rect>"
            )
    legend = list(colours.items()) if len(series) > 1 else []
    return _frame(title, _axis(maximum) + "".join(bars) + _x_labels(labels, slot), legend)


def line(
    title: str, labels: Sequence[str], values: Sequence[float | None], *, percent: bool = False
) -> Markup:
    """A line through the values that exist (None leaves a gap)."""
    known = [v for v in values if v is not None]
    if not labels or not known:
        return _frame(title, _empty())
    maximum = 1.0 if percent else max(1.0, max(known) * 1.1)
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / len(labels)
    points, dots = [], []
    for i, value in enumerate(values):
        if value is None:
            continue
        x, y = LEFT + slot * (i + 0.5), TOP + plot_h - plot_h * value / maximum
        points.append(f"{x:.1f},{y:.1f}")
        shown = f"{value:.0%}" if percent else f"{value:.1f}"
        dots.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{PALETTE[0]}"><title>'
                    f"{escape(labels[i])}: {shown}</title></circle>")  # fmt: skip
    fmt = "{:.0%}" if percent else "{:.1f}"
    path = f'<polyline points="{" ".join(points)}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>'
    return _frame(title, _axis(maximum, fmt) + path + "".join(dots) + _x_labels(labels, slot))


def bars(title: str, labels: Sequence[str], values: Sequence[int]) -> Markup:
    return stacked_bars(title, labels, {title: values})


def _empty() -> str:
    said = escape(gettext("no data yet"))
    return f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="tick">{said}</text>'
