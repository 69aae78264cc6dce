"""The ``mailflow`` command."""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mailflow.errors import ConfigurationError, MailboxError, MailflowError
from mailflow.settings import Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def _configure_logging(verbose: int, log_format: str) -> None:
    # Whatever a log line says, national register numbers, card numbers and PIN codes leave it masked.
    from mailflow.operations.json_logs import configure_logging

    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    configure_logging(level, json_lines=log_format == "json")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file with settings (environment variables MAILFLOW_* override it).",
)
@click.option("-v", "--verbose", count=True, help="More logging (-v: info, -vv: debug).")
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), help="Log lines as text or JSON (default: setting)."
)
@click.pass_context
def main(ctx: click.Context, config_file: Path | None, verbose: int, log_format: str | None) -> None:
    """Reads the Migration Counter's mailbox, understands each email and acts on it."""
    try:
        ctx.obj = load_settings(config_file)
    except ConfigurationError as exc:
        _configure_logging(verbose, log_format or "text")
        raise click.ClickException(str(exc)) from exc
    _configure_logging(verbose, log_format or ctx.obj.log_format)


def _app(settings: Settings, *, mail_worker: bool = False):
    from mailflow.allocator import return_large_buffers
    from mailflow.bootstrap import App

    return_large_buffers()  # before the model and the first email: see mailflow/allocator.py
    return App(settings, mail_worker=mail_worker)


@main.command()
@click.pass_obj
def run(settings: Settings) -> None:
    """Run the worker until stopped (SIGTERM or Ctrl-C finish the current email first)."""
    app = _app(settings, mail_worker=True)
    try:
        worker = app.worker()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: worker.stop())
        click.echo(f"mailflow worker on {settings.mailbox_name}; stop with Ctrl-C", err=True)
        worker.run()
    except MailflowError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        app.close()


@main.command("poll-once")
@click.option(
    "--dry-run", is_flag=True, help="Only print what would be done: nothing is stored, moved or sent."
)
@click.pass_obj
def poll_once(settings: Settings, dry_run: bool) -> None:
    """Process everything waiting in the mailbox, send the replies, then exit."""
    if dry_run:
        _dry_run(settings)
        return
    app = _app(settings, mail_worker=True)
    try:
        worker = app.worker()
        signal.signal(signal.SIGTERM, lambda *_: worker.stop())
        result = worker.cycle()
    except (MailboxError, ConfigurationError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        app.close()
    report, delivery = result.ingest, result.delivery
    counts = (
        ", ".join(f"{status} {count}" for status, count in sorted(report.by_status.items())) or "nothing new"
    )
    click.echo(
        f"processed {report.processed} ({counts}); replies sent {delivery.sent}, "
        f"deferred {delivery.retried}, failed {delivery.failed}"
    )


def _dry_run(settings: Settings) -> None:
    from mailflow.bootstrap import build_analyser, open_mailbox
    from mailflow.preview import dry_run

    try:
        analyser = build_analyser(settings)
        mailbox = open_mailbox(settings)
        try:
            count = 0
            for line in dry_run(mailbox, analyser, settings.imap_batch_size):
                click.echo(line)
                count += 1
        finally:
            mailbox.close()
    except (MailboxError, ConfigurationError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"dry run: {count} emails waiting; nothing was stored, moved or sent")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def preview(settings: Settings, file: Path) -> None:
    """Print the exact reply (headers and text) mailflow would send to FILE.eml."""
    from mailflow.bootstrap import App
    from mailflow.preview import describe, preview_reply, readable

    app = App(settings)
    try:
        analysis = app.analyser_without_archive.analyse(file.read_bytes())
        click.echo(describe(analysis))
        data = preview_reply(analysis, app.composer, app.product_context, settings.case_prefix)
    except (ConfigurationError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("")
    if data is None:
        click.echo(f"No reply: the action is {analysis.decision.action.value}.")
    else:
        click.echo(readable(data).rstrip("\n") + "\n")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_obj
def classify(settings: Settings, as_json: bool, files: tuple[Path, ...]) -> None:
    """Analyse .eml files without any side effect."""
    from mailflow.bootstrap import build_analyser
    from mailflow.pipeline import classify_file

    try:
        analyser = build_analyser(settings)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    for path in files:
        result = classify_file(analyser, path)
        if as_json:
            click.echo(json.dumps(result, ensure_ascii=False))
        else:
            click.echo(
                f"{result['file']}: {result['category']} → {result['action']} "
                f"({result['confidence']:.2f}, {result['language']}) {', '.join(result['documents'])}"
            )


@main.group()
def archive() -> None:
    """The archive of processed emails."""


@archive.command("export")
@click.option("--jsonl", is_flag=True, required=True, help="One JSON object per line (the only format).")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    help="Only emails received on or after this date (UTC).",
)
@click.pass_obj
def archive_export(settings: Settings, jsonl: bool, since: datetime | None) -> None:
    """Every ingested email, once, with its outcome."""
    from mailflow.export import export_archive

    app = _app(settings)
    try:
        for entry in export_archive(app.sessions, since=since.replace(tzinfo=UTC) if since else None):
            click.echo(json.dumps(entry, ensure_ascii=False))
    finally:
        app.close()


@main.group()
def quarantine() -> None:
    """Emails the pipeline could not handle: kept, listed, and processed again on demand."""


@quarantine.command("list")
@click.pass_obj
def quarantine_list(settings: Settings) -> None:
    """The quarantined emails with the reason each one is there."""
    from sqlalchemy import select

    from mailflow.domain import Status
    from mailflow.storage.models import Message

    app = _app(settings)
    try:
        with app.sessions() as session:
            rows = session.execute(
                select(Message.id, Message.received_at, Message.from_address, Message.error)
                .where(Message.status == Status.QUARANTINED, Message.erased_at.is_(None))
                .order_by(Message.id)
            ).all()
    finally:
        app.close()
    for pk, received_at, sender, error in rows:
        click.echo(
            f"{pk}\t{received_at:%Y-%m-%d %H:%M}\t{sender or '?'}\t{(error or '').splitlines()[0][:120]}"
        )
    click.echo(f"{len(rows)} quarantined", err=True)


@quarantine.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.pass_obj
def quarantine_retry(settings: Settings, ids: tuple[int, ...]) -> None:
    """Run the pipeline again on quarantined emails (all of them, or the IDS given), then send replies."""
    from mailflow.processing import reprocess_quarantined

    app = _app(settings)
    try:
        results = reprocess_quarantined(app.processor, app.blobs, only=list(ids) or None)
        delivery = app.outbox.deliver_due()
    finally:
        app.close()
    for pk, status in results:
        click.echo(f"{pk}\t{status.value}")
    click.echo(f"reprocessed {len(results)}; replies sent {delivery.sent}", err=True)


@main.group()
def audit() -> None:
    """Accountability: the hash-chained event log."""


@audit.command("verify")
@click.pass_obj
def audit_verify(settings: Settings) -> None:
    """Recompute the event chain; name the first broken link (exit status 1) or print the head hash."""
    from mailflow.audit import verify_chain

    app = _app(settings)
    try:
        result = verify_chain(app.sessions)
    finally:
        app.close()
    if result.ok:
        click.echo(f"event log intact: {result.checked} entries, head {result.head_hash}")
        return
    where = f"entry {result.broken_seq}" if result.broken_seq is not None else "the chain"
    if result.broken_event_id is not None:
        where += f" (event id {result.broken_event_id})"
    click.echo(
        f"event log BROKEN at {where}: {result.problem}; {result.checked} entries before it hold", err=True
    )
    sys.exit(1)


@main.command()
@click.option("--host", help="Address to listen on (default: the web_host setting).")
@click.option("--port", type=int, help="Port to listen on (default: the web_port setting).")
@click.option("--with-worker", is_flag=True, help="Also run the mailbox worker in this process.")
@click.option("--dev", is_flag=True, help="Werkzeug's development server, not waitress (not in production).")
@click.pass_obj
def web(settings: Settings, host: str | None, port: int | None, with_worker: bool, dev: bool) -> None:
    """Serve the web desk (waitress): triage queue for staff, read-only archive for auditors."""
    from sqlalchemy import func, select

    from mailflow.storage.desk_models import User
    from mailflow.web.serve import serve

    app = _app(settings)
    try:
        with app.sessions() as session:
            if not session.scalar(select(func.count()).select_from(User)):
                click.echo("No accounts yet: add one with `mailflow users add NAME --role staff`.", err=True)
        serve(
            app,
            host or settings.web_host,
            settings.web_port if port is None else port,
            with_worker=with_worker,
            dev=dev,
            announce=lambda line: click.echo(line, err=True),
        )
    except MailflowError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        app.close()


@main.group()
def users() -> None:
    """Accounts of the web desk."""


def _read_password(from_stdin: bool) -> str:
    """From the first line of stdin (scripts), else asked twice on the terminal without echo."""
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("New password", hide_input=True, confirmation_prompt=True)


def _cli_actor() -> str:
    """Who changed an account from the command line, as the event log names them."""
    import getpass
    import os

    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        who = f"uid {os.getuid()}"
    return f"cli:{who}"


_STDIN = click.option(
    "--stdin",
    "--password-stdin",
    "from_stdin",
    is_flag=True,
    help="Read the password from the first line of stdin (for scripts).",
)


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["staff", "auditor", "admin"]), required=True)
@_STDIN
@click.pass_obj
def users_add(settings: Settings, name: str, role: str, from_stdin: bool) -> None:
    """Add an account; the password is asked for (or read from stdin), never given as an argument."""
    from mailflow.web.accounts import add_user

    password = _read_password(from_stdin)
    _change_account(
        settings, lambda session, now, actor: add_user(session, name, role, password, actor=actor, now=now)
    )
    click.echo(f"added {role} {name.strip().lower()}")


@users.command("passwd")
@click.argument("name")
@_STDIN
@click.pass_obj
def users_passwd(settings: Settings, name: str, from_stdin: bool) -> None:
    """Set a new password (asked twice, or read from stdin); the account's open sessions end."""
    from mailflow.web.accounts import check_password, set_password

    password = _read_password(from_stdin)
    try:
        check_password(password)  # before touching the database: the account must exist too, below
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    _change_account(
        settings, lambda session, now, actor: set_password(session, name, password, actor=actor, now=now)
    )
    click.echo(f"password of {name} changed; its open sessions ended")


@users.command("list")
@click.pass_obj
def users_list(settings: Settings) -> None:
    """Every account: role, state, created and last login (UTC)."""
    from mailflow.web.accounts import Throttle, list_accounts

    throttle = Throttle.from_settings(settings)
    app = _app(settings)
    try:
        with app.sessions() as session:
            accounts = list_accounts(session, now=app.clock(), throttle=throttle)
    finally:
        app.close()
    width = max([len("user"), *(len(account.username) for account in accounts)])
    click.echo(f"{'user':<{width}} {'role':<8} {'state':<9} {'created':<17} last login")
    for account in accounts:
        last = f"{account.last_login:%Y-%m-%d %H:%M}" if account.last_login else "never"
        created = f"{account.created_at:%Y-%m-%d %H:%M}"
        click.echo(f"{account.username:<{width}} {account.role:<8} {account.state:<9} {created} {last}")


@users.command("disable")
@click.argument("name")
@click.pass_obj
def users_disable(settings: Settings, name: str) -> None:
    """Disable an account: it can no longer log in, and its open sessions end."""
    from mailflow.web.accounts import set_disabled

    _change_account(
        settings, lambda session, now, actor: set_disabled(session, name, True, actor=actor, now=now)
    )
    click.echo(f"{name} disabled")


@users.command("enable")
@click.argument("name")
@click.pass_obj
def users_enable(settings: Settings, name: str) -> None:
    """Enable a disabled account again."""
    from mailflow.web.accounts import set_disabled

    _change_account(
        settings, lambda session, now, actor: set_disabled(session, name, False, actor=actor, now=now)
    )
    click.echo(f"{name} enabled")


@users.command("unlock")
@click.argument("name")
@click.pass_obj
def users_unlock(settings: Settings, name: str) -> None:
    """Let an account locked by failed logins log in again (the attempts stay on record)."""
    from mailflow.web.accounts import unlock

    _change_account(settings, lambda session, now, actor: unlock(session, name, actor=actor, now=now))
    click.echo(f"{name} unlocked")


def _change_account(settings: Settings, change: Callable[[Session, datetime, str], object]) -> None:
    """One change in one transaction, with its event naming the operating-system user who made it."""
    from mailflow.web.accounts import NoSuchUser

    app = _app(settings)
    try:
        with app.sessions.begin() as session:
            change(session, app.clock(), _cli_actor())
    except (ValueError, NoSuchUser) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        app.close()


@main.command()
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Seed with the .eml files of this directory instead of the shipped sample mailbox.",
)
@click.option(
    "--serve",
    "serve_desk",
    is_flag=True,
    help="Then start the web desk beside the worker, with demo staff and auditor accounts.",
)
@click.pass_obj
def demo(settings: Settings, source: Path | None, serve_desk: bool) -> None:
    """Seed the embedded mailbox with sample emails, process them, and show what happened."""
    from mailflow.demo import run_demo

    try:
        run_demo(settings, source)
        if serve_desk:
            from mailflow.web.demo import serve_demo

            serve_demo(settings)
    except MailflowError as exc:
        raise click.ClickException(str(exc)) from exc


def _register_model_commands() -> None:
    from mailflow.evaluation.commands import bench, train_command
    from mailflow.operations import data_commands

    main.add_command(train_command)
    main.add_command(bench)
    data_commands.register(main)


def _register_operations_commands() -> None:
    from mailflow.operations import key_commands
    from mailflow.operations.check import check_command
    from mailflow.privacy import commands as privacy_commands
    from mailflow.retention import commands as retention_commands

    main.add_command(check_command)
    key_commands.register(main)
    retention_commands.register(main)
    privacy_commands.register(main)


_register_model_commands()
_register_operations_commands()


if __name__ == "__main__":  # after the registrations above, so `python -m mailflow.cli` has every command
    main()
