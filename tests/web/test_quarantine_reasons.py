"""Why an email is in quarantine, and which attachments were left out, in words in the email's history."""

from __future__ import annotations

import pytest
from flask import Flask

from mailflow.web import create_app
from tests.fixtures.hostile import deep_multipart, encrypted, many_attachments, many_cc, plain
from tests.web.conftest import build_world, desk_settings, login

HOSTILE = {
    "deep": deep_multipart(1000, b"deep"),
    "encrypted": encrypted(b"pgp"),
    "header": many_cc(30_000, b"cc"),
    "many": many_attachments(12, "many"),
    "plain": plain(),
}


@pytest.fixture
def hostile_world(tmp_path):
    world = build_world(desk_settings(tmp_path / "data", max_attachments=4, use_model=False), HOSTILE)
    try:
        yield world
    finally:
        world.app.close()


@pytest.fixture
def client(hostile_world):
    web: Flask = create_app(hostile_world.app, TESTING=True)
    client = web.test_client()
    login(client, "audrey")
    return client


@pytest.mark.parametrize(
    ("label", "words"),
    [
        ("deep", "Emails or parts nested too deeply inside each other: it was not read"),
        ("encrypted", "Encrypted: it cannot be read here; ask the resident for an unencrypted email"),
        ("header", "Its header is far too large (thousands of addresses, for example): it was not read"),
    ],
)
def test_the_quarantine_reason_is_shown_in_words(client, hostile_world, label, words):
    message_id = hostile_world.ids[label]
    page = client.get(f"/archive/{message_id}").text
    assert "<b>quarantined</b>" in page
    assert words in page
    body = client.get(f"/archive/{message_id}/body")
    assert body.status_code == 200  # the desk does not parse it itself: the parse worker refuses it


def test_attachments_left_out_are_in_the_history(client, hostile_world):
    page = client.get(f"/archive/{hostile_world.ids['many']}").text
    assert "<b>attachments left out</b>" in page
    assert "over the limits for one email: 8 attachment(s) not stored and not read" in page
    assert "quarantined" not in client.get(f"/archive/{hostile_world.ids['plain']}").text


def test_each_reason_code_has_words(hostile_world):
    from flask import session

    from mailflow.stages import limits
    from mailflow.web.labels import quarantine_reason

    web = create_app(hostile_world.app, TESTING=True)
    codes = [limits.OVERSIZE, limits.HEADER_TOO_LARGE, limits.TOO_DEEP, limits.ENCRYPTED]
    codes += [limits.TOO_COSTLY, limits.POISON, limits.UNREADABLE, "analysis failed", "action failed"]
    with web.test_request_context():
        session["locale"] = "en"
        texts = [quarantine_reason(f"{code}: details") for code in codes]
        assert "Other reason" not in texts and len(set(texts)) == len(codes)
        assert quarantine_reason("something new: x") == "Other reason"
