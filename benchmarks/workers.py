"""Emails per second for one worker and for several draining one mailbox together, on PostgreSQL.

    python -m benchmarks.workers [--count 500] [--workers 1 3]

For each number of workers: a fresh Dovecot account holding COUNT generated text emails, an empty
PostgreSQL database, and that many ``mailflow poll-once`` processes started at the same instant, replies
going to a local SMTP server. The time runs from their start until the last one exits (start-up and
schema creation included, the same for every row), so the rates compare as an operator would see them.
Needs Debian's postgresql and dovecot-imapd, like the tests.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.controller import Controller
from imapclient import IMAPClient

from benchmarks.generate import generate
from benchmarks.pipeline import worker_env
from tests.fixtures.dovecot import start_dovecot
from tests.fixtures.dovecot_server import DovecotServer
from tests.fixtures.postgres import PostgresServer, start_postgres
from tests.fixtures.smtp import RecordingHandler, free_port


@dataclass
class Run:
    workers: int
    seconds: float
    processed: list[int]
    replies: int
    left_in_inbox: int

    @property
    def rate(self) -> float:
        return sum(self.processed) / self.seconds


def fill_mailbox(server: DovecotServer, count: int) -> tuple[str, str]:
    user, password = server.add_user()
    client = IMAPClient(server.host, server.port, ssl=False, timeout=60)
    client.login(user, password)
    for data in generate(count, pdf_share=0.0):
        client.append("INBOX", data)
    client.logout()
    return user, password


def inbox_count(server: DovecotServer, user: str, password: str) -> int:
    client = IMAPClient(server.host, server.port, ssl=False, timeout=60)
    client.login(user, password)
    count = int(client.select_folder("INBOX", readonly=True)[b"EXISTS"])
    client.logout()
    return count


def drain(workers: int, count: int, dovecot: DovecotServer, postgres: PostgresServer, root: Path) -> Run:
    user, password = fill_mailbox(dovecot, count)
    handler = RecordingHandler()
    smtp = Controller(handler, hostname="127.0.0.1", port=free_port())
    smtp.start()
    database = postgres.create_database()
    try:
        env = worker_env(dovecot, user, password, smtp.port, root / f"data-{workers}", replies=count)
        env.update(
            {
                "MAILFLOW_DATABASE_URL": postgres.url(database),
                "MAILFLOW_TRUSTED_AUTHSERV_ID": "mx.stad.gent",
            }
        )
        command = [sys.executable, "-m", "mailflow.cli", "poll-once"]
        started = time.perf_counter()
        processes = [
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(workers)
        ]
        outputs = [process.communicate()[0] for process in processes]
        seconds = time.perf_counter() - started
        for process, output in zip(processes, outputs, strict=True):
            if process.returncode != 0:
                raise SystemExit(f"a worker failed:\n{output}")
        processed = [int(m.group(1)) if (m := re.search(r"processed (\d+)", o)) else 0 for o in outputs]
        left = inbox_count(dovecot, user, password)
        return Run(workers, seconds, processed, len(handler.received), left)
    finally:
        smtp.stop()
        postgres.drop_database(database)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 3])
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="mailflow-bench-workers-"))
    # Its own directory: the cluster runs as the postgres user, who cannot enter ``root``.
    cluster = Path(tempfile.mkdtemp(prefix="mailflow-bench-postgres-"))
    dovecot = start_dovecot(root / "dovecot")
    postgres = start_postgres(cluster)
    try:
        runs = [drain(n, args.count, dovecot, postgres, root) for n in args.workers]
    finally:
        postgres.stop()
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(cluster, ignore_errors=True)

    print(f"{args.count} text emails, PostgreSQL, mailflow poll-once processes started together")
    print(f"{'workers':>7}  {'seconds':>8}  {'emails/s':>8}  {'speed-up':>8}  {'replies':>7}  split")
    for run in runs:
        print(
            f"{run.workers:>7}  {run.seconds:>8.1f}  {run.rate:>8.1f}  {run.rate / runs[0].rate:>7.2f}x"
            f"  {run.replies:>7}  {'/'.join(map(str, run.processed))}"
            + (f"  ({run.left_in_inbox} left in the inbox!)" if run.left_in_inbox else "")
        )


if __name__ == "__main__":
    main()
