"""An erased email in the archive: its tombstone says when and under which rule; its content is gone."""

from __future__ import annotations

from mailflow.retention.erase import Eraser


def test_an_erased_email_shows_its_tombstone_and_nothing_of_its_content(as_user, world):
    pk = world.ids["question"]
    auditor = as_user("audrey")
    before = auditor.get(f"/archive/{pk}").text
    assert "Deleted on" not in before
    Eraser(world.app.sessions, world.app.blobs, world.clock).messages(
        [pk], reason="retention rule processed", actor="retention", rule="processed"
    )
    page = auditor.get(f"/archive/{pk}")
    assert page.status_code == 200
    assert "Deleted on" in page.text and "under rule answered emails" in page.text
    assert "content deleted under rule answered emails" in page.text
    assert "its details were erased" in page.text
    assert "example.org" not in page.text  # no sender left
    assert auditor.get(f"/archive/{pk}/eml").status_code == 410
    assert auditor.get(f"/archive/{pk}/body").status_code == 410
    listing = auditor.get("/archive").text
    assert "deleted on" in listing and "under rule answered emails" in listing
