"""``mailflow classify --json``: the category, the intent, the topic and why an email waits for a person."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

from click.testing import CliRunner

from mailflow.cli import main
from mailflow.settings import PROJECT_ROOT

SAMPLES = PROJECT_ROOT / "samples" / "mailbox"


def email(subject: str, body: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Sara <sara@example.com>"
    message["To"] = "migratie@stad.gent"
    message["Subject"] = subject
    message.set_content(body)
    return bytes(message)


def test_classify_json_says_what_is_asked_about_what(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MAILFLOW_DATA_DIR", str(tmp_path / "data"))
    thanks = tmp_path / "thanks.eml"
    thanks.write_bytes(email("Re: uw afspraak", "Dank u wel!\nSara"))
    files = [str(path) for path in sorted(SAMPLES.glob("*.eml"))[:3]] + [str(thanks)]
    result = CliRunner().invoke(main, ["classify", "--json", *files])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert len(lines) == 4
    for line in lines:
        assert {"category", "action", "intent", "topic", "why_not_automated", "reasons"} <= set(line)
        assert line["intent"] in {"request", "question", "status", "cancel", "nothing", "machine", "several"}
        assert bool(line["why_not_automated"]) == (line["action"] == "triage")
    assert lines[-1]["action"] == "triage"
    assert lines[-1]["why_not_automated"]
