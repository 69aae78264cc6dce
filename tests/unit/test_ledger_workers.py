"""Several workers on one ledger at once, each with its own engine, on SQLite and on PostgreSQL: every
race decided once, no deadlock, no error."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from mailflow.audit import verify_chain
from mailflow.domain import Status
from mailflow.storage.database import make_engine, make_session_factory, migrate
from mailflow.storage.ledger import Arrival, ClaimResult, Ledger
from mailflow.storage.models import Event, MailboxState, Message

WORKERS = 3


def utc_now() -> datetime:
    return datetime.now(UTC)


def arrival(uid: int, sha: str | None = None) -> Arrival:
    sha = sha or f"{uid:064x}"
    return Arrival("INBOX", 7, uid, sha, 100, f"<m{uid}@x>", "r@example.org", "subject")


def together(database_url: str, work: Callable[[Ledger, int], None]) -> list[Ledger]:
    """Run ``work(ledger, n)`` in WORKERS threads started at once, each a worker with its own engine."""
    engines = [make_engine(database_url) for _ in range(WORKERS)]
    migrate(engines[0])
    ledgers = [
        Ledger(make_session_factory(engine), worker_id=f"w{n}", lease=timedelta(minutes=5), clock=utc_now)
        for n, engine in enumerate(engines)
    ]
    start, errors = threading.Barrier(WORKERS), []

    def run(n: int) -> None:
        start.wait()
        try:
            work(ledgers[n], n)
        except Exception as exc:  # listed by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for engine in engines[1:]:
        engine.dispose()
    assert not any(thread.is_alive() for thread in threads), "a worker hangs"
    assert errors == []
    return ledgers


def test_each_email_is_claimed_by_one_worker_and_each_move_recorded_once(database_url):
    uids = list(range(1, 61))
    claimed: dict[int, list[int]] = {}
    # The moves to Processed come after every worker's shuffling between folders: an email moved
    # elsewhere again after its move to Processed would rightly be moved (and recorded) twice.
    settled = threading.Barrier(WORKERS)

    def work(ledger: Ledger, n: int) -> None:
        assert ledger.observe_uidvalidity("INBOX", 7) is False  # the folder's first sight, by all at once
        order = random.Random(n).sample(uids, len(uids))
        mine = [ledger.claim(arrival(uid)) for uid in order]
        claimed[n] = [c.message_pk for c in mine if c.result is ClaimResult.PROCESS]
        with ledger.sessions.begin() as session:
            for pk in claimed[n]:
                session.get_one(Message, pk).status = Status.PROCESSED
        # Every worker moves emails it saw settled, overlapping sets in different orders; each round to
        # another folder, so that every round changes rows and writes events.
        rng = random.Random(n)
        everything = [pk for pks in list(claimed.values()) for pk in pks]
        for round_ in range(6):
            ledger.mark_moved(rng.sample(everything, len(everything) // 2), ("Triage", "Ignored")[round_ % 2])
        settled.wait(timeout=30)
        for _ in range(2):
            ledger.mark_moved(claimed[n], "Processed")

    ledgers = together(database_url, work)

    assert sorted(pk for pks in claimed.values() for pk in pks) == sorted(set().union(*claimed.values()))
    sessions = ledgers[0].sessions
    with sessions() as session:
        assert session.scalar(select(MailboxState.uidvalidity)) == 7
        assert len(session.scalars(select(Message.id)).all()) == len(uids)
        moves = Counter(
            event.message_id
            for event in session.scalars(select(Event).where(Event.kind == "moved"))
            if event.detail == {"folder": "Processed"}
        )
    claimed_pks = {pk for pks in claimed.values() for pk in pks}
    assert len(claimed_pks) == len(uids)
    assert all(moves[pk] == 1 for pk in claimed_pks)
    assert verify_chain(sessions).ok
    sessions.kw["bind"].dispose()


def test_identical_bytes_claimed_at_once_by_several_workers_are_processed_once(database_url):
    same = "d" * 64  # two copies of one email under different UIDs, each claimed by every worker

    def work(ledger: Ledger, n: int) -> None:
        for uid in (1, 2) if n % 2 else (2, 1):
            ledger.claim(arrival(uid, same))

    ledgers = together(database_url, work)

    with ledgers[0].sessions() as session:
        rows = session.execute(select(Message.uid, Message.status, Message.duplicate_of_id)).all()
    assert len(rows) == 2
    assert sorted(original is None for _uid, _status, original in rows) == [False, True]
    assert Counter(status for _uid, status, _original in rows) == {"received": 1, "ignored": 1}
    ledgers[0].sessions.kw["bind"].dispose()
