"""Serving the desk: a threaded WSGI server, the search indexer beside it, optionally the worker too."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from werkzeug.serving import BaseWSGIServer, make_server

from mailflow.bootstrap import App
from mailflow.web import create_app
from mailflow.web.pending import apply_due
from mailflow.web.search import Repeating, index_pending

log = logging.getLogger(__name__)


def build_server(app: App, host: str, port: int) -> BaseWSGIServer:
    return make_server(host, port, create_app(app), threaded=True)


def serve(
    app: App,
    host: str,
    port: int,
    *,
    with_worker: bool = False,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve until interrupted; with ``with_worker`` the mailbox worker runs in a thread beside it."""
    server = build_server(app, host, port)
    indexer = Repeating(lambda: index_pending(app.sessions, app.blobs), 10.0, "mailflow-indexer")
    indexer.start()
    # A decision whose undo window passed leaves even when nobody opens another page.
    due_decisions = Repeating(lambda: apply_due(app, now=app.clock()), 1.0, "mailflow-due-decisions")
    due_decisions.start()
    worker = app.worker() if with_worker else None
    thread = None
    if worker is not None:
        thread = threading.Thread(target=worker.run, name="mailflow-worker", daemon=True)
        thread.start()
    announce(f"web desk on http://{host}:{server.server_port}/ (Ctrl-C stops it)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        indexer.stop()
        due_decisions.stop()
        if worker is not None and thread is not None:
            worker.stop()
            thread.join(timeout=30)
