"""End to end, in a real browser: staff triage by keyboard, the auditor's read-only archive, hostile HTML."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from mailflow.storage.desk_models import User
from mailflow.storage.models import Case, Event, Message
from mailflow.web import create_app, leases
from mailflow.web.decisions import Part, decide_item
from tests.web.browser import chromium, served
from tests.web.conftest import PASSWORD, build_world, desk_settings, standard_mails

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def desk(tmp_path, smtp_server):
    settings = desk_settings(
        tmp_path / "data",
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_security="none",
        web_secure_cookies=True,  # "always": chromium keeps Secure cookies even on http://127.0.0.1
    )
    world = build_world(settings, standard_mails())
    with served(create_app(world.app)) as base:
        yield world, base
    world.app.close()


def log_in(page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def test_staff_triage_by_keyboard_reply_reaches_smtp_and_archive_shows_timeline(browser, desk, smtp_server):
    world, base = desk
    page = browser.new_page()
    log_in(page, base, "sam")
    assert page.url.endswith("/triage")
    assert page.locator("#queue tbody tr.selected").count() == 1  # the oldest is ready to open
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/triage/{world.ids['renewal']}")
    assert page.inner_text("#suggested-category") == "Residence card renewal"
    assert page.inner_text("#suggested-action") == "send the booking link"
    assert "afspraak" in page.inner_text("#preview")
    # Its sender failed DMARC: one key accepts nothing, until the clerk says the sender was checked.
    assert page.locator("#unverified").is_visible()
    page.keyboard.press("a")
    page.wait_for_timeout(500)
    assert page.url.endswith(f"/triage/{world.ids['renewal']}") and not smtp_server.received
    page.check("#sender-checked")
    page.keyboard.press("Escape")  # out of the checkbox, back to the keys
    page.keyboard.press("a")
    page.wait_for_url(f"{base}/triage/{world.ids['second']}")  # straight on to the next item
    assert "decided (processed)" in page.inner_text("main")

    received = [r for r in smtp_server.wait_for(1) if r.recipients == ["amina.el@example.org"]]
    assert len(received) == 1
    assert "Vernieuwing verblijfskaart" in received[0].message["Subject"]

    page.goto(f"{base}/archive")
    page.keyboard.press("/")
    page.keyboard.type("amina")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    rows = page.locator("#results tbody tr[data-href]")
    assert rows.count() == 1
    rows.first.locator("a").first.click()
    page.wait_for_url(f"{base}/archive/{world.ids['renewal']}")
    timeline = page.inner_text("#timeline")
    for step in ("received", "read by the machine", "decided by a person", "reply queued", "reply sent"):
        assert step in timeline, step
    assert "sam" in timeline and "Residence card renewal → send the booking link" in timeline


def test_auditor_searches_opens_and_cannot_change_anything(browser, desk):
    world, base = desk
    page = browser.new_page()
    log_in(page, base, "audrey")
    assert page.url.endswith("/archive")
    page.fill("#search", "gezinshereniging")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.locator("#results tbody tr[data-href] a").first.click()
    page.wait_for_url(f"{base}/archive/{world.ids['question']}")
    assert "Welke documenten" in page.frame_locator("iframe.body").locator("body").inner_text()

    # The UI offers nothing: no triage link, no form but logout and her own language, no other buttons.
    assert page.locator("a[href='/triage']").count() == 0
    forms = page.locator("form[method=post]")
    actions = forms.evaluate_all("fs => fs.map(f => new URL(f.action).pathname)")
    assert sorted(actions) == ["/language", "/logout"]
    assert page.locator("button").count() == 1
    for key in ("a", "m", "s", "w", "Escape"):
        page.keyboard.press(key)
    assert page.url == f"{base}/archive/{world.ids['question']}"

    # Every attempt made by hand is refused, even with a valid CSRF token of the auditor's session.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    triage_id = world.ids["renewal"]
    for url, form in (
        (f"/triage/{triage_id}/decide", {"outcome": "spam"}),
        (f"/triage/{triage_id}/decide", {"outcome": "accept"}),
        (f"/triage/{triage_id}/release", {}),
        ("/admin", {"username": "eve", "role": "admin", "password": "a long password"}),
    ):
        response = page.request.post(f"{base}{url}", form={"csrf_token": token, **form})
        assert response.status == 403, url
    for url in ("/triage", f"/triage/{triage_id}", "/admin"):
        assert page.request.get(f"{base}{url}").status == 403, url
    with world.app.sessions() as session:
        assert session.get_one(Message, triage_id).status == "triage"
        # What she did is only looking: views, her search, her login.
        looked = ("viewed", "searched", "logged_in")
        assert not session.scalars(
            select(Event).where(Event.actor == "audrey", Event.kind.not_in(looked))
        ).all()
        assert session.scalars(select(Event).where(Event.actor == "audrey", Event.kind == "searched")).all()
    assert page.goto(f"{base}/audit").ok
    assert len(page.inner_text("#head-hash").strip()) == 64


def test_hostile_html_runs_and_loads_nothing(browser, desk):
    world, base = desk
    context = browser.new_context()
    page = context.new_page()
    requests, dialogs, console = [], [], []
    context.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda message: console.append(message.text))
    log_in(page, base, "sam")
    for url in (f"/archive/{world.ids['hostile']}", f"/triage/{world.ids['hostile']}"):
        page.goto(f"{base}{url}")
        page.wait_for_load_state("networkidle")
        frame = page.frame_locator("iframe.body")
        assert "verblijfskaart" in frame.locator("body").inner_text()
        frame.locator("a", has_text="klik hier").click()
        page.wait_for_timeout(300)
        titles = [f.evaluate("document.title") for f in page.frames if f != page.main_frame]
        assert "SCRIPT-RAN" not in titles
    hosts = {urlsplit(url).hostname for url in requests}
    assert hosts == {"127.0.0.1"}, hosts
    assert dialogs == []
    assert not [line for line in console if "RAN" in line], console


def test_a_hand_written_reply_reaches_smtp_as_typed_with_the_real_case_reference(browser, desk, smtp_server):
    from mailflow.storage.models import Case

    world, base = desk
    page = browser.new_page()
    log_in(page, base, "sam")
    page.goto(f"{base}/triage/{world.ids['renewal']}")
    page.keyboard.press("w")
    hand = page.locator("#hand-text")
    first_draft = hand.input_value()
    page.select_option("#hand-category", "switch_c_d")
    page.wait_for_function("draft => document.getElementById('hand-text').value !== draft", arg=first_draft)
    page.select_option("#hand-action", "file")
    page.wait_for_timeout(300)  # the draft for the chosen action replaces the one for the category
    hand.focus()
    page.keyboard.press("Control+Home")
    page.keyboard.type("Goedendag,\n\nWe bekijken uw aanvraag deze week.\n")
    typed = hand.input_value()
    assert "MIG-NEW" in typed
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")

    (received,) = [r for r in smtp_server.wait_for(1) if r.recipients == ["amina.el@example.org"]]
    with world.app.sessions() as session:
        row = session.get_one(Message, world.ids["renewal"])
        reference = session.get_one(Case, row.case_id).reference
    sent = received.message
    body = sent.get_content().replace("\r\n", "\n").strip()
    assert body == typed.replace("MIG-NEW", reference).replace("\r\n", "\n").strip()
    assert "automatisch antwoord" not in body and reference in sent["Subject"]


@pytest.fixture
def undo_desk(tmp_path, smtp_server):
    settings = desk_settings(
        tmp_path / "data",
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_security="none",
        desk_undo_seconds=10,
    )
    world = build_world(settings, standard_mails())
    with served(create_app(world.app)) as base:
        yield world, base
    world.app.close()


def test_accept_then_undo_within_the_window_sends_nothing(browser, undo_desk, smtp_server):
    world, base = undo_desk
    page = browser.new_page()
    log_in(page, base, "sam")
    page.goto(f"{base}/triage/{world.ids['renewal']}")
    page.check("#sender-checked")
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    page.wait_for_url(f"{base}/triage/{world.ids['second']}")
    assert page.locator("#undo-latest").is_visible()  # the decision waits, visibly
    with page.expect_navigation():
        page.keyboard.press("u")
    assert "Undone" in page.inner_text("main")
    world.clock.advance(seconds=30)
    page.goto(f"{base}/triage")  # past the window: anything still waiting would be applied now
    with world.app.sessions() as session:
        assert session.get_one(Message, world.ids["renewal"]).status == "triage"
    page.wait_for_timeout(500)
    assert not smtp_server.received


def test_the_auditor_filters_and_pages_the_audit_log(browser, desk):
    world, base = desk
    page = browser.new_page()
    log_in(page, base, "audrey")
    for _ in range(52):
        page.goto(f"{base}/archive/{world.ids['question']}")
    page.goto(f"{base}/audit")
    page.select_option("#filter-actor", "audrey")
    page.select_option("#filter-kind", "viewed")
    with page.expect_navigation():
        page.click("#filter-submit")
    with world.app.sessions() as session:  # each visit is logged: the email, and its framed body
        total = session.scalar(select(func.count()).where(Event.actor == "audrey", Event.kind == "viewed"))
    assert total >= 52
    assert f"{total} entries · page 1 of {-(-total // 50)}" in page.inner_text("#audit-count")
    actors = page.locator("#audit-entries td.actor").all_inner_texts()
    assert len(actors) == 50 and set(actors) == {"audrey"}
    with page.expect_navigation():
        page.click("#page-older")
    assert page.locator("#audit-entries td.actor").count() == min(50, total - 50)
    assert "looked at the email" in page.inner_text("#audit-entries")


@pytest.fixture
def accounts_desk(tmp_path):
    world = build_world(desk_settings(tmp_path / "data"), {})  # accounts only: no email needed
    with served(create_app(world.app)) as base:
        yield world, base
    world.app.close()


def in_english(page, base: str) -> None:
    """Choose English (the desk speaks Dutch by default) through the desk's own language form."""
    page.goto(f"{base}/login")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert page.request.post(f"{base}/language", form={"csrf_token": token, "language": "en"}).ok


def test_an_admin_disables_enables_and_resets_a_password_and_the_person_logs_in_with_it(
    browser, accounts_desk
):
    world, base = accounts_desk
    new_password = "spring rain on the Leie"
    admin = browser.new_context().new_page()
    person = browser.new_context().new_page()  # another browser: its own cookies
    for page, name in ((admin, "ada"), (person, "sam")):
        in_english(page, base)
        log_in(page, base, name)
    assert person.url.endswith("/triage")
    admin.goto(f"{base}/admin")
    sam = admin.locator('tr.account[data-username="sam"]')
    assert sam.locator("td.state").inner_text() == "active"

    with admin.expect_navigation():
        sam.locator("button.disable").click()
    assert "Account sam disabled" in admin.inner_text("main")
    assert sam.get_attribute("data-state") == "disabled"
    person.goto(f"{base}/triage")  # the open session ended
    assert urlsplit(person.url).path == "/login"
    log_in(person, base, "sam")
    assert urlsplit(person.url).path == "/login"
    assert "Unknown user name or wrong password." in person.inner_text("main")

    with admin.expect_navigation():
        sam.locator("button.enable").click()
    assert "Account sam enabled" in admin.inner_text("main")
    sam.locator("details.set-password summary").click()
    sam.locator("input[name=password]").fill(new_password)
    sam.locator("input[name=confirm]").fill(new_password)
    with admin.expect_navigation():
        sam.locator("details.set-password button[type=submit]").click()
    assert "New password set for sam" in admin.inner_text("main")
    assert sam.get_attribute("data-state") == "active"

    log_in(person, base, "sam")  # the old password no longer works
    assert urlsplit(person.url).path == "/login"
    log_in(person, base, "sam", new_password)
    assert urlsplit(person.url).path == "/triage"
    admin.reload()
    assert sam.locator("td.last-login").inner_text() != "never"

    with world.app.sessions() as session:
        logged = session.execute(
            select(Event.actor, Event.kind, Event.detail).where(
                Event.kind.like("user_%"), Event.actor == "ada"
            )
        ).all()
    assert [tuple(row) for row in logged] == [
        ("ada", "user_disabled", {"user": "sam"}),
        ("ada", "user_enabled", {"user": "sam"}),
        ("ada", "user_password_set", {"user": "sam"}),
    ]


def test_a_clerk_writes_a_note_closes_and_reopens_a_case(browser, desk):
    world, base = desk
    renewal = world.ids["renewal"]
    with world.app.sessions.begin() as session:
        session.scalars(select(User).where(User.username == "sam")).one().locale = "en"
    # Filed as a return from abroad, without the documents that needs: a case waiting for them.
    leases.take(world.app.sessions, renewal, "sam", now=world.clock(), lease=timedelta(minutes=5))
    decide_item(world.app, renewal, "sam", [Part("return_report")])
    with world.app.sessions() as session:
        reference = session.get_one(Case, session.get_one(Message, renewal).case_id).reference

    page = browser.new_page()
    log_in(page, base, "sam")
    page.goto(f"{base}/archive/{renewal}")
    with page.expect_navigation():
        page.click(f"a[href='/cases/{reference}']")
    assert page.inner_text("#case-category") == "Return from abroad"
    assert page.inner_text("#case-state").split() == ["open", "·", "documents", "missing"]

    page.fill("#note-text", "Called the resident <b>Monday</b>:\nshe brings her boarding pass.")
    with page.expect_navigation():
        page.click("#note-submit")
    assert "Note added." in page.inner_text("main")
    note = page.locator("#notes li.note")
    assert note.count() == 1 and note.locator(".author").inner_text() == "sam"
    assert (
        note.locator(".note-text").inner_text()
        == "Called the resident <b>Monday</b>:\nshe brings her boarding pass."
    )

    page.fill("#close-note", "Return registered at the counter.")
    with page.expect_navigation():
        page.click("#close-case")
    assert page.inner_text("#case-state").startswith("closed")
    assert page.locator("#close-form").count() == 0 and page.locator("#notes li.note").count() == 2
    with page.expect_navigation():
        page.click("#reopen-case")
    assert f"Case {reference} reopened." in page.inner_text("main")
    assert page.inner_text("#case-state").split() == ["open", "·", "documents", "missing"]

    with world.app.sessions() as session:
        case = session.get_one(Case, session.get_one(Message, renewal).case_id)
        events = session.scalars(select(Event).where(Event.kind.like("case\\_%", escape="\\"))).all()
    assert case.status == "incomplete" and case.closed_at is None
    assert [(e.kind, e.actor) for e in events if e.actor == "sam"] == [
        ("case_opened", "sam"),  # by her decision
        ("case_note", "sam"),
        ("case_closed", "sam"),
        ("case_reopened", "sam"),
    ]
