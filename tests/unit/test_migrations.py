"""The migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import mailflow.storage.desk_models  # noqa: F401  (its tables join the metadata)
from mailflow.storage.database import make_engine, migrate
from mailflow.storage.models import Base


def test_migrations_match_the_models(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        migrate(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"include_object": _modelled})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def _modelled(item, name, kind, reflected, compare_to) -> bool:
    """The full-text index is SQLite's own virtual table, made by hand in a migration."""
    return not (kind == "table" and name and name.startswith("message_fts"))
