from __future__ import annotations

import gc
import itertools
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from mailflow.audit import GENESIS, verify_chain
from mailflow.storage.database import alembic_config, make_engine, make_session_factory, migrate
from mailflow.storage.models import AuditHead, Event

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    yield engine
    engine.dispose()


def add_events(sessions, count: int, per_transaction: int = 3) -> None:
    written = 0
    while written < count:
        with sessions.begin() as session:
            for _ in range(min(per_transaction, count - written)):
                session.add(Event(at=AT, actor="test", kind=f"k{written}", detail={"n": written}))
                written += 1


def test_events_are_chained_in_the_order_written(engine):
    sessions = make_session_factory(engine)
    add_events(sessions, 10)
    with sessions() as session:
        events = session.query(Event).order_by(Event.seq).all()
        assert [e.seq for e in events] == list(range(1, 11))
        assert [e.kind for e in events] == [f"k{i}" for i in range(10)]
        assert events[0].prev_hash == GENESIS
        assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(events))
        assert session.get(AuditHead, 1).hash == events[-1].hash
    result = verify_chain(sessions)
    assert result.ok and result.checked == 10 and result.head_hash == events[-1].hash


def test_the_log_refuses_updates_and_deletes(engine):
    sessions = make_session_factory(engine)
    add_events(sessions, 2)
    for statement in ("UPDATE events SET kind = 'x'", "DELETE FROM events"):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))


def tamper(engine, statement: str) -> None:
    """What someone with write access to the database file could do."""
    with engine.begin() as connection:
        connection.execute(text("DROP TRIGGER IF EXISTS events_no_update"))
        connection.execute(text("DROP TRIGGER IF EXISTS events_no_delete"))
        connection.execute(text(statement))


def test_one_altered_event_is_named(engine):
    sessions = make_session_factory(engine)
    add_events(sessions, 8)
    tamper(engine, "UPDATE events SET detail = '{\"n\": 99}' WHERE seq = 5")
    result = verify_chain(sessions)
    assert not result.ok
    assert result.broken_seq == 5
    assert "altered" in result.problem


def test_a_removed_event_is_named(engine):
    sessions = make_session_factory(engine)
    add_events(sessions, 8)
    tamper(engine, "DELETE FROM events WHERE seq = 3")
    result = verify_chain(sessions)
    assert not result.ok and result.broken_seq == 4 and "missing" in result.problem


def test_a_removed_tail_is_noticed_by_the_head(engine):
    sessions = make_session_factory(engine)
    add_events(sessions, 8)
    tamper(engine, "DELETE FROM events WHERE seq = 8")
    result = verify_chain(sessions)
    assert not result.ok and "head" in result.problem


def test_migration_chains_events_written_before_the_chain_existed(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    command.upgrade(alembic_config(url), "0001")
    engine = make_engine(url)
    with engine.begin() as connection:
        for _ in range(3):
            connection.execute(
                text("INSERT INTO events (at, actor, kind, detail) VALUES (:at, 'old', 'k', '{}')"),
                {"at": "2026-03-02 09:00:00.000000"},
            )
    migrate(engine)
    sessions = make_session_factory(engine)
    add_events(sessions, 2)
    result = verify_chain(sessions)
    assert result.ok and result.checked == 5
    engine.dispose()


def test_every_new_session_factory_chains_even_where_a_collected_one_lived(engine):
    # A factory is often created and dropped (one per test, per command); one born where a collected
    # one lived must still chain, or its events stay outside the chain.
    for _ in range(30):
        sessions = make_session_factory(engine)
        add_events(sessions, 1)
        del sessions
        gc.collect()
    with make_session_factory(engine)() as session:
        assert session.scalar(select(func.count()).where(Event.seq.is_(None))) == 0
