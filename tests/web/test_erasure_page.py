"""The admin's erasure request page and the legal-hold buttons on a case page: admins only; a hold
refuses the erasure and changes nothing; the confirmed erasure leaves tombstones and keeps the others."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from mailflow.audit import verify_chain
from mailflow.storage.models import Case, Event, Message
from mailflow.web import leases
from mailflow.web.decisions import Part, decide_item
from tests.web.conftest import csrf_token

YUSUF = "yusuf.k@example.org"
REASON = "request of 2026-03-02, number 41"


@pytest.fixture
def reference(world) -> str:
    """Yusuf's email decided by a person: it opens his case."""
    second = world.ids["second"]
    leases.take(world.app.sessions, second, "sara", now=world.clock(), lease=timedelta(minutes=5))
    decide_item(world.app, second, "sara", [Part("return_report")])
    with world.app.sessions() as session:
        return session.get_one(Message, second).case.reference


def token(client, url: str = "/archive") -> str:
    return csrf_token(client.get(url).text)


def erased(world, pk: int) -> bool:
    with world.app.sessions() as session:
        return session.get_one(Message, pk).erased_at is not None


def test_only_admins_erase_and_hold(as_user, reference):
    for name in ("sam", "audrey"):
        client = as_user(name)
        csrf = token(client)
        assert client.get("/admin/erasure").status_code == 403
        form = {"csrf_token": csrf, "who": YUSUF, "reason": REASON}
        assert client.post("/admin/erasure", data=form).status_code == 403
        for url in (f"/cases/{reference}/hold", f"/cases/{reference}/hold/lift"):
            assert client.post(url, data={"csrf_token": csrf, "reason": "appeal"}).status_code == 403
        page = client.get(f"/cases/{reference}").text
        assert 'id="hold-form"' not in page and 'id="case-hold" data-held="no"' in page
    admin = as_user("ada")
    assert 'id="erasure-link"' in admin.get("/admin").text
    assert 'id="hold-form"' in admin.get(f"/cases/{reference}").text


def test_a_hold_refuses_the_erasure_and_the_confirmed_erasure_keeps_the_others(world, as_user, reference):
    admin = as_user("ada")
    csrf = token(admin)
    second, renewal = world.ids["second"], world.ids["renewal"]

    # Without a reason the hold is not set; with one it is, in the log, and the page says so.
    page = admin.post(f"/cases/{reference}/hold", data={"csrf_token": csrf}, follow_redirects=True).text
    assert "Not done: give a reason." in page and 'data-held="no"' in page
    page = admin.post(
        f"/cases/{reference}/hold",
        data={"csrf_token": csrf, "reason": "appeal at the CALL"},
        follow_redirects=True,
    ).text
    assert "is now under a legal hold" in page and 'data-held="yes"' in page and 'id="lift-hold"' in page
    assert "appeal at the CALL" in page

    # The look-up shows the counts and refuses, naming the case; nothing is erased.
    form = {"csrf_token": csrf, "who": YUSUF.upper(), "reason": REASON}
    page = admin.post("/admin/erasure", data=form).text
    assert 'id="erasure-refused"' in page and reference in page and "legal hold" in page
    assert "Emails: 1 · cases: 1" in page and 'id="erasure-confirm"' not in page
    assert not erased(world, second)

    page = admin.post(
        f"/cases/{reference}/hold/lift",
        data={"csrf_token": csrf, "reason": "appeal decided"},
        follow_redirects=True,
    ).text
    assert "is lifted" in page and 'data-held="no"' in page

    # Now a confirmation step; a confirmation for someone else than shown erases nothing.
    page = admin.post("/admin/erasure", data=form).text
    assert 'id="erasure-confirm"' in page and "Emails: 1 · cases: 1" in page and reference in page
    seen = page.split('name="seen" value="')[1].split('"')[0]
    page = admin.post("/admin/erasure", data=form | {"seen": "not what was shown"}).text
    assert 'id="erasure-confirm"' in page and not erased(world, second)
    other = form | {"who": "amina.el@example.org", "seen": seen}  # her email waits in triage: refused
    page = admin.post("/admin/erasure", data=other).text
    assert "wait in triage" in page and "Erased:" not in page and not erased(world, renewal)

    done = admin.post("/admin/erasure", data=form | {"seen": seen}, follow_redirects=True)
    assert "Erased: 1 emails and 1 cases" in done.text and "next retention run" in done.text
    with world.app.sessions() as session:
        row = session.get_one(Message, second)
        assert row.erased_rule == "request" and row.from_address is None
        assert not world.app.blobs.exists(row.sha256)
        case = session.scalars(select(Case).where(Case.reference == reference)).one()
        assert case.erased_at is not None and case.resident_address == ""
        other_row = session.get_one(Message, renewal)
        assert other_row.erased_at is None and world.app.blobs.exists(other_row.sha256)
        entry = session.scalars(select(Event).where(Event.kind == "subject_erased")).one()
        kinds = session.scalars(select(Event.kind).where(Event.actor == "ada")).all()
    assert entry.actor == "ada" and entry.detail["emails"] == [second] and YUSUF not in str(entry.detail)
    assert {"legal_hold_set", "legal_hold_lifted", "subject_erased", "erased"} <= set(kinds)
    assert verify_chain(world.app.sessions).ok
    # The case page still opens, as a tombstone; the audit page names the entries.
    assert 'id="case-erased"' in admin.get(f"/cases/{reference}").text
    audit = admin.get("/audit").text
    assert "legal hold set" in audit and "a person&#39;s data erased on request" in audit


def test_nothing_found_and_a_wrong_identifier(as_user, world):
    admin = as_user("ada")
    form = {"csrf_token": token(admin), "reason": REASON}
    page = admin.post("/admin/erasure", data=form | {"who": "nobody@example.org"}).text
    assert 'id="erasure-nothing"' in page and 'id="erasure-confirm"' not in page
    page = admin.post("/admin/erasure", data=form | {"who": "Yusuf"}).text
    assert "valid national register number" in page
    page = admin.post("/admin/erasure", data={"csrf_token": form["csrf_token"], "who": YUSUF}).text
    assert "Fill this in." in page and not erased(world, world.ids["second"])
