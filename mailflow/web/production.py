"""The desk's production server: waitress, stopped gracefully by SIGTERM or Ctrl-C.

Waitress (pure Python, one process, a pool of threads) rather than gunicorn: the desk runs the search
indexer, the undo window's clock and optionally the mailbox worker as threads beside the requests,
which forked gunicorn workers would each start again; one process also keeps SQLite to one writer.

Waitress alone dies on SIGTERM, and on Ctrl-C its ``run`` leaves the event loop at once: the threads get
five seconds to finish, but what their answers still had to send (more than the socket takes at once)
is lost. Here either signal closes the listening socket first (new connections are refused, a proxy
tries elsewhere or says so), then the loop goes on until the requests in progress are answered and
sent, at most ``drain_seconds``, and what is left is closed.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def make_server(wsgi: Any, host: str, port: int, *, threads: int) -> Any:
    return create_server(
        wsgi,
        host=host,
        port=port,
        threads=threads,
        ident="waitress",  # the Server header names the software, not its version
        expose_tracebacks=False,
        # Waitress would drop every X-Forwarded-* header (its trusted_proxy is one exact address, no
        # networks); the desk's TrustedProxies middleware decides, and drops them from other peers.
        clear_untrusted_proxy_headers=False,
    )


def bound_port(server: Any) -> int:
    return int(_listeners(server)[0].effective_port)


def run(
    server: Any, *, started: str = "", drain_seconds: float = 20.0, announce: Callable[[str], None] = print
) -> None:
    """Serve until SIGTERM or SIGINT, then drain; call from the main thread (signal handlers live there).

    ``started`` is announced once the signals are ours: whoever waits for it may stop the server then.
    """
    socket_map = _socket_map(server)
    tick = server.adj.asyncore_loop_timeout  # how soon a signal is noticed (1 s)
    with _signals() as received:
        if started:
            announce(started)
        # Not server.run(): see above.
        while not received:
            wasyncore.loop(timeout=tick, map=socket_map, count=1)
        for listener in _listeners(server):
            wasyncore.dispatcher.close(listener)  # the socket only: the loop's trigger stays for the answers
        announce(f"{received[0]}: no new connections; finishing the requests in progress")
        _drain(server, drain_seconds)
    announce("web desk stopped")


@contextmanager
def _signals() -> Iterator[list[str]]:
    """The names of the stop signals received; the handler only notes them (raising inside the event
    loop could cut a channel's bookkeeping in half)."""
    received: list[str] = []

    def note(signum: int, frame: object) -> None:
        received.append(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, note) for sig in STOP_SIGNALS}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _drain(server: Any, seconds: float) -> None:
    socket_map = _socket_map(server)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_busy(channel) for channel in _channels(socket_map)):
        wasyncore.loop(timeout=0.05, map=socket_map, count=1)
    left = [channel for channel in _channels(socket_map) if _busy(channel)]
    if left:
        log.warning("%d request(s) still unfinished after %.0f s; closing them", len(left), seconds)
    server.task_dispatcher.shutdown(timeout=1)
    wasyncore.close_all(socket_map)


def _busy(channel: HTTPChannel) -> bool:
    """A request received or half received, or an answer not yet sent; an idle keep-alive is not."""
    half_read = channel.request is not None and not channel.request.empty
    return bool(channel.requests or channel.total_outbufs_len or half_read)


def _socket_map(server: Any) -> dict[int, Any]:
    # One listening socket: TcpWSGIServer keeps its map in ``_map``; several: MultiSocketServer in ``map``.
    return server.map if isinstance(server, MultiSocketServer) else server._map


def _listeners(server: Any) -> list[BaseWSGIServer]:
    return [d for d in _socket_map(server).values() if isinstance(d, BaseWSGIServer)]


def _channels(socket_map: dict[int, Any]) -> list[HTTPChannel]:
    return [d for d in list(socket_map.values()) if isinstance(d, HTTPChannel)]
