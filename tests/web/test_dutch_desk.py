"""A clerk works the queue in Dutch, in a real browser: no English word and no id on her pages.

"English" is measured, not listed: the words of the desk's English messages and staff names that
never occur in their Dutch translations. What residents wrote (subjects, addresses, file names,
reply texts) is marked ``translate="no"`` in the pages and left out, as is what the clerk types.
"""

from __future__ import annotations

import re

import pytest

from mailflow.classification.taxonomy import CATEGORIES, DOCUMENT_KINDS
from mailflow.domain import Action
from mailflow.storage.models import Message
from mailflow.web import create_app
from mailflow.web.i18n import TRANSLATIONS_DIR, StaffLabels
from mailflow.web.labels import EVENTS
from tests.unit.test_desk_translations import ROOT, catalogue
from tests.web.browser import chromium, served
from tests.web.conftest import build_world, desk_settings, standard_mails
from tests.web.test_browser import log_in

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WORD = re.compile(r"[^\W\d_]{3,}")
IDS = {*CATEGORIES, *DOCUMENT_KINDS, *(a.value for a in Action), *EVENTS} - {"spam", "triage", "other"}
# Resident content, what the clerk typed, keys and fingerprints are not the desk's words.
PAGE_TEXT = """() => {
  const body = document.body.cloneNode(true);
  body.querySelectorAll('[translate=no], script, style, kbd, code, textarea, input').forEach(e => e.remove());
  return body.textContent;
}"""


PLACEHOLDER = re.compile(r"%\(\w+\)s")


def words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(PLACEHOLDER.sub(" ", text))}


@pytest.fixture(scope="module")
def english_only() -> set[str]:
    dutch = catalogue("nl")
    labels = StaffLabels.load(ROOT / "classifiers" / "labels.toml")
    english = set().union(*(words(m.id) for m in dutch if m.id))
    english |= set().union(*(words(t["en"]) for t in [*labels.categories.values(), *labels.kinds.values()]))
    said = set().union(*(words(m.string) for m in dutch if m.id))
    said |= set().union(*(words(t["nl"]) for t in [*labels.categories.values(), *labels.kinds.values()]))
    assert TRANSLATIONS_DIR.exists() and len(english - said) > 200  # the measure has teeth
    return english - said


@pytest.fixture
def dutch_desk(tmp_path, smtp_server):
    settings = desk_settings(
        tmp_path / "data",
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_security="none",
        desk_language="nl",
    )
    world = build_world(settings, standard_mails())
    with chromium() as browser, served(create_app(world.app)) as base:
        yield world, base, browser
    world.app.close()


def check_dutch(page, english_only: set[str]) -> str:
    text = page.evaluate(PAGE_TEXT)
    leaked = words(text) & english_only
    assert not leaked, f"English on {page.url}: {sorted(leaked)}"
    ids = sorted(i for i in IDS if re.search(rf"(?<![\w-]){re.escape(i)}(?![\w-])", text))
    assert not ids, f"ids on {page.url}: {ids}"
    assert page.locator("html").get_attribute("lang") == "nl"
    return text


def test_a_clerk_works_the_queue_in_dutch(dutch_desk, english_only, smtp_server):
    world, base, browser = dutch_desk
    page = browser.new_page()
    log_in(page, base, "sam")
    text = check_dutch(page, english_only)
    assert "Wachtrij" in text or "wachtrij" in text

    # The first email: a card renewal whose sender failed DMARC.
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/triage/{world.ids['renewal']}")
    text = check_dutch(page, english_only)
    assert page.inner_text("#suggested-category") == "Verlenging verblijfskaart"
    assert "DMARC" in page.inner_text("#unverified")
    # She reads it as a return from abroad, chosen from the Dutch menu: a case waits for its papers.
    page.select_option("#choose-category", label="Terugkeer na verblijf in het buitenland")
    with page.expect_navigation():
        page.click("#form-choose button[type=submit]")
    assert page.url == f"{base}/triage/{world.ids['second']}", page.inner_text("main")[:300]
    check_dutch(page, english_only)

    # The second: split into two requests from the Dutch menus.
    page.keyboard.press("s")
    page.select_option("#split-category-0", label="Verlenging verblijfskaart")
    page.select_option("#split-category-1", label="Vraag over gezinshereniging")
    check_dutch(page, english_only)
    with page.expect_navigation():
        page.click("#split-submit")
    check_dutch(page, english_only)
    sent = [r.recipients for r in smtp_server.wait_for(4)]  # and the question's automatic reply
    assert sent.count(["yusuf.k@example.org"]) == 2  # one reply per request of the split
    assert sent.count(["amina.el@example.org"]) == 1  # asked for the papers of her return

    # The archive, an email's history and the dashboard, as she reads them.
    with world.app.sessions() as session:
        case = session.get_one(Message, world.ids["renewal"]).case
        assert case is not None
        reference = case.reference
    for path in ("/archive", f"/archive/{world.ids['renewal']}", f"/cases/{reference}", "/dashboard"):
        page.goto(f"{base}{path}")
        check_dutch(page, english_only)
    page.goto(f"{base}/archive/{world.ids['second']}")
    assert "sam" in page.inner_text("#timeline")


def test_the_language_is_each_persons_choice_and_remembered(dutch_desk):
    _, base, browser = dutch_desk
    page = browser.new_page()
    log_in(page, base, "sam")
    assert page.locator("html").get_attribute("lang") == "nl"
    with page.expect_navigation():
        page.select_option("#language", "fr")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert "File d'attente" in page.inner_text("main") or "file d'attente" in page.inner_text("main")
    other = browser.new_context().new_page()  # a new session: the choice comes from her account
    log_in(other, base, "sam")
    assert other.locator("html").get_attribute("lang") == "fr"
    colleague = browser.new_context().new_page()
    log_in(colleague, base, "audrey")
    assert colleague.locator("html").get_attribute("lang") == "nl"
