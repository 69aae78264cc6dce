"""Forwarded headers: believed from the configured proxies only, the client found past the trusted hops."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from mailflow.errors import ConfigurationError
from mailflow.settings import load_settings
from mailflow.web.proxies import TrustedProxies


@Request.application
def echo(request: Request) -> Response:
    seen = {
        "remote_addr": request.remote_addr,
        "scheme": request.scheme,
        "host": request.host,
        "script_root": request.script_root,
        "access_route": request.access_route,
        "forwarded_headers": sorted(k for k, _ in request.headers.items() if k.startswith("X-Forwarded")),
    }
    return Response(json.dumps(seen), mimetype="application/json")


def seen(networks: list[str], peer: str, **headers: str) -> dict:
    client = Client(TrustedProxies(echo, networks))
    response = client.get("/", environ_base={"REMOTE_ADDR": peer}, headers=headers)
    return json.loads(response.get_data())


PROXY_HEADERS = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "loket.stad.gent",
    "X-Forwarded-Prefix": "/desk",
}


def test_a_trusted_proxy_gives_the_client_address_scheme_host_and_prefix():
    got = seen(["10.0.0.0/8"], "10.1.2.3", **PROXY_HEADERS)
    assert got["remote_addr"] == "203.0.113.7"
    assert (got["scheme"], got["host"], got["script_root"]) == ("https", "loket.stad.gent", "/desk")


def test_x_forwarded_port_is_never_believed_the_host_carries_the_port():
    headers = {"X-Forwarded-Host": "loket.example:8443", "X-Forwarded-Port": "1"}
    got = seen(["10.0.0.0/8"], "10.1.2.3", **headers)
    assert got["host"] == "loket.example:8443"


def test_an_untrusted_peer_is_itself_the_client_and_its_headers_are_dropped():
    got = seen(["10.0.0.0/8"], "198.51.100.9", **PROXY_HEADERS)
    assert got["remote_addr"] == "198.51.100.9"
    assert (got["scheme"], got["host"], got["script_root"]) == ("http", "localhost", "")
    # Dropped, not just ignored: nothing further in the desk can read them (access_route would).
    assert got["forwarded_headers"] == [] and got["access_route"] == ["198.51.100.9"]


def test_no_trusted_proxies_means_no_peer_is_believed():
    got = seen([], "127.0.0.1", **PROXY_HEADERS)
    assert (got["remote_addr"], got["scheme"]) == ("127.0.0.1", "http")


def test_the_client_is_the_nearest_untrusted_hop_not_what_it_wrote_itself():
    # The client wrote "1.1.1.1" itself; our proxies appended what they saw.
    chain = "1.1.1.1, 203.0.113.7, 10.0.0.2"
    assert seen(["10.0.0.0/8"], "10.0.0.1", **{"X-Forwarded-For": chain})["remote_addr"] == "203.0.113.7"
    # Every hop trusted: the leftmost is the client.
    assert seen(["10.0.0.0/8"], "10.0.0.1", **{"X-Forwarded-For": "10.9.9.9"})["remote_addr"] == "10.9.9.9"


def test_a_malformed_hop_ends_the_walk_at_the_last_address_reached():
    got = seen(["10.0.0.0/8"], "10.0.0.1", **{"X-Forwarded-For": "203.0.113.7, junk, 10.0.0.2"})
    assert got["remote_addr"] == "10.0.0.2"
    assert seen(["10.0.0.0/8"], "10.0.0.1", **{"X-Forwarded-For": "junk"})["remote_addr"] == "10.0.0.1"


def test_ipv6_and_ipv4_mapped_peers():
    assert seen(["::1"], "::1", **{"X-Forwarded-For": "[2001:db8::5]"})["remote_addr"] == "2001:db8::5"
    # A dual-stack socket reports an IPv4 proxy as ::ffff:a.b.c.d.
    assert seen(["127.0.0.1"], "::ffff:127.0.0.1", **{"X-Forwarded-Proto": "https"})["scheme"] == "https"


def test_the_setting_reads_commas_spaces_and_json_and_refuses_names(monkeypatch):
    monkeypatch.setenv("MAILFLOW_WEB_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8 fd00::/8")
    assert load_settings().web_trusted_proxies == ["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"]
    monkeypatch.setenv("MAILFLOW_WEB_TRUSTED_PROXIES", '["192.168.1.7/24"]')
    assert load_settings().web_trusted_proxies == ["192.168.1.0/24"]
    monkeypatch.setenv("MAILFLOW_WEB_TRUSTED_PROXIES", "nginx")
    with pytest.raises(ConfigurationError, match="not an IP address or network"):
        load_settings()
    monkeypatch.delenv("MAILFLOW_WEB_TRUSTED_PROXIES")
    assert load_settings().web_trusted_proxies == []


@pytest.mark.parametrize(
    ("given", "mode"),
    [
        (True, "always"),
        (False, "never"),
        ("true", "always"),
        ("0", "never"),
        ("auto", "auto"),
        ("NEVER", "never"),
    ],
)
def test_secure_cookies_is_three_way_and_reads_the_old_true_and_false(given, mode):
    assert load_settings(web_secure_cookies=given).web_secure_cookies == mode


def test_secure_cookies_defaults_to_auto_and_refuses_other_words():
    assert load_settings().web_secure_cookies == "auto"
    with pytest.raises(ConfigurationError):
        load_settings(web_secure_cookies="sometimes")
