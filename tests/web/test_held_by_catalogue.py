"""Why the catalogue holds an email for a person, in the staff's words."""

from __future__ import annotations

import pytest
from flask import Flask, session

from mailflow.web import create_app
from mailflow.web.labels import explain, waiting_reason
from tests.web.conftest import build_world, desk_settings

HELD = "held by the catalogue: child_card"


@pytest.fixture
def web(tmp_path):
    world = build_world(desk_settings(tmp_path / "data", use_model=False), {})
    try:
        yield create_app(world.app, TESTING=True)
    finally:
        world.app.close()


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", "Looks like Card for a child (Kids-ID), but the email says something that may rule it out"),
        ("nl", "Lijkt op Kaart voor een kind (Kids-ID), maar de e-mail zegt iets wat dat kan uitsluiten"),
    ],
)
def test_the_reason_is_said_in_the_staffs_language(web: Flask, language, words):
    with web.test_request_context():
        session["locale"] = language
        assert explain(HELD).startswith(words)
    assert waiting_reason(["cue x", HELD]) == "unsure"
