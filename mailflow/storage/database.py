"""Engines, sessions and migrations. Created by ``bootstrap``, never at import time."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# The key of the PostgreSQL advisory lock that serialises schema changes (any constant would do; this
# one is "mailflow" in ASCII, so another application on the same server is unlikely to pick it).
MIGRATION_LOCK_KEY = 0x6D61696C666C6F77


def make_engine(url: str, *, read_only: bool = False, ca_file: Path | None = None) -> Engine:
    engine = _make_engine(url, read_only=read_only, ca_file=ca_file)
    event.listen(engine, "before_cursor_execute", strip_nul_bytes, retval=True)
    return engine


def strip_nul_bytes(_connection, _cursor, statement, parameters, _context, executemany):
    """PostgreSQL refuses U+0000 in text (paperless-ng#794); strangers' mail carries it in subjects,
    names and PDF text. Removed here, at the boundary, for every text value; the raw blob keeps the truth."""
    if executemany and isinstance(parameters, (list, tuple)):
        return statement, type(parameters)(_without_nul(each) for each in parameters)
    return statement, _without_nul(parameters)


def _without_nul(parameters):
    def clean(value):
        return value.replace("\x00", "") if isinstance(value, str) and "\x00" in value else value

    if isinstance(parameters, dict):
        return {key: clean(value) for key, value in parameters.items()}
    if isinstance(parameters, (list, tuple)):
        return type(parameters)(clean(value) for value in parameters)
    return parameters


def _make_engine(url: str, *, read_only: bool, ca_file: Path | None) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas(read_only))
        if not read_only:
            # A deferred transaction that reads, then writes after another worker wrote, fails at once
            # (SQLITE_BUSY_SNAPSHOT); taking the write lock at BEGIN makes workers wait their turn instead.
            event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    engine = create_engine(url, pool_pre_ping=True, connect_args=postgres_tls_options(ca_file))
    if read_only:
        event.listen(engine, "connect", _postgres_read_only)
    return engine


def postgres_tls_options(ca_file: Path | None) -> dict[str, str]:
    """libpq trusts the internal CA given (``sslrootcert``); whether it must verify is the URL's
    ``sslmode`` (``verify-full`` checks chain and host name)."""
    return {"sslrootcert": str(ca_file)} if ca_file is not None else {}


def _sqlite_pragmas(read_only: bool):
    def on_connect(dbapi_connection, _record) -> None:
        if not read_only:
            dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event issues BEGIN itself
        cursor = dbapi_connection.cursor()
        # WAL lets readers (the web UI, exports) work beside the worker; several workers serialise writes.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if read_only:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    return on_connect


def _postgres_read_only(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    cursor.close()
    dbapi_connection.commit()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    from mailflow.audit import enable_chaining

    sessions = sessionmaker(engine, expire_on_commit=False)
    enable_chaining(sessions)
    return sessions


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe to call on every start, by several workers at once.

    Workers started together on an empty database would each try to create the schema and all but one
    fail; a lock makes the others wait, and then find the schema already at the newest revision.
    """
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with _schema_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            _advisory_lock(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _advisory_lock(connection: Connection) -> None:
    # Held until this transaction ends, so also released when the process dies mid-upgrade. Each
    # statement after it reads what the worker before us committed (READ COMMITTED).
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


@contextlib.contextmanager
def _schema_lock(engine: Engine) -> Iterator[None]:
    """On SQLite, a lock file beside the database: BEGIN IMMEDIATE alone would give up after the busy
    timeout (30 s) while a long upgrade runs. Other databases lock inside the transaction instead."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    with open(f"{database}.migrate-lock", "a+b") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
