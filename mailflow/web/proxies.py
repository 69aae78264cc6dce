"""Forwarded headers believed from the configured proxies only.

Werkzeug's ProxyFix trusts a fixed number of hops from whoever connects, so a client reaching the desk
directly could claim any address or HTTPS. Here the peer's address decides: from a trusted proxy the
headers are applied (the scheme, host and prefix by ProxyFix, the client address by walking
X-Forwarded-For past the trusted hops); from anyone else they are removed before the desk sees them.
X-Forwarded-Port is never believed: the Host header a proxy passes on carries the port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

FORWARDED_HEADERS = (
    "HTTP_FORWARDED",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PREFIX",
)


def parse_address(text: str | None) -> Address | None:
    """An address as a peer or X-Forwarded-For names it ("[::1]" too); IPv4 mapped into IPv6 as IPv4."""
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """WSGI middleware: forwarded headers from ``networks`` applied, from any other peer dropped."""

    def __init__(self, app: Any, networks: Iterable[str | Network]) -> None:
        self.app = app
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        # One hop for these: the trusted proxy nearest the desk sets them (and overwrites the client's).
        self._forwarded = ProxyFix(app, x_for=0, x_proto=1, x_host=1, x_port=0, x_prefix=1)

    def trusts(self, address: Address | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not self.trusts(parse_address(environ.get("REMOTE_ADDR"))):
            for key in FORWARDED_HEADERS:
                environ.pop(key, None)
            return self.app(environ, start_response)
        client = self.client_address(environ.get("HTTP_X_FORWARDED_FOR", ""))
        if client is not None:
            environ["mailflow.proxy_peer"] = environ.get("REMOTE_ADDR")
            environ["REMOTE_ADDR"] = client
        return self._forwarded(environ, start_response)

    def client_address(self, forwarded_for: str) -> str | None:
        """The nearest address in X-Forwarded-For that is not a trusted proxy (the leftmost if all are).

        Each proxy appends the address it was reached from, so everything left of the first untrusted
        hop was written by parties we cannot check. A malformed entry ends the walk: the last address
        reached, if any, stands.
        """
        found = None
        for hop in _right_to_left(forwarded_for):
            address = parse_address(hop)
            if address is None:
                break
            found = str(address)
            if not self.trusts(address):
                break
        return found


def _right_to_left(header: str) -> Iterator[str]:
    return (hop for hop in reversed(header.split(",")) if hop.strip())
