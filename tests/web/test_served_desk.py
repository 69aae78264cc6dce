"""`mailflow web` as deployed: waitress in its own process, plain HTTP on 127.0.0.1, a trusted proxy at
127.0.0.2 (another loopback address) and an untrusted peer at 127.0.0.1 sending the same headers."""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from tests.web.conftest import PASSWORD, build_world, csrf_token, desk_settings, emails
from tests.web.served import Answer, DeskProcess, Visitor, clean_environment, start_desk

PROXY = "127.0.0.2"
FORWARDED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "loket.example",
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("served") / "data"
    world = build_world(desk_settings(directory), {"renewal": emails.renewal_request()})
    world.app.close()
    return directory


def desk_settings_for(data_dir) -> dict[str, str]:
    return {
        "data_dir": str(data_dir),
        "secret_key": "test-secret-key-of-enough-length",
        "trusted_authserv_id": emails.AUTHSERV,
        "desk_language": "en",
        "web_trusted_proxies": PROXY,
        "web_threads": "4",
    }


@pytest.fixture(scope="module")
def desk(data_dir) -> Iterator[int]:
    process, port = start_desk(**desk_settings_for(data_dir))
    try:
        yield port
    finally:
        process.kill()


def log_in(visitor: Visitor, username: str, password: str = PASSWORD, **headers: str) -> Answer:
    token = csrf_token(visitor.request("GET", "/login").text)
    form = {"username": username, "password": password, "csrf_token": token}
    return visitor.request("POST", "/login", form, **headers)


def attempts_from(data_dir, username: str) -> list[str]:
    engine = create_engine(f"sqlite:///{data_dir / 'mailflow.sqlite3'}")
    try:
        with engine.connect() as db:
            query = text("SELECT remote_addr FROM login_attempts WHERE username = :name ORDER BY id")
            return [row[0] for row in db.execute(query, {"name": username})]
    finally:
        engine.dispose()


def test_logging_in_over_plain_http_on_127_0_0_1_works_and_the_server_is_waitress(desk):
    sam = Visitor(desk)
    page = sam.request("GET", "/login")
    assert page.status == 200 and page.header("Server") == "waitress"
    assert "Werkzeug" not in (page.header("Server") or "")
    # Plain HTTP: the cookie is not Secure (else no browser would send it back), and no HSTS.
    assert "Secure" not in page.session_cookie and "HttpOnly" in page.session_cookie
    assert page.header("Strict-Transport-Security") is None
    answer = log_in(sam, "sam")
    assert answer.status == 302 and answer.header("Location").endswith("/triage"), answer.text
    queue = sam.request("GET", "/triage")
    assert queue.status == 200 and "sam" in queue.text


def test_https_from_the_trusted_proxy_makes_cookies_secure_sends_hsts_and_logs_the_real_client(
    desk, data_dir
):
    sara = Visitor(desk, source=PROXY, headers=FORWARDED)
    page = sara.request("GET", "/login")
    assert "Secure" in page.session_cookie
    assert page.header("Strict-Transport-Security") == "max-age=31536000"
    # Over HTTPS flask-wtf wants a same-origin Referer: the public host the proxy named, not 127.0.0.1.
    token = csrf_token(page.text)
    form = {"username": "sara", "password": PASSWORD, "csrf_token": token}
    assert sara.request("POST", "/login", form).status == 400  # no Referer: refused, the check is on
    assert sara.request("POST", "/login", form, Referer="https://127.0.0.1/login").status == 400
    answer = sara.request("POST", "/login", form, Referer="https://loket.example/login")
    assert answer.status == 302 and "Secure" in answer.session_cookie, answer.text
    assert sara.request("GET", "/triage").status == 200
    assert attempts_from(data_dir, "sara") == ["203.0.113.7"]


def test_under_a_prefix_from_the_trusted_proxy_links_and_redirects_carry_it(desk):
    ada = Visitor(desk, source=PROXY, headers={"X-Forwarded-Prefix": "/loket"})
    page = ada.request("GET", "/login")
    assert 'action="/loket/login"' in page.text or "/loket/login" in page.text
    assert "/loket/static/desk.js" in page.text and 'data-root="/loket"' in page.text
    answer = log_in(ada, "ada")
    assert answer.status == 302 and answer.header("Location") == "/loket/triage"
    # The same header from the untrusted peer changes nothing.
    elsewhere = Visitor(desk, headers={"X-Forwarded-Prefix": "/loket"})
    assert "/loket" not in elsewhere.request("GET", "/login").text


def test_the_same_headers_from_an_untrusted_peer_are_ignored(desk, data_dir):
    audrey = Visitor(desk, source="127.0.0.1", headers=FORWARDED)
    page = audrey.request("GET", "/login")
    assert "Secure" not in page.session_cookie and page.header("Strict-Transport-Security") is None
    assert log_in(audrey, "audrey", "not the password").status == 401
    answer = log_in(audrey, "audrey")  # plain HTTP as far as the desk knows: no Referer needed
    assert answer.status == 302 and "Secure" not in answer.session_cookie
    assert attempts_from(data_dir, "audrey") == ["127.0.0.1", "127.0.0.1"]


def test_sigterm_stops_the_desk_and_its_worker_cleanly(data_dir):
    process, port = start_desk("--with-worker", **desk_settings_for(data_dir))
    try:
        assert Visitor(port).request("GET", "/login").header("Server") == "waitress"
        status, seconds = process.terminate(signal.SIGTERM)
    finally:
        process.kill()
    assert status == 0 and seconds < 10, "".join(process.output)
    output = "".join(process.output)
    assert "SIGTERM: no new connections" in output and "web desk stopped" in output
    assert "Traceback" not in output
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_ctrl_c_stops_the_desk_too(data_dir):
    process, _port = start_desk(**desk_settings_for(data_dir))
    try:
        status, seconds = process.terminate(signal.SIGINT)
    finally:
        process.kill()
    assert status == 0 and seconds < 10 and "web desk stopped" in "".join(process.output)


def test_only_dev_serves_with_werkzeug(data_dir):
    """The Server header tells the two apart (so the checks above that it says waitress can fail)."""
    process, port = start_desk("--dev", **desk_settings_for(data_dir))
    try:
        assert Visitor(port).request("GET", "/login").header("Server").startswith("Werkzeug/")
    finally:
        process.kill()
    assert "development server" in "".join(process.output)


SLOW_APP = """
import pathlib, sys, time
from mailflow.web import production

def slow(environ, start_response):
    pathlib.Path(sys.argv[1]).write_text("started")
    time.sleep(2)
    start_response("200 OK", [("Content-Type", "text/plain")])
    # Far more than the sockets hold: the event loop must go on sending after the signal.
    return [b"finished after the signal " * 2_000_000]

server = production.make_server(slow, "127.0.0.1", 0, threads=2)
production.run(server, started=f"web desk on http://127.0.0.1:{production.bound_port(server)}/")
"""


def test_a_request_in_progress_at_sigterm_is_answered_and_new_connections_are_refused(tmp_path):
    marker = tmp_path / "started"
    process = DeskProcess([sys.executable, "-c", SLOW_APP, str(marker)], clean_environment())
    try:
        port = int(process.wait_for(r"web desk on http://127.0.0.1:(\d+)/").group(1))
        answers: list[Answer] = []
        client = threading.Thread(target=lambda: answers.append(Visitor(port).request("GET", "/slow")))
        client.start()
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        process.process.send_signal(signal.SIGTERM)
        process.wait_for("SIGTERM: no new connections")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
        client.join(timeout=10)
        assert process.process.wait(timeout=10) == 0
    finally:
        process.kill()
    assert [(a.status, len(a.text)) for a in answers] == [(200, 52_000_000)]
    assert answers[0].text.endswith("finished after the signal ")
    assert "web desk stopped" in "".join(process.output)
