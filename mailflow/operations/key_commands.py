"""``mailflow keys rotate|generate`` and ``mailflow blobs reencrypt``: the blob store's keys
(docs/encryption.md)."""

from __future__ import annotations

import sys

import click

from mailflow.errors import MailflowError
from mailflow.settings import Settings


@click.group()
def keys() -> None:
    """The keys the blob store encrypts emails and attachments with."""


@keys.command("rotate")
@click.pass_obj
def keys_rotate(settings: Settings) -> None:
    """Add a new current key to the key file (older keys still decrypt); then `mailflow blobs reencrypt`."""
    from mailflow.storage.blob_keys import load_keyring, rotate_key_file

    if settings.blob_keys:
        raise click.ClickException(
            "the blob keys come from MAILFLOW_BLOB_KEYS: append the key `mailflow keys generate` prints to "
            "it (the last key is the current one), restart the workers and the desk, then re-encrypt"
        )
    path = settings.effective_blob_keys_file
    try:
        load_keyring(None, path)  # a data directory without a key file gets one first
        keyring = rotate_key_file(path)
    except (MailflowError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"new current blob key {keyring.current.id.hex()} in {path} ({len(keyring.keys)} keys); restart the "
        "workers and the desk, then run `mailflow blobs reencrypt`"
    )


@keys.command("generate")
def keys_generate() -> None:
    """Print a new data key token (key:...) to append to MAILFLOW_BLOB_KEYS."""
    from mailflow.storage.blob_keys import new_keyring

    click.echo(new_keyring().render().splitlines()[-1])


@click.group()
def blobs() -> None:
    """The blob store: raw emails and attachments, encrypted."""


@blobs.command("reencrypt")
@click.pass_obj
def blobs_reencrypt(settings: Settings) -> None:
    """Encrypt every blob under the current key: older keys' blobs and plaintext ones from before."""
    from mailflow.storage.blobs import blob_store

    try:
        store = blob_store(settings)
        report = store.reencrypt()
    except (MailflowError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"blobs under key {store.keyring.current.id.hex()}: {report.reencrypted} re-encrypted, "
        f"{report.encrypted} plaintext encrypted, {report.current} already current, "
        f"{len(report.failed)} failed"
    )
    for failure in report.failed:
        click.echo(f"failed: {failure}", err=True)
    if report.failed:
        sys.exit(1)


def register(main: click.Group) -> None:
    main.add_command(keys)
    main.add_command(blobs)
