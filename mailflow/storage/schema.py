"""Does the database's schema match the code? And the start-up rule for when it does not.

An empty database always gets its schema: nothing can be lost, and several workers starting at once on
a new database must all come up (``migrate`` serialises them). An existing database behind the code is
upgraded at start-up only when the ``auto_migrate`` setting allows it (by default only the embedded
SQLite database); otherwise start-up stops and names the command, so that an upgrade of production data
is a deliberate step taken after a backup: ``mailflow db upgrade``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from mailflow.errors import ConfigurationError
from mailflow.storage.database import alembic_config, migrate

log = logging.getLogger(__name__)


class SchemaOutOfDate(ConfigurationError):
    """The database's schema is not the one this code expects; the message names the fix."""


@dataclass(frozen=True)
class Revisions:
    current: str | None  # None: an empty database (no schema yet)
    expected: str  # the newest migration this code ships
    known: bool  # whether this code ships the database's revision at all

    @property
    def up_to_date(self) -> bool:
        return self.current == self.expected

    def describe(self) -> str:
        if self.up_to_date:
            return f"database at revision {self.current}, as the code expects: up to date"
        if self.current is None:
            return f"database empty (no schema), code expects {self.expected}: run mailflow db upgrade"
        if not self.known:
            return (
                f"database at revision {self.current}, which this mailflow does not know (it expects "
                f"{self.expected}): the database was upgraded by a newer mailflow; install that version"
            )
        return f"database at revision {self.current}, code expects {self.expected}: run mailflow db upgrade"


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))  # the scripts do not depend on the URL


def empty_database() -> Revisions:
    """Where a database that does not exist yet stands."""
    return Revisions(None, _scripts().get_current_head() or "", True)


def revisions(engine: Engine) -> Revisions:
    scripts = _scripts()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    known = current is None or any(script.revision == current for script in scripts.walk_revisions())
    return Revisions(current, scripts.get_current_head() or "", known)


def upgrade(engine: Engine) -> tuple[Revisions, Revisions]:
    """Bring the schema to the code's revision; the revisions before and after."""
    before = revisions(engine)
    if not before.known:
        raise SchemaOutOfDate(before.describe())
    migrate(engine)
    return before, revisions(engine)


def ensure_schema(engine: Engine, *, auto_migrate: bool) -> None:
    """Start-up: create an empty database's schema; upgrade an old one only if ``auto_migrate``."""
    state = revisions(engine)
    if state.up_to_date:
        return
    if state.known and (state.current is None or auto_migrate):
        before, after = upgrade(engine)
        if before.current == after.current:  # another process migrated it while we looked
            log.info("database schema already at revision %s", after.current)
        elif before.current is None:
            log.info("database schema created at revision %s", after.current)
        else:  # not silent: an operator reading the log sees when the data's schema changed
            log.warning("database schema upgraded from %s to %s at start-up", before.current, after.current)
        return
    raise SchemaOutOfDate(state.describe())
