"""A job that must run in one worker only: a lease on its ``job_runs`` row, taken by a conditional UPDATE.

Of several workers trying at once, the database lets exactly one UPDATE match (PostgreSQL re-checks the
condition after the row lock; SQLite's BEGIN IMMEDIATE serialises writers). A crashed worker's lease
runs out; ``min_gap`` keeps a daily job from running twice a day on workers whose schedules differ.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mailflow.storage.models import JobRun


def claim_job(
    sessions: sessionmaker[Session],
    name: str,
    *,
    owner: str,
    now: datetime,
    lease: timedelta,
    min_gap: timedelta = timedelta(0),
) -> bool:
    """True for the one caller that may run ``name`` now."""
    with sessions() as session:
        known = session.scalar(select(JobRun.name).where(JobRun.name == name))
    if known is None:
        try:
            with sessions.begin() as session:
                session.add(JobRun(name=name))
        except IntegrityError:
            pass  # another worker created it first
    with sessions.begin() as session:
        taken = session.execute(
            update(JobRun)
            .where(
                JobRun.name == name,
                or_(JobRun.lease_until.is_(None), JobRun.lease_until <= now),
                or_(JobRun.last_started_at.is_(None), JobRun.last_started_at <= now - min_gap),
            )
            .values(owner=owner, lease_until=now + lease, last_started_at=now)
            .execution_options(synchronize_session=False)
        )
        return taken.rowcount == 1


def release_job(sessions: sessionmaker[Session], name: str, *, owner: str, now: datetime) -> None:
    with sessions.begin() as session:
        session.execute(
            update(JobRun)
            .where(JobRun.name == name, JobRun.owner == owner)
            .values(lease_until=None, last_finished_at=now)
            .execution_options(synchronize_session=False)
        )
