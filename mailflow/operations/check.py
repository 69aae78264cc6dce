"""``mailflow check``: every setting and connection, verified without changing anything.

One line per check (OK, WARN or FAIL, and for the last two what to do); exit status 1 when any FAILed.
Nothing is created, migrated, moved or sent: IMAP folders are listed and examined read-only, SMTP stops
after AUTH, the database is opened read-only (SQLite) and only its revision read. The one trace left is a
temporary file made and removed at once, to prove the data directory and blob store writable.

The clock: no NTP query (the machine may not reach one); instead mailflow's own time is compared with
times others wrote: the newest entries in the database (written by every worker and the desk) and the
arrival time (INTERNALDATE) of the newest email on the IMAP server, and the SMTP server's clock when its
greeting states it. A time from elsewhere that lies ahead of ours by more than five minutes means our
clock is behind, which breaks leases, the retry schedule and the event log's order.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from sqlalchemy import create_engine, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from mailflow.errors import ConfigurationError
from mailflow.operations.check_blobs import check_blob_keys
from mailflow.operations.check_mail import ServerClocks, check_imap, check_smtp
from mailflow.operations.results import FAIL, OK, WARN, Result
from mailflow.settings import Settings

CLOCK_TOLERANCE = timedelta(minutes=5)
MIGRATE_FIX = "back up the database, then migrate it: `mailflow db upgrade` (or start the worker once)"
CREATE_FIX = "create it: `mailflow db upgrade` (or start the worker once), or correct MAILFLOW_DATABASE_URL"
LOW_DISK_BYTES = 1024**3


def check_data_dir(settings: Settings) -> list[Result]:
    data_dir, blobs = settings.data_dir, settings.blobs_dir
    if not data_dir.is_dir():
        return [
            Result(
                "data directory",
                FAIL,
                f"{data_dir} does not exist",
                f"create it, owned by the user mailflow runs as: mkdir -p {data_dir}",
            )
        ]
    results = [_writable("data directory", data_dir)]
    if blobs.is_dir():
        results.append(_writable("blob store", blobs))
    elif results[0].level == OK:
        results.append(Result("blob store", OK, f"{blobs} will be made at the first email"))
    free = shutil.disk_usage(data_dir).free
    if free < LOW_DISK_BYTES:
        results.append(
            Result(
                "disk space",
                WARN,
                f"{free / 1024**2:.0f} MB free under {data_dir}",
                "free space or move MAILFLOW_DATA_DIR: every email and attachment is kept there",
            )
        )
    return results


def _writable(name: str, directory: Path) -> Result:
    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".mailflow-check-"):
            pass
    except OSError as exc:
        return Result(
            name,
            FAIL,
            f"cannot write in {directory}: {exc.strerror}",
            f"give the user mailflow runs as write access to {directory}",
        )
    return Result(name, OK, f"{directory} is writable")


def check_database(settings: Settings, newest: list[tuple[str, datetime]]) -> list[Result]:
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from mailflow.storage.database import alembic_config, postgres_tls_options
    from mailflow.storage.models import Event, Message

    url = settings.effective_database_url
    shown = make_url(url).render_as_string(hide_password=True)
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[-1])
        if not path.is_file():
            return [Result("database", FAIL, f"no database at {path}", CREATE_FIX)]
        engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")  # read-only: never creates
    else:
        engine = create_engine(
            url, connect_args={"connect_timeout": 10, **postgres_tls_options(settings.ca_file)}
        )
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
            if current == head:
                for table, column in (("events", Event.at), ("messages", Message.received_at)):
                    if inspect(connection).has_table(table):
                        moment = connection.scalar(select(func.max(column)))
                        if moment is not None:
                            newest.append((f"the newest entry in {table}", moment))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return [
            Result(
                "database",
                FAIL,
                f"cannot reach {shown}: {reason}",
                "check MAILFLOW_DATABASE_URL, that the server runs, and the user's password and rights",
            )
        ]
    finally:
        engine.dispose()
    if current is not None and current != head and not _known_revision(url, current):
        return [
            Result(
                "database",
                FAIL,
                f"{shown} is at schema revision {current}, newer than this mailflow knows ({head})",
                "upgrade mailflow to the version that migrated it",
            )
        ]
    if current != head:
        return [
            Result(
                "database",
                FAIL,
                f"{shown} is at schema revision {current or 'none'}, this mailflow needs {head}",
                MIGRATE_FIX,
            )
        ]
    return [Result("database", OK, f"{shown} reachable, schema at the newest revision ({head})")]


def _known_revision(url: str, revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    from mailflow.storage.database import alembic_config

    try:
        return ScriptDirectory.from_config(alembic_config(url)).get_revision(revision) is not None
    except (CommandError, RevisionError):
        return False


def check_tesseract(settings: Settings) -> list[Result]:
    from mailflow.stages.documents import load_rules

    try:
        languages = load_rules(settings.classifiers_dir / "documents.toml").reader.ocr_languages
    except ConfigurationError as exc:
        return [Result("tesseract", FAIL, str(exc), "correct [reader] in documents.toml")]
    wanted = [code for code in languages.split("+") if code]
    packages = " ".join(f"tesseract-ocr-{code.lower().replace('_', '-')}" for code in wanted)
    binary = shutil.which("tesseract")
    if binary is None:
        return [
            Result(
                "tesseract",
                FAIL,
                "not installed: scanned documents and photos are not read",
                f"apt-get install tesseract-ocr {packages}",
            )
        ]
    try:
        listing = subprocess.run(
            [binary, "--list-langs"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [
            Result(
                "tesseract",
                FAIL,
                f"{binary} does not run: {exc}",
                "reinstall: apt-get install --reinstall tesseract-ocr",
            )
        ]
    installed = {line.strip() for line in listing.stdout.splitlines()[1:] if line.strip()}
    missing = [code for code in wanted if code not in installed]
    if missing:
        where = (
            f" (TESSDATA_PREFIX={os.environ['TESSDATA_PREFIX']})" if os.environ.get("TESSDATA_PREFIX") else ""
        )
        install = " ".join(f"tesseract-ocr-{code.lower().replace('_', '-')}" for code in missing)
        return [
            Result(
                "tesseract",
                FAIL,
                f"language(s) {', '.join(missing)} of {languages} not installed{where}",
                f"apt-get install {install}, or change ocr_languages in [reader] of documents.toml",
            )
        ]
    return [Result("tesseract", OK, f"{binary} with {', '.join(wanted)}")]


def check_model(settings: Settings) -> list[Result]:
    from mailflow.classification.catalogue import load_catalogue
    from mailflow.classification.learning.artefact import ArtefactError, load_model

    try:
        catalogue = load_catalogue(settings.classifiers_dir)
    except (ConfigurationError, OSError, ValueError) as exc:
        return [Result("catalogue", FAIL, str(exc), "check MAILFLOW_CLASSIFIERS_DIR and the files in it")]
    results = [Result("catalogue", OK, f"{len(catalogue.products)} products from {settings.classifiers_dir}")]
    directory = settings.effective_model_dir
    if not settings.use_model:
        results.append(Result("model", OK, "switched off (use_model): the catalogue's rules alone decide"))
    elif not (directory / "manifest.json").is_file():
        results.append(
            Result(
                "model",
                WARN,
                f"no learned model in {directory}: the catalogue's rules alone decide",
                "run `mailflow train`, or set MAILFLOW_MODEL_DIR to where the model is",
            )
        )
    else:
        try:
            model = load_model(directory)
        except ArtefactError as exc:
            results.append(
                Result(
                    "model",
                    FAIL,
                    f"{directory}: {exc}",
                    "install a model again (`mailflow train`) or set MAILFLOW_USE_MODEL=false",
                )
            )
        else:
            results.append(Result("model", OK, f"version {model.card.version} loads from {directory}"))
    return results


def check_clock(now: datetime, others: list[tuple[str, datetime]], smtp_clock: datetime | None) -> Result:
    for source, moment in others:
        if moment - now > CLOCK_TOLERANCE:
            return Result(
                "clock",
                FAIL,
                f"this machine's clock ({now:%Y-%m-%d %H:%M:%S} UTC) is "
                f"{_minutes(moment - now)} behind {source}",
                "synchronise it (chrony or systemd-timesyncd)",
            )
    if smtp_clock is not None and abs(smtp_clock - now) > CLOCK_TOLERANCE:
        way = "behind" if smtp_clock > now else "ahead of"
        return Result(
            "clock",
            FAIL,
            f"this machine's clock is {_minutes(abs(smtp_clock - now))} {way} the SMTP server's",
            "synchronise both clocks (chrony or systemd-timesyncd)",
        )
    compared = [source for source, _ in others] + (["the SMTP server's clock"] if smtp_clock else [])
    if not compared:
        return Result(
            "clock",
            OK,
            f"{now:%Y-%m-%d %H:%M:%S} UTC; nothing to compare it with yet (no entries, no email waiting)",
        )
    return Result("clock", OK, f"{now:%Y-%m-%d %H:%M:%S} UTC, not behind {', '.join(compared)}")


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:.0f} minutes"


def run_checks(settings: Settings, now: datetime | None = None) -> list[Result]:
    results = [Result("settings", OK, "read and valid")]
    newest: list[tuple[str, datetime]] = []
    clocks = ServerClocks()
    results += _guarded("data directory", check_data_dir, settings)
    results += _guarded("blob keys", check_blob_keys, settings)
    results += _guarded("database", check_database, settings, newest)
    results += _guarded("imap", check_imap, settings, clocks)
    results += _guarded("smtp", check_smtp, settings, clocks)
    results += _guarded("tesseract", check_tesseract, settings)
    results += _guarded("model", check_model, settings)
    if clocks.newest_arrival is not None:
        newest.append(("the newest email's arrival on the IMAP server", clocks.newest_arrival))
    results.append(check_clock(now or datetime.now(UTC), newest, clocks.smtp_greeting))
    return results


def _guarded(name: str, check: Callable[..., list[Result]], *args: object) -> list[Result]:
    """A check that breaks is reported as that check's failure; the others still run."""
    try:
        return check(*args)
    except Exception as exc:
        return [
            Result(
                name, FAIL, f"the check itself failed: {type(exc).__name__}: {exc}", "report this as a bug"
            )
        ]


@click.command("check")
@click.pass_obj
def check_command(settings: Settings) -> None:
    """Verify every setting and connection without changing anything; exit status 1 if any check FAILs."""
    results = run_checks(settings)
    for result in results:
        click.echo(result.line())
    failed = sum(result.level == FAIL for result in results)
    warned = sum(result.level == WARN for result in results)
    click.echo(f"{len(results)} checks: {failed} failed, {warned} warnings", err=True)
    if failed:
        sys.exit(1)
