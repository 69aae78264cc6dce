"""Commands that look after the data: ``mailflow db upgrade|current``, ``mailflow backup`` and ``restore``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mailflow.errors import MailflowError
from mailflow.settings import Settings
from mailflow.storage.database import make_engine


@click.group()
def db() -> None:
    """The database's schema: where it stands, and upgrading it (never done silently in production)."""


@db.command("current")
@click.pass_obj
def db_current(settings: Settings) -> None:
    """Print the database's revision against the code's; exit status 1 unless up to date."""
    from mailflow.operations.backup import database_kind, sqlite_path
    from mailflow.storage.schema import empty_database, revisions

    url = settings.effective_database_url
    if database_kind(settings) == "sqlite" and not sqlite_path(url).exists():
        state = empty_database()  # and looking must not create the file
    else:
        engine = make_engine(url, read_only=True)
        try:
            state = revisions(engine)
        finally:
            engine.dispose()
    click.echo(state.describe())
    if not state.up_to_date:
        sys.exit(1)


@db.command("upgrade")
@click.pass_obj
def db_upgrade(settings: Settings) -> None:
    """Bring the schema to the code's revision (stop the workers and the desk, and back up, first)."""
    from mailflow.storage.schema import upgrade

    engine = make_engine(settings.effective_database_url)
    try:
        before, after = upgrade(engine)
    except MailflowError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    if before.up_to_date:
        click.echo(f"database already at revision {after.current}: nothing to do")
    else:
        click.echo(f"database upgraded from {before.current or 'empty'} to {after.current}")


@click.command("backup")
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--with-keys", is_flag=True, help="Also the web, thread and blob secret keys of the data directory."
)
@click.pass_obj
def backup_command(settings: Settings, destination: Path, with_keys: bool) -> None:
    """Write the database and the blob store, consistent, to one tar file (.tar.gz: compressed)."""
    from mailflow.operations.backup import backup

    try:
        result = backup(settings, destination, include_keys=with_keys)
    except MailflowError as exc:
        raise click.ClickException(str(exc)) from exc
    database, blobs = result.manifest["database"], result.manifest["blobs"]
    click.echo(
        f"backed up {database['kind']} database at revision {database['revision']} "
        f"({database['messages']} emails) and {blobs['count']} blobs ({blobs['bytes']} bytes) "
        f"to {destination}"
    )
    if not with_keys:
        click.echo(
            "the secret keys are not in the backup: keep the data directory's web-secret-key, "
            "thread-secret-key and blob-keys (or MAILFLOW_SECRET_KEY, MAILFLOW_THREAD_SECRET and "
            "MAILFLOW_BLOB_KEYS) safely elsewhere, or back up with --with-keys; without the blob keys "
            "the backup's emails cannot be read",
            err=True,
        )


@click.command("restore")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that is not empty.")
@click.pass_obj
def restore_command(settings: Settings, source: Path, force: bool) -> None:
    """Put a backup back into the configured database and data directory (stop the worker and desk first)."""
    from mailflow.operations.restore import restore

    try:
        result = restore(settings, source, force=force)
    except MailflowError as exc:
        raise click.ClickException(str(exc)) from exc
    database = result.manifest["database"]
    click.echo(
        f"restored {database['kind']} database at revision {database['revision']} ({database['messages']} "
        f"emails) and {result.manifest['blobs']['count']} blobs ({result.blobs_moved} new in the store)"
    )
    if result.keys_restored:
        click.echo(f"secret keys restored: {', '.join(result.keys_restored)}")
    if not result.schema.up_to_date:
        click.echo(result.schema.describe(), err=True)


def register(main: click.Group) -> None:
    for command in (db, backup_command, restore_command):
        main.add_command(command)
