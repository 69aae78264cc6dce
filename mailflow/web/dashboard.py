"""The dashboard: emails per day by category and action, automation rate, triage backlog, time to handle."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request
from flask_babel import format_date, gettext, lazy_gettext
from flask_login import login_required
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailflow.domain import Status
from mailflow.storage.models import DecisionRecord, Message
from mailflow.web import charts, labels
from mailflow.web.archive_queries import latest_decisions
from mailflow.web.context import desk

bp = Blueprint("dashboard", __name__)
BRUSSELS = ZoneInfo("Europe/Brussels")
OTHER = "other"  # the categories beyond the most frequent, stacked together
RANGES = (7, 30, 90)
TOP_CATEGORIES = 8
AGE_BUCKETS = (
    (lazy_gettext("< 1 h"), 1),
    (lazy_gettext("1–4 h"), 4),
    (lazy_gettext("4–24 h"), 24),
    (lazy_gettext("1–3 days"), 72),
    (lazy_gettext("> 3 days"), None),
)
MACHINE = "pipeline"


def _day_labels(first: date, days: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(days)]


def figures(session: Session, *, now: datetime, days: int, zone: ZoneInfo = BRUSSELS) -> dict[str, Any]:
    """The dashboard's numbers; days are calendar days in ``zone``, the counter's."""
    first = (now.astimezone(zone) - timedelta(days=days - 1)).date()
    since = datetime.combine(first, time(), zone)
    last = latest_decisions()
    settled = session.execute(
        select(Message.received_at, DecisionRecord.category, DecisionRecord.action, DecisionRecord.decided_by)
        .join(last, last.c.message_id == Message.id)
        .join(DecisionRecord, DecisionRecord.id == last.c.last)
        .where(Message.received_at >= since)
    ).all()
    labels = _day_labels(first, days)
    index = {day: i for i, day in enumerate(labels)}
    popular = [c for c, _ in Counter(r.category for r in settled).most_common(TOP_CATEGORIES)]
    by_category: dict[str, list[int]] = defaultdict(lambda: [0] * days)
    by_action: dict[str, list[int]] = defaultdict(lambda: [0] * days)
    automatic, total = [0] * days, [0] * days
    for received, category, action, decided_by in settled:
        i = index.get(received.astimezone(zone).date())
        if i is None:  # a clock ahead of ours
            continue
        by_category[category if category in popular else OTHER][i] += 1
        by_action[action][i] += 1
        total[i] += 1
        automatic[i] += decided_by == MACHINE and action != "triage"
    rate = [automatic[i] / total[i] if total[i] else None for i in range(days)]

    backlog = session.scalars(select(Message.received_at).where(Message.status == Status.TRIAGE)).all()
    ages = [(now - received).total_seconds() / 3600 for received in backlog]
    bucket_counts = [0] * len(AGE_BUCKETS)
    for age in ages:
        for i, (_, limit) in enumerate(AGE_BUCKETS):
            if limit is None or age < limit:
                bucket_counts[i] += 1
                break

    first_person = (
        select(DecisionRecord.message_id, func.min(DecisionRecord.decided_at).label("at"))
        .where(DecisionRecord.decided_by != MACHINE)
        .group_by(DecisionRecord.message_id)
        .subquery()
    )
    handled = session.execute(
        select(Message.received_at, first_person.c.at)
        .join(first_person, first_person.c.message_id == Message.id)
        .where(first_person.c.at >= since)
    ).all()
    per_day: dict[int, list[float]] = defaultdict(list)
    for received, decided in handled:
        decided = decided if decided.tzinfo else decided.replace(tzinfo=UTC)
        per_day[index.get(decided.astimezone(zone).date(), days - 1)].append(
            (decided - received).total_seconds() / 3600
        )
    median = [statistics.median(per_day[i]) if per_day.get(i) else None for i in range(days)]
    all_hours = [h for hours in per_day.values() for h in hours]
    order = [*popular, OTHER] if OTHER in by_category else popular
    return {
        "days": days,
        "totals": {
            "emails": sum(total),
            "automated": sum(automatic),
            "rate": sum(automatic) / sum(total) if sum(total) else None,
            "backlog": len(backlog),
            "oldest_hours": max(ages) if ages else None,
            "handled": len(all_hours),
            "median_hours": statistics.median(all_hours) if all_hours else None,
        },
        "by_category": {c: by_category[c] for c in order},
        "by_action": dict(sorted(by_action.items())),
        "backlog_by_age": bucket_counts,  # in the order of AGE_BUCKETS
        # The numbers behind the charts, day by day (the counter's days, oldest first).
        "per_day": {
            "days": labels,
            "emails": total,
            "automated": automatic,
            "rate": rate,
            "median_hours": median,
        },
    }


def drawn(data: dict[str, Any]) -> list[Markup]:
    """The charts of ``figures``, named in the desk's language."""
    day = data["per_day"]
    short = [format_date(d, "dd/MM") for d in day["days"]]
    by_category = {
        (gettext("other categories") if c == OTHER else labels.category(c)): v
        for c, v in data["by_category"].items()
    }
    by_action = {labels.action(a): v for a, v in data["by_action"].items()}
    return [
        charts.stacked_bars(gettext("Emails per day by category"), short, by_category),
        charts.stacked_bars(gettext("Emails per day by action"), short, by_action),
        charts.line(
            gettext("Automation rate (settled without a person)"),
            short,
            data["per_day"]["rate"],
            percent=True,
        ),
        charts.bars(
            gettext("Triage backlog by age"), [str(b) for b, _ in AGE_BUCKETS], data["backlog_by_age"]
        ),
        charts.line(
            gettext("Time to handle by a person (median hours, by day decided)"),
            short,
            data["per_day"]["median_hours"],
        ),
    ]


@bp.route("/dashboard")
@login_required
def index():
    d = desk()
    try:
        days = int(request.args.get("days", "30"))
    except ValueError:
        days = 30
    days = days if days in RANGES else 30
    with d.archive() as db:
        data = figures(db, now=d.clock(), days=days, zone=ZoneInfo(d.settings.desk_timezone))
    return render_template("dashboard.html", ranges=RANGES, charts=drawn(data), **data)
