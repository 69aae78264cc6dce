"""The soak test: thousands of emails through a real Dovecot and SMTP server while the worker is killed
and the servers are restarted, then an account of every email.

    python -m benchmarks.soak [--count 10000] [--kills 20] [--restarts 5]

The emails mix the development corpus (``../shared/corpus/dev``), the SpamAssassin groups that may be
trained on (``storage/corpora/spamassassin-train``, made by ``make corpora``), one email per row of the
hostile-input catalogue and generated bombs (1 000-deep nesting, 30 000 addresses, a 40 MB email, 60
attachments), each copy made unique by an ``X-Soak-Id`` header and its own Message-ID. One ``mailflow
run`` worker drains them; it is SIGKILLed ``--kills`` times, and Dovecot and the SMTP server are each
restarted ``--restarts`` times, spread over the run by progress. At the end: every email is in exactly
one outcome folder and in the archive export once, no email got two replies, no machine mail got a reply,
and ``mailflow audit verify`` says the log is intact. It prints the counts and the time.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

from aiosmtpd.controller import Controller
from imapclient import IMAPClient

from benchmarks.pipeline import worker_env
from mailflow.settings import PROJECT_ROOT
from tests.fixtures.catalogue_inputs import rows as catalogue_rows
from tests.fixtures.dovecot import start_dovecot
from tests.fixtures.dovecot_server import DovecotServer, _greets
from tests.fixtures.hostile import deep_multipart, large, many_attachments, many_cc
from tests.fixtures.smtp import RecordingHandler, free_port

FOLDERS = ("Processed", "Triage", "Ignored", "Quarantine")
DEV = PROJECT_ROOT.parent / "shared" / "corpus" / "dev"
SPAMASSASSIN = PROJECT_ROOT / "storage" / "corpora" / "spamassassin-train"
BOMB_EVERY = 1000  # one of each bomb per this many emails
MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*<([^>\r\n]*)>", re.IGNORECASE | re.MULTILINE)
SOAK_ID = re.compile(rb"X-Soak-Id:\s*(\d+)", re.IGNORECASE)


@dataclass
class Pool:
    """The emails a soak copies from: (kind, bytes)."""

    ordinary: list[tuple[str, bytes]]
    bombs: list[tuple[str, bytes]]

    @classmethod
    def load(cls) -> Pool:
        ordinary = [("dev", path.read_bytes()) for path in sorted(DEV.glob("*.eml"))]
        ordinary += [("spamassassin", path.read_bytes()) for path in sorted(SPAMASSASSIN.glob("*.eml"))]
        ordinary += [("catalogue", data) for _row, _tag, data in catalogue_rows()]
        if not ordinary:
            raise SystemExit(f"no emails found in {DEV} or {SPAMASSASSIN}: run make corpora")
        bombs = [
            ("bomb", deep_multipart(1000)),
            ("bomb", many_cc(30_000)),
            ("bomb", large(40)),
            ("bomb", many_attachments(60)),
        ]
        return cls(ordinary, bombs)

    def emails(self, count: int) -> list[tuple[str, bytes]]:
        chosen = []
        for n in range(count):
            if n % BOMB_EVERY == BOMB_EVERY // 2:
                kind, data = self.bombs[(n // BOMB_EVERY) % len(self.bombs)]
            else:
                kind, data = self.ordinary[n % len(self.ordinary)]
            chosen.append((kind, unique(data, n)))
        return chosen


def unique(data: bytes, number: int) -> bytes:
    """The email with its own soak id and Message-ID, so that no two copies are the same email."""
    data = MESSAGE_ID.sub(lambda m: b"Message-ID: <soak%d.%s>" % (number, m.group(1)), data, count=1)
    return b"X-Soak-Id: %d\r\n" % number + data


def is_machine_mail(data: bytes) -> bool:
    """Mail no automatic answer may go to (RFC 3834): auto-submitted, list, bulk or bounce."""
    parsed = BytesHeaderParser(policy=compat32).parsebytes(data[:65536])

    def header(name: str) -> str:  # compat32 gives a Header object for an undecodable value
        return str(parsed.get(name) or "").strip().lower()

    return (
        header("Auto-Submitted") not in {"", "no"}
        or header("Precedence") in {"bulk", "list", "junk"}
        or any(header(h) for h in ("List-Id", "List-Unsubscribe", "X-Autoreply", "X-Autorespond"))
        or header("Return-Path") == "<>"
        or "mailer-daemon" in header("From")
    )


@dataclass
class Servers:
    root: Path
    dovecot: DovecotServer
    handler: RecordingHandler = field(default_factory=RecordingHandler)
    smtp_port: int = field(default_factory=free_port)
    smtp: Controller | None = None

    def start_smtp(self) -> None:
        self.smtp = Controller(self.handler, hostname="127.0.0.1", port=self.smtp_port)
        self.smtp.start()

    def restart_smtp(self) -> None:
        assert self.smtp is not None
        self.smtp.stop()
        time.sleep(2)  # the worker meets a refused connection
        self.start_smtp()

    def restart_dovecot(self) -> None:
        """Stop Dovecot (every session dies mid-command) and start it again on the same port."""
        server = self.dovecot
        server.stop()
        time.sleep(2)
        with open(server.root / "stderr.log", "ab") as stderr:
            server.process = subprocess.Popen(
                [shutil.which("dovecot") or "/usr/sbin/dovecot", "-F", "-c", str(server.config_path)],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + 30
        while not _greets(server.port):
            if time.monotonic() > deadline:
                raise SystemExit("Dovecot did not come back")
            time.sleep(0.2)


def imap(server: DovecotServer, user: str, password: str) -> IMAPClient:
    client = IMAPClient(server.host, server.port, ssl=False, timeout=120)
    client.login(user, password)
    return client


def filed(server: DovecotServer, user: str, password: str) -> int:
    """Emails out of the inbox so far (0 while Dovecot is down)."""
    try:
        client = imap(server, user, password)
        try:
            return sum(
                int(client.folder_status(f, [b"MESSAGES"])[b"MESSAGES"])
                for f in FOLDERS
                if client.folder_exists(f)
            )
        finally:
            client.logout()
    except Exception:
        return 0


def soak_ids(client: IMAPClient, folder: str) -> list[int]:
    if not client.folder_exists(folder):
        return []
    client.select_folder(folder, readonly=True)
    uids = client.search()
    found = client.fetch(uids, [b"BODY.PEEK[HEADER.FIELDS (X-SOAK-ID)]"]) if uids else {}
    ids = []
    for item in found.values():
        match = SOAK_ID.search(next(v for k, v in item.items() if k.startswith(b"BODY")) or b"")
        ids.append(int(match.group(1)) if match else -1)
    return ids


def open_replies(database: Path) -> int:
    """Replies still to send (pending or being sent); -1 while the database cannot be read."""
    import sqlite3

    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
            return connection.execute(
                "SELECT count(*) FROM replies WHERE status IN ('pending', 'sending')"
            ).fetchone()[0]
    except sqlite3.Error:
        return -1


def schedule(count: int, kills: int, restarts: int) -> list[tuple[int, str]]:
    """(emails filed, what to do then): the faults spread over the run by progress."""
    marks = [(count * (n + 1) // (kills + 1), "kill worker") for n in range(kills)]
    marks += [(count * (2 * n + 1) // (2 * restarts + 2), "restart dovecot") for n in range(restarts)]
    marks += [(count * (4 * n + 3) // (4 * restarts + 4), "restart smtp") for n in range(restarts)]
    return sorted(marks)


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: subprocess.Popen[bytes] | None = None
        self.unexpected_exits = 0

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mailflow.cli", "run"], env=self.env, stdout=output, stderr=output
            )

    def ensure_running(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            self.unexpected_exits += 1
            self.start()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.start()

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=120)


def mailflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailflow.cli", *args], env=env, capture_output=True, text=True, timeout=600
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds before giving up")
    parser.add_argument("--keep", action="store_true", help="keep the data directory and logs")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="mailflow-soak-"))
    servers = Servers(root, start_dovecot(root / "dovecot"))
    servers.start_smtp()
    try:
        user, password = servers.dovecot.add_user()
        emails = Pool.load().emails(args.count)
        machine = {n for n, (_kind, data) in enumerate(emails) if is_machine_mail(data)}
        client = imap(servers.dovecot, user, password)
        for _kind, data in emails:
            client.append("INBOX", data)
        client.logout()
        kinds = Counter(kind for kind, _ in emails)
        print(f"{args.count} emails in the inbox: {dict(kinds)}; {len(machine)} of them machine mail")

        env = worker_env(
            servers.dovecot, user, password, servers.smtp_port, root / "data", replies=args.count
        )
        env.update({"MAILFLOW_TRUSTED_AUTHSERV_ID": "mx.stad.gent", "MAILFLOW_POLL_INTERVAL": "10"})
        worker = Worker(env, root / "worker.log")
        plan, done = schedule(args.count, args.kills, args.restarts), Counter[str]()
        started = last_said = time.monotonic()
        worker.start()
        while True:
            worker.ensure_running()
            progress = filed(servers.dovecot, user, password)
            if time.monotonic() - last_said > 60:
                last_said = time.monotonic()
                print(
                    f"  {last_said - started:6.0f} s: {progress} filed, faults so far {dict(done)}",
                    flush=True,
                )
            while plan and progress >= plan[0][0]:
                _mark, action = plan.pop(0)
                {"kill worker": worker.kill, "restart dovecot": servers.restart_dovecot,
                 "restart smtp": servers.restart_smtp}[action]()  # fmt: skip
                done[action] += 1
            if progress >= args.count and not plan and open_replies(root / "data" / "mailflow.sqlite3") == 0:
                break
            if time.monotonic() - started > args.timeout:
                print(f"gave up after {args.timeout:.0f} s with {progress} of {args.count} filed")
                break
            time.sleep(1)
        seconds = time.monotonic() - started
        code = worker.stop()
        report(args.count, seconds, done, worker, code, servers, (user, password), env, machine)
    finally:
        if servers.smtp is not None:
            servers.smtp.stop()
        servers.dovecot.stop()
        if args.keep:
            print(f"kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


REPLY_TO_SOAK = re.compile(r"<soak(\d+)\.")


def report(count: int, seconds: float, done: Counter[str], worker: Worker, code: int, servers: Servers,
           account: tuple[str, str], env: dict[str, str], machine: set[int]) -> None:  # fmt: skip
    client = imap(servers.dovecot, *account)
    try:
        client.select_folder("INBOX", readonly=True)
        left = len(client.search())
        where: Counter[int] = Counter()
        for folder in FOLDERS:
            where.update(soak_ids(client, folder))
    finally:
        client.logout()
    exported = [
        json.loads(line) for line in mailflow(env, "archive", "export", "--jsonl").stdout.splitlines()
    ]
    by_sha = Counter(entry["sha256"] for entry in exported)
    sent = sum(1 for entry in exported for reply in entry["replies"] if reply["status"] == "sent")
    answered = Counter(str(r.message.get("In-Reply-To") or "") for r in servers.handler.received)
    answered_soaks = [int(m.group(1)) for key in answered if (m := REPLY_TO_SOAK.search(key))]
    verify = mailflow(env, "audit", "verify")
    in_folders = [where[n] for n in range(count)]
    print(f"soak: {count} emails in {seconds / 60:.1f} min ({count / seconds:.1f} emails/s)")
    print(
        f"  faults: {dict(done)}; worker exits we did not cause: {worker.unexpected_exits}; last exit {code}"
    )
    print(f"  left in the inbox: {left}")
    print(f"  in exactly one outcome folder: {in_folders.count(1)}")
    print(f"  lost (in no folder): {in_folders.count(0)}")
    print(f"  duplicated (in a folder twice or in two): {sum(n > 1 for n in in_folders)}")
    print(f"  unknown messages in the folders: {sum(v for k, v in where.items() if not 0 <= k < count)}")
    twice = sum(v > 1 for v in by_sha.values())
    print(f"  archive export: {len(exported)} entries, {len(by_sha)} distinct, {twice} twice")
    print(f"  replies: {sent} sent in the ledger, {len(servers.handler.received)} received by SMTP, "
          f"{sum(v > 1 for k, v in answered.items() if k)} emails answered twice")  # fmt: skip
    to_machine = sum(n in machine for n in answered_soaks)
    print(f"  replies to machine mail: {to_machine} (of {len(machine)} machine emails)")
    print(f"  audit verify: {(verify.stdout or verify.stderr).strip()} (exit {verify.returncode})")


if __name__ == "__main__":
    main()
