"""The worker's peak memory with one large email, through a real Dovecot.

    python -m benchmarks.memory [--megabytes 35] [--set MAILFLOW_USE_MODEL=false ...]

Runs ``mailflow poll-once`` twice on fresh mailboxes: once with a small email alone (what the worker
needs anyway: its libraries and models), once with a resident's email of about MEGABYTES (a text, a
real PDF and photos of random bytes, base64 encoded as mail clients send them) before the small one.
Prints, for each, the worker process's own peak resident memory (``VmHWM``, sampled from /proc while
it runs), the peak of each process it started (the parse and text readers, sandboxed children with
their own memory caps), the largest of them all (``wait4``'s ``ru_maxrss``), and where the emails
ended.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from imapclient import IMAPClient

from benchmarks.generate import pdf_with_text
from benchmarks.pipeline import worker_env
from tests.fixtures.dovecot import start_dovecot
from tests.fixtures.smtp import RecordingHandler, free_port

FOLDERS = ("INBOX", "Processed", "Triage", "Ignored", "Quarantine")


def large_email(megabytes: float, *, seed: int = 35) -> bytes:
    """A resident's email of about ``megabytes`` MB on the wire: photos make up the bulk."""
    import random

    message = EmailMessage()
    message["From"] = "Amina El Amrani <amina@example.org>"
    message["To"] = "migratie@stad.gent"
    message["Subject"] = "Verlenging bijlage 35 met foto's"
    message["Message-ID"] = f"<large-{seed}@example.org>"
    message.set_content("Goeiedag,\nIn bijlage mijn bijlage 35 en foto's van mijn paspoort.\nAmina\n")
    message.add_attachment(
        pdf_with_text("BIJLAGE 35 - Dienst Vreemdelingenzaken"),
        maintype="application",
        subtype="pdf",
        filename="bijlage35.pdf",
    )
    rng = random.Random(seed)
    photos = 5
    decoded = int(megabytes * 1_000_000 * 3 / 4)  # base64 makes 4 bytes of every 3
    for number in range(photos):
        # A JPEG start marker, then noise: sniffed as a photo, unreadable to the decoder (fast to refuse).
        photo = b"\xff\xd8\xff\xe0" + rng.randbytes(decoded // photos - 4)
        message.add_attachment(photo, maintype="image", subtype="jpeg", filename=f"paspoort-{number}.jpg")
    return message.as_bytes()


def small_email() -> bytes:
    message = EmailMessage()
    message["From"] = "Jonas Peeters <jonas@example.org>"
    message["To"] = "migratie@stad.gent"
    message["Subject"] = "Afspraak verblijfskaart"
    message["Message-ID"] = "<small-after-large@example.org>"
    message.set_content("Hallo,\nMijn verblijfskaart vervalt. Kan ik een afspraak maken?\nJonas\n")
    return message.as_bytes()


def high_water_mark(pid: int) -> int:
    """The process's peak resident memory so far, in KiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_worker(env: dict[str, str]) -> tuple[float, int, int, str]:
    """(seconds, worker's own peak KiB, peak KiB of it or any descendant, output) of one poll-once."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "mailflow.cli", "poll-once"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    peak = [0]
    output: list[bytes] = []
    readers = [
        threading.Thread(target=lambda s=stream: output.append(s.read()), daemon=True)
        for stream in (process.stdout, process.stderr)
    ]
    for reader in readers:
        reader.start()

    children: dict[int, tuple[str, int]] = {}  # pid → (command, peak KiB)

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], high_water_mark(process.pid))
            for pid in descendants(process.pid):
                name, kib = children.get(pid, (command_of(pid), 0))
                children[pid] = (name, max(kib, high_water_mark(pid)))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    sampler.join()
    for reader in readers:
        reader.join()
    text = b"".join(output).decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"mailflow poll-once failed:\n{text}")
    for name, kib in sorted(children.values()):
        if kib:  # not a child gone before its first sample
            print(f"  peak RSS of {name}: {kib / 1024:.0f} MiB")
    return time.perf_counter() - started, peak[0], usage.ru_maxrss, text.strip()


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            for task in os.listdir(f"/proc/{parent}/task"):
                with open(f"/proc/{parent}/task/{task}/children") as listing:
                    todo.extend(int(child) for child in listing.read().split())
        except OSError:
            continue
        if parent != pid:
            found.append(parent)
    return found


def command_of(pid: int) -> str:
    """A child's name: the mailflow module it runs (the parse or the text reader), else its program."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            words = cmdline.read().decode(errors="replace").split("\0")
    except OSError:
        return f"process {pid}"
    module = next((w for w in words if w.startswith("mailflow.")), None)
    return f"the child {module}" if module else f"the child {Path(words[0]).name} (pid {pid})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megabytes", type=float, default=35.0)
    parser.add_argument("--set", action="append", default=[], metavar="MAILFLOW_X=VALUE", help="a setting")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.set)

    root = Path(tempfile.mkdtemp(prefix="mailflow-memory-"))
    server = start_dovecot(root / "dovecot")
    smtp = Controller(RecordingHandler(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    big = large_email(args.megabytes)
    try:
        figures = {}
        for label, emails in (("small email alone", [small_email()]), ("large email", [big, small_email()])):
            user, password = server.add_user()
            client = IMAPClient(server.host, server.port, ssl=False, timeout=60)
            client.login(user, password)
            for data in emails:
                client.append("INBOX", data)
            env = worker_env(server, user, password, smtp.port, root / f"data-{user}", replies=10)
            env.update(extra)
            seconds, own_kib, tree_kib, output = run_worker(env)
            counts = {}
            for folder in FOLDERS:
                if client.folder_exists(folder):
                    client.select_folder(folder, readonly=True)
                    counts[folder] = len(client.search("ALL"))
            client.logout()
            figures[label] = own_kib
            print(f"{label}: poll-once took {seconds:.1f} s [{output}]")
            print(f"  peak RSS of the worker process (VmHWM): {own_kib / 1024:.0f} MiB")
            # A child started by fork and exec inherits the worker's mark at that moment in ru_maxrss.
            print(
                f"  peak RSS of the worker or any process it started (ru_maxrss): {tree_kib / 1024:.0f} MiB"
            )
            print("  folders: " + ", ".join(f"{name} {count}" for name, count in counts.items()))
        added = (figures["large email"] - figures["small email alone"]) / 1024
        print(f"the email of {len(big) / 1e6:.1f} MB added {added:.0f} MiB to the worker's peak")
    finally:
        smtp.stop()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
