"""The case page: what it shows, notes, closing and reopening, who may; every change in the chained log."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import select

from mailflow.audit import verify_chain
from mailflow.storage.desk_models import CaseNote
from mailflow.storage.models import Case, Event, Message
from tests.web.conftest import csrf_token

CASE_KINDS = ("case_note", "case_closed", "case_reopened")


def in_english(client) -> None:
    with client.session_transaction() as session:
        session["locale"] = "en"


def open_case(client, message_id: int) -> None:
    """A person files the email as a return from abroad: no document attached, so one is asked for."""
    token = csrf_token(client.get(f"/triage/{message_id}").text)
    form = {"csrf_token": token, "outcome": "choose", "category": "return_report", "action": "auto"}
    assert client.post(f"/triage/{message_id}/decide", data=form).status_code == 302


@pytest.fixture
def staff(as_user, world):
    client = as_user("sam")
    in_english(client)
    open_case(client, world.ids["renewal"])
    return client


@pytest.fixture
def reference(staff, world) -> str:
    with world.app.sessions() as session:
        row = session.get_one(Message, world.ids["renewal"])
        return session.get_one(Case, row.case_id).reference


def post(client, reference: str, what: str, text: str | None = None):
    token = csrf_token(client.get(f"/cases/{reference}").text)
    data = {"csrf_token": token} | ({"text": text} if text is not None else {})
    return client.post(f"/cases/{reference}/{what}", data=data)


def case_events(world) -> list[Event]:
    with world.app.sessions() as session:
        return list(session.scalars(select(Event).where(Event.kind.in_(CASE_KINDS)).order_by(Event.seq)))


def the_case(world, reference: str) -> Case:
    with world.app.sessions() as session:
        return session.scalars(select(Case).where(Case.reference == reference)).one()


def test_the_case_page_shows_state_documents_replies_and_notes_in_words(staff, reference, world):
    page = staff.get(f"/cases/{reference}").text
    message_id = world.ids["renewal"]
    with world.app.sessions() as session:
        (reply,) = session.get_one(Message, message_id).replies
        reply_id = reply.id
    assert "open</span> · documents missing" in page
    assert "Return from abroad" in page and "amina.el@example.org" in page
    for kind in ("passport stamp", "boarding pass"):
        assert f'<span class="tag">{kind}</span>' in page
    assert f'href="/archive/{message_id}"' in page and "Vernieuwing verblijfskaart" in page
    assert f'href="/archive/{message_id}/replies/{reply_id}"' in page
    assert "No notes yet." in page and "no documents" in page
    # Ids never reach staff: the state, the category and the document kinds are in words.
    shown = re.sub(r"<[^>]*>", " ", page)
    for code in ("return_report", "passport_stamp", "boarding_pass", "incomplete"):
        assert code not in shown, code
    assert 'id="note-form"' in page and 'id="close-form"' in page and 'id="reopen-form"' not in page
    with world.app.sessions() as session:
        viewed = session.scalars(select(Event).where(Event.kind == "viewed", Event.actor == "sam")).all()
    assert {"what": "case", "case": reference} in [e.detail for e in viewed]


def test_a_note_is_kept_as_plain_text_shown_escaped_and_logged_without_its_text(staff, reference, world):
    written = "<script>alert('x')</script> Called the resident.\r\nShe comes on Monday."
    response = post(staff, reference, "notes", written)
    assert response.status_code == 302 and response.location.endswith(f"/cases/{reference}")
    page = staff.get(f"/cases/{reference}").text
    assert "Note added." in page
    assert (
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Called the resident.\nShe comes on Monday." in page
    )
    assert "<script>alert" not in page
    assert '<span class="author">sam</span>' in page
    with world.app.sessions() as session:
        (note,) = session.scalars(select(CaseNote)).all()
    assert note.text == "<script>alert('x')</script> Called the resident.\nShe comes on Monday."
    assert note.author == "sam" and note.written_at == world.clock()
    (event,) = case_events(world)
    assert (event.kind, event.actor, event.message_id) == ("case_note", "sam", None)
    assert event.detail == {"case": reference, "note": note.id}  # the text stays in the notes table

    # Nothing is kept of an empty note or a note too long; the person is told why.
    for text, said in (("  \r\n ", "a note needs some text"), ("x" * 2001, "at most 2000 characters")):
        post(staff, reference, "notes", text)
        assert said in staff.get(f"/cases/{reference}").text
    # A note at the limit is kept, its line ends counted once though a browser sends them as two.
    post(staff, reference, "notes", "y" * 1000 + "\r\n" * 500 + "z" * 499)
    with world.app.sessions() as session:
        assert len(session.scalars(select(CaseNote)).all()) == 2
    assert len(case_events(world)) == 2


def test_closing_and_reopening_set_the_state_and_are_logged(staff, reference, world):
    world.clock.advance(hours=2)
    assert post(staff, reference, "close", "Return registered at the counter.").status_code == 302
    closed = the_case(world, reference)
    assert closed.status == "closed" and closed.closed_by == "sam" and closed.closed_at == world.clock()
    page = staff.get(f"/cases/{reference}").text
    assert f"Case {reference} closed." in page and 'data-state="closed"' in page
    assert 'id="reopen-form"' in page and 'id="close-form"' not in page
    assert "Return registered at the counter." in page  # the closing note is one of the notes

    post(staff, reference, "close", "")  # twice: refused, nothing written
    assert f"case {reference} is closed already" in staff.get(f"/cases/{reference}").text

    world.clock.advance(minutes=5)
    assert post(staff, reference, "reopen", "").status_code == 302
    reopened = the_case(world, reference)
    assert reopened.status == "incomplete" and reopened.closed_at is None and reopened.closed_by is None
    page = staff.get(f"/cases/{reference}").text
    assert "open</span> · documents missing" in page and 'id="close-form"' in page
    post(staff, reference, "reopen", "")
    assert f"case {reference} is open already" in staff.get(f"/cases/{reference}").text

    with world.app.sessions() as session:
        (note,) = session.scalars(select(CaseNote)).all()
    events = case_events(world)
    assert [(e.kind, e.actor, e.message_id, e.detail) for e in events] == [
        ("case_closed", "sam", None, {"case": reference, "case_status": "closed", "note": note.id}),
        ("case_reopened", "sam", None, {"case": reference, "case_status": "incomplete"}),
    ]
    assert verify_chain(world.app.sessions).ok


def test_auditors_see_the_case_but_cannot_change_it(staff, reference, world, as_user):
    post(staff, reference, "notes", "Waiting for the boarding pass.")
    auditor = as_user("audrey")
    in_english(auditor)
    page = auditor.get(f"/cases/{reference}").text
    assert "Waiting for the boarding pass." in page and "Return from abroad" in page
    assert page.count('method="post"') == 2  # logging out and her own language, nothing else
    assert "<textarea" not in page and "note-form" not in page and "close-form" not in page
    token = csrf_token(page)
    for what in ("notes", "close", "reopen"):
        response = auditor.post(f"/cases/{reference}/{what}", data={"csrf_token": token, "text": "x"})
        assert response.status_code == 403, what
    assert the_case(world, reference).status == "incomplete"
    assert [e.actor for e in case_events(world)] == ["sam"]
    with world.app.sessions() as session:
        assert len(session.scalars(select(CaseNote)).all()) == 1


def test_an_unknown_case_is_not_found(staff):
    assert staff.get("/cases/MIG-2026-999999").status_code == 404
    assert post_to_unknown(staff).status_code == 404


def post_to_unknown(client):
    token = csrf_token(client.get("/archive").text)
    return client.post("/cases/MIG-2026-999999/notes", data={"csrf_token": token, "text": "hello"})


def test_the_archive_export_names_the_case_and_the_persons_decision(staff, reference):
    response = staff.get("/archive.csv", query_string={"case": reference.lower()})
    rows = list(csv.reader(io.StringIO(response.text)))
    assert [r[2:] for r in rows[1:]] == [
        [
            "Vernieuwing verblijfskaart",
            "Return from abroad",
            "ask for the missing documents",
            "processed",
            reference,
        ]
    ]
