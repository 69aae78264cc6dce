from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailflow.domain import Status
from mailflow.storage.database import make_engine, make_session_factory, migrate
from mailflow.storage.ledger import Arrival, ClaimResult, Known, Ledger
from mailflow.storage.models import Event, Message


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def sessions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    yield make_session_factory(engine)
    engine.dispose()


def ledger(sessions, clock, worker="w1", lease=60) -> Ledger:
    return Ledger(sessions, worker_id=worker, lease=timedelta(seconds=lease), clock=clock)


def arrival(uid=1, uidvalidity=7, sha="a" * 64, message_id="<m1@x>") -> Arrival:
    return Arrival("INBOX", uidvalidity, uid, sha, 100, message_id, "r@example.org", "subject")


def settle(sessions, pk, status=Status.PROCESSED):
    with sessions.begin() as session:
        row = session.get(Message, pk)
        row.status, row.lease_owner, row.lease_until = status, None, None


def test_first_claim_processes_and_second_worker_is_told_busy(sessions):
    clock = Clock()
    first = ledger(sessions, clock, "w1").claim(arrival())
    second = ledger(sessions, clock, "w2").claim(arrival())
    assert first.result is ClaimResult.PROCESS
    assert second.result is ClaimResult.BUSY


def test_expired_claim_is_taken_over_by_another_worker(sessions):
    clock = Clock()
    first = ledger(sessions, clock, "w1", lease=60).claim(arrival())
    clock.now += timedelta(seconds=61)
    takeover = ledger(sessions, clock, "w2").claim(arrival())
    assert takeover.result is ClaimResult.PROCESS
    assert takeover.message_pk == first.message_pk
    # and the first worker, back from the dead, must not process it too
    assert ledger(sessions, clock, "w1").claim(arrival()).result is ClaimResult.BUSY


def test_settled_email_is_only_moved(sessions):
    clock = Clock()
    claim = ledger(sessions, clock).claim(arrival())
    settle(sessions, claim.message_pk, Status.TRIAGE)
    again = ledger(sessions, clock, "w2").claim(arrival())
    assert again.result is ClaimResult.MOVE_ONLY
    assert again.status is Status.TRIAGE


def test_uidvalidity_change_rebinds_by_hash_and_message_id(sessions):
    clock = Clock()
    book = ledger(sessions, clock)
    assert book.observe_uidvalidity("INBOX", 7) is False
    claim = book.claim(arrival(uid=5, uidvalidity=7))
    settle(sessions, claim.message_pk)
    assert book.observe_uidvalidity("INBOX", 8) is True
    again = book.claim(arrival(uid=1, uidvalidity=8))
    assert again.result is ClaimResult.MOVE_ONLY
    assert again.message_pk == claim.message_pk
    with sessions() as session:
        assert session.query(Message).count() == 1
        row = session.get(Message, claim.message_pk)
        assert (row.uidvalidity, row.uid) == (8, 1)
        assert session.query(Event).filter_by(kind="uidvalidity_changed").count() == 1


def test_same_hash_with_other_message_id_is_not_rebound(sessions):
    clock = Clock()
    book = ledger(sessions, clock)
    first = book.claim(arrival(uid=5, uidvalidity=7, message_id="<a@x>"))
    settle(sessions, first.message_pk)
    other = book.claim(arrival(uid=1, uidvalidity=8, message_id="<b@x>"))
    assert other.message_pk != first.message_pk


def test_identical_copy_is_kept_but_ignored_as_duplicate(sessions):
    clock = Clock()
    book = ledger(sessions, clock)
    first = book.claim(arrival(uid=1))
    settle(sessions, first.message_pk)
    copy = book.claim(arrival(uid=2))
    assert copy.result is ClaimResult.MOVE_ONLY
    assert copy.status is Status.IGNORED
    with sessions() as session:
        assert session.get(Message, copy.message_pk).duplicate_of_id == first.message_pk


def test_known_reports_rows_by_uid(sessions):
    clock = Clock()
    book = ledger(sessions, clock)
    claims = [book.claim(arrival(uid=u, sha=str(u) * 64)) for u in (1, 2, 3)]
    settle(sessions, claims[1].message_pk, Status.IGNORED)
    known = book.known("INBOX", 7, [1, 2, 3, 4])
    assert known == {
        1: Known(claims[0].message_pk, Status.RECEIVED, held_by_another=False),
        2: Known(claims[1].message_pk, Status.IGNORED, held_by_another=False),
        3: Known(claims[2].message_pk, Status.RECEIVED, held_by_another=False),
    }
    assert ledger(sessions, clock, "w2").known("INBOX", 7, [1, 2])[1].held_by_another


def test_the_worker_that_settled_an_email_moves_it_and_no_other(sessions):
    """Two workers moving one email at once can leave two copies of it: an IMAP MOVE is not atomic
    between sessions on every server. The worker that settled the email holds it until it moved it."""
    clock = Clock()
    ours, theirs = ledger(sessions, clock, "w1"), ledger(sessions, clock, "w2")
    claim = ours.claim(arrival())
    with sessions.begin() as session:
        session.get(Message, claim.message_pk).status = Status.PROCESSED  # as the pipeline settles it
    assert theirs.claim(arrival()).result is ClaimResult.BUSY
    assert theirs.take_for_moving([claim.message_pk]) == set()
    assert ours.take_for_moving([claim.message_pk]) == {claim.message_pk}
    ours.mark_moved([claim.message_pk], "Processed")
    with sessions() as session:
        assert session.get(Message, claim.message_pk).lease_owner is None
    assert theirs.take_for_moving([claim.message_pk]) == {claim.message_pk}
    assert ours.claim(arrival()).result is ClaimResult.BUSY


def test_a_settled_email_whose_worker_died_is_moved_by_another_after_the_lease(sessions):
    clock = Clock()
    claim = ledger(sessions, clock, "w1", lease=60).claim(arrival())
    with sessions.begin() as session:
        session.get(Message, claim.message_pk).status = Status.TRIAGE
    clock.now += timedelta(seconds=61)
    again = ledger(sessions, clock, "w2").claim(arrival())
    assert (again.result, again.status) == (ClaimResult.MOVE_ONLY, Status.TRIAGE)


def test_mark_moved_records_folder_once(sessions):
    clock = Clock()
    book = ledger(sessions, clock)
    claim = book.claim(arrival())
    book.mark_moved([claim.message_pk], "Processed")
    book.mark_moved([claim.message_pk], "Processed")
    with sessions() as session:
        assert session.get(Message, claim.message_pk).folder == "Processed"
        assert session.query(Event).filter_by(kind="moved").count() == 1


def test_unclaimed_leaves_out_what_another_worker_holds_or_settled(sessions):
    clock = Clock()
    ours, theirs = ledger(sessions, clock, "w1", lease=60), ledger(sessions, clock, "w2", lease=60)
    mine = ours.claim(arrival(uid=1, sha="1" * 64))
    held = theirs.claim(arrival(uid=2, sha="2" * 64))
    done = theirs.claim(arrival(uid=3, sha="3" * 64))
    settle(sessions, done.message_pk)
    assert mine.result is held.result is ClaimResult.PROCESS

    # Ours, and the ones nobody recorded yet, stay worth fetching, in the order asked.
    assert ours.unclaimed("INBOX", 7, [5, 3, 2, 1, 4]) == [5, 1, 4]
    clock.now += timedelta(seconds=61)  # their claim ran out: ours to take over
    assert ours.unclaimed("INBOX", 7, [1, 2, 3]) == [1, 2]
    assert ours.unclaimed("INBOX", 8, [1, 2, 3]) == [1, 2, 3]  # other UIDVALIDITY: other emails
