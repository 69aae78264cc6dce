"""``mailflow demo``: sample emails arrive in the embedded mailbox over the past weeks, the worker's
pipeline takes each as it comes, and the demo shows what it did."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select

from mailflow.bootstrap import App
from mailflow.demo_calendar import DAYS
from mailflow.demo_feed import DemoClock, FeedReport, feed
from mailflow.resources import shipped
from mailflow.settings import Settings
from mailflow.storage.models import DecisionRecord, Message, Reply


def sample_mailbox() -> Path:
    """The shipped sample emails (``samples/mailbox``, packaged with the wheel)."""
    return shipped("samples") / "mailbox"


def run_demo(
    settings: Settings,
    source: Path | None = None,
    console: Console | None = None,
    *,
    now: datetime | None = None,
) -> FeedReport:
    """Let the sample emails arrive over the weeks before ``now`` (see ``mailflow.demo_feed``)."""
    console = console or Console()
    # The demo never touches a real mailbox or SMTP server, whatever the environment says.
    settings = settings.model_copy(update={"imap_host": None, "smtp_host": None})
    # The demo's own clock, set to each email's arrival in turn; this App lives only for the feed.
    clock = DemoClock()
    app = App(settings, clock=clock)
    try:
        with Progress(
            TextColumn("Emails arriving over the past weeks"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("emails", total=None)

            def on_progress(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            report = feed(app, clock, source or sample_mailbox(), now=now, on_progress=on_progress)
        if report.waiting:
            console.print(f"{report.waiting} emails already waiting in the inbox arrived now.")
        console.print(
            f"{report.fed} sample emails arrived over the past {DAYS // 7} weeks "
            f"({report.skipped} were there already); processed {report.processed}, "
            f"demo staff decided {report.decided_by_staff} triage items; wrote {report.replies_sent} replies."
        )
        console.print(summary_table(app))
        console.print(where_to_look(settings))
        return report
    finally:
        app.close()


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
            f"  database: {_without_password(settings.effective_database_url)}",
            "  every email and its outcome: mailflow archive export --jsonl",
        ]
    )


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
