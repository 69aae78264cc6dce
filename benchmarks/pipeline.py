"""Raw IMAP fetch rate against the whole pipeline's rate, on one real Dovecot, in one run.

    python -m benchmarks.pipeline [--count 2000] [--pdf-share 0.2]

Appends COUNT generated emails (a share with PDF attachments) to a fresh Dovecot account, measures how
fast imapclient alone fetches them (BODY.PEEK[] in the worker's batch size), then runs
``mailflow poll-once`` on the same mailbox with replies going to a local SMTP server, and prints both
rates, their ratio and the worker's peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from imapclient import IMAPClient

from benchmarks.generate import generate
from tests.fixtures.dovecot import start_dovecot
from tests.fixtures.smtp import RecordingHandler, free_port


def raw_fetch_rate(host: str, port: int, user: str, password: str, batch: int) -> tuple[float, int, int]:
    client = IMAPClient(host, port, ssl=False, timeout=60)
    client._imap.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.login(user, password)
    client.select_folder("INBOX", readonly=True)
    started = time.perf_counter()
    uids = client.search("ALL")
    fetched = total_bytes = 0
    for start in range(0, len(uids), batch):
        for data in client.fetch(uids[start : start + batch], [b"BODY.PEEK[]"]).values():
            total_bytes += len(data[b"BODY[]"])
            fetched += 1
    elapsed = time.perf_counter() - started
    client.logout()
    return elapsed, fetched, total_bytes


def worker_env(server, user: str, password: str, smtp_port: int, data_dir: Path, *, replies: int) -> dict:
    """The environment of a ``mailflow`` process reading ``server`` and replying through local SMTP."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    env.update(
        {
            "MAILFLOW_IMAP_HOST": server.host,
            "MAILFLOW_IMAP_PORT": str(server.port),
            "MAILFLOW_IMAP_USER": user,
            "MAILFLOW_IMAP_PASSWORD": password,
            "MAILFLOW_IMAP_SECURITY": "none",
            "MAILFLOW_SMTP_HOST": "127.0.0.1",
            "MAILFLOW_SMTP_PORT": str(smtp_port),
            "MAILFLOW_SMTP_SECURITY": "none",
            "MAILFLOW_DATA_DIR": str(data_dir),
            # Every email comes from another sender: lift the hourly cap so every reply is sent.
            "MAILFLOW_REPLY_HOURLY_CAP": str(2 * replies),
        }
    )
    return env


def run_pipeline(env: dict[str, str]) -> tuple[float, int, str]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "mailflow.cli", "poll-once"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    output = process.stdout.read().decode() + process.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"mailflow poll-once failed:\n{output}")
    return elapsed, usage.ru_maxrss, output.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--pdf-share", type=float, default=0.2)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="mailflow-bench-"))
    server = start_dovecot(root / "dovecot")
    smtp = Controller(RecordingHandler(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        user, password = server.add_user()
        client = IMAPClient(server.host, server.port, ssl=False, timeout=60)
        client.login(user, password)
        started = time.perf_counter()
        with_pdf = 0
        for data in generate(args.count, args.pdf_share):
            with_pdf += b"application/pdf" in data
            client.append("INBOX", data)
        print(
            f"appended {args.count} emails ({with_pdf} with a PDF) in {time.perf_counter() - started:.1f} s"
        )
        client.logout()

        fetch_s, fetched, size = raw_fetch_rate(server.host, server.port, user, password, args.batch)
        fetch_rate = fetched / fetch_s
        print(
            f"raw fetch (imapclient, BODY.PEEK[], batches of {args.batch}): {fetched} emails, "
            f"{size / 1e6:.1f} MB in {fetch_s:.2f} s = {fetch_rate:,.0f} emails/s"
        )

        env = worker_env(server, user, password, smtp.port, root / "data", replies=args.count)
        env["MAILFLOW_IMAP_BATCH_SIZE"] = str(args.batch)
        env["MAILFLOW_TRUSTED_AUTHSERV_ID"] = "mx.stad.gent"
        pipeline_s, peak_kib, output = run_pipeline(env)
        pipeline_rate = args.count / pipeline_s
        print(
            f"pipeline (mailflow poll-once, whole process incl. start-up): {args.count} emails in "
            f"{pipeline_s:.2f} s = {pipeline_rate:,.1f} emails/s  [{output}]"
        )
        print(
            f"ratio pipeline/raw fetch: {pipeline_rate / fetch_rate:.3f} "
            f"(the pipeline runs at {100 * pipeline_rate / fetch_rate:.1f} % of the raw fetch rate)"
        )
        print(f"peak RSS of the worker: {peak_kib / 1024:.0f} MiB")
        print(f"replies received by the SMTP server: {len(smtp.handler.received)}")
    finally:
        smtp.stop()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
