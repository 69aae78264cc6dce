"""The XSS catalogue (brs-kb + payloadbox, about 11 000 distinct vectors) in Chromium: none runs, none
is injected, none loads anything from elsewhere.

Every vector is in the archive four times, through the real pipeline: in an email's HTML body, its
subject, its sender's display name and an attachment's file name (``xss_mail.py``; 100 vectors an
email). Staff open each triage item and the queue; an auditor opens each email's page, the archive
list and search results, a case page holding every email and a reply quoting a subject.
"""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, update

from mailflow.storage.models import AttachmentRecord, Case, Message, Reply
from mailflow.web import create_app, leases
from mailflow.web.archive_queries import PAGE_SIZE
from mailflow.web.decisions import Part, decide_item
from tests.web.browser import chromium, served
from tests.web.conftest import build_world, desk_settings
from tests.web.test_browser import log_in
from tests.web.xss_mail import MARKER, grouped, vector_email
from tests.web.xss_vectors import catalogue
from tests.web.xss_watch import Watch

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GROUP = 100  # vectors an email: each once in its body, subject, sender name, and as a file name


@pytest.fixture(scope="module")
def vector_desk(tmp_path_factory):
    found = catalogue()
    groups = grouped(found.vectors, GROUP)
    mails = {f"group-{n}": vector_email(n, group) for n, group in enumerate(groups)}
    started = time.monotonic()
    # Every vector's file name must reach the archive: the attachment limit is the group's size here.
    settings = desk_settings(tmp_path_factory.mktemp("xss") / "data").model_copy(
        update={"max_attachments": GROUP}
    )
    world = build_world(settings, mails)
    print(f"\nXSS: {len(mails)} emails through the pipeline in {time.monotonic() - started:.0f} s")
    ids = [world.ids[f"group-{n}"] for n in range(len(groups))]
    with world.app.sessions() as session:
        statuses = session.execute(select(Message.status, func.count()).group_by(Message.status)).all()
        documents = session.scalar(select(func.count()).select_from(AttachmentRecord))
    # All of them reached the archive whole, with every vector's attachment. Most wait in triage; the
    # classifier takes a few for spam, which the archive shows all the same.
    assert sum(dict(statuses).values()) == len(groups) and set(dict(statuses)) <= {"triage", "ignored"}
    assert dict(statuses).get("triage", 0) > len(groups) * 0.9, statuses
    assert documents == len(found.vectors)
    with world.app.sessions() as session:
        waiting = set(session.scalars(select(Message.id).where(Message.status == "triage")))
    try:
        yield found, ids, waiting, world
    finally:
        world.app.close()


def file_in_one_case(world, ids: list[int], first: int) -> tuple[str, int]:
    """The first email decided by a person (a case and a reply quoting its subject); the others joined
    to that case in the database, which shows the same page as deciding each, without re-reading
    11 000 attachments once more."""
    leases.take(world.app.sessions, first, "sam", now=world.clock(), lease=timedelta(minutes=30))
    decide_item(world.app, first, "sam", [Part("return_report")])
    with world.app.sessions.begin() as session:
        case_id = session.get_one(Message, first).case_id
        session.execute(update(Message).where(Message.id.in_(ids)).values(case_id=case_id))
        reference = session.get_one(Case, case_id).reference
        reply_id = session.scalars(select(Reply.id).where(Reply.message_id == first)).one()
    return reference, reply_id


def test_no_vector_runs_is_injected_or_loads_anything_remote(vector_desk):
    found, ids, waiting, world = vector_desk
    watch = Watch()
    started = time.monotonic()
    with chromium() as browser, served(create_app(world.app)) as base:
        staff = browser.new_context()
        watch.attach(staff)
        page = staff.new_page()
        log_in(page, base, "sam")
        watch.visit(page, f"{base}/triage", "queue")
        assert page.locator("#queue tbody tr[data-href]").count() == len(waiting)
        for message_id in ids:  # those taken for spam show too, as decided already
            watch.visit(page, f"{base}/triage/{message_id}", f"triage item {message_id}")
        staff_done = time.monotonic()
        first = min(waiting)
        reference, reply_id = file_in_one_case(world, ids, first)

        auditor = browser.new_context()
        watch.attach(auditor)
        page = auditor.new_page()
        log_in(page, base, "audrey")
        pages = -(-len(ids) // PAGE_SIZE)
        for number in range(1, pages + 1):
            watch.visit(page, f"{base}/archive?page={number}", f"archive page {number}")
            watch.visit(page, f"{base}/archive?q={MARKER}&page={number}", f"search page {number}")
            assert page.locator("#results tbody tr[data-href]").count() == min(
                PAGE_SIZE, len(ids) - (number - 1) * PAGE_SIZE
            )
        for message_id in ids:
            watch.visit(page, f"{base}/archive/{message_id}", f"email {message_id}")
        watch.visit(page, f"{base}/cases/{reference}", "case")
        assert page.locator("#case-emails ul.documents li").count() == len(found.vectors)
        watch.visit(page, f"{base}/archive/{first}/replies/{reply_id}", "reply")

    print(
        f"\nXSS: {found.entries} catalogue entries, {len(found.vectors)} distinct vectors tried in "
        f"{len(ids)} emails (each in HTML body, subject, sender name, file name); {watch.pages} pages "
        f"and {watch.frames} email frames opened; executed {len(watch.hits)}, remote loads "
        f"{len(watch.remote)}, injected {len(watch.injected)}, CSP/sandbox reports {len(watch.console)}; "
        f"staff pages {staff_done - started:.0f} s, auditor pages {time.monotonic() - staff_done:.0f} s"
    )
    assert watch.clean, watch.summary()


def test_the_watch_sees_a_vector_that_runs_is_injected_or_reaches_out():
    """A watch that cannot see anything proves nothing: on pages without the desk's defences it does."""
    pages = {
        "/open": "<p>x</p><img src=nothing onerror=alert(1)><script>fetch('http://remote.invalid/x')</script>",
        "/guarded": "<p onclick=go()>y</p><script>alert(2)</script>",
    }

    def fulfil(route) -> None:
        path = urlsplit(route.request.url).path
        if path not in pages:
            route.fulfill(status=404, body="")
            return
        guarded = {"Content-Security-Policy": "script-src 'self'"} if path == "/guarded" else {}
        route.fulfill(status=200, content_type="text/html", body=pages[path], headers=guarded)

    watch = Watch()
    with chromium() as browser:
        context = browser.new_context()
        watch.attach(context)
        context.route("http://127.0.0.1:9/**", fulfil)  # the later route answers first
        page = context.new_page()
        watch.visit(page, "http://127.0.0.1:9/open", "open")
        page.wait_for_timeout(300)  # the fetch is asynchronous
        watch.visit(page, "http://127.0.0.1:9/guarded", "guarded")
    assert "open: alert(1)" in watch.hits and "open: fetch(http://remote.invalid/x)" in watch.hits
    assert watch.remote == ["http://remote.invalid/x"]
    assert {"open: img[onerror]", "open: script", "guarded: p[onclick]", "guarded: script"} <= set(
        watch.injected
    )
    assert any("guarded: csp script-src" in hit for hit in watch.hits) and watch.console
    assert not watch.clean
