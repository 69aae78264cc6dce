"""`--log-format json` and MAILFLOW_LOG_FORMAT=json: every log line the command writes is one JSON object."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.integration.worker_harness import mailflow_command

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("how", ["option", "setting"])
def test_log_lines_are_json(tmp_path, how):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    env["MAILFLOW_DATA_DIR"] = str(tmp_path / "data")
    args = ["-v", "poll-once"]
    if how == "option":
        args = ["--log-format", "json", *args]
    else:
        env["MAILFLOW_LOG_FORMAT"] = "json"
    done = subprocess.run(mailflow_command(*args), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    entries = [json.loads(line) for line in done.stderr.splitlines()]
    assert entries, "no log lines at -v"
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    assert any(entry["logger"].startswith("mailflow") for entry in entries)
    assert done.stdout.startswith("processed 0")
