"""Serving the desk: waitress (or Werkzeug's development server), the search indexer beside it,
optionally the worker too."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from werkzeug.serving import BaseWSGIServer, make_server

from mailflow.bootstrap import App
from mailflow.web import create_app, production
from mailflow.web.pending import apply_due
from mailflow.web.search import Repeating, index_pending

log = logging.getLogger(__name__)


def build_server(app: App, host: str, port: int) -> BaseWSGIServer:
    """Werkzeug's development server (``mailflow web --dev``): one thread per request, no limits."""
    return make_server(host, port, create_app(app), threaded=True)


def _development(app: App, host: str, port: int, announce: Callable[[str], None]) -> Callable[[], None]:
    server = build_server(app, host, port)
    announce(f"web desk on http://{host}:{server.server_port}/ (development server; Ctrl-C stops it)")

    def run() -> None:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()

    return run


def _production(app: App, host: str, port: int, announce: Callable[[str], None]) -> Callable[[], None]:
    threads = app.settings.web_threads
    server = production.make_server(create_app(app), host, port, threads=threads)
    bound = production.bound_port(server)
    started = f"web desk on http://{host}:{bound}/ (waitress, {threads} threads; Ctrl-C or SIGTERM stops it)"
    return lambda: production.run(server, started=started, announce=announce)


def serve(
    app: App,
    host: str,
    port: int,
    *,
    with_worker: bool = False,
    dev: bool = False,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve until stopped; with ``with_worker`` the mailbox worker runs in a thread beside it."""
    # The server first: making the Flask app brings the schema up to date before any thread reads it.
    run = (_development if dev else _production)(app, host, port, announce)
    lookup = app.blobs.keyring.lookup_token
    indexer = Repeating(
        lambda: index_pending(app.sessions, app.blobs, lookup=lookup), 10.0, "mailflow-indexer"
    )
    indexer.start()
    # A decision whose undo window passed leaves even when nobody opens another page.
    due_decisions = Repeating(lambda: apply_due(app, now=app.clock()), 1.0, "mailflow-due-decisions")
    due_decisions.start()
    worker = app.worker() if with_worker else None
    thread = None
    if worker is not None:
        thread = threading.Thread(target=worker.run, name="mailflow-worker", daemon=True)
        thread.start()
    try:
        run()
    finally:
        indexer.stop()
        due_decisions.stop()
        if worker is not None and thread is not None:
            worker.stop()
            thread.join(timeout=30)
