"""A worker's default name: one slot per running process, the same slot again after a crash."""

from __future__ import annotations

import os
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


def test_the_mail_worker_is_named_by_slot_the_desk_and_commands_are_not(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MAILFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MAILFLOW_WORKER_NAME", raising=False)
    desk = App(load_settings())
    first, second = App(load_settings(), mail_worker=True), App(load_settings(), mail_worker=True)
    try:
        assert ":slot" not in desk.worker_id  # a staff decision sending replies must not take a slot
        assert ":slot0:" in first.worker_id and ":slot1:" in second.worker_id
    finally:
        first.close()
    third = App(load_settings(), mail_worker=True)
    assert third.worker_id == first.worker_id  # closed, so its slot was free
    for app in (desk, second, third):
        app.close()
    monkeypatch.setenv("MAILFLOW_WORKER_NAME", "counter-a")
    named = App(load_settings(), mail_worker=True)
    assert named.worker_id == "counter-a" and named.worker_slot is None
    named.close()


def test_a_slot_that_cannot_be_opened_is_skipped_and_no_slot_at_all_is_a_warning(
    tmp_path: Path, caplog
) -> None:
    (tmp_path / "slot-0.lock").mkdir()  # not a file: as unusable as one another user made
    slot = take_slot(tmp_path, host="h")
    assert slot is not None and slot.name.startswith("h:slot1:")
    slot.release()
    (tmp_path / "taken").write_text("")
    assert take_slot(tmp_path / "taken" / "workers", host="h") is None
    assert "no worker slot" in caplog.text


FORKS = """
import os, sys, time
from pathlib import Path
from mailflow.adapters.worker_slot import take_slot
slot = take_slot(Path(sys.argv[1]), host="h")
ready = Path(sys.argv[1]) / "child-running"
child = os.fork()
if child == 0:  # a retraining job, forked: it outlives the worker
    ready.touch()  # the fork hooks have run by now
    time.sleep(30)
    os._exit(0)
while not ready.exists():
    time.sleep(0.01)
print(slot.name, child, flush=True)
time.sleep(60)
"""


def test_a_forked_child_outliving_its_worker_does_not_keep_the_slot(tmp_path: Path) -> None:
    worker = subprocess.Popen([sys.executable, "-c", FORKS, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    held, child = worker.stdout.readline().split()
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    try:
        again = take_slot(tmp_path, host="h")
        assert again is not None and again.name == held
        again.release()
    finally:
        os.kill(int(child), signal.SIGKILL)
