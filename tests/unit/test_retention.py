"""Retention: what the schedule erases is gone from the database, the blobs, the search index and the
mailbox folders; tombstones and the event chain remain, and tampering with either is named."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select, text

from mailflow.adapters.fakes import FakeMailbox
from mailflow.audit import ERASED, verify_chain
from mailflow.bootstrap import App
from mailflow.processing import reprocess_quarantined
from mailflow.retention.erase import Eraser, LegalHoldError, erase_messages
from mailflow.retention.holds import lift_legal_hold, set_legal_hold
from mailflow.retention.job import apply, plan
from mailflow.retention.schedule import Schedule
from mailflow.settings import Settings
from mailflow.storage.models import AttachmentRecord, Case, DecisionRecord, Event, Message, Reply
from mailflow.web.search import index_pending
from tests.retention_mail import ALL, EXTENSION, LOST_CARD, PASSPORT, SPAM, UNCLEAR, Clock

PASSPORT_SHA = hashlib.sha256(PASSPORT).hexdigest()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def app(tmp_path, clock):
    app = App(Settings(data_dir=tmp_path, use_model=False), clock=clock)
    yield app
    app.close()


def received(app: App, mailbox: FakeMailbox, *emails: bytes) -> dict[bytes, int]:
    for raw in emails:
        mailbox.append("INBOX", raw)
    app.make_ingestor(mailbox).run_once()
    index_pending(app.sessions, app.blobs)
    with app.sessions() as session:
        pks = {row.sha256: row.id for row in session.scalars(select(Message))}
    return {raw: pks[hashlib.sha256(raw).hexdigest()] for raw in emails}


def run(app: App, mailbox: FakeMailbox | None):
    return apply(app.sessions, app.blobs, Schedule.from_settings(app.settings), app.clock, mailbox=mailbox)


def indexed(app: App) -> set[int]:
    with app.sessions() as session:
        return set(session.scalars(text("SELECT rowid FROM message_fts")).all())


def close_case(app: App, pk: int) -> str:
    with app.sessions.begin() as session:
        case = session.get_one(Message, pk).case
        case.close("sam", app.clock())
        return case.reference


def test_the_schedule_erases_what_is_due_and_leaves_tombstones(app, clock):
    mailbox = FakeMailbox()
    pk = received(app, mailbox, *ALL)
    assert indexed(app) == set(pk.values())
    spam_sha = hashlib.sha256(SPAM).hexdigest()
    assert app.blobs.exists(spam_sha) and mailbox.messages("Ignored") == [SPAM]

    clock.advance(29)
    assert run(app, mailbox).erased == {}  # nothing is due yet

    clock.advance(2)
    report = run(app, mailbox)
    assert report.erased == {"machine": 1} and report.mailbox_deleted == 1
    assert mailbox.messages("Ignored") == []  # gone from its folder
    assert not app.blobs.exists(spam_sha)
    assert indexed(app) == {pk[LOST_CARD], pk[EXTENSION], pk[UNCLEAR]}
    with app.sessions() as session:
        spam = session.get_one(Message, pk[SPAM])
        assert (spam.from_address, spam.subject, spam.message_id) == (None, None, None)
        assert spam.erased_rule == "machine" and spam.erased_category == "spam" and spam.status == "ignored"
        assert spam.erased_at == clock.now and spam.sha256 == spam_sha and spam.folder is None
        assert session.scalars(select(DecisionRecord).where(DecisionRecord.message_id == spam.id)).all() == []
        events = session.scalars(select(Event).where(Event.message_id == spam.id).order_by(Event.seq)).all()
        kinds = [(e.kind, e.detail == ERASED) for e in events]
        assert ("stored", True) in kinds and ("classified", True) in kinds
        assert kinds[-2:] == [("erased", False), ("deleted_from_mailbox", False)]
        assert events[-2].detail["rule"] == "machine"
    index_pending(app.sessions, app.blobs)
    assert pk[SPAM] not in indexed(app)  # the indexer does not bring it back
    result = verify_chain(app.sessions)
    assert result.ok and result.erased >= 4

    # Two years on: the answered email without a case goes; its passport stays, the open case holds it.
    clock.advance(731)
    report = run(app, mailbox)
    assert report.erased == {"processed": 1}
    assert mailbox.messages("Processed") == [EXTENSION]
    assert not app.blobs.exists(hashlib.sha256(LOST_CARD).hexdigest())
    assert app.blobs.exists(PASSPORT_SHA)  # shared with the case's email, which is kept
    with app.sessions() as session:
        assert session.scalars(select(Reply).where(Reply.message_id == pk[LOST_CARD])).all() == []
        assert (
            session.scalars(
                select(AttachmentRecord).where(AttachmentRecord.message_id == pk[LOST_CARD])
            ).all()
            == []
        )

    # The case closes; five years later it goes, with its email and the last copy of the passport.
    reference = close_case(app, pk[EXTENSION])
    clock.advance(5 * 365 - 1)
    assert run(app, mailbox).erased == {}
    clock.advance(2)
    report = run(app, mailbox)
    assert report.erased == {"closed_case": 1}
    assert mailbox.messages("Processed") == [] and not app.blobs.exists(PASSPORT_SHA)
    with app.sessions() as session:
        case = session.scalar(select(Case).where(Case.reference == reference))
        assert case.resident_address == "" and case.erased_at == clock.now and case.status == "closed"
        assert session.get_one(Message, pk[EXTENSION]).erased_rule == "closed_case"
        # Triage waits for a person, however long.
        assert session.get_one(Message, pk[UNCLEAR]).erased_at is None
    assert mailbox.messages("Triage") == [UNCLEAR]
    assert indexed(app) == {pk[UNCLEAR]}
    assert verify_chain(app.sessions).ok


def tamper(app: App, statement: str) -> None:
    with app.engine.begin() as connection:
        connection.execute(text("DROP TRIGGER IF EXISTS events_no_update"))
        connection.execute(text("DROP TRIGGER IF EXISTS events_no_delete"))
        connection.execute(text(statement))


def erased_spam(app: App, clock: Clock) -> tuple[int, Event]:
    pk = received(app, FakeMailbox(), SPAM)[SPAM]
    clock.advance(31)
    run(app, None)
    with app.sessions() as session:
        entry = session.scalar(select(Event).where(Event.kind == "erased", Event.message_id == pk))
    return pk, entry


def test_an_altered_tombstone_is_named(app, clock):
    pk, entry = erased_spam(app, clock)
    tamper(app, f"UPDATE messages SET erased_category = 'card_lost' WHERE id = {pk}")
    result = verify_chain(app.sessions)
    assert not result.ok and result.broken_seq == entry.seq
    assert f"tombstone of message {pk}" in result.problem


def test_an_altered_erased_entry_is_named(app, clock):
    pk, _entry = erased_spam(app, clock)
    with app.sessions() as session:
        stored = session.scalar(select(Event).where(Event.message_id == pk, Event.kind == "stored"))
    tamper(app, f"UPDATE events SET actor = 'someone' WHERE id = {stored.id}")
    result = verify_chain(app.sessions)
    assert not result.ok and result.broken_seq == stored.seq and "altered" in result.problem


def test_a_removed_deletion_entry_is_named(app, clock):
    _pk, entry = erased_spam(app, clock)
    tamper(app, f"DELETE FROM events WHERE id = {entry.id}")
    result = verify_chain(app.sessions)
    assert not result.ok and f"entry {entry.seq} is missing" in result.problem


def test_a_payload_erased_without_a_deletion_entry_is_named(app, clock):
    pk = received(app, FakeMailbox(), SPAM)[SPAM]
    with app.sessions() as session:
        stored = session.scalar(select(Event).where(Event.message_id == pk, Event.kind == "stored"))
    tamper(
        app,
        f"UPDATE events SET detail = '{{\"erased\": true}}', erased_at = '2026-03-03' WHERE id = {stored.id}",
    )
    result = verify_chain(app.sessions)
    assert not result.ok and result.broken_seq == stored.seq and "no deletion entry" in result.problem


def test_the_log_still_refuses_any_other_change(app, clock):
    _pk, entry = erased_spam(app, clock)
    from sqlalchemy.exc import DatabaseError

    for statement in (
        f"UPDATE events SET kind = 'x' WHERE id = {entry.id}",
        # the entry before the deletion entry is erased already: once only
        f"UPDATE events SET detail = '{{}}', erased_at = '2026-01-01' WHERE id = {entry.id - 1}",
        f"DELETE FROM events WHERE id = {entry.id}",
    ):
        with pytest.raises(DatabaseError, match="append-only"), app.engine.begin() as connection:
            connection.execute(text(statement))


def test_a_legal_hold_keeps_a_case_and_refuses_its_erasure(app, clock):
    mailbox = FakeMailbox()
    pk = received(app, mailbox, EXTENSION)[EXTENSION]
    reference = close_case(app, pk)
    with app.sessions.begin() as session:
        assert set_legal_hold(session, reference, actor="admin", reason="appeal at the CALL", now=clock())
    clock.advance(10 * 365)
    report = run(app, mailbox)
    assert report.erased == {} and report.plan.held_cases == [reference]
    assert mailbox.messages("Processed") == [EXTENSION] and app.blobs.exists(PASSPORT_SHA)
    with pytest.raises(LegalHoldError, match=reference):
        Eraser(app.sessions, app.blobs, clock).messages([pk], reason="art. 17 request", actor="admin")
    with app.sessions() as session:
        assert session.get_one(Message, pk).erased_at is None  # the refusal changed nothing

    with app.sessions.begin() as session:
        assert lift_legal_hold(session, reference, actor="admin", reason="appeal decided", now=clock())
    assert run(app, mailbox).erased == {"closed_case": 1}
    with app.sessions() as session:
        kinds = session.scalars(
            select(Event.kind).where(Event.message_id.is_(None)).order_by(Event.seq)
        ).all()
    assert kinds.count("legal_hold_set") == 1 and kinds.count("legal_hold_lifted") == 1
    assert verify_chain(app.sessions).ok


def test_an_erasure_request_erases_at_once_and_names_who_asked(app, clock):
    pk = received(app, FakeMailbox(), LOST_CARD)[LOST_CARD]
    erased = Eraser(app.sessions, app.blobs, clock).messages([pk], reason="art. 17 request R-12", actor="sam")
    assert erased.messages == [pk]
    with app.sessions() as session:
        row = session.get_one(Message, pk)
        assert row.erased_rule == "request" and row.subject is None
        entry = session.scalar(select(Event).where(Event.kind == "erased", Event.message_id == pk))
        assert entry.actor == "sam" and entry.detail["reason"] == "art. 17 request R-12"
    assert not app.blobs.exists(PASSPORT_SHA)
    with app.sessions.begin() as session:  # a second time: nothing left to do
        assert erase_messages(session, [pk], reason="again", actor="sam", now=clock()).messages == []
    assert verify_chain(app.sessions).ok


def test_a_dry_run_plan_counts_per_rule_and_changes_nothing(app, clock):
    received(app, FakeMailbox(), *ALL)
    clock.advance(800)
    with app.sessions() as session:
        due = plan(session, Schedule.from_settings(app.settings), clock())
    assert due.counts() == {"machine": 1, "processed": 1}
    with app.sessions() as session:
        assert session.scalar(select(Message.id).where(Message.erased_at.is_not(None))) is None


def test_zero_days_keeps_for_ever(tmp_path, clock):
    app = App(Settings(data_dir=tmp_path, use_model=False, retention_machine_days=0), clock=clock)
    received(app, FakeMailbox(), SPAM)
    clock.advance(10_000)
    assert run(app, None).erased == {}
    app.close()


def test_a_subject_is_found_by_address_or_national_number_exported_and_erased(app, clock, tmp_path):
    from mailflow.privacy.subject_export import write_export
    from mailflow.privacy.subjects import Subject, find_subject
    from mailflow.stages.limits import Limits
    from mailflow.stages.parse import parse
    from tests.retention_mail import email

    def text_of(raw: bytes) -> str:
        parsed = parse(raw, Limits())
        return f"{parsed.subject}\n{parsed.text}"

    def found(session, *identifiers: str):
        return find_subject(session, Subject.parse(identifiers), key="k", read=app.blobs.get, text_of=text_of)

    with_number = email(
        "Amina <amina@example.org>",
        "Mijn gegevens",
        "Mijn rijksregisternummer is 85.07.30-033.28.",
        "<nrn@x>",
    )
    pk = received(app, FakeMailbox(), *ALL, with_number)
    with app.sessions() as session:
        jan = found(session, "Jan@Example.org")
        assert sorted(jan.message_ids) == sorted([pk[EXTENSION], pk[UNCLEAR]]) and len(jan.cases) == 1
        by_number = found(session, "85073003328")
        assert by_number.message_ids == {pk[with_number]} and by_number.cases == []
        assert found(session, "85073003427").message_ids == set()  # another valid number
        write_export(jan, tmp_path / "export", app.blobs.get, generated_at=clock())
        case_ids, message_ids = [c.id for c in jan.cases], sorted(jan.message_ids)
    data = json.loads((tmp_path / "export" / "data.json").read_text())
    assert pk[EXTENSION] in [e["id"] for e in data["emails"]]
    assert (tmp_path / "export" / f"emails/email-{pk[EXTENSION]}.eml").read_bytes() == EXTENSION

    eraser = Eraser(app.sessions, app.blobs, clock)
    for case_id in case_ids:
        eraser.case(case_id, reason="art. 17 request R-7", actor="sam")
    eraser.messages(message_ids, reason="art. 17 request R-7", actor="sam")
    with app.sessions() as session:
        again = found(session, "jan@example.org")
        assert again.message_ids == set() and again.cases == []
    assert verify_chain(app.sessions).ok


def test_a_request_is_all_or_nothing_and_spares_the_emails_it_is_told_to(app, clock):
    pk = received(app, FakeMailbox(), LOST_CARD, SPAM, EXTENSION)
    with app.sessions.begin() as session:
        case = session.get_one(Message, pk[EXTENSION]).case
        case_id, reference = case.id, case.reference
        session.get_one(Message, pk[LOST_CARD]).case_id = case_id  # another sender's email in the case
        assert set_legal_hold(session, reference, actor="ada", reason="appeal", now=clock())
    eraser = Eraser(app.sessions, app.blobs, clock)
    with pytest.raises(LegalHoldError, match=reference):  # the email outside the case comes first
        eraser.request([pk[SPAM]], [case_id], reason="art. 17", actor="ada", spare={pk[LOST_CARD]})
    with app.sessions() as session:
        assert session.scalars(select(Message.id).where(Message.erased_at.is_not(None))).all() == []
    with app.sessions.begin() as session:
        assert lift_legal_hold(session, reference, actor="ada", reason="decided", now=clock())
    erased = eraser.request([pk[SPAM]], [case_id], reason="art. 17", actor="ada", spare={pk[LOST_CARD]})
    assert sorted(erased.messages) == sorted([pk[SPAM], pk[EXTENSION]]) and erased.cases == [reference]
    assert erased.files == 2 and app.blobs.exists(PASSPORT_SHA)  # the passport the kept email shares stays
    with app.sessions() as session:
        kept = session.get_one(Message, pk[LOST_CARD])
        assert kept.erased_at is None and kept.case_id == case_id and app.blobs.exists(kept.sha256)
        assert session.get_one(Case, case_id).erased_at is not None
    assert verify_chain(app.sessions).ok


def test_an_email_erased_in_quarantine_is_not_retried(app, clock):
    def broken(raw: bytes):
        raise RuntimeError("a bug in a stage")

    mailbox = FakeMailbox()
    mailbox.append("INBOX", LOST_CARD)
    ingestor = app.make_ingestor(mailbox)
    ingestor.processor.analyse = broken
    ingestor.run_once()
    with app.sessions() as session:
        pk = session.scalars(select(Message.id).where(Message.status == "quarantined")).one()
    Eraser(app.sessions, app.blobs, clock).messages([pk], reason="art. 17 request", actor="ada")
    assert reprocess_quarantined(app.processor, app.blobs) == []  # its original is gone: nothing to read
    with app.sessions() as session:
        assert session.get_one(Message, pk).status == "quarantined"


def test_the_same_bytes_arriving_after_an_erasure_are_processed_anew(app, clock):
    mailbox = FakeMailbox()
    pk = received(app, mailbox, LOST_CARD)[LOST_CARD]
    Eraser(app.sessions, app.blobs, clock).messages([pk], reason="art. 17 request", actor="sam")
    mailbox.append("INBOX", LOST_CARD)
    app.make_ingestor(mailbox).run_once()
    with app.sessions() as session:
        again = session.scalar(select(Message).where(Message.id != pk))
        assert again.duplicate_of_id is None and again.status == "processed"
    assert app.blobs.exists(hashlib.sha256(LOST_CARD).hexdigest())
