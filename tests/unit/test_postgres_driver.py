"""PostgreSQL needs nothing but its address: the driver comes with mailflow (no extra to install)."""

from __future__ import annotations

from mailflow.storage.database import make_engine


def test_the_readmes_postgresql_address_makes_an_engine_without_any_extra():
    engine = make_engine("postgresql+psycopg://mailflow@db/mailflow")  # nothing connects yet
    try:
        assert engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
        assert engine.dialect.dbapi is not None and engine.dialect.dbapi.__name__ == "psycopg"
    finally:
        engine.dispose()
