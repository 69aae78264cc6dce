"""``mailflow preview`` and ``poll-once --dry-run``: what would be sent, without sending or storing."""

from __future__ import annotations

from click.testing import CliRunner

from mailflow.bootstrap import App
from mailflow.cli import main
from mailflow.preview import preview_reply, readable
from mailflow.settings import PROJECT_ROOT, Settings

SAMPLES = PROJECT_ROOT / "samples" / "mailbox"


def test_every_replying_sample_previews_as_a_readable_reply(tmp_path):
    # The preview is under test, not the learned model: the rules decide which samples reply.
    app = App(Settings(data_dir=tmp_path, trusted_authserv_id="mx.stad.gent", use_model=False))
    replying = 0
    for path in sorted(SAMPLES.glob("*.eml")):
        analysis = app.analyser_without_archive.analyse(path.read_bytes())
        data = preview_reply(analysis, app.composer, app.product_context, "MIG")
        if not analysis.decision.action.replies:
            assert data is None
            continue
        assert data is not None, path.name
        text = readable(data)
        assert "Auto-Submitted: auto-replied" in text
        assert f"Content-Language: {analysis.decision.language}" in text or "Content-Language: en" in text
        body = text.split("\n\n", 1)[1]
        assert len(body) > 200 and "=?" not in body
        replying += 1
    assert replying >= 20
    app.close()


def test_preview_command_prints_headers_and_text(tmp_path, monkeypatch):
    monkeypatch.setenv("MAILFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MAILFLOW_TRUSTED_AUTHSERV_ID", "mx.stad.gent")
    monkeypatch.setenv("MAILFLOW_USE_MODEL", "false")  # the preview is under test: the rules decide
    sample = next(p for p in sorted(SAMPLES.glob("*.eml")) if "volee" in p.name)
    result = CliRunner().invoke(main, ["preview", str(sample)])
    assert result.exit_code == 0, result.output
    assert "action:     book" in result.output
    assert "In-Reply-To: <" in result.output and "product=" in result.output


def test_dry_run_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("MAILFLOW_DATA_DIR", str(tmp_path))
    app = App(Settings(data_dir=tmp_path))
    mailbox = app.open_mailbox()
    for path in sorted(SAMPLES.glob("*.eml"))[:3]:
        mailbox.append("INBOX", path.read_bytes())
    before = sorted(mailbox.list_uids())
    mailbox.close()
    result = CliRunner().invoke(main, ["poll-once", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output.count("uid ") == 3 and "nothing was stored, moved or sent" in result.output
    mailbox = app.open_mailbox()
    assert sorted(mailbox.list_uids()) == before
    mailbox.close()
    assert not (tmp_path / "outbox").exists()
    assert not (tmp_path / "mailflow.sqlite3").exists()
