"""The daily retention run: what the schedule says is due is erased, then taken out of the mailbox.

``plan`` lists what is due per rule (a dry run stops there); ``apply`` erases it in batches through
``Eraser``; ``purge_mailbox`` deletes erased emails from the folders they were filed into (never from the
watched inbox). ``daily_retention`` is the worker's scheduled entry: one worker a day, by a lease.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailflow.errors import MailboxError
from mailflow.ports import BlobStore, Fingerprint, Mailbox
from mailflow.retention.erase import Eraser, ErasureRefused
from mailflow.retention.lease import claim_job, release_job
from mailflow.retention.schedule import CLOSED_CASE, Schedule
from mailflow.storage.models import CASE_CLOSED, Case, DecisionRecord, Event, Message

if TYPE_CHECKING:
    from mailflow.bootstrap import App

log = logging.getLogger(__name__)

JOB = "retention"
ACTOR = "retention"
LEASE = timedelta(hours=2)
DAILY_GAP = timedelta(hours=20)


@dataclass
class Plan:
    emails: dict[str, list[int]] = field(default_factory=dict)  # rule -> message ids
    cases: list[int] = field(default_factory=list)  # closed cases due, with their emails
    held_cases: list[str] = field(default_factory=list)  # due, but under a legal hold

    def counts(self) -> dict[str, int]:
        counts = {rule: len(pks) for rule, pks in self.emails.items() if pks}
        if self.cases:
            counts[CLOSED_CASE] = len(self.cases)
        return counts


@dataclass
class Report:
    plan: Plan
    erased: Counter[str] = field(default_factory=Counter)  # rule -> emails erased (cases: cases)
    refused: list[str] = field(default_factory=list)
    mailbox_deleted: int = 0
    mailbox_missing: int = 0


def plan(session: Session, schedule: Schedule, now: datetime) -> Plan:
    result = Plan()
    earliest = schedule.earliest(now)
    if earliest is None:
        return result
    latest = (
        select(DecisionRecord.message_id, func.max(DecisionRecord.id).label("last"))
        .group_by(DecisionRecord.message_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Message.id,
            Message.status,
            Message.received_at,
            Message.duplicate_of_id,
            DecisionRecord.category,
            DecisionRecord.decided_at,
        )
        .outerjoin(latest, latest.c.message_id == Message.id)
        .outerjoin(DecisionRecord, DecisionRecord.id == latest.c.last)
        .where(Message.erased_at.is_(None), Message.case_id.is_(None), Message.received_at <= earliest)
        .order_by(Message.id)
    ).all()
    for pk, status, received_at, duplicate_of, category, decided_at in rows:
        rule = schedule.rule_for_email(status, category, duplicate_of is not None)
        since = max(received_at, decided_at) if decided_at else received_at
        if rule is not None and schedule.due(rule, since, now):
            result.emails.setdefault(rule, []).append(pk)
    if schedule.days.get(CLOSED_CASE, 0) > 0:
        cases = session.execute(
            select(Case.id, Case.reference, Case.legal_hold_at)
            .where(
                Case.erased_at.is_(None),
                Case.status == CASE_CLOSED,
                Case.closed_at <= now - timedelta(days=schedule.days[CLOSED_CASE]),
            )
            .order_by(Case.id)
        ).all()
        for case_id, reference, held in cases:
            if held:
                result.held_cases.append(reference or str(case_id))
            else:
                result.cases.append(case_id)
    return result


def apply(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    schedule: Schedule,
    clock: Callable[[], datetime],
    *,
    batch: int = 500,
    mailbox: Mailbox | None = None,
) -> Report:
    """Erase what is due now; then, given the mailbox, delete the erased emails from its folders."""
    with sessions() as session:
        due = plan(session, schedule, clock())
    report = Report(due)
    eraser = Eraser(sessions, blobs, clock)
    for rule, pks in due.emails.items():
        for start in range(0, len(pks), batch):
            chunk = pks[start : start + batch]
            try:
                erased = eraser.messages(chunk, reason=f"retention rule {rule}", actor=ACTOR, rule=rule)
            except ErasureRefused as exc:  # a hold set meanwhile: the next run looks again
                report.refused.append(str(exc))
                continue
            report.erased[rule] += len(erased.messages)
    for case_id in due.cases:
        try:
            eraser.case(case_id, reason=f"retention rule {CLOSED_CASE}", actor=ACTOR, rule=CLOSED_CASE)
        except ErasureRefused as exc:
            report.refused.append(str(exc))
            continue
        report.erased[CLOSED_CASE] += 1
    if mailbox is not None:
        report.mailbox_deleted, report.mailbox_missing = purge_mailbox(sessions, mailbox, clock)
    with sessions.begin() as session:
        session.add(
            Event(
                message_id=None,
                at=clock(),
                actor=ACTOR,
                kind="retention_run",
                detail={
                    "erased": dict(report.erased),
                    "held_cases": len(due.held_cases),
                    "refused": len(report.refused),
                    "mailbox_deleted": report.mailbox_deleted,
                },
            )
        )
    return report


def purge_mailbox(
    sessions: sessionmaker[Session], mailbox: Mailbox, clock: Callable[[], datetime]
) -> tuple[int, int]:
    """Delete erased emails from the folders they were filed into; (deleted, not found there)."""
    with sessions() as session:
        rows = session.execute(
            select(Message.id, Message.folder, Message.sha256, Message.size).where(
                Message.erased_at.is_not(None), Message.folder.is_not(None)
            )
        ).all()
    deleted = missing = 0
    for pk, folder, sha256, size in rows:
        try:
            found = mailbox.delete(Fingerprint(sha256, size, None), folder)
        except MailboxError as exc:
            log.warning("message %s: not deleted from %s (%s); the next run tries again", pk, folder, exc)
            continue
        deleted, missing = deleted + found, missing + (not found)
        with sessions.begin() as session:
            row = session.get_one(Message, pk)
            row.folder = None
            session.add(
                Event(
                    message_id=pk,
                    at=clock(),
                    actor=ACTOR,
                    kind="deleted_from_mailbox",
                    detail={"folder": folder, "found": found},
                )
            )
    return deleted, missing


def apply_now(app: App) -> Report:
    """One run of the schedule over the database and the mailbox; the caller holds the job's lease."""
    mailbox = app.open_mailbox()
    try:
        return apply(
            app.sessions,
            app.blobs,
            Schedule.from_settings(app.settings),
            app.clock,
            batch=app.settings.retention_batch,
            mailbox=mailbox,
        )
    finally:
        mailbox.close()


def daily_retention(app: App) -> Report | None:
    """The worker's scheduled run: only the worker that takes today's lease; never raises."""
    owner = app.worker_id
    try:
        if not claim_job(app.sessions, JOB, owner=owner, now=app.clock(), lease=LEASE, min_gap=DAILY_GAP):
            log.info("retention: another worker has today's run")
            return None
        try:
            report = apply_now(app)
        finally:
            release_job(app.sessions, JOB, owner=owner, now=app.clock())
        log.info(
            "retention: erased %s; deleted %d from the mailbox", dict(report.erased), report.mailbox_deleted
        )
        return report
    except Exception:
        log.exception("retention run failed; the next run tries again")
        return None
