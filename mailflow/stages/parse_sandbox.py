"""Parsing in a child process with CPU, memory and wall-clock limits: the worker never parses mail itself.

Python's email parser is pure Python, but hostile input makes it slow (superlinear in header size),
deep (``RecursionError``) or large (every line of a 40 MB email becomes an object). So a long-lived
child, ``python -m mailflow.stages.parse_sandbox``, parses and applies ``Limits``; its address space is
capped with RLIMIT_AS and each email gets a CPU budget (RLIMIT_CPU, raised per email) and a wall
clock, after which the parent kills the child's process group and starts another for the next email.

Protocol, one email at a time. Parent: a JSON line ``{"size"}`` then ``size`` raw bytes. Child: a JSON
line, either ``{"message", "payloads"}`` followed by the attachments' bytes (``payloads`` their sizes,
in order), or ``{"refused": [code, detail]}``, or ``{"error"}``. JSON rather than pickle: the parent
must not execute what a child that read hostile bytes sends back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from datetime import datetime
from pathlib import Path
from typing import Any

from mailflow.allocator import return_large_buffers
from mailflow.domain import Attachment, ParsedMessage
from mailflow.errors import UnreadableMessage
from mailflow.stages.limits import TOO_COSTLY, UNREADABLE, Limits, MessageRefused

log = logging.getLogger(__name__)

MAX_JOBS_PER_WORKER = 500  # then a fresh child, so that fragmentation cannot pile up
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class ParseSandbox:
    """Parses emails in a reusable child process; thread-safe (one email at a time) and fork-aware."""

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        timeout: float = 60.0,
        memory_mb: int = 1024,
        python: str = sys.executable,
    ) -> None:
        self.limits = limits or Limits()
        self.timeout = timeout
        self.memory_mb = memory_mb
        self._python = python
        self._process: subprocess.Popen[bytes] | None = None
        self._owner = os.getpid()
        self._jobs = 0
        self._lock = threading.Lock()
        # A process forked while another thread parses (the nightly retraining's jobs) would inherit a
        # held lock and the parent's child: it starts afresh instead.
        me = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (sandbox := me()) is not None and sandbox._forked())

    def _forked(self) -> None:
        self._lock = threading.Lock()
        self._process, self._owner, self._jobs = None, os.getpid(), 0

    def parse(self, raw: bytes) -> ParsedMessage:
        """The parsed email; ``MessageRefused`` when it is over a limit or cannot be read at all."""
        with self._lock:
            if self._owner != os.getpid():  # a forked copy: the child process belongs to the parent
                self._process, self._owner = None, os.getpid()
            try:
                return self._ask(raw)
            except _ChildFailed as exc:
                self._kill()
                log.warning("parse worker %s; a fresh one parses the next email", exc.code_detail[1])
                raise MessageRefused(*exc.code_detail) from None
            except OSError as exc:  # no child could be started or fed: the email is not at fault
                self._kill()
                raise RuntimeError(f"parse worker unavailable: {type(exc).__name__}") from exc

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process and self._process.poll() is None else None

    def close(self) -> None:
        with self._lock:
            if self._owner == os.getpid():
                self._kill()

    def __enter__(self) -> ParseSandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _ask(self, raw: bytes) -> ParsedMessage:
        if self._jobs >= MAX_JOBS_PER_WORKER:
            self._kill()
        process = self._child()
        assert process.stdin is not None and process.stdout is not None
        deadline = time.monotonic() + self.timeout
        try:
            process.stdin.write(json.dumps({"size": len(raw)}).encode() + b"\n")
            process.stdin.write(raw)  # apart from the header line: no 40 MB concatenation
            process.stdin.flush()
        except OSError:
            raise _ChildFailed(self._death(process)) from None
        reader = _Reader(process.stdout.fileno(), deadline, lambda: self._death(process))
        self._jobs += 1
        try:
            answer = json.loads(reader.line())
        except ValueError:
            raise _ChildFailed((UNREADABLE, "the parse worker answered garbage")) from None
        if "refused" in answer:
            code, detail = answer["refused"]
            raise MessageRefused(code, detail)
        if "error" in answer:
            self._kill()  # it survived, maybe in a bad state (MemoryError): start afresh
            if answer["error"] == "MemoryError":
                raise MessageRefused(TOO_COSTLY, f"parsing needs more than {self.memory_mb} MB")
            raise MessageRefused(UNREADABLE, f"parsing failed ({answer['error']})")
        sizes = answer["payloads"]
        # Decoding never makes an email larger (an unpacked winmail.dat may be held beside its files):
        # a child announcing more is broken or subverted, and must not make the worker allocate it.
        if not all(type(size) is int and size >= 0 for size in sizes) or sum(sizes) > 2 * len(raw):
            raise _ChildFailed((UNREADABLE, "the parse worker answered garbage"))
        payloads = [reader.exact(size) for size in sizes]
        return decode_message(answer["message"], payloads)

    def _death(self, process: subprocess.Popen[bytes]) -> tuple[str, str]:
        """Why the child stopped answering: out of time, out of CPU, or a crash."""
        if process.poll() is None:  # a child that just closed its output may still be exiting
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.2)
        code = process.poll()
        if code is None:
            return TOO_COSTLY, f"parsing took longer than {self.timeout:g} s"
        if code == -signal.SIGXCPU:
            return TOO_COSTLY, f"parsing used more than {self.timeout:g} s of processor time"
        return UNREADABLE, f"the parse worker died (exit {code})"

    def _child(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._kill()
        path = os.pathsep.join(filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
        options = {
            "limits": dataclasses.asdict(self.limits),
            "cpu": self.timeout,
            "memory_mb": self.memory_mb,
        }
        self._process = subprocess.Popen(
            [self._python, "-m", "mailflow.stages.parse_sandbox", json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": path},
            start_new_session=True,
        )
        self._jobs = 0
        return self._process

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        for stream in (process.stdin, process.stdout):
            with contextlib.suppress(OSError):
                if stream:
                    stream.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


class _ChildFailed(Exception):
    def __init__(self, code_detail: tuple[str, str]) -> None:
        super().__init__(code_detail[1])
        self.code_detail = code_detail


class _Reader:
    """Reads the child's answer before a deadline: a line, then exact byte counts."""

    def __init__(self, fd: int, deadline: float, death: Any) -> None:
        self.fd, self.deadline, self.death = fd, deadline, death
        self.buffer = bytearray()

    def _readable(self) -> bool:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
            if time.monotonic() >= self.deadline:
                raise _ChildFailed(self.death())
            return False
        return True

    def _fill(self) -> None:
        if not self._readable():
            return
        chunk = os.read(self.fd, 1 << 20)
        if not chunk:
            raise _ChildFailed(self.death())
        self.buffer += chunk

    def line(self) -> bytes:
        while (end := self.buffer.find(b"\n")) < 0:
            self._fill()
        line = bytes(self.buffer[: end + 1])
        del self.buffer[: end + 1]
        return line

    def exact(self, size: int) -> bytes:
        """``size`` bytes, read into one buffer of their size (not grown chunk by chunk and sliced)."""
        data = bytearray(size)
        view = memoryview(data)
        filled = min(size, len(self.buffer))
        view[:filled] = self.buffer[:filled]
        del self.buffer[:filled]
        while filled < size:
            if not self._readable():
                continue
            count = os.readv(self.fd, [view[filled:]])
            if not count:
                raise _ChildFailed(self.death())
            filled += count
        view.release()
        return bytes(data)


# --- what crosses the pipe ------------------------------------------------------------------------

_ATTACHMENT_FIELDS = ("filename", "storage_name", "declared_type", "sniffed_type", "size", "sha256")


def encode_message(message: ParsedMessage) -> tuple[dict[str, Any], list[bytes]]:
    fields = {f.name: getattr(message, f.name) for f in dataclasses.fields(ParsedMessage)}
    fields["date"] = message.date.isoformat() if message.date else None
    fields["attachments"] = [
        {name: getattr(a, name) for name in _ATTACHMENT_FIELDS} for a in message.attachments
    ]
    return fields, [attachment.payload for attachment in message.attachments]


def decode_message(fields: dict[str, Any], payloads: list[bytes]) -> ParsedMessage:
    if len(payloads) != len(fields["attachments"]):
        raise _ChildFailed((UNREADABLE, "the parse worker answered garbage"))
    return ParsedMessage(
        message_id=fields["message_id"],
        in_reply_to=fields["in_reply_to"],
        references=tuple(fields["references"]),
        from_name=fields["from_name"],
        from_address=fields["from_address"],
        return_path=fields["return_path"],
        subject=fields["subject"],
        date=datetime.fromisoformat(fields["date"]) if fields["date"] else None,
        content_type=fields["content_type"],
        text=fields["text"],
        html=fields["html"],
        headers=tuple((str(name), str(value)) for name, value in fields["headers"]),
        attachments=tuple(
            Attachment(**{name: item[name] for name in _ATTACHMENT_FIELDS}, payload=payload)
            for item, payload in zip(fields["attachments"], payloads, strict=True)
        ),
        defects=tuple(fields["defects"]),
        dropped=tuple(fields["dropped"]),
    )


# --- the child ------------------------------------------------------------------------------------


def _limit(memory_mb: int) -> None:
    import resource

    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core dumps of personal mail


def _cpu_budget(seconds: float) -> None:
    """RLIMIT_CPU counts the process's whole life: allow ``seconds`` more from now (SIGXCPU after)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime + seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))


def child_main(argv: list[str]) -> int:
    from mailflow.stages.parse import parse

    options = json.loads(argv[0])
    limits = Limits(**options["limits"])
    _limit(options["memory_mb"])
    return_large_buffers()  # a long-lived child: one large email must not stay resident in it
    requests = sys.stdin.buffer
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    while True:
        header = requests.readline()
        if not header:
            return 0
        raw = requests.read(json.loads(header)["size"])
        _cpu_budget(options["cpu"])
        payloads: list[bytes] = []
        try:
            fields, payloads = encode_message(parse(raw, limits))
            answer: dict[str, Any] = {"message": fields, "payloads": [len(p) for p in payloads]}
        except MessageRefused as exc:
            answer = {"refused": [exc.code, exc.detail]}
        except UnreadableMessage as exc:
            answer = {"refused": [UNREADABLE, str(exc)]}
        except MemoryError:
            answer = {"error": "MemoryError"}
        except Exception as exc:  # a surprise in the parser must not kill the protocol
            answer = {"error": type(exc).__name__}
        del raw
        try:
            line = json.dumps(answer).encode() + b"\n"
        except MemoryError:
            line, payloads = b'{"error": "MemoryError"}\n', []
        answers.write(line)
        for payload in payloads:
            answers.write(payload)
        answers.flush()
        if "error" in answer:
            return 1


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
