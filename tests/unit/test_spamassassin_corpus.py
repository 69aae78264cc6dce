"""The SpamAssassin corpus as labelled emails: the mbox line dropped, spam and ham labelled."""

from __future__ import annotations

import json
from pathlib import Path

from mailflow.evaluation.spamassassin import EVALUATION_GROUPS, TRAINING_GROUPS, write_labelled


def test_groups_become_labelled_emails(tmp_path: Path):
    data = tmp_path / "data"
    for group in ("spam-1", "easy-ham-1"):
        (data / group).mkdir(parents=True)
        for n in range(4):
            (data / group / f"0000{n}.abc.txt").write_bytes(
                b"From someone@example.com  Thu Aug 22 12:36:23 2002\nSubject: hi\n\n\xe9t\xe9\n"
            )
    count = write_labelled(data, ("spam-1", "easy-ham-1"), tmp_path / "out", per_group=3)
    assert count == 6
    labels = [json.loads(line) for line in (tmp_path / "out" / "labels.jsonl").read_text().splitlines()]
    assert {(label["category"], label["action"]) for label in labels} == {
        ("spam", "ignore"),
        ("unclear", "triage"),
    }
    first = (tmp_path / "out" / labels[0]["file"]).read_bytes()
    assert first.startswith(b"Subject: hi") and b"\xe9t\xe9" in first


def test_list_mail_is_machine_mail_even_in_ham(tmp_path: Path):
    data = tmp_path / "data" / "easy-ham-1"
    data.mkdir(parents=True)
    (data / "00001.a.txt").write_bytes(b"From x\nList-Id: <zzz.example.org>\nSubject: a\n\nhi\n")
    (data / "00002.b.txt").write_bytes(b"From x\nPrecedence: bulk\nSubject: b\n\nhi\n")
    (data / "00003.c.txt").write_bytes(b"From x\nSubject: c\n\nhi\n")
    write_labelled(tmp_path / "data", ("easy-ham-1",), tmp_path / "out")
    labels = [json.loads(line) for line in (tmp_path / "out" / "labels.jsonl").read_text().splitlines()]
    assert [label["category"] for label in labels] == ["spam", "spam", "unclear"]


def test_training_and_evaluation_groups_never_overlap():
    assert not set(TRAINING_GROUPS) & set(EVALUATION_GROUPS)
