"""``mailflow archive export``, ``mailflow quarantine list|retry`` and ``mailflow audit verify``: what
was processed, what could not be, and the proof that the record is whole."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import click

from mailflow.settings import Settings


@click.group()
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
    from mailflow.bootstrap import command_app
    from mailflow.export import export_archive

    app = command_app(settings)
    try:
        for entry in export_archive(app.sessions, since=since.replace(tzinfo=UTC) if since else None):
            click.echo(json.dumps(entry, ensure_ascii=False))
    finally:
        app.close()


@click.group()
def quarantine() -> None:
    """Emails the pipeline could not handle: kept, listed, and processed again on demand."""


@quarantine.command("list")
@click.pass_obj
def quarantine_list(settings: Settings) -> None:
    """The quarantined emails with the reason each one is there."""
    from sqlalchemy import select

    from mailflow.bootstrap import command_app
    from mailflow.domain import Status
    from mailflow.storage.models import Message

    app = command_app(settings)
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
    from mailflow.bootstrap import command_app
    from mailflow.processing import reprocess_quarantined

    app = command_app(settings)
    try:
        results = reprocess_quarantined(app.processor, app.blobs, only=list(ids) or None)
        delivery = app.outbox.deliver_due()
    finally:
        app.close()
    for pk, status in results:
        click.echo(f"{pk}\t{status.value}")
    click.echo(f"reprocessed {len(results)}; replies sent {delivery.sent}", err=True)


@click.group()
def audit() -> None:
    """Accountability: the hash-chained event log."""


@audit.command("verify")
@click.pass_obj
def audit_verify(settings: Settings) -> None:
    """Recompute the event chain; name the first broken link (exit status 1) or print the head hash."""
    from mailflow.audit import verify_chain
    from mailflow.bootstrap import command_app

    app = command_app(settings)
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


def register(main: click.Group) -> None:
    main.add_command(archive)
    main.add_command(quarantine)
    main.add_command(audit)
