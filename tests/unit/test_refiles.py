"""Refiling: which filed emails changed outcome, who moves each, where to look, and what is recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from mailflow.adapters.imap_protocol import search_criteria
from mailflow.domain import Status
from mailflow.ingest import places_to_look
from mailflow.ports import Fingerprint
from mailflow.storage.database import make_engine, make_session_factory, migrate
from mailflow.storage.models import Event, Message
from mailflow.storage.refiles import Refiles
from tests.unit.test_ledger import Clock, arrival, ledger


@pytest.fixture
def sessions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    yield make_session_factory(engine)
    engine.dispose()


def filed(sessions, clock, status: Status, folder: str, uid: int = 1) -> int:
    """An email whose outcome is ``status`` and which the worker filed in ``folder``."""
    book = ledger(sessions, clock)
    pk = book.claim(arrival(uid=uid, sha=f"{uid:064x}")).message_pk
    with sessions.begin() as session:
        row = session.get_one(Message, pk)
        row.status, row.lease_owner, row.lease_until = status, None, None
    book.mark_moved([pk], folder)
    return pk


def decide(sessions, pk: int, status: Status) -> None:
    with sessions.begin() as session:
        session.get_one(Message, pk).status = status


def test_places_to_look_start_where_it_was_filed_then_the_target_then_the_rest():
    assert places_to_look("Triage", "Processed") == ["Triage", "Processed", "Ignored", "Quarantine"]
    assert places_to_look("Quarantine", "Triage") == ["Quarantine", "Triage", "Processed", "Ignored"]


def test_search_criteria_try_the_message_id_then_the_exact_size():
    assert search_criteria(Fingerprint("0" * 64, 1200, "<a@b>")) == [
        ["NOT", "DELETED", "HEADER", "Message-ID", "<a@b>"],
        ["NOT", "DELETED", "LARGER", 1199, "SMALLER", 1201],
    ]
    # No Message-ID, or one a search cannot carry: the size alone, and the hash decides.
    for unusable in (None, "", "<é@b>", "<a\r\n b@c>"):
        assert search_criteria(Fingerprint("0" * 64, 1200, unusable)) == [
            ["NOT", "DELETED", "LARGER", 1199, "SMALLER", 1201]
        ]


def test_misfiled_lists_filed_emails_whose_outcome_changed(sessions):
    clock = Clock()
    decided = filed(sessions, clock, Status.TRIAGE, "Triage", uid=1)
    filed(sessions, clock, Status.TRIAGE, "Triage", uid=2)  # still waiting for a person
    retried = filed(sessions, clock, Status.QUARANTINED, "Quarantine", uid=3)
    not_yet_moved = ledger(sessions, clock).claim(arrival(uid=4, sha="4" * 64)).message_pk
    decide(sessions, decided, Status.PROCESSED)
    decide(sessions, retried, Status.TRIAGE)
    decide(sessions, not_yet_moved, Status.PROCESSED)  # still in the inbox: ingest moves it

    found = Refiles(ledger(sessions, clock)).misfiled(limit=10)

    assert [(m.message_pk, m.folder, m.target) for m in found] == [
        (decided, "Triage", "Processed"),
        (retried, "Quarantine", "Triage"),
    ]
    assert found[0].email == Fingerprint(f"{1:064x}", 100, "<m1@x>")


def test_one_worker_refiles_an_email_and_its_claim_expires(sessions):
    clock = Clock()
    pk = filed(sessions, clock, Status.TRIAGE, "Triage")
    decide(sessions, pk, Status.PROCESSED)
    first, second = Refiles(ledger(sessions, clock, "w1")), Refiles(ledger(sessions, clock, "w2"))
    [item] = first.misfiled(limit=10)

    assert first.claim(item)
    assert not second.claim(item)
    assert second.misfiled(limit=10) == []
    clock.now += timedelta(seconds=61)  # w1 died holding it
    assert second.misfiled(limit=10) == [item]
    assert second.claim(item)
    first.record(item, "Triage")  # back from the dead: its record no longer counts
    with sessions() as session:
        assert session.get_one(Message, pk).folder == "Triage"


def test_a_claim_on_a_stale_view_is_refused(sessions):
    clock = Clock()
    pk = filed(sessions, clock, Status.QUARANTINED, "Quarantine")
    decide(sessions, pk, Status.TRIAGE)
    refiles = Refiles(ledger(sessions, clock))
    [item] = refiles.misfiled(limit=10)
    decide(sessions, pk, Status.PROCESSED)  # its outcome changed again meanwhile

    assert not refiles.claim(item)
    [fresh] = refiles.misfiled(limit=10)
    assert fresh.target == "Processed" and refiles.claim(fresh)


def test_record_files_the_email_in_its_target_once(sessions):
    clock = Clock()
    pk = filed(sessions, clock, Status.TRIAGE, "Triage")
    decide(sessions, pk, Status.PROCESSED)
    refiles = Refiles(ledger(sessions, clock))
    [item] = refiles.misfiled(limit=10)
    refiles.claim(item)
    clock.now += timedelta(seconds=5)

    refiles.record(item, "Triage")
    refiles.record(item, "Triage")  # a repeat, without a claim, changes nothing

    with sessions() as session:
        row = session.get_one(Message, pk)
        assert (row.folder, row.moved_at, row.lease_owner) == ("Processed", clock.now, None)
        moves = session.scalars(select(Event.detail).where(Event.kind == "moved").order_by(Event.id)).all()
    assert moves == [{"folder": "Triage"}, {"folder": "Processed", "from": "Triage"}]
    assert refiles.misfiled(limit=10) == []


def test_an_email_found_in_its_target_already_was_moved_before_a_crash(sessions):
    clock = Clock()
    pk = filed(sessions, clock, Status.QUARANTINED, "Quarantine")
    decide(sessions, pk, Status.PROCESSED)
    refiles = Refiles(ledger(sessions, clock))
    [item] = refiles.misfiled(limit=10)
    refiles.claim(item)

    refiles.record(item, "Processed")

    with sessions() as session:
        assert session.get_one(Message, pk).folder == "Processed"
        last = session.scalars(select(Event).where(Event.message_id == pk).order_by(Event.id.desc())).first()
    assert (last.kind, last.detail) == ("moved", {"folder": "Processed", "from": "Quarantine"})


def test_an_email_in_no_folder_is_recorded_lost_and_not_looked_for_again(sessions):
    clock = Clock()
    pk = filed(sessions, clock, Status.TRIAGE, "Triage")
    decide(sessions, pk, Status.IGNORED)
    refiles = Refiles(ledger(sessions, clock))
    [item] = refiles.misfiled(limit=10)
    refiles.claim(item)

    refiles.record(item, None)

    with sessions() as session:
        row = session.get_one(Message, pk)
        assert (row.status, row.folder, row.lease_owner) == ("ignored", None, None)
        last = session.scalars(select(Event).where(Event.message_id == pk).order_by(Event.id.desc())).first()
    assert (last.kind, last.detail) == ("lost", {"folder": "Triage"})
    assert refiles.misfiled(limit=10) == []
