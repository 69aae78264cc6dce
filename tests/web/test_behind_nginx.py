"""The README's nginx example, for real: Debian's nginx terminating TLS in front of `mailflow web`, and
chromium logging in through it. nginx reaches the desk from 127.0.0.2, the only trusted proxy, so the
address the desk logs (127.0.0.1, chromium's) can only have come from X-Forwarded-For."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.smtp import free_port
from tests.web.browser import chromium, missing
from tests.web.conftest import PASSWORD, build_world, csrf_token, desk_settings, emails
from tests.web.served import ROOT, Visitor, start_desk
from tests.web.test_served_desk import attempts_from

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PROXY_ADDRESS = "127.0.0.2"


def readme_nginx_example() -> str:
    found = re.search(r"```nginx\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert found, "the README has no nginx example"
    return found.group(1)


def site_config(desk_port: int, https_port: int, http_port: int, certificate: Path, key: Path) -> str:
    """The README's example with this machine's ports and certificate, and nginx speaking from 127.0.0.2."""
    site = readme_nginx_example()
    for old, new in {
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "/etc/ssl/certs/loket.stad.gent.pem": str(certificate),
        "/etc/ssl/private/loket.stad.gent.key": str(key),
        "proxy_pass http://127.0.0.1:8080;": f"proxy_pass http://127.0.0.1:{desk_port};\n"
        f"        proxy_bind {PROXY_ADDRESS};",
    }.items():
        assert old in site, f"the README's nginx example no longer has {old!r}"
        site = site.replace(old, new)
    return site


def main_config(directory: Path) -> str:
    # As root, nginx's workers would become "nobody", who cannot enter pytest's private temporary folders.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "".join(
        f"    {kind}_temp_path {directory / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'};\nevents {{ worker_connections 64; }}\n"
        f"http {{\n    access_log {directory / 'access.log'};\n{temp}"
        f"    include {directory / 'site.conf'};\n}}\n"
    )


@dataclass
class Proxied:
    https_port: int
    http_port: int
    data_dir: Path


@pytest.fixture(scope="module")
def proxied(tmp_path_factory) -> Iterator[Proxied]:
    if not Path(NGINX).exists():
        missing("no nginx (apt-get install nginx)")
    directory = tmp_path_factory.mktemp("nginx")
    data_dir = directory / "data"
    build_world(desk_settings(data_dir), {"renewal": emails.renewal_request()}).app.close()
    key, certificate = directory / "key.pem", directory / "certificate.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1"),
            *("-keyout", str(key), "-out", str(certificate), "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    desk, desk_port = start_desk(
        data_dir=str(data_dir),
        secret_key="test-secret-key-of-enough-length",
        desk_language="en",
        web_trusted_proxies=PROXY_ADDRESS,
    )
    https_port, http_port = free_port(), free_port()
    (directory / "site.conf").write_text(site_config(desk_port, https_port, http_port, certificate, key))
    (directory / "nginx.conf").write_text(main_config(directory))
    nginx = subprocess.Popen(
        [NGINX, "-p", str(directory), "-c", str(directory / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(https_port, nginx, directory / "error.log")
        yield Proxied(https_port, http_port, data_dir)
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        desk.kill()


def wait_for_port(port: int, nginx: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if nginx.poll() is not None:
            raise AssertionError(f"nginx stopped: {nginx.stderr.read().decode() if nginx.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nginx never listened; {log.read_text() if log.exists() else ''}")


def test_chromium_logs_in_over_https_through_nginx_with_a_secure_cookie(proxied):
    base = f"https://127.0.0.1:{proxied.https_port}"
    with chromium() as browser:
        context = browser.new_context(ignore_https_errors=True)
        page = context.new_page()
        first = page.goto(f"{base}/login")
        assert first is not None and first.headers["server"].startswith("nginx")
        assert first.headers["strict-transport-security"] == "max-age=31536000"
        page.fill("input[name=username]", "sam")
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        # The CSRF check over HTTPS compared the Referer with the host nginx passed on: they agree.
        assert page.url == f"{base}/triage", page.content()[:500]
        assert "sam" in page.inner_text("header")
        (session,) = [c for c in context.cookies() if c["name"] == "mailflow_session"]
        assert session["secure"] and session["httpOnly"]
        context.close()
    assert attempts_from(proxied.data_dir, "sam") == ["127.0.0.1"]


def test_what_a_client_writes_in_forwarded_headers_does_not_get_through_nginx(proxied):
    forged = {"X-Forwarded-For": "198.51.100.1", "X-Forwarded-Prefix": "/elsewhere"}
    sara = Visitor(proxied.https_port, headers=forged, tls=True)
    page = sara.request("GET", "/login")
    assert page.status == 200 and "/elsewhere" not in page.text
    token = csrf_token(page.text)
    form = {"username": "sara", "password": "not the password", "csrf_token": token}
    referer = f"https://127.0.0.1:{proxied.https_port}/login"
    assert sara.request("POST", "/login", form, Referer=referer).status == 401
    assert attempts_from(proxied.data_dir, "sara") == ["127.0.0.1"]


def test_plain_http_to_nginx_is_sent_to_https(proxied):
    answer = Visitor(proxied.http_port).request("GET", "/login")
    assert answer.status == 301 and answer.header("Location").startswith("https://")
