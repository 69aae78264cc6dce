"""The pure parts of surviving server faults: a dead worker's claims, an unconfirmed reply, a full disk, an
email expunged before it was fetched, a watched mailbox that disappeared."""

from __future__ import annotations

import errno
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from mailflow.adapters.fakes import FakeMailbox
from mailflow.domain import Status
from mailflow.errors import MailboxMissingError, StorageError, TransportError
from mailflow.ingest import Ingestor
from mailflow.operations.heartbeat import Heartbeat, Watchdog
from mailflow.replies.outbox import DeliveryReport, Outbox, RetryPolicy
from mailflow.runner import Worker
from mailflow.storage.database import make_engine, make_session_factory, migrate
from mailflow.storage.ledger import Arrival, ClaimResult, Ledger
from mailflow.storage.models import Message, Reply
from tests.unit.test_outbox import Clock, RecordingTransport, queue_reply

STALE = timedelta(seconds=30)


@pytest.fixture
def sessions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    yield make_session_factory(engine)
    engine.dispose()


def arrival(uid: int) -> Arrival:
    return Arrival("INBOX", 7, uid, f"{uid:064x}", 100, f"<m{uid}@x>", "r@example.org", "subject")


def ledger(sessions, clock, worker_id: str) -> Ledger:
    return Ledger(sessions, worker_id=worker_id, lease=timedelta(minutes=5), clock=clock, stale_after=STALE)


def beat(sessions, clock, worker_id: str) -> None:
    Heartbeat(sessions, worker_id, clock=clock, host="h").beat()


# A dead worker's claims


def test_a_claim_whose_worker_stopped_beating_is_taken_before_its_lease_ends(sessions):
    clock = Clock()
    dead, other = ledger(sessions, clock, "w-dead"), ledger(sessions, clock, "w-other")
    beat(sessions, clock, "w-dead")
    assert dead.claim(arrival(1)).result is ClaimResult.PROCESS

    clock.now += STALE - timedelta(seconds=1)  # its heartbeat is still recent: the claim is its own
    assert other.claim(arrival(1)).result is ClaimResult.BUSY
    [held] = other.known("INBOX", 7, [1]).values()
    assert held.held_by_another and held.holder == "w-dead"
    assert held.held_until == datetime(2026, 3, 2, 9, 5, tzinfo=UTC)
    assert other.unclaimed("INBOX", 7, [1]) == []

    clock.now += timedelta(seconds=2)  # no beat for longer than STALE, though the lease runs 4 more minutes
    assert not other.known("INBOX", 7, [1])[1].held_by_another
    assert other.unclaimed("INBOX", 7, [1]) == [1]
    assert other.claim(arrival(1)).result is ClaimResult.PROCESS


def test_a_worker_that_keeps_beating_keeps_its_claims(sessions):
    clock = Clock()
    alive, other = ledger(sessions, clock, "w-alive"), ledger(sessions, clock, "w-other")
    alive.claim(arrival(1))
    for _ in range(5):
        beat(sessions, clock, "w-alive")
        clock.now += timedelta(seconds=20)
        assert other.claim(arrival(1)).result is ClaimResult.BUSY


def test_a_worker_without_heartbeat_keeps_its_claim_until_the_lease_ends(sessions):
    """``poll-once`` writes no heartbeat: only its lease protects its claims."""
    clock = Clock()
    once, other = ledger(sessions, clock, "w-once"), ledger(sessions, clock, "w-other")
    once.claim(arrival(1))
    clock.now += timedelta(minutes=4)
    assert other.claim(arrival(1)).result is ClaimResult.BUSY
    clock.now += timedelta(minutes=1, seconds=1)
    assert other.claim(arrival(1)).result is ClaimResult.PROCESS


def test_a_restarted_worker_of_the_same_name_resumes_its_claims_at_once(sessions):
    clock = Clock()
    beat(sessions, clock, "counter-1")
    ledger(sessions, clock, "counter-1").claim(arrival(1))
    clock.now += timedelta(seconds=1)
    restarted = ledger(sessions, clock, "counter-1")  # a new process, the same WORKER_NAME
    assert restarted.unclaimed("INBOX", 7, [1]) == [1]
    assert restarted.claim(arrival(1)).result is ClaimResult.PROCESS


def test_a_settled_email_is_moved_by_its_worker_unless_that_worker_stopped_beating(sessions):
    clock = Clock()
    settler, other = ledger(sessions, clock, "w-settler"), ledger(sessions, clock, "w-other")
    beat(sessions, clock, "w-settler")
    pk = settler.claim(arrival(1)).message_pk
    with sessions.begin() as session:
        session.get_one(Message, pk).status = Status.PROCESSED
    assert other.take_for_moving([pk]) == set()  # the invariant of take_for_moving stays
    clock.now += STALE + timedelta(seconds=1)
    assert other.take_for_moving([pk]) == {pk}


# Replies whose fate is unknown


def test_a_reply_cut_off_after_data_is_possibly_delivered_and_never_resent(sessions):
    clock, transport = Clock(), RecordingTransport()
    transport.failures = [TransportError("no answer after the whole message was sent", ambiguous=True)]
    reply_id = queue_reply(sessions, clock)
    retry = RetryPolicy(base=timedelta(seconds=1))
    box = Outbox(sessions, transport, envelope_from="a@b", worker_id="w", clock=clock, retry=retry)

    assert box.deliver_due() == DeliveryReport(unconfirmed=1)
    clock.now += timedelta(days=1)
    assert box.deliver_due() == DeliveryReport()
    assert transport.sent == []
    with sessions() as session:
        reply = session.get_one(Reply, reply_id)
        message = session.get_one(Message, reply.message_id)
        assert reply.status == "unconfirmed"
        assert message.status == "triage"
        assert message.decisions[-1].reasons[0].startswith("reply possibly delivered")


def test_a_transient_refusal_is_retried_and_sent_once(sessions):
    clock, transport = Clock(), RecordingTransport()
    transport.failures = [TransportError("451 try later"), TransportError("sending failed: timed out")]
    queue_reply(sessions, clock)
    box = Outbox(
        sessions,
        transport,
        envelope_from="a@b",
        worker_id="w",
        clock=clock,
        retry=RetryPolicy(base=timedelta(seconds=2)),
    )
    assert box.deliver_due().retried == 1
    assert box.deliver_due() == DeliveryReport()  # not due yet: it backs off
    clock.now += timedelta(seconds=2)
    assert box.deliver_due().retried == 1
    clock.now += timedelta(seconds=4)
    assert box.deliver_due().sent == 1
    assert len(transport.sent) == 1


# A full disk, a vanished email


class FullDisk:
    def put(self, data: bytes) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")


class EveryoneWins:
    """An analyser is never reached in these tests: the email stops before or is never fetched."""

    def __call__(self, raw: bytes):
        raise AssertionError("analysed")


def ingestor(sessions, mailbox, blobs) -> Ingestor:
    return Ingestor(
        mailbox=mailbox,
        ledger=ledger(sessions, Clock(), "w"),
        sessions=sessions,
        blobs=blobs,
        analyse=EveryoneWins(),
        actor=None,  # type: ignore[arg-type]
        clock=Clock(),
    )


def test_a_full_disk_leaves_the_email_in_the_inbox_and_the_ledger_untouched(sessions):
    mailbox = FakeMailbox()
    mailbox.append("INBOX", b"Subject: x\r\n\r\nbody\r\n")

    with pytest.raises(StorageError, match=r"\(No space left on device\); it stays in the mailbox"):
        ingestor(sessions, mailbox, FullDisk()).run_once()

    assert len(mailbox.messages("INBOX")) == 1 and mailbox.moves == []
    with sessions() as session:
        assert session.scalar(select(func.count(Message.id))) == 0


class ExpungedByAnother(FakeMailbox):
    """Another client expunges the first listed email between our SEARCH and our FETCH."""

    def list_uids(self) -> list[int]:
        uids = super().list_uids()
        self.folders[self.folder].pop(uids[0])
        return uids


def test_an_email_expunged_before_its_fetch_is_counted_not_a_failed_cycle(sessions, caplog):
    mailbox = ExpungedByAnother()
    mailbox.append("INBOX", b"Subject: x\r\n\r\nbody\r\n")
    caplog.set_level(logging.INFO, logger="mailflow.ingest")

    report = ingestor(sessions, mailbox, FullDisk()).run_once()

    assert report.vanished == 1 and report.processed == 0
    assert "expunged by another client before we fetched them (UIDs 1)" in caplog.text


# A watched mailbox that disappeared


class MissingMailbox(FakeMailbox):
    def uidvalidity(self) -> int:
        raise MailboxMissingError("the watched folder of fake:INBOX does not exist")

    def wait_for_new_mail(self, timeout: float) -> bool:
        raise MailboxMissingError("the watched folder of fake:INBOX does not exist")


class Quiet:
    def deliver_due(self) -> DeliveryReport:
        return DeliveryReport()


def test_a_missing_mailbox_is_alerted_once_and_looked_for_again_without_creating_it(sessions, caplog):
    alerts: list[tuple[str, str]] = []
    clock = Clock()
    heartbeat = Heartbeat(sessions, "w", clock=clock, host="h")
    watchdog = Watchdog(
        heartbeat, silence=timedelta(hours=1), clock=clock, notify=lambda s, t: alerts.append((s, t))
    )
    cycles: list[float] = []

    def make_ingestor(mailbox, _stop):
        cycles.append(time.monotonic())
        return Ingestor(
            mailbox=mailbox,
            ledger=ledger(sessions, clock, "w"),
            sessions=sessions,
            blobs=FullDisk(),
            analyse=EveryoneWins(),
            actor=None,  # type: ignore[arg-type]
            clock=clock,
        )

    worker = Worker(
        open_mailbox=MissingMailbox,
        make_ingestor=make_ingestor,
        outbox=Quiet(),  # type: ignore[arg-type]
        poll_interval=0.3,
        outbox_interval=60,
        idle_slice=0.1,
        heartbeat=heartbeat,
        watchdog=watchdog,
    )
    caplog.set_level(logging.WARNING)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    time.sleep(2)
    worker.stop()
    thread.join(timeout=10)

    assert len(cycles) >= 3, "it keeps looking at each poll"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith("mailbox missing: the watched folder of fake:INBOX")
    assert "not creating it" in errors[0]
    assert [subject for subject, _ in alerts] == ["mailflow: the watched mailbox is missing"]


# A send cut short by the death of its worker


def taken_by(sessions, clock, worker_id: str, **options) -> tuple[Outbox, int]:
    reply_id = queue_reply(sessions, clock)
    box = Outbox(
        sessions,
        RecordingTransport(),
        envelope_from="a@b",
        worker_id=worker_id,
        clock=clock,
        retry=RetryPolicy(),
        lease=timedelta(minutes=2),
        **options,
    )
    assert box._take(reply_id)
    return box, reply_id


def reply_status(sessions, reply_id: int) -> str:
    with sessions() as session:
        return session.get_one(Reply, reply_id).status


def test_a_send_of_a_worker_whose_heartbeat_stopped_is_possibly_delivered_within_the_lease(sessions):
    clock = Clock()
    beat(sessions, clock, "w-dead")
    _dead, reply_id = taken_by(sessions, clock, "w-dead")
    other = Outbox(
        sessions, RecordingTransport(), envelope_from="a@b", worker_id="w2", clock=clock, retry=RetryPolicy(),
        stale_after=STALE,
    )  # fmt: skip
    clock.now += STALE - timedelta(seconds=1)
    assert other.deliver_due().unconfirmed == 0 and reply_status(sessions, reply_id) == "sending"
    clock.now += timedelta(seconds=2)  # the lease has more than a minute to run
    assert other.deliver_due().unconfirmed == 1
    assert reply_status(sessions, reply_id) == "unconfirmed"
    assert other.transport.sent == []  # type: ignore[attr-defined]


def test_a_worker_restarted_under_its_name_settles_its_own_cut_short_send_at_once(sessions):
    clock = Clock()
    _before, reply_id = taken_by(sessions, clock, "counter-1")
    clock.now += timedelta(seconds=3)
    restarted = Outbox(
        sessions, RecordingTransport(), envelope_from="a@b", worker_id="counter-1", clock=clock,
        retry=RetryPolicy(), lease=timedelta(minutes=2),
    )  # fmt: skip
    assert restarted.deliver_due().unconfirmed == 1
    with sessions() as session:
        reply = session.get_one(Reply, reply_id)
        assert reply.status == "unconfirmed"
        reasons = session.get_one(Message, reply.message_id).decisions[-1].reasons
        assert reasons == ["reply possibly delivered: sending was interrupted"]


def test_a_send_in_progress_in_this_very_process_is_left_alone(sessions):
    clock = Clock()
    box, reply_id = taken_by(sessions, clock, "counter-1")
    clock.now += timedelta(seconds=3)
    assert box.deliver_due().unconfirmed == 0 and reply_status(sessions, reply_id) == "sending"
