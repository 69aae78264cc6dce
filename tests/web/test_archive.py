"""The archive: search, filters, timelines, documents, view logging, the dashboard and the audit page."""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner
from fpdf import FPDF
from PIL import Image
from sqlalchemy import select, text

from mailflow.cli import main
from mailflow.storage.models import Case, Event, Message
from mailflow.web import create_app
from mailflow.web.search import fts5_query, tsquery
from tests.web import emails
from tests.web.conftest import PASSWORD, build_world, csrf_token, desk_settings, login


def pdf_bytes() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.cell(text="Bijlage 35 - attest van immatriculatie")
    return bytes(pdf.output())


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def documents_world(tmp_path):
    mail = emails.email(
        sender="lina@example.org",
        subject="Verlenging bijlage 35",
        text="Goedendag,\n\nIk wil mijn bijlage 35 laten verlengen. Mijn beroep loopt nog.\n\nLina\n",
        attachments=[
            ("../../Bijlage 35\x07.pdf", "application/pdf", pdf_bytes()),
            ("foto.png", "image/png", png_bytes()),
        ],
    )
    built = build_world(desk_settings(tmp_path / "data"), {"documents": mail})
    yield built
    built.app.close()


def viewed(world, message_id: int, who: str) -> list[dict]:
    with world.app.sessions() as session:
        return [
            e.detail
            for e in session.scalars(
                select(Event).where(
                    Event.message_id == message_id, Event.kind == "viewed", Event.actor == who
                )
            )
        ]


def test_full_text_search_finds_words_of_the_text_and_filters_combine(as_user, world):
    client = as_user("audrey")
    hits = client.get("/archive?q=gezinshereniging").text
    assert f'/archive/{world.ids["question"]}"' in hits
    assert f'/archive/{world.ids["renewal"]}"' not in hits
    # Prefixes match, words must all occur, and FTS operators are taken as plain words.
    assert f'/archive/{world.ids["question"]}"' in client.get("/archive?q=gezinsher+echtgen").text
    assert (
        f'/archive/{world.ids["question"]}"'
        not in client.get("/archive?q=gezinshereniging+verblijfskaart").text
    )
    assert client.get('/archive?q=NEAR(" OR *').status_code == 200
    triage_only = client.get("/archive?q=verblijfskaart&status=triage").text
    assert f'/archive/{world.ids["renewal"]}"' in triage_only
    assert f'/archive/{world.ids["question"]}"' not in triage_only
    by_category = client.get("/archive?category=info_family_reunification").text
    assert (
        f'/archive/{world.ids["question"]}"' in by_category
        and f'/archive/{world.ids["renewal"]}"' not in by_category
    )


def test_search_queries_quote_every_word():
    assert fts5_query('a" OR b*') == '"a"* "OR"* "b"*'
    assert fts5_query("  ") is None
    assert tsquery("Gezins' & !x | y:*") == "'gezins':* & 'x':* & 'y':*"
    assert tsquery("--") is None


def test_timeline_tells_the_story_and_views_are_logged(as_user, world):
    client = as_user("audrey")
    message_id = world.ids["question"]
    page = client.get(f"/archive/{message_id}").text
    steps = (
        "received",
        "stored",
        "screened",
        "read by the machine",
        "decided by the machine",
        "reply queued",
        "moved to a mailbox folder",
    )
    for step in steps:
        assert f"<b>{step}</b>" in page, step
    positions = [page.index(f"<b>{step}</b>") for step in steps]
    assert positions == sorted(positions)  # in the order things happened
    assert "Question about family reunification" in page
    assert viewed(world, message_id, "audrey") == [{"what": "email"}]
    client.get(f"/archive/{message_id}/body")
    eml = client.get(f"/archive/{message_id}/eml")
    assert eml.headers["Content-Disposition"].startswith("attachment;")
    assert eml.data.startswith(b"Authentication-Results:")
    assert [d["what"] for d in viewed(world, message_id, "audrey")] == ["email", "body", "original .eml"]
    # The views are in the next page's timeline too, with who.
    assert "downloaded the original email" in client.get(f"/archive/{message_id}").text


def test_documents_inline_and_downloads_with_safe_names(documents_world):
    web = create_app(documents_world.app, TESTING=True)
    client = web.test_client()
    assert login(client, "sam").status_code == 302
    message_id = documents_world.ids["documents"]
    page = client.get(f"/archive/{message_id}").text
    assert f"/archive/{message_id}/attachments/0/page/0.png" in page
    assert f"/archive/{message_id}/attachments/1/page/0.png" in page
    for position in (0, 1):
        image = client.get(f"/archive/{message_id}/attachments/{position}/page/0.png")
        assert image.status_code == 200 and image.mimetype == "image/png"
        assert image.data.startswith(b"\x89PNG")
    assert client.get(f"/archive/{message_id}/attachments/0/page/5.png").status_code == 404
    download = client.get(f"/archive/{message_id}/attachments/0")
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "Bijlage" in disposition and ".." not in disposition
    assert "/" not in disposition.split("filename", 1)[1] and "\x07" not in disposition
    assert download.mimetype == "application/octet-stream"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    kinds = [(d["what"], d.get("how")) for d in viewed(documents_world, message_id, "sam")]
    assert kinds.count(("document", "inline")) == 2 and ("document", "download") in kinds


def test_the_email_frame_is_sanitised_and_locked_down(as_user, world):
    client = as_user("sam")
    page = client.get(f"/archive/{world.ids['hostile']}").text
    assert '<iframe class="body"' in page and " sandbox " in page
    frame = client.get(f"/archive/{world.ids['hostile']}/body")
    csp = frame.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "img-src data:" in csp and "script" not in csp
    body = frame.text.lower()
    for marker in (
        "<script",
        "onload",
        "onerror",
        "onfocus",
        "javascript:",
        "remote.invalid",
        "<iframe",
        "<form",
        "@import",
    ):
        assert marker not in body, marker
    assert "verblijfskaart" in body


def test_dashboard_draws_charts(as_user, world):
    page = as_user("audrey").get("/dashboard").text
    assert page.count("<svg viewBox") == 5
    assert "Emails per day by category" in page and "Triage backlog by age" in page
    assert "Question about family reunification" in page


def test_audit_page_shows_the_head_and_names_a_broken_link(as_user, world):
    client = as_user("audrey")
    with world.app.sessions() as session:
        head = session.execute(text("SELECT hash FROM audit_head WHERE id = 1")).scalar_one()
    assert head in client.get("/audit").text
    assert "Intact" in client.get("/audit/verify").text
    with world.app.engine.begin() as connection:  # what someone with the database file could do
        connection.exec_driver_sql("DROP TRIGGER events_no_update")
        victim = connection.exec_driver_sql("SELECT id, seq FROM events ORDER BY seq LIMIT 1 OFFSET 3").one()
        connection.exec_driver_sql(f"UPDATE events SET actor = 'someone else' WHERE id = {victim[0]}")
    page = client.get("/audit/verify").text
    assert f"BROKEN at entry {victim[1]}:" in page


def test_users_add_command_makes_an_account_that_can_log_in(tmp_path, world):
    env = {"MAILFLOW_DATA_DIR": str(world.settings.data_dir), "MAILFLOW_SECRET_KEY": "k" * 32}
    result = CliRunner().invoke(
        main,
        ["users", "add", "nora", "--role", "auditor", "--password-stdin"],
        input="a long password\n",
        env=env,
    )
    assert result.exit_code == 0, result.output
    again = CliRunner().invoke(
        main, ["users", "add", "nora", "--role", "staff"], input="another password\n", env=env
    )
    assert again.exit_code != 0 and "exists" in again.output
    short = CliRunner().invoke(main, ["users", "add", "olga", "--role", "staff"], input="short\n", env=env)
    assert short.exit_code != 0
    client = create_app(world.app, TESTING=True).test_client()
    assert login(client, "nora", "a long password").status_code == 302
    assert login(client.application.test_client(), "nora", PASSWORD).status_code == 401


def test_search_finds_the_case_reference_and_a_document_kind(documents_world):
    client = create_app(documents_world.app, TESTING=True).test_client()
    assert login(client, "sam").status_code == 302
    message_id = documents_world.ids["documents"]
    with documents_world.app.sessions() as session:
        row = session.get_one(Message, message_id)
    if row.case_id is None:  # left to a person: filed by hand, which opens its case
        token = csrf_token(client.get(f"/triage/{message_id}").text)
        form = {"csrf_token": token, "outcome": "choose", "category": "annex35_extension", "action": "file"}
        assert client.post(f"/triage/{message_id}/decide", data=form).status_code == 302
    with documents_world.app.sessions() as session:
        row = session.get_one(Message, message_id)
        reference = session.get_one(Case, row.case_id).reference
        kinds = [a.kind for a in session.get_one(Message, message_id).attachments]
    link = f'/archive/{message_id}"'
    assert link in client.get("/archive", query_string={"q": reference}).text
    assert link in client.get("/archive", query_string={"q": reference.lower()}).text
    assert link not in client.get("/archive", query_string={"q": reference[:-1] + "9"}).text
    assert "annex35" in kinds
    assert link in client.get("/archive", query_string={"q": "annex 35"}).text
    assert link not in client.get("/archive", query_string={"q": "passport"}).text


def test_a_sent_reply_can_be_read_and_reading_it_is_logged(as_user, world):
    client = as_user("audrey")
    message_id = world.ids["question"]  # answered automatically
    with world.app.sessions() as session:
        (reply,) = session.get_one(Message, message_id).replies
        reply_id, subject = reply.id, reply.subject
    page = client.get(f"/archive/{message_id}").text
    assert f"/archive/{message_id}/replies/{reply_id}" in page
    shown = client.get(f"/archive/{message_id}/replies/{reply_id}").text
    assert 'id="reply-text"' in shown and subject in shown and "Infopunt Migratie" in shown
    assert {"what": "reply", "reply": reply_id} in viewed(world, message_id, "audrey")
    assert client.get(f"/archive/{world.ids['renewal']}/replies/{reply_id}").status_code == 404


def test_the_audit_page_filters_pages_and_exports(as_user, world):
    client = as_user("audrey")
    message_id = world.ids["question"]
    for _ in range(55):
        client.get(f"/archive/{message_id}")
    page = client.get("/audit", query_string={"actor": "audrey", "kind": "viewed", "email": message_id}).text
    assert "55 entries · page 1 of 2" in page and 'id="page-older"' in page
    assert page.count('<td class="actor">audrey</td>') == 50 and "looked at the email" in page
    older = client.get("/audit", query_string={"actor": "audrey", "kind": "viewed", "page": 2}).text
    assert older.count('<td class="actor">audrey</td>') == 5 and 'id="page-newer"' in older
    assert "No entry matches." in client.get("/audit", query_string={"actor": "nobody"}).text
    exported = client.get("/audit.csv", query_string={"actor": "audrey", "kind": "viewed"})
    lines = exported.text.removeprefix("\ufeff").strip().splitlines()
    assert exported.mimetype == "text/csv" and lines[0].startswith("seq,at,actor,kind,email,what,hash")
    assert len(lines) == 56 and all(",audrey,viewed," in line for line in lines[1:])
    assert "exported" in client.get("/audit", query_string={"kind": "exported"}).text
