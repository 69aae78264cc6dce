"""The ``mailflow`` command."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path

import click

from mailflow.errors import ConfigurationError, MailboxError, MailflowError
from mailflow.settings import Settings, load_settings


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


@main.command()
@click.pass_obj
def run(settings: Settings) -> None:
    """Run the worker until stopped (SIGTERM or Ctrl-C finish the current email first)."""
    from mailflow.bootstrap import command_app

    app = command_app(settings, mail_worker=True)
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
    from mailflow.bootstrap import command_app

    app = command_app(settings, mail_worker=True)
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


@main.command()
@click.option("--host", help="Address to listen on (default: the web_host setting).")
@click.option("--port", type=int, help="Port to listen on (default: the web_port setting).")
@click.option("--with-worker", is_flag=True, help="Also run the mailbox worker in this process.")
@click.option("--dev", is_flag=True, help="Werkzeug's development server, not waitress (not in production).")
@click.pass_obj
def web(settings: Settings, host: str | None, port: int | None, with_worker: bool, dev: bool) -> None:
    """Serve the web desk (waitress): triage queue for staff, read-only archive for auditors."""
    from sqlalchemy import func, select

    from mailflow.bootstrap import command_app
    from mailflow.storage.desk_models import User
    from mailflow.web.serve import serve

    app = command_app(settings)
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
    from mailflow.operations import archive_commands, key_commands
    from mailflow.operations.check import check_command
    from mailflow.privacy import commands as privacy_commands
    from mailflow.retention import commands as retention_commands
    from mailflow.web import account_commands

    main.add_command(check_command)
    archive_commands.register(main)
    account_commands.register(main)
    key_commands.register(main)
    retention_commands.register(main)
    privacy_commands.register(main)


_register_model_commands()
_register_operations_commands()


if __name__ == "__main__":  # after the registrations above, so `python -m mailflow.cli` has every command
    main()
