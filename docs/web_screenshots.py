"""Screenshots of the web desk for the docs: the demo's data, served locally, photographed by chromium.

    .venv/bin/python docs/web_screenshots.py   (or: make screenshots)

Runs the demo into a temporary data directory (the shipped sample mailbox and two emails of the
tests whose senders failed DMARC), logs in as the demo staff account, has it decide one triage item
by keyboard, and writes docs/web-*.png.
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailflow.bootstrap import App  # noqa: E402
from mailflow.demo import run_demo  # noqa: E402
from mailflow.settings import load_settings  # noqa: E402
from mailflow.web import create_app  # noqa: E402
from mailflow.web.demo import demo_accounts  # noqa: E402
from mailflow.web.search import index_pending  # noqa: E402
from tests.web import emails  # noqa: E402
from tests.web.browser import chromium, served  # noqa: E402

DOCS = ROOT / "docs"
VIEWPORT = {"width": 1400, "height": 900}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mailflow-shots-") as tmp:
        settings = load_settings(
            data_dir=Path(tmp),
            web_secure_cookies=True,
            trusted_authserv_id=emails.AUTHSERV,
            desk_language="nl",  # the counter's staff read Dutch
            desk_undo_seconds=0,  # the pictures after a decision show it done, not its countdown
        )
        app = App(settings)
        # Beside the samples, two emails from senders that failed DMARC: typical triage items.
        mailbox = app.open_mailbox()
        try:
            for raw in (emails.renewal_request(), emails.hostile_html()):
                mailbox.append(settings.imap_folder, raw)  # type: ignore[attr-defined]
        finally:
            mailbox.close()
        run_demo(settings, console=Console(file=io.StringIO()))
        try:
            passwords = {name: password for name, _, password in demo_accounts(app)}
            while index_pending(app.sessions, app.blobs):
                pass
            with served(create_app(app)) as base, chromium() as browser:
                shoot(browser.new_page(viewport=VIEWPORT), base, passwords["staff"])
        finally:
            app.close()


def shoot(page, base: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "staff")
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.screenshot(path=DOCS / "web-queue.png")
    # The first item whose suggestion can be accepted (some need a person to choose).
    for href in [row.get_attribute("data-href") for row in page.locator("#queue tbody tr[data-href]").all()]:
        page.goto(f"{base}{href}")
        if page.locator("#form-accept button").is_enabled():
            break
    page.wait_for_load_state("networkidle")
    page.screenshot(path=DOCS / "web-triage.png")
    if page.locator("#unverified").count():  # the clerk says she checked the sender first
        page.check("#sender-checked")
        page.keyboard.press("Escape")
    with page.expect_navigation():
        page.keyboard.press("a")  # accept the suggestion: the dashboard then has a person's decision too
    page.goto(f"{base}/archive")
    page.screenshot(path=DOCS / "web-archive.png")
    first = page.locator("#results tbody tr[data-href]").first.get_attribute("data-href")
    page.goto(f"{base}{first}")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=DOCS / "web-email.png")
    page.goto(f"{base}/archive?status=processed")
    case = page.locator("#results td a[href^='/cases/']").first.get_attribute("href")
    page.goto(f"{base}{case}")
    page.screenshot(path=DOCS / "web-case.png")
    page.goto(f"{base}/dashboard?days=30")  # the demo's four weeks
    page.screenshot(path=DOCS / "web-dashboard.png", full_page=True)
    for name in ("queue", "triage", "archive", "email", "case", "dashboard"):
        print(DOCS / f"web-{name}.png")


if __name__ == "__main__":
    main()
