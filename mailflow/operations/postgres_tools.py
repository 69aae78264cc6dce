"""pg_dump and pg_restore for a PostgreSQL database named by a SQLAlchemy URL.

The password goes to the tools in the environment (PGPASSWORD), never on the command line, where any
user of the machine could read it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from mailflow.errors import ConfigurationError


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ConfigurationError(
            f"{name} not found: PostgreSQL backups need the PostgreSQL client tools "
            f"(Debian: apt-get install postgresql-client, of the server's major version or newer)"
        )
    return path


def _libpq_environment(url: str) -> dict[str, str]:
    parsed = make_url(url)
    values = {
        "PGHOST": parsed.host,
        "PGPORT": str(parsed.port) if parsed.port else None,
        "PGUSER": parsed.username,
        "PGPASSWORD": parsed.password,
        "PGDATABASE": parsed.database,
    }
    # Query options such as ?host=/run/postgresql or ?sslmode=require map to libpq's variables too.
    for key, value in parsed.query.items():
        if isinstance(value, str):
            values[f"PG{key.upper()}"] = value
    return os.environ | {key: value for key, value in values.items() if value}


def _run(command: list[str], url: str) -> None:
    result = subprocess.run(command, env=_libpq_environment(url), capture_output=True, text=True)
    if result.returncode != 0:
        raise ConfigurationError(f"{Path(command[0]).name} failed: {result.stderr.strip()[-2000:]}")


def dump(url: str, target: Path) -> None:
    """One consistent snapshot of the whole database, in pg_dump's custom format."""
    _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={target}"], url)


def restore(url: str, source: Path) -> None:
    """Replace the database's objects by the dump's, in one transaction."""
    _run(
        [_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges",
         "--single-transaction", "--exit-on-error", f"--dbname={make_url(url).database}", str(source)],
        url,
    )  # fmt: skip
