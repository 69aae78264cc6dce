"""In a real browser: a staff member opens an email and its document; the auditor's "who viewed this"
(from the email's page, and for the person from the audit page) shows them; staff cannot open it."""

from __future__ import annotations

import pytest

from mailflow.web import create_app
from tests.web import emails
from tests.web.browser import chromium, served
from tests.web.conftest import build_world, desk_settings, standard_mails
from tests.web.test_archive import pdf_bytes
from tests.web.test_browser import log_in

pytestmark = [pytest.mark.integration, pytest.mark.slow]
LINA = "lina@example.org"


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def desk(tmp_path):
    mails = standard_mails() | {
        "documents": emails.email(
            sender=LINA,
            subject="Verlenging bijlage 35",
            text="Goedendag,\n\nIk wil mijn bijlage 35 laten verlengen.\n\nLina\n",
            attachments=[("bijlage35.pdf", "application/pdf", pdf_bytes())],
        )
    }
    world = build_world(desk_settings(tmp_path / "data", web_secure_cookies=True), mails)
    with served(create_app(world.app)) as base:
        yield world, base
    world.app.close()


def test_auditor_sees_who_viewed_an_email_and_a_person_and_staff_cannot(browser, desk):
    world, base = desk
    documents, other = world.ids["documents"], world.ids["question"]
    staff = browser.new_context(accept_downloads=True).new_page()
    log_in(staff, base, "sam")
    staff.goto(f"{base}/archive/{documents}")
    staff.locator("img.page").first.wait_for()  # the PDF's first page, drawn by the desk
    staff.wait_for_function("() => [...document.images].every(i => i.complete)")
    with staff.expect_download() as download:
        staff.click(f"a[href='/archive/{documents}/attachments/0']")
    assert download.value.suggested_filename.endswith(".pdf")
    staff.goto(f"{base}/archive/{other}")  # another resident's email: not on Lina's pages
    assert staff.locator("#who-viewed-link").count() == 0
    refused = staff.goto(f"{base}/audit/emails/{documents}/views")
    assert refused.status == 403
    assert staff.goto(f"{base}/audit/person").status == 403

    auditor = browser.new_context().new_page()
    log_in(auditor, base, "audrey")
    auditor.goto(f"{base}/archive/{documents}")
    with auditor.expect_navigation():
        auditor.click("#who-viewed-link")
    assert auditor.url == f"{base}/audit/emails/{documents}/views"
    rows = auditor.locator("#who-viewed tbody tr")
    said = [rows.nth(i).inner_text() for i in range(rows.count())]
    by_sam = [line for line in said if "\tsam\t" in line]
    assert any("looked at the email" in line for line in by_sam)
    assert any("downloaded document 1" in line for line in by_sam)
    assert any("looked at page 1 of document 1" in line for line in by_sam)

    auditor.goto(f"{base}/audit")
    with auditor.expect_navigation():
        auditor.click("#person-link")
    auditor.fill("#person-who", LINA.upper())
    with auditor.expect_navigation():
        auditor.click("#person-submit")
    assert LINA.upper() not in auditor.url and "lina" not in auditor.url  # asked by POST, not in the address
    assert auditor.locator("#person-emails li").count() == 1
    table = auditor.inner_text("#who-viewed")
    assert "sam" in table and "downloaded document 1" in table
    assert f"\t{other}\t" not in table  # the other email sam opened is not hers
