"""A worker's default name: one slot per running process, the same slot again after a crash."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from mailflow.adapters.worker_slot import take_slot
from mailflow.bootstrap import App
from mailflow.settings import load_settings

HOLD = """
import sys, time
from pathlib import Path
from mailflow.adapters.worker_slot import take_slot
slot = take_slot(Path(sys.argv[1]), host="h")
print(slot.name, flush=True)
time.sleep(60)
"""


def test_running_processes_never_share_a_slot_and_a_dead_ones_slot_is_taken_again(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        held = holder.stdout.readline().strip()
        assert held.startswith("h:slot0:")
        mine = take_slot(tmp_path, host="h")
        assert mine is not None and mine.name.startswith("h:slot1:") and mine.name != held
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    again = take_slot(tmp_path, host="h")
    assert again is not None and again.name == held  # the crashed worker's name: its claims resume
    mine.release()
    assert take_slot(tmp_path, host="h").name == mine.name  # released: free again


def test_the_random_part_keeps_apart_workers_with_data_directories_of_their_own(tmp_path: Path) -> None:
    first, second = take_slot(tmp_path / "a", host="h"), take_slot(tmp_path / "b", host="h")
    assert first.name.startswith("h:slot0:") and second.name.startswith("h:slot0:")
    assert first.name != second.name


def test_the_app_names_its_worker_by_slot_unless_a_name_is_set(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MAILFLOW_DATA_DIR", str(tmp_path))
    first, second = App(load_settings()), App(load_settings())
    try:
        assert ":slot0:" in first.worker_id and ":slot1:" in second.worker_id
    finally:
        first.close()
    third = App(load_settings())
    assert third.worker_id == first.worker_id  # closed, so its slot was free
    second.close()
    third.close()
    monkeypatch.setenv("MAILFLOW_WORKER_NAME", "counter-a")
    assert App(load_settings()).worker_id == "counter-a"
