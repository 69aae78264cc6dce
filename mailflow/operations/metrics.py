"""Prometheus metrics, read from the database at each scrape.

The desk serves them, but the numbers are the workers': they may run on other machines, so everything
comes from the shared database (the ledger, the outbox and ``worker_heartbeats``), nothing from memory.
Counts only: no address, subject or name ever becomes a label.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailflow.domain import Status
from mailflow.operations.heartbeat import LATENCY_BUCKETS
from mailflow.storage.models import Message, Reply, WorkerHeartbeat


class DatabaseCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> None:
        self.sessions = sessions
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        with self.sessions() as session:
            by_status = dict(
                session.execute(select(Message.status, func.count()).group_by(Message.status)).all()
            )
            oldest_triage = session.scalar(
                select(func.min(Message.received_at)).where(Message.status == Status.TRIAGE)
            )
            replies = dict(session.execute(select(Reply.status, func.count()).group_by(Reply.status)).all())
            deferred = session.scalar(
                select(func.count()).select_from(Reply).where(Reply.status == "pending", Reply.attempts > 0)
            )
            beats = session.scalars(select(WorkerHeartbeat)).all()

        emails = GaugeMetricFamily("mailflow_emails", "Emails in the ledger by outcome.", labels=["status"])
        for status in Status:
            emails.add_metric([status.value], by_status.get(status.value, 0))
        yield emails
        yield GaugeMetricFamily(
            "mailflow_triage_backlog",
            "Emails waiting in triage for a person.",
            value=by_status.get(Status.TRIAGE, 0),
        )
        age = (now - oldest_triage).total_seconds() if oldest_triage else 0.0
        yield GaugeMetricFamily(
            "mailflow_triage_oldest_age_seconds",
            "Age of the oldest email waiting in triage (0: none).",
            value=age,
        )
        outbox = GaugeMetricFamily(
            "mailflow_outbox_replies", "Replies in the outbox by state.", labels=["status"]
        )
        for status in ("pending", "sending", "sent", "failed", "unconfirmed"):
            outbox.add_metric([status], replies.get(status, 0))
        yield outbox
        yield GaugeMetricFamily(
            "mailflow_outbox_deferred",
            "Replies waiting to be sent again after a failed attempt.",
            value=deferred or 0,
        )
        yield GaugeMetricFamily(
            "mailflow_outbox_failed",
            "Replies given up on (refused for good or too many attempts).",
            value=replies.get("failed", 0),
        )
        yield from _worker_metrics(beats, now)


def _worker_metrics(beats: list[WorkerHeartbeat], now: datetime) -> Iterator[Metric]:
    # UtcDateTime columns come back time-zone aware, min() and max() over them too.
    successes = [beat.last_poll_succeeded_at for beat in beats if beat.last_poll_succeeded_at]
    last = max(successes, default=None)
    yield GaugeMetricFamily(
        "mailflow_last_successful_poll_age_seconds",
        "Seconds since any worker last polled the mailbox successfully (+Inf: never).",
        value=(now - last).total_seconds() if last else math.inf,
    )
    yield GaugeMetricFamily(
        "mailflow_last_successful_poll_timestamp_seconds",
        "When any worker last polled the mailbox successfully (Unix time; 0: never).",
        value=last.timestamp() if last else 0.0,
    )
    polls = CounterMetricFamily("mailflow_polls", "Polls of the mailbox by all workers.", labels=["result"])
    polls.add_metric(["succeeded"], sum(beat.polls_succeeded for beat in beats))
    polls.add_metric(["failed"], sum(beat.polls_failed for beat in beats))
    yield polls
    counts = [0] * (len(LATENCY_BUCKETS) + 1)
    total = 0.0
    for beat in beats:
        latency = beat.latency or {}
        for index, count in enumerate(latency.get("buckets", [])[: len(counts)]):
            counts[index] += int(count)
        total += float(latency.get("sum", 0.0))
    cumulative, buckets = 0, []
    for bound, count in zip([*map(str, LATENCY_BUCKETS), "+Inf"], counts, strict=True):
        cumulative += count
        buckets.append((bound, cumulative))
    yield HistogramMetricFamily(
        "mailflow_classification_seconds",
        "Time to analyse one email (parsing, attachments and OCR, classification), all workers.",
        buckets=buckets,
        sum_value=total,
    )


def registry_for(sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(sessions, clock))
    return registry
