from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailflow.errors import TransportError
from mailflow.replies.outbox import Outbox, RetryPolicy
from mailflow.storage.database import make_engine, make_session_factory, migrate
from mailflow.storage.models import Message, Reply


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class RecordingTransport:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.failures: list[TransportError] = []
        self.delivered: dict[str, bool] = {}

    def send(self, envelope_from, recipients, message, message_id) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message_id)


class ConfirmingTransport(RecordingTransport):
    def was_delivered(self, message_id: str) -> bool | None:
        return self.delivered.get(message_id)


@pytest.fixture
def sessions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    yield make_session_factory(engine)
    engine.dispose()


def queue_reply(sessions, clock, key="k1") -> int:
    with sessions.begin() as session:
        message = Message(
            mailbox="INBOX",
            uidvalidity=1,
            uid=len(key),
            sha256="0" * 64,
            size=1,
            received_at=clock(),
            status="processed",
        )
        session.add(message)
        session.flush()
        reply = Reply(
            message_id=message.id,
            idempotency_key=key,
            rfc_message_id=f"<{key}@stad.gent>",
            to_address="r@example.org",
            subject="Re: x",
            language="nl",
            action="book",
            data=b"x",
            status="pending",
            attempts=0,
            created_at=clock(),
            next_attempt_at=clock(),
        )
        session.add(reply)
        session.flush()
        return reply.id


def outbox(sessions, transport, clock, max_attempts=3) -> Outbox:
    return Outbox(
        sessions,
        transport,
        envelope_from="migratie@stad.gent",
        worker_id="w1",
        clock=clock,
        retry=RetryPolicy(base=timedelta(seconds=10), max_attempts=max_attempts),
        lease=timedelta(seconds=60),
    )


def status(sessions, reply_id) -> str:
    with sessions() as session:
        return session.get(Reply, reply_id).status


def test_a_reply_is_sent_once_however_often_the_outbox_runs(sessions):
    clock, transport = Clock(), RecordingTransport()
    reply_id = queue_reply(sessions, clock)
    box = outbox(sessions, transport, clock)
    assert box.deliver_due().sent == 1
    assert box.deliver_due().sent == 0
    assert transport.sent == ["<k1@stad.gent>"]
    assert status(sessions, reply_id) == "sent"


def test_temporary_failure_is_retried_with_growing_delay(sessions):
    clock, transport = Clock(), RecordingTransport()
    transport.failures = [TransportError("451 later"), TransportError("451 later")]
    reply_id = queue_reply(sessions, clock)
    box = outbox(sessions, transport, clock, max_attempts=5)
    assert box.deliver_due().retried == 1
    assert box.deliver_due().sent == 0  # not due yet
    clock.now += timedelta(seconds=10)
    assert box.deliver_due().retried == 1
    clock.now += timedelta(seconds=10)
    assert box.deliver_due().sent == 0  # second delay is 20 s
    clock.now += timedelta(seconds=10)
    assert box.deliver_due().sent == 1
    assert status(sessions, reply_id) == "sent"


def test_permanent_failure_gives_up_at_once(sessions):
    clock, transport = Clock(), RecordingTransport()
    transport.failures = [TransportError("550 no such user", permanent=True)]
    reply_id = queue_reply(sessions, clock)
    assert outbox(sessions, transport, clock).deliver_due().failed == 1
    assert status(sessions, reply_id) == "failed"


def test_gives_up_after_max_attempts(sessions):
    clock, transport = Clock(), RecordingTransport()
    transport.failures = [TransportError("451")] * 3
    reply_id = queue_reply(sessions, clock)
    box = outbox(sessions, transport, clock, max_attempts=3)
    for _ in range(3):
        box.deliver_due()
        clock.now += timedelta(hours=2)
    assert status(sessions, reply_id) == "failed"
    assert transport.sent == []


def test_interrupted_send_is_not_repeated_blindly(sessions):
    clock, transport = Clock(), RecordingTransport()
    reply_id = queue_reply(sessions, clock)
    box = outbox(sessions, transport, clock)
    assert box._take(reply_id)  # a worker took it and died before recording the result
    assert box.deliver_due().sent == 0  # lease still running: nobody touches it
    clock.now += timedelta(seconds=61)
    report = box.deliver_due()
    assert report.unconfirmed == 1 and report.sent == 0
    assert status(sessions, reply_id) == "unconfirmed"
    assert transport.sent == []


@pytest.mark.parametrize(("delivered", "expected", "sends"), [(True, "sent", 0), (False, "sent", 1)])
def test_interrupted_send_resolved_by_a_transport_that_knows(sessions, delivered, expected, sends):
    clock, transport = Clock(), ConfirmingTransport()
    reply_id = queue_reply(sessions, clock)
    transport.delivered["<k1@stad.gent>"] = delivered
    box = outbox(sessions, transport, clock)
    assert box._take(reply_id)
    clock.now += timedelta(seconds=61)
    box.deliver_due()
    assert status(sessions, reply_id) == expected
    assert len(transport.sent) == sends


def test_a_reply_that_fails_for_good_puts_its_email_in_triage(sessions):
    clock, transport = Clock(), RecordingTransport()
    transport.failures = [TransportError("550 no such user", permanent=True)]
    reply_id = queue_reply(sessions, clock)
    outbox(sessions, transport, clock).deliver_due()
    with sessions() as session:
        reply = session.get(Reply, reply_id)
        message = session.get(Message, reply.message_id)
        assert message.status == "triage"
        [decision] = message.decisions
        assert decision.action == "triage" and decision.decided_by == "outbox"
        assert "reply not delivered" in decision.reasons[0]
