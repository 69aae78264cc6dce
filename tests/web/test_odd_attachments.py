"""Attachments of the input catalogue in the desk: bidi controls gone from the name shown, look-alike
names and content types that lie flagged for the staff member before they open anything."""

from __future__ import annotations

import html

import pytest

from mailflow.stages.attachments import mixed_scripts, type_mismatch
from mailflow.web import create_app
from tests.fixtures.catalogue_inputs import rows
from tests.web.conftest import build_world, desk_settings, login

EMAILS = {tag: data for _, tag, data in rows()}


@pytest.fixture
def odd_world(tmp_path):
    built = build_world(
        desk_settings(tmp_path / "data"), {tag: EMAILS[tag] for tag in ("bidi", "lies", "traversal")}
    )
    yield built
    built.app.close()


def test_the_desk_shows_clean_names_and_flags_look_alikes_and_lying_types(odd_world):
    client = create_app(odd_world.app, TESTING=True).test_client()
    assert login(client, "sam").status_code == 302
    bidi = html.unescape(client.get(f"/archive/{odd_world.ids['bidi']}").text)
    assert "\u202e" not in bidi and "factuurfdp.exe" in bidi and "\u0440aspoort.png" in bidi
    assert bidi.count("the name mixes alphabets") == 1
    assert "sent as application/pdf, but the content is application/x-msdownload" in bidi
    lies = html.unescape(client.get(f"/archive/{odd_world.ids['lies']}").text)
    assert "sent as application/pdf, but the content is application/zip" in lies
    assert "sent as image/jpeg, but the content is application/x-msdownload" in lies
    traversal = html.unescape(client.get(f"/archive/{odd_world.ids['traversal']}").text)
    assert "../" not in traversal and "..\\" not in traversal and "passwd" in traversal
    assert "mixes alphabets" not in traversal and "but the content is" not in traversal


@pytest.mark.parametrize(
    ("name", "mixed"),
    [
        ("\u0440aspoort.png", True),
        ("paspoort.png", False),
        ("Ελληνικά.pdf", False),
        ("Bijlage 35.pdf", False),
    ],
)
def test_mixed_scripts(name, mixed):
    assert mixed_scripts(name) is mixed


@pytest.mark.parametrize(
    ("declared", "sniffed", "lies"),
    [
        ("application/pdf", "application/zip", True),
        ("application/pdf", "application/octet-stream", True),  # base64 garbage: no PDF inside
        ("image/jpeg", "application/x-msdownload", True),
        ("image/jpg", "image/jpeg", False),
        ("image/heic", "image/heif", False),
        ("application/octet-stream", "image/png", False),
        ("text/html", "text/plain", False),
        ("application/msword", "application/x-cfb", False),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "application/zip", False),
    ],
)
def test_type_mismatch(declared, sniffed, lies):
    assert type_mismatch(declared, sniffed) is lies


def test_the_new_decision_reasons_are_explained_in_words():
    from flask import Flask
    from flask_babel import Babel

    from mailflow.web.labels import explain

    app = Flask(__name__)  # gettext needs an application with Babel
    Babel(app)
    with app.app_context():
        assert explain("calendar message (METHOD:CANCEL): never answered automatically").startswith(
            "A calendar message (CANCEL)"
        )
        assert explain("2 archive(s) attached: stored, never opened").startswith("2 archive(s)")
        assert explain("no_sender: no usable sender address to answer").startswith("No usable sender")
