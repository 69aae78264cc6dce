"""Every event the system writes has a name in the desk; actors and folders read as words."""

from __future__ import annotations

import re
from pathlib import Path

from mailflow.web.labels import EVENTS

SOURCE = Path(__file__).resolve().parents[2] / "mailflow"


def written_event_kinds() -> set[str]:
    kinds: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        text = path.read_text()
        kinds |= set(re.findall(r'\bkind="([a-z_]+)"', text))
        kinds |= set(re.findall(r'\.log\(\s*[^,()]+,\s*"([a-z_]+)"', text))
        kinds |= set(re.findall(r'_event\(\s*\w+,\s*\w+,\s*"([a-z_]+)"', text))
        # Kinds chosen in an expression ("a" if … else "b") or named by a module constant.
        for line in text.splitlines():
            if found := re.search(r"\bkind ?= ?(.*)|^(?:STARTED|PROMOTED|KEPT) = (.*)", line):
                kinds |= set(re.findall(r'"([a-z]+_[a-z_]+)"', found[1] or found[2]))
    return kinds


def test_every_event_kind_written_has_a_name_in_the_desk():
    kinds = written_event_kinds()
    assert {"staff_decided", "model_promoted", "retrain_started", "case_closed"} <= kinds  # the scan works
    assert not kinds - set(EVENTS), sorted(kinds - set(EVENTS))
