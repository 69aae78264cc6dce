"""The archive list as CSV: every row the filters match, in words, safe in a spreadsheet, and logged."""

from __future__ import annotations

import csv
import io
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from mailflow.privacy.subjects import identity_digest
from mailflow.storage.models import Event, Message
from mailflow.web import create_app
from mailflow.web.csv_export import csv_lines, neutralised
from tests.web import emails
from tests.web.conftest import build_world, desk_settings, login, standard_mails

FORMULA_SUBJECT = '=HYPERLINK("http://evil.example/x","Open")'
HEADER = ["Received", "From", "Subject", "Category", "Action", "Status", "Case"]


@pytest.fixture
def world(tmp_path):
    mails = standard_mails() | {
        "formula": emails.email(
            sender="eve@example.org", subject=FORMULA_SUBJECT, text="@SUM(A1:A9)\nGoedendag, een vraag."
        )
    }
    built = build_world(desk_settings(tmp_path / "data"), mails)
    yield built
    built.app.close()


@pytest.fixture
def client(world):
    client = create_app(world.app, TESTING=True).test_client()
    assert login(client, "audrey").status_code == 302  # reading, not changing: auditors export too
    with client.session_transaction() as session:
        session["locale"] = "en"
    return client


def exported(client, **filters) -> list[list[str]]:
    response = client.get("/archive.csv", query_string=filters)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == "attachment; filename=archive.csv"
    assert response.text.startswith("\ufeff")  # a byte-order mark, for spreadsheets' sake
    return list(csv.reader(io.StringIO(response.text.removeprefix("\ufeff"))))


def exports(world) -> list[Event]:
    with world.app.sessions() as session:
        return list(session.scalars(select(Event).where(Event.kind == "exported").order_by(Event.seq)))


def test_cells_that_a_spreadsheet_would_run_are_neutralised():
    for dangerous in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert neutralised(dangerous) == "'" + dangerous
    assert neutralised("Vraag = antwoord") == "Vraag = antwoord" and neutralised(None) == ""
    assert neutralised(42) == "42"
    lines = list(csv_lines(["a", "=b"], [["@c", 'd "e"']]))
    assert lines == ["\ufeff", "a,'=b\r\n", '\'@c,"d ""e"""\r\n']


def test_every_matching_row_in_words_whatever_the_page(client, world):
    rows = exported(client, page=2)  # the list's page 2 is empty: the export ignores pages
    assert rows[0] == HEADER
    with world.app.sessions() as session:
        messages = session.scalars(select(Message).order_by(Message.received_at.desc(), Message.id.desc()))
        expected = [(m.from_address, m.subject, m.received_at) for m in messages]
    assert [(r[1], r[2]) for r in rows[1:]] == [(s, neutralised(subject)) for s, subject, _ in expected]
    brussels = ZoneInfo("Europe/Brussels")
    assert [r[0] for r in rows[1:]] == [
        at.astimezone(brussels).strftime("%Y-%m-%d %H:%M") for *_, at in expected
    ]
    question = next(r for r in rows if r[2] == "Vraag over gezinshereniging")
    assert question[3:] == [
        "Question about family reunification",
        "refer to the Migration Information Centre",
        "processed",
        "",
    ]
    formula = next(r for r in rows if r[1] == "eve@example.org")
    assert formula[2] == "'" + FORMULA_SUBJECT  # text in the spreadsheet, never a formula


def test_the_export_honours_the_filters_and_is_logged_without_the_words_searched(client, world):
    page = client.get("/archive", query_string={"status": "triage", "page": 1}).text
    assert 'id="archive-export" href="/archive.csv?status=triage"' in page
    rows = exported(client, status="triage")
    with world.app.sessions() as session:
        waiting = sorted(session.scalars(select(Message.from_address).where(Message.status == "triage")))
    assert len(waiting) >= 2 and sorted(r[1] for r in rows[1:]) == waiting
    assert {r[5] for r in rows[1:]} == {"waiting for a person"}

    searched = exported(client, q="gezinshereniging", to="2999-12-31")
    assert [r[2] for r in searched[1:]] == ["Vraag over gezinshereniging"]

    first, second = exports(world)
    assert (first.actor, first.message_id) == ("audrey", None)
    assert first.detail == {"what": "archive", "filter": {"status": "triage"}, "rows": len(rows) - 1}
    # The words searched may name a resident: the permanent log keeps how many there were, and a keyed
    # digest of them that finds the search again from the same words, never the words themselves.
    digests = [identity_digest("gezinshereniging", client.application.config["SECRET_KEY"])]
    assert second.detail == {
        "what": "archive",
        "filter": {"to": "2999-12-31", "words": 1},
        "rows": 1,
        "subject": digests,
    }
    assert "gezinshereniging" not in str(second.detail)
    assert "exported" in client.get("/audit", query_string={"kind": "exported"}).text
