"""`mailflow web` as a real process on 127.0.0.1, and a hand-driven HTTP client that can speak from
another loopback address (127.0.0.2) and show every header and cookie as the server sent it."""

from __future__ import annotations

import http.client
import os
import queue
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"web desk on http://[^:]+:(\d+)/")
_COOKIE = re.compile(r"^(mailflow_session)=([^;]*)")


def clean_environment(**settings: str) -> dict[str, str]:
    """This machine's environment without its MAILFLOW_* settings, plus ``settings`` and this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update({f"MAILFLOW_{name.upper()}": value for name, value in settings.items()})
    return env


class DeskProcess:
    """A child process whose stderr is read line by line; started by ``start``, stopped by signals."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"never printed {pattern!r}; output:\n{''.join(self.output)}")

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> tuple[int, float]:
        """Send ``sig``; the exit status and the seconds it took to exit."""
        started = time.monotonic()
        self.process.send_signal(sig)
        status = self.process.wait(timeout=timeout)
        return status, time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def start_desk(*options: str, **settings: str) -> tuple[DeskProcess, int]:
    """``mailflow web --port 0 OPTIONS`` with ``settings``; the process and the port it listens on."""
    argv = [sys.executable, "-c", "from mailflow.cli import main; main()", "web", "--port", "0", *options]
    desk = DeskProcess(argv, clean_environment(**settings))
    port = int(desk.wait_for(_LISTENING.pattern).group(1))
    return desk, port


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    text: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def session_cookie(self) -> str | None:
        """The Set-Cookie line of the session, as sent."""
        return next((c for c in self.headers.get_all("Set-Cookie") or [] if _COOKIE.match(c)), None)


@dataclass
class Visitor:
    """One person's requests to the desk from ``source``, keeping the session cookie by hand (a cookie
    jar would keep back a Secure cookie over http, which is what a TLS proxy in front would carry)."""

    port: int
    source: str = "127.0.0.1"
    headers: dict[str, str] = field(default_factory=dict)
    cookie: str | None = None
    tls: bool = False  # HTTPS to a test proxy, whose certificate is its own

    def _connect(self) -> http.client.HTTPConnection:
        source = (self.source, 0)
        if self.tls:
            unchecked = ssl._create_unverified_context()
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=unchecked)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=source)

    def request(self, method: str, path: str, form: dict[str, str] | None = None, **headers: str) -> Answer:
        connection = self._connect()
        sent = {**self.headers, **{k.replace("_", "-"): v for k, v in headers.items()}}
        body = None
        if form is not None:
            body = urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookie:
            sent["Cookie"] = f"mailflow_session={self.cookie}"
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            answer = Answer(response.status, response.headers, response.read().decode())
        finally:
            connection.close()
        if answer.session_cookie and (found := _COOKIE.match(answer.session_cookie)):
            self.cookie = found.group(2)
        return answer
