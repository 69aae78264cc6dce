"""``mailflow subject export ADDRESS|NRN… --output DIR_OR_ZIP``: a person's data, for their request;
``mailflow subject erase`` (``erase_command``): their erasure request."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mailflow.privacy.erase_command import erase_command
from mailflow.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mailflow.bootstrap import App
    from mailflow.privacy.readers import Readers
    from mailflow.privacy.subjects import Findings, Subject

log = logging.getLogger(__name__)


@click.group()
def subject() -> None:
    """Data subjects' requests (GDPR): a copy of everything kept about one person, or its erasure."""


subject.add_command(erase_command)


def parse_person(identifiers: tuple[str, ...]) -> Subject:
    """The person the command is about, or a usage error naming what is not an address or number."""
    from mailflow.privacy.subjects import NotAnIdentifier, Subject

    try:
        return Subject.parse(identifiers)
    except NotAnIdentifier as exc:
        raise click.BadParameter(str(exc), param_hint="ADDRESS|NRN") from exc


def person_key(app: App) -> str:
    """The key the event log names people by (a digest under the desk's secret)."""
    from mailflow.web.security import secret_key

    return secret_key(app.settings.secret_key, app.settings.secret_key_file)


def find_person(app: App, session: Session, person: Subject, readers: Readers, key: str) -> Findings:
    """Everything held about the person: the one look-up export and erasure share."""
    from mailflow.privacy.subjects import find_subject

    return find_subject(
        session,
        person,
        key=key,
        read=app.blobs.get,
        text_of=readers.email_text,
        pdf_text_of=readers.pdf_text,
    )


@subject.command("export")
@click.argument("identifiers", nargs=-1, required=True, metavar="ADDRESS|NRN...")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    required=True,
    help="A new directory, or a file ending in .zip.",
)
@click.option("--language", type=click.Choice(["en", "nl"]), default="en", help="Language of index.html.")
@click.pass_obj
def export_command(settings: Settings, identifiers: tuple[str, ...], output: Path, language: str) -> None:
    """Write everything about the person with these email addresses and/or national register numbers
    (establish who they are first): index.html, data.json and the original files. The export is
    recorded in the event log by a digest of the identifiers, never the identifiers themselves."""
    from mailflow.bootstrap import App
    from mailflow.operations.cli_actor import cli_actor
    from mailflow.privacy.readers import sandboxed_readers
    from mailflow.privacy.subject_export import ExportError, write_export
    from mailflow.storage.models import Event

    person = parse_person(identifiers)
    app = App(settings)
    try:
        key = person_key(app)
        with app.sessions() as session, sandboxed_readers(app.parse_sandbox) as readers:
            findings = find_person(app, session, person, readers, key)
            try:
                written = write_export(
                    findings, output, app.blobs.get, generated_at=app.clock(), language=language
                )
            except ExportError as exc:
                raise click.ClickException(str(exc)) from exc
            exported_ids = sorted(findings.message_ids)
        with app.sessions.begin() as session:
            session.add(
                Event(
                    message_id=None,
                    at=app.clock(),
                    actor=cli_actor(),
                    kind="exported",
                    detail={
                        "what": "subject",
                        "subject": person.digests(key),
                        "emails": exported_ids,
                        "withheld": written.withheld,
                    },
                )
            )
    finally:
        app.close()
    log.info("subject access export written: %s emails, %s files", written.emails, written.files)
    click.echo(f"wrote {written.target}: {written.emails} emails, {written.files} files")
    if written.withheld:
        click.echo(
            f"{written.withheld} emails of other senders in the person's cases withheld: review them by hand"
        )
    for name in written.missing:
        click.echo(f"missing from the store: {name}", err=True)


def register(main: click.Group) -> None:
    main.add_command(subject)
