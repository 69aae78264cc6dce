"""The admin page shows the installed model's promotion figures and the models it replaced."""

from __future__ import annotations

import json

from flask.testing import FlaskClient

from mailflow.web import create_app
from tests.web.conftest import build_world, desk_settings, login, standard_mails


def manifest(version: str, automation: float, reason: str) -> dict:
    figures = {"harmful_rate": {"value": 0.0}, "automation_rate": {"value": automation}}
    return {
        "model_version": version,
        "trained_on": ["ab" * 8] * 3,
        "evaluation": {"promotion": {"reason": reason, "candidate": figures, "previous": figures}},
    }


def test_admin_page_lists_installed_and_earlier_models(tmp_path):
    model_dir = tmp_path / "model"
    world = build_world(desk_settings(tmp_path / "data", model_dir=model_dir), standard_mails())
    try:
        (model_dir / "history").mkdir(parents=True)
        (model_dir / "manifest.json").write_text(json.dumps(manifest("v2", 0.95, "harmful 0 ≤ 0")))
        (model_dir / "history" / "v1.json").write_text(json.dumps(manifest("v1", 0.9, "forced (first)")))
        client: FlaskClient = create_app(world.app, TESTING=True).test_client()
        with client.session_transaction() as session:
            session["locale"] = "en"  # the page's words are checked below
        assert login(client, "ada").status_code == 302
        page = client.get("/admin").text
        assert "Installed: v2" in page and "95.0% (was 95.0%)" in page
        assert "Earlier models" in page and "forced (first)" in page and "90.0%" in page
        assert "3 emails (digests in the manifest)" in page and "abababab" not in page
    finally:
        world.app.close()
