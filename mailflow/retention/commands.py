"""``mailflow retention run [--dry-run]``, ``hold`` and ``release``: the schedule by hand, and legal holds."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from mailflow.errors import MailflowError
from mailflow.settings import Settings


@click.group()
def retention() -> None:
    """Retention (docs/retention.md): erase what the schedule says is due; legal holds on cases."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Only count what is due, per rule; change nothing.")
@click.pass_obj
def run_command(settings: Settings, dry_run: bool) -> None:
    """Apply the retention schedule now (the worker does it daily at retention_at)."""
    from mailflow.bootstrap import App
    from mailflow.retention.job import JOB, LEASE, apply_now, plan
    from mailflow.retention.lease import claim_job, release_job
    from mailflow.retention.schedule import Schedule

    app = App(settings)
    schedule = Schedule.from_settings(settings)
    try:
        if dry_run:
            with app.sessions() as session:
                due = plan(session, schedule, app.clock())
            _print_counts("would erase", due.counts())
            if due.held_cases:
                click.echo(
                    f"kept under a legal hold: {len(due.held_cases)} cases ({', '.join(due.held_cases)})"
                )
            return
        if not claim_job(app.sessions, JOB, owner=f"cli:{app.worker_id}", now=app.clock(), lease=LEASE):
            raise click.ClickException("a retention run is under way in a worker; try again later")
        try:
            report = apply_now(app)
        finally:
            release_job(app.sessions, JOB, owner=f"cli:{app.worker_id}", now=app.clock())
    except MailflowError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        app.close()
    _print_counts("erased", dict(report.erased))
    click.echo(
        f"deleted from the mailbox: {report.mailbox_deleted} (not found there: {report.mailbox_missing})"
    )
    if report.plan.held_cases:
        click.echo(f"kept under a legal hold: {len(report.plan.held_cases)} cases")
    for refusal in report.refused:
        click.echo(f"refused: {refusal}", err=True)
    if report.refused:
        sys.exit(1)


def _print_counts(verb: str, counts: dict[str, int]) -> None:
    if not counts:
        click.echo(f"{verb}: nothing")
    for rule, count in sorted(counts.items()):
        unit = "cases with their emails" if rule == "closed_case" else "emails"
        click.echo(f"{verb} under rule {rule}: {count} {unit}")


@retention.command("hold")
@click.argument("reference")
@click.option("--reason", required=True, help="Why (a court case, an appeal); kept in the event log.")
@click.option("--by", "actor", required=True, help="The admin setting the hold.")
@click.pass_obj
def hold_command(settings: Settings, reference: str, reason: str, actor: str) -> None:
    """Put a case under a legal hold: neither retention nor an erasure request touches it."""
    from mailflow.retention.holds import set_legal_hold

    _change_hold(settings, set_legal_hold, reference, reason, actor, "under a legal hold")


@retention.command("release")
@click.argument("reference")
@click.option("--reason", required=True, help="Why the hold ends; kept in the event log.")
@click.option("--by", "actor", required=True, help="The admin lifting the hold.")
@click.pass_obj
def release_command(settings: Settings, reference: str, reason: str, actor: str) -> None:
    """Lift a case's legal hold: retention applies to it again."""
    from mailflow.retention.holds import lift_legal_hold

    _change_hold(settings, lift_legal_hold, reference, reason, actor, "no longer under a legal hold")


def _change_hold(
    settings: Settings, change: Callable[..., bool], reference: str, reason: str, actor: str, state: str
) -> None:
    from mailflow.bootstrap import App

    app = App(settings)
    try:
        with app.sessions.begin() as session:
            changed = change(session, reference, actor=actor, reason=reason, now=app.clock())
    except MailflowError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        app.close()
    click.echo(f"case {reference} {state}" + ("" if changed else " (already)"))


def register(main: click.Group) -> None:
    main.add_command(retention)
