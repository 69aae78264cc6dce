"""Leases on triage items: whoever opens an item holds it for a while; nobody else can decide it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mailflow.storage.desk_models import DeskLease


@dataclass(frozen=True)
class Holder:
    username: str
    until: datetime


def take(
    sessions: sessionmaker[Session], message_id: int, username: str, *, now: datetime, lease: timedelta
) -> Holder:
    """Take or renew the lease; returns who holds it afterwards (someone else if theirs has not run out)."""
    for _ in range(3):  # a lease that ends between our two statements is simply tried again
        with sessions.begin() as session:
            # One conditional UPDATE settles a race between two people renewing or taking over.
            taken = session.execute(
                update(DeskLease)
                .where(
                    DeskLease.message_id == message_id,
                    or_(DeskLease.username == username, DeskLease.until <= now),
                )
                .values(username=username, taken_at=now, until=now + lease)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount == 1:
                return Holder(username, now + lease)
        try:
            with sessions.begin() as session:
                session.add(
                    DeskLease(message_id=message_id, username=username, taken_at=now, until=now + lease)
                )
            return Holder(username, now + lease)
        except IntegrityError:
            pass  # someone holds it: their lease is live, or it just changed hands
        held = holder(sessions, message_id, now=now)
        if held is not None:
            return held
    raise RuntimeError(f"lease on message {message_id} keeps changing hands")


def holder(sessions: sessionmaker[Session], message_id: int, *, now: datetime) -> Holder | None:
    with sessions() as session:
        lease = session.get(DeskLease, message_id)
        if lease is None or lease.until <= now:
            return None
        return Holder(lease.username, lease.until)


def holds(session: Session, message_id: int, username: str, *, now: datetime) -> bool:
    return (
        session.scalar(
            select(DeskLease.message_id).where(
                DeskLease.message_id == message_id, DeskLease.username == username, DeskLease.until > now
            )
        )
        is not None
    )


def release(session: Session, message_id: int, username: str) -> None:
    session.execute(
        delete(DeskLease).where(DeskLease.message_id == message_id, DeskLease.username == username)
    )


def active(sessions: sessionmaker[Session], *, now: datetime) -> dict[int, Holder]:
    with sessions() as session:
        rows = session.scalars(select(DeskLease).where(DeskLease.until > now)).all()
        return {lease.message_id: Holder(lease.username, lease.until) for lease in rows}
