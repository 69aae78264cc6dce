"""Accountability that can be read: every look is a named entry, and the auditor's "who viewed this"
pages (one email, one person) show who saw what; staff cannot open them."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mailflow.audit import verify_chain
from mailflow.identifiers.nrn import nrn_check
from mailflow.privacy.commands import subject
from mailflow.privacy.subjects import Subject, identity_digest
from mailflow.storage.models import Event
from mailflow.web import create_app
from tests.web import emails
from tests.web.conftest import build_world, csrf_token, desk_settings, login
from tests.web.test_archive import pdf_bytes, png_bytes

LINA = "lina@example.org"
NRN = "850730033" + f"{nrn_check('850730033', born_2000_or_later=False):02d}"


@pytest.fixture
def world(tmp_path):
    mails = {
        "documents": emails.email(
            sender=LINA,
            subject="Verlenging bijlage 35",
            text=f"Goedendag,\n\nIk wil mijn bijlage 35 laten verlengen.\nRijksregisternummer {NRN}.\nLina\n",
            attachments=[
                ("bijlage35.pdf", "application/pdf", pdf_bytes()),
                ("foto.png", "image/png", png_bytes()),
            ],
        ),
        "other": emails.information_question(),
    }
    built = build_world(desk_settings(tmp_path / "data"), mails)
    yield built
    built.app.close()


@pytest.fixture
def client_for(world):
    web = create_app(world.app, TESTING=True)

    def make(username: str):
        client = web.test_client()
        assert login(client, username).status_code == 302
        return client

    return make


def entries(world, who: str, kind: str) -> list[Event]:
    with world.app.sessions() as session:
        found = list(
            session.scalars(select(Event).where(Event.actor == who, Event.kind == kind).order_by(Event.seq))
        )
        session.expunge_all()
    return found


def test_documents_searches_and_exports_are_named_entries(world, client_for):
    sam = client_for("sam")
    documents = world.ids["documents"]
    assert sam.get(f"/archive/{documents}/attachments/0").status_code == 200
    assert sam.get(f"/archive/{documents}/attachments/1/page/0.png").status_code == 200
    assert sam.get("/archive", query_string={"q": LINA}).status_code == 200
    assert sam.get("/archive.csv", query_string={"q": "bijlage"}).status_code == 200
    views = [e.detail for e in entries(world, "sam", "viewed")]
    assert {"what": "document", "attachment": 0, "how": "download"} in views
    assert {"what": "document", "attachment": 1, "page": 0, "how": "inline"} in views

    key = create_app(world.app, TESTING=True).config["SECRET_KEY"]
    (search,) = entries(world, "sam", "searched")
    assert search.detail["words"] == 1 and search.detail["results"] == 1
    assert identity_digest(LINA, key) in search.detail["subject"]  # findable by her digest, not her address
    (export,) = entries(world, "sam", "exported")
    assert export.detail["what"] == "archive" and export.detail["filter"]["words"] == 1
    for entry in (search, export):
        assert LINA not in str(entry.detail) and "bijlage" not in str(entry.detail)
    assert verify_chain(world.app.sessions).ok

    # And the audit page says them in words.
    page = client_for("audrey").get("/audit", query_string={"actor": "sam"}).text
    for said in (
        "downloaded document 1",
        "looked at page 1 of document 2",
        "searched the archive",
        "searched for 1 word(s)",
        "an archive list exported",
    ):
        assert said in page, said


def test_who_viewed_an_email_and_a_person(world, client_for, tmp_path):
    documents, other = world.ids["documents"], world.ids["other"]
    sam = client_for("sam")
    sam.get(f"/archive/{documents}")
    sam.get(f"/archive/{documents}/attachments/0")
    client_for("sara").get(f"/archive/{other}")  # someone else's email: not on Lina's pages

    audrey = client_for("audrey")
    assert 'id="who-viewed-link"' in audrey.get(f"/archive/{documents}").text
    assert 'id="who-viewed-link"' not in sam.get(f"/archive/{documents}").text
    page = audrey.get(f"/audit/emails/{documents}/views").text
    table = page.split('id="who-viewed"', 1)[1]
    assert '<td class="actor">sam</td>' in table and "downloaded document 1" in table
    assert "looked at the email" in table and '<td class="actor">sara</td>' not in table

    form = audrey.get("/audit/person").text
    for who in (LINA.upper(), NRN):
        found = audrey.post("/audit/person", data={"who": who, "csrf_token": csrf_token(form)}).text
        assert f"/archive/{documents}" in found.split('id="person-emails"', 1)[1].split("</ul>", 1)[0]
        assert f"/archive/{other}" not in found.split('id="person-found"', 1)[1]
        table = found.split('id="who-viewed"', 1)[1]
        assert '<td class="actor">sam</td>' in table and "downloaded document 1" in table
        assert '<td class="actor">sara</td>' not in table
    wrong = audrey.post("/audit/person", data={"who": "lina", "csrf_token": csrf_token(form)})
    assert (
        wrong.status_code == 200 and "Give an email address or a valid national register number" in wrong.text
    )

    # Her looking is logged by digest: the address and the number stay out of the log.
    key = create_app(world.app, TESTING=True).config["SECRET_KEY"]
    looks = [e.detail for e in entries(world, "audrey", "viewed")]
    assert {"what": "who viewed"} in looks
    people = [d for d in looks if d["what"] == "person"]
    assert [d["subject"] for d in people] == [
        Subject.parse([LINA]).digests(key),
        Subject.parse([NRN]).digests(key),
    ]
    assert LINA not in str(looks).lower() and NRN not in str(looks)

    # A subject access export of her data shows on her email's page too.
    result = CliRunner().invoke(subject, ["export", LINA, "-o", str(tmp_path / "lina")], obj=world.settings)
    assert result.exit_code == 0, result.output
    page = audrey.get(f"/audit/emails/{documents}/views").text
    assert "a person&#39;s data (subject access request) exported" in page.split('id="who-viewed"', 1)[1]

    # Staff see neither page.
    assert sam.get(f"/audit/emails/{documents}/views").status_code == 403
    assert sam.get("/audit/person").status_code == 403
    token = csrf_token(sam.get("/archive").text)
    assert sam.post("/audit/person", data={"who": LINA, "csrf_token": token}).status_code == 403
