"""Full-text search over the archive: SQLite FTS5, or a tsvector on PostgreSQL.

The index holds each settled email's subject, sender and the resident's own text (quoted history
and signatures left out), masked: national register and card numbers, PIN/PUK codes and the like are
not in it (``mailflow.identifiers.mask``). A national register number is found all the same by a keyed
token indexed in its place (``mailflow.identifiers.lookup``). The desk keeps the index up to date:
``index_pending`` adds the emails settled since it last ran, from a background thread and before each
search, so a search never misses one.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

from sqlalchemy import ColumnElement, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from mailflow.errors import MailflowError
from mailflow.identifiers import mask
from mailflow.identifiers.lookup import LookupToken, nrn_lookup_words, without_nrns
from mailflow.ports import BlobStore
from mailflow.stages.limits import Limits
from mailflow.stages.parse import parse
from mailflow.stages.text import resident_text
from mailflow.storage.models import Message

log = logging.getLogger(__name__)

MAX_BODY = 100_000
MAX_TERMS = 12
_WORD = re.compile(r"\w+", re.UNICODE)

_PENDING_SQLITE = (
    "SELECT m.id, m.sha256, m.from_address, m.subject FROM messages m "
    "WHERE m.status != 'received' AND m.erased_at IS NULL AND m.id NOT IN (SELECT rowid FROM message_fts) "
    "ORDER BY m.id LIMIT :limit"
)
_PENDING_PG = (
    "SELECT m.id, m.sha256, m.from_address, m.subject FROM messages m "
    "LEFT JOIN message_search s ON s.message_id = m.id "
    "WHERE m.status != 'received' AND m.erased_at IS NULL AND s.message_id IS NULL ORDER BY m.id LIMIT :limit"
)
_INSERT_SQLITE = (
    "INSERT INTO message_fts (rowid, subject, sender, body) VALUES (:id, :subject, :sender, :body)"
)
_INSERT_PG = (
    "INSERT INTO message_search (message_id, document) VALUES (:id, "
    "setweight(to_tsvector('simple', :subject), 'A') || setweight(to_tsvector('simple', :sender), 'B')"
    " || to_tsvector('simple', :body)) ON CONFLICT (message_id) DO NOTHING"
)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def searchable_text(raw: bytes, lookup: LookupToken | None = None) -> tuple[str, str, str]:
    """(subject, sender, body) of a raw email, masked, the body followed by the lookup tokens of its
    national register numbers; what cannot be parsed is left empty."""
    try:
        message = parse(raw, Limits())  # the cheap checks first: a hostile header must not stall indexing
    except Exception:  # an unreadable email is still found by its ledger subject and sender
        return "", "", ""
    body, _ = resident_text(message.subject, message.text)
    names = " ".join(a.filename for a in message.attachments)
    sender = f"{message.from_name} {message.from_address}".strip()
    text = f"{body}\n{names}"[:MAX_BODY]
    tokens = nrn_lookup_words(f"{message.subject}\n{text}", lookup) if lookup else []
    return mask(message.subject), mask(sender), " ".join([mask(text), *tokens])


def index_pending(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    *,
    limit: int = 200,
    lookup: LookupToken | None = None,
) -> int:
    """Index the settled emails not in the index yet; returns how many were added. With ``lookup``
    (the blob keyring's ``lookup_token``) its national register numbers can be searched for."""
    with sessions.begin() as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        rows = session.execute(text(_PENDING_PG if postgres else _PENDING_SQLITE), {"limit": limit}).all()
        for pk, sha256, from_address, ledger_subject in rows:
            try:
                subject, sender, body = searchable_text(blobs.get(sha256), lookup)
            except (OSError, MailflowError):  # missing, or not to be opened with the keys configured
                log.warning("message %s: stored email unreadable, indexed by its headers only", pk)
                subject, sender, body = "", "", ""
            session.execute(
                text(_INSERT_PG if postgres else _INSERT_SQLITE),
                {
                    "id": pk,
                    "subject": subject or mask(ledger_subject or ""),
                    "sender": f"{sender} {from_address or ''}".strip(),
                    "body": body,
                },
            )
    return len(rows)


def search_words(query: str, lookup: LookupToken | None = None) -> list[str]:
    """The words to look for: those typed, a national register number as its lookup token."""
    if lookup is None:
        return _WORD.findall(query)[:MAX_TERMS]
    return [*nrn_lookup_words(query, lookup), *_WORD.findall(without_nrns(query))][:MAX_TERMS]


def fts5_query(query: str) -> str | None:
    """The user's words as an FTS5 query: every word must occur (as a prefix); no operators get through."""
    words = _WORD.findall(query)[:MAX_TERMS]
    if not words:
        return None
    return " ".join(f'"{word}"*' for word in words)


def tsquery(query: str) -> str | None:
    """The same for PostgreSQL: every word as a quoted prefix lexeme, all required."""
    words = _WORD.findall(query.lower())[:MAX_TERMS]
    if not words:
        return None
    return " & ".join(f"'{word}':*" for word in words)


def matching(dialect: str, query: str, lookup: LookupToken | None = None) -> ColumnElement[bool] | None:
    """A condition on ``Message.id`` for the emails matching ``query``; None when it has no words."""
    query = " ".join(search_words(query, lookup))
    if dialect == "postgresql":
        expression = tsquery(query)
        if expression is None:
            return None
        ids = text(
            "SELECT message_id FROM message_search WHERE document @@ to_tsquery('simple', :q)"
        ).bindparams(q=expression)
    else:
        expression = fts5_query(query)
        if expression is None:
            return None
        ids = text("SELECT rowid FROM message_fts WHERE message_fts MATCH :q").bindparams(q=expression)
    return Message.id.in_(ids.columns(Message.id.label("id")).scalar_subquery())


class Repeating:
    """Runs ``run`` from a daemon thread every ``interval`` seconds, again at once while it reports
    work done (a number > 0); a failing round is logged and the next one tries again."""

    def __init__(self, run: Callable[[], int], interval: float, name: str) -> None:
        self.run, self.interval = run, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                while self.run() and not self._stop.is_set():
                    pass
            except Exception:
                log.exception("%s failed", self._thread.name)
            self._stop.wait(self.interval)
