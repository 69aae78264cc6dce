"""The sample mailbox shipped for `mailflow demo`: well-formed, labelled, and reproducible."""

from __future__ import annotations

import importlib.util
import json
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
MAILBOX = SAMPLES / "mailbox"
ACTIONS = {
    "file",
    "request_documents",
    "book",
    "online",
    "redirect_info",
    "redirect_other",
    "ignore",
    "triage",
}


def _labels(directory: Path = MAILBOX) -> list[dict[str, Any]]:
    lines = (directory / "labels.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _parse(path: Path) -> EmailMessage:
    msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(msg, EmailMessage)
    return msg


def _documents(msg: EmailMessage) -> list[EmailMessage]:
    return [part for part in msg.walk() if part.get_filename()]


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_samples", SAMPLES / "make_samples.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _skeleton(raw: bytes) -> list[tuple[list[tuple[str, str]], str | None]]:
    """Every part's headers and text, with binary payloads left out: those depend on library versions."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    parts = []
    for part in msg.walk():
        text = part.get_content() if part.get_content_maintype() == "text" else None
        parts.append(([(name, str(value)) for name, value in part.items()], text))
    return parts


LABELS = _labels()


def test_labels_list_exactly_the_mailbox_files() -> None:
    assert sorted(row["file"] for row in LABELS) == sorted(p.name for p in MAILBOX.glob("*.eml"))
    assert len({row["id"] for row in LABELS}) == len(LABELS)
    assert 30 <= len(LABELS) <= 45


@pytest.mark.parametrize("row", LABELS, ids=[row["id"] for row in LABELS])
def test_sample_parses_cleanly_and_matches_its_label(row: dict[str, Any]) -> None:
    msg = _parse(MAILBOX / row["file"])
    for part in msg.walk():
        assert not part.defects, f"{row['id']}: {part.defects}"
    assert msg["To"].addresses[0].addr_spec == "migratie@stad.gent"
    assert msg["From"].addresses and msg["Message-ID"] and msg["Date"].datetime
    assert msg["Authentication-Results"].startswith("mx.stad.gent;")
    assert len(_documents(msg)) == len(row.get("documents", []))
    body = msg.get_body(preferencelist=("plain", "html"))
    assert body is not None and body.get_content().strip()
    assert row["action"] in ACTIONS
    if "intents" in row:
        assert row["action"] == "triage" and len(row["intents"]) >= 2


def test_labels_cover_every_action_and_the_main_languages() -> None:
    assert {row["action"] for row in LABELS} == ACTIONS
    languages = {row["language"] for row in LABELS}
    assert {"nl", "fr", "en"} <= languages
    assert languages - {"nl", "fr", "en"}, "no email in another language"
    assert any("intents" in row for row in LABELS)


def test_machine_mail_carries_the_markers_a_screen_relies_on() -> None:
    by_category = {row["category"]: _parse(MAILBOX / row["file"]) for row in LABELS}
    assert by_category["auto_reply"]["Auto-Submitted"] == "auto-replied"
    bounce = by_category["bounce"]
    assert bounce["Return-Path"] == "<>"
    assert bounce.get_content_type() == "multipart/report"
    assert bounce.get_param("report-type") == "delivery-status"
    assert by_category["spam"]["List-Unsubscribe"]


def test_dmarc_verdicts() -> None:
    verdicts = {row["id"]: _parse(MAILBOX / row["file"])["Authentication-Results"] for row in LABELS}
    failed = [row for row in LABELS if "dmarc=fail" in verdicts[row["id"]]]
    assert failed and all(row["action"] == "triage" for row in failed)
    assert all("dmarc=pass" in verdicts[row["id"]] for row in LABELS if row not in failed)


def test_attachments_come_in_every_kind() -> None:
    kinds = set()
    for row in LABELS:
        for part in _documents(_parse(MAILBOX / row["file"])):
            data = part.get_content()
            if part.get_content_type() == "application/pdf":
                # An image-only scan has an image XObject and no font to draw text with.
                kinds.add("pdf-text" if b"/Font" in data else "pdf-image")
            else:
                kinds.add(part.get_content_type())
    assert kinds >= {"pdf-text", "pdf-image", "image/jpeg", "image/png"}


def test_generator_is_deterministic_and_the_committed_mailbox_is_current(tmp_path: Path) -> None:
    pytest.importorskip("fpdf")
    pytest.importorskip("PIL")
    generator = _load_generator()
    first, second = tmp_path / "first", tmp_path / "second"
    generator.generate(first)
    generator.generate(second)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name

    # The committed files must be what the spec gives; attachment bytes are left out of the
    # comparison because image and PDF encoders may differ by version.
    assert (first / "labels.jsonl").read_bytes() == (MAILBOX / "labels.jsonl").read_bytes()
    for row in LABELS:
        fresh, committed = (first / row["file"]).read_bytes(), (MAILBOX / row["file"]).read_bytes()
        assert _skeleton(fresh) == _skeleton(committed), row["file"]
