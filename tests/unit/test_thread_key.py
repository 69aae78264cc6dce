"""Workers starting at the same moment on one data directory all take the same thread signing key."""

from __future__ import annotations

import threading
from pathlib import Path

from mailflow.replies.thread_tokens import load_or_create_key


def keys_taken_at_once(path: Path, workers: int = 8) -> list[bytes]:
    start = threading.Barrier(workers)
    keys: list[bytes] = []

    def take() -> None:
        start.wait()
        keys.append(load_or_create_key(None, path))

    threads = [threading.Thread(target=take) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return keys


def test_workers_creating_the_key_at_once_all_read_the_whole_key(tmp_path: Path):
    for round_ in range(100):
        path = tmp_path / str(round_) / "thread-secret-key"
        keys = keys_taken_at_once(path)
        assert len(set(keys)) == 1 and len(keys[0]) == 64, f"round {round_}: {set(keys)}"
        assert [p.name for p in path.parent.iterdir()] == ["thread-secret-key"], "a partial file was left"


def test_a_configured_secret_wins_and_writes_nothing(tmp_path: Path):
    assert load_or_create_key("configured-secret", tmp_path / "key") == b"configured-secret"
    assert not (tmp_path / "key").exists()
