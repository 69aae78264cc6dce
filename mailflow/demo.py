"""``mailflow demo``: seed the embedded mailbox, run the worker over it, and show what it did."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select

from mailflow.bootstrap import App
from mailflow.settings import PROJECT_ROOT, Settings
from mailflow.storage.models import DecisionRecord, Message, Reply

SAMPLE_MAILBOX = PROJECT_ROOT / "samples" / "mailbox"


def run_demo(settings: Settings, source: Path | None = None, console: Console | None = None) -> None:
    console = console or Console()
    # The demo never touches a real mailbox or SMTP server, whatever the environment says.
    settings = settings.model_copy(update={"imap_host": None, "smtp_host": None})
    app = App(settings)
    try:
        seeded, skipped = seed(app, source or SAMPLE_MAILBOX)
        console.print(f"Seeded the embedded mailbox with {seeded} emails ({skipped} were there already).")
        with Progress(
            TextColumn("Processing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("emails", total=None)

            def on_progress(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            mailbox = app.open_mailbox()
            try:
                report = app.make_ingestor(mailbox, on_progress=on_progress).run_once()
            finally:
                mailbox.close()
        delivery = app.outbox.deliver_due()
        console.print(f"Processed {report.processed} new emails; wrote {delivery.sent} replies.")
        console.print(summary_table(app))
        console.print(where_to_look(settings))
    finally:
        app.close()


def seed(app: App, source: Path) -> tuple[int, int]:
    """Append every .eml of ``source`` to the inbox once; emails already ingested are not added again."""
    files = sorted(source.glob("*.eml"))
    if not files:
        raise FileNotFoundError(f"no .eml files in {source}")
    mailbox = app.open_mailbox()
    seeded = skipped = 0
    try:
        for path in files:
            data = path.read_bytes()
            if app.blobs.exists(hashlib.sha256(data).hexdigest()):
                skipped += 1
                continue
            mailbox.append(app.settings.imap_folder, data)  # type: ignore[attr-defined]
            seeded += 1
    finally:
        mailbox.close()
    return seeded, skipped


def summary_table(app: App) -> Table:
    with app.sessions() as session:
        statuses = Counter(
            dict(session.execute(select(Message.status, func.count()).group_by(Message.status)).all())
        )
        latest = (
            select(DecisionRecord.message_id, func.max(DecisionRecord.id).label("last")).group_by(
                DecisionRecord.message_id
            )
        ).subquery()
        actions = Counter(
            dict(
                session.execute(
                    select(DecisionRecord.action, func.count())
                    .join(latest, latest.c.last == DecisionRecord.id)
                    .group_by(DecisionRecord.action)
                ).all()
            )
        )
        replies = Counter(
            dict(session.execute(select(Reply.status, func.count()).group_by(Reply.status)).all())
        )
    table = Table(title="The archive now holds")
    table.add_column("what")
    table.add_column("value")
    table.add_column("count", justify="right")
    for status, count in sorted(statuses.items()):
        table.add_row("status (folder)", status, str(count))
    for action, count in sorted(actions.items()):
        table.add_row("action", action, str(count))
    for status, count in sorted(replies.items()):
        table.add_row("replies", status, str(count))
    return table


def where_to_look(settings: Settings) -> str:
    return "\n".join(
        [
            "Where to look:",
            f"  mailbox folders (Maildir): {settings.maildir_path}",
            f"  replies written instead of sent: {settings.outbox_dir}",
            f"  database: {settings.effective_database_url}",
            "  every email and its outcome: .venv/bin/mailflow archive export --jsonl",
        ]
    )
