"""``mailflow subject erase ADDRESS|NRN… --reason TEXT --by NAME [--yes]``: a person's erasure request."""

from __future__ import annotations

import logging

import click

from mailflow.settings import Settings

log = logging.getLogger(__name__)


@click.command("erase")
@click.argument("identifiers", nargs=-1, required=True, metavar="ADDRESS|NRN...")
@click.option("--reason", required=True, help="The request (its date, its number); kept in the event log.")
@click.option("--by", "actor", required=True, help="The admin handling the request.")
@click.option("--yes", is_flag=True, help="Erase without asking to confirm the counts.")
@click.pass_obj
def erase_command(
    settings: Settings, identifiers: tuple[str, ...], reason: str, actor: str, yes: bool
) -> None:
    """Erase everything about the person with these email addresses and/or national register numbers
    (the same look-up as export): their emails and cases, leaving tombstones. Other senders' emails in
    their cases are kept. Refused while a legal hold applies to one of the cases or one of their emails
    waits in triage. Logged with the person by digest only."""
    from mailflow.bootstrap import App
    from mailflow.errors import MailboxError
    from mailflow.privacy.commands import find_person, parse_person, person_key
    from mailflow.privacy.erasure import erase_subject, plan_erasure
    from mailflow.privacy.readers import sandboxed_readers
    from mailflow.retention.erase import Eraser, ErasureRefused
    from mailflow.retention.job import purge_mailbox

    person = parse_person(identifiers)
    app = App(settings)
    try:
        key = person_key(app)
        with app.sessions() as session, sandboxed_readers(app.parse_sandbox) as readers:
            findings = find_person(app, session, person, readers, key)
            plan = plan_erasure(session, findings)
        cases = f" ({', '.join(plan.references)})" if plan.references else ""
        click.echo(f"found: {len(plan.messages)} emails, {len(plan.cases)} cases{cases}")
        if plan.kept:
            click.echo(f"kept: {len(plan.kept)} emails of other senders in the person's cases")
        refused = plan.refusal()
        if refused is not None:
            raise click.ClickException(f"refused, nothing erased: {refused}")
        if plan.empty:
            click.echo("nothing to erase")
            return
        if not yes:
            click.confirm("Erase them?", abort=True)
        try:
            erased = erase_subject(
                Eraser(app.sessions, app.blobs, app.clock),
                plan,
                reason=reason,
                actor=actor,
                digests=person.digests(key),
            )
        except ErasureRefused as exc:
            raise click.ClickException(f"refused, nothing erased: {exc}") from exc
        click.echo(f"erased: {len(erased.messages)} emails, {len(erased.cases)} cases, {erased.files} files")
        try:
            mailbox = app.open_mailbox()
            try:
                deleted, missing = purge_mailbox(app.sessions, mailbox, app.clock)
            finally:
                mailbox.close()
            click.echo(f"deleted from the mailbox folders: {deleted} (not found there: {missing})")
        except (MailboxError, OSError) as exc:
            log.warning("mailbox not reached after an erasure request (%s)", type(exc).__name__)
            click.echo("the mailbox could not be reached: the next retention run deletes the copies there")
    finally:
        app.close()
