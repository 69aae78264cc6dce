"""Text extraction in a child process with a wall-clock timeout and a memory limit.

PDFs and images come from strangers and are parsed by C libraries (pdfium, libjpeg, Tesseract): a
crafted file may hang, eat memory or crash its process. So they are read by a long-lived worker,
``python -m mailflow.stages.text_sandbox``, whose address space is capped with RLIMIT_AS; the parent
kills the worker's whole process group when an attachment overruns its time, or when the worker dies,
and starts a fresh one for the next attachment.

Protocol, one request at a time: the parent writes a JSON header line ``{"type", "size", "ocr",
"timeout"}`` and then ``size`` bytes; the worker answers with one JSON line ``{"text", "reasons",
"ocr_pages", "seconds"}`` or ``{"error"}``.
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
from pathlib import Path

from mailflow.allocator import return_large_buffers
from mailflow.stages.document_text import PageText, ReaderOptions, read_document

log = logging.getLogger(__name__)

# A worker is replaced after this many attachments, so that leaks in C libraries cannot pile up.
MAX_JOBS_PER_WORKER = 200
MAX_INPUT_BYTES = 64 * 1024 * 1024
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class TextSandbox:
    """A reusable worker process reading attachments' text; thread-safe (one attachment at a time)."""

    def __init__(self, options: ReaderOptions | None = None, *, python: str = sys.executable) -> None:
        self.options = options or ReaderOptions()
        self._python = python
        self._process: subprocess.Popen[bytes] | None = None
        self._jobs = 0
        self._lock = threading.Lock()

    def read(self, data: bytes, sniffed_type: str, *, ocr: bool, timeout: float | None = None) -> PageText:
        """The attachment's text; never raises for a bad attachment: reasons say what went wrong.

        ``timeout`` overrides the options' wall-clock limit for this attachment.
        """
        if len(data) > MAX_INPUT_BYTES:
            return PageText("", (f"too large to read ({len(data) // 1_000_000} MB)",))
        with self._lock:
            try:
                return self._ask(data, sniffed_type, ocr, timeout or self.options.timeout_seconds)
            except _WorkerFailed as exc:
                log.warning("text worker %s: killed, a fresh one reads the next attachment", exc)
                self._kill()
                return PageText("", (f"text extraction {exc}",))
            except OSError as exc:  # no worker could be started (no memory, no processes left)
                log.error("text worker cannot start: %s", exc)
                self._kill()
                return PageText("", (f"text extraction unavailable: {type(exc).__name__}",))

    def close(self) -> None:
        with self._lock:
            self._kill()

    def __enter__(self) -> TextSandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The current worker's process id (for tests and diagnostics)."""
        return self._process.pid if self._process and self._process.poll() is None else None

    def _ask(self, data: bytes, sniffed_type: str, ocr: bool, timeout: float) -> PageText:
        if self._jobs >= MAX_JOBS_PER_WORKER:
            self._kill()
        process = self._worker()
        deadline = time.monotonic() + timeout
        request = {"type": sniffed_type, "size": len(data), "ocr": ocr, "timeout": timeout}
        header = json.dumps(request).encode()
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(header + b"\n" + data)
            process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise _WorkerFailed("crashed") from exc
        line = _read_line(process.stdout.fileno(), deadline, timeout)
        self._jobs += 1
        try:
            answer = json.loads(line)
        except ValueError as exc:
            raise _WorkerFailed("answered garbage") from exc
        if "error" in answer:
            # The worker survived but may be in a bad state (MemoryError): start afresh next time.
            self._kill()
            return PageText("", (f"text extraction failed: {answer['error']}",))
        return PageText(
            text=answer["text"],
            reasons=tuple(answer["reasons"]),
            ocr_pages=answer["ocr_pages"],
            seconds=answer["seconds"],
        )

    def _worker(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._kill()
        path = os.pathsep.join(filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
        options = json.dumps(dataclasses.asdict(self.options))
        self._process = subprocess.Popen(
            [self._python, "-m", "mailflow.stages.text_sandbox", options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": path},
            # Its own process group: a timeout kills the worker and any Tesseract it started.
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


class _WorkerFailed(Exception):
    pass


def _read_line(fd: int, deadline: float, timeout: float) -> bytes:
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _WorkerFailed(f"timed out after {timeout:g}s")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            raise _WorkerFailed("crashed (worker died)")
        chunks.append(chunk)
        if chunk.endswith(b"\n"):
            return b"".join(chunks)


# --- the worker ----------------------------------------------------------------------------------


def _limit_memory(megabytes: int) -> None:
    import resource

    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # No core dumps of documents full of personal data.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def worker_main(argv: list[str]) -> int:
    options = ReaderOptions(**json.loads(argv[0]))
    _limit_memory(options.memory_mb)
    return_large_buffers()  # a long-lived child: one large email must not stay resident in it
    requests = sys.stdin.buffer
    # The protocol owns the real stdout; C libraries that print would otherwise corrupt it.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    while True:
        header = requests.readline()
        if not header:
            return 0
        request = json.loads(header)
        data = requests.read(request["size"])
        try:
            result = read_document(
                data, request["type"], options, ocr_enabled=request["ocr"], timeout=request["timeout"]
            )
            answer = {
                "text": result.text,
                "reasons": list(result.reasons),
                "ocr_pages": result.ocr_pages,
                "seconds": round(result.seconds, 3),
            }
        except MemoryError:
            answer = {"error": "memory limit reached"}
        except Exception as exc:  # a bug or a library's surprise must not kill the protocol
            answer = {"error": type(exc).__name__}
        answers.write(json.dumps(answer).encode() + b"\n")
        answers.flush()
        if "error" in answer:
            return 1


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
