"""``mailflow users add|passwd|list|disable|enable|unlock``: the web desk's accounts, each change in one
transaction with an event naming the operating-system user who made it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import click

from mailflow.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@click.group()
def users() -> None:
    """Accounts of the web desk."""


def _read_password(from_stdin: bool) -> str:
    """From the first line of stdin (scripts), else asked twice on the terminal without echo."""
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("New password", hide_input=True, confirmation_prompt=True)


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
    from mailflow.bootstrap import command_app
    from mailflow.web.accounts import Throttle, list_accounts

    throttle = Throttle.from_settings(settings)
    app = command_app(settings)
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
    _set_disabled(settings, name, True)


@users.command("enable")
@click.argument("name")
@click.pass_obj
def users_enable(settings: Settings, name: str) -> None:
    """Enable a disabled account again."""
    _set_disabled(settings, name, False)


def _set_disabled(settings: Settings, name: str, disabled: bool) -> None:
    from mailflow.web.accounts import set_disabled

    _change_account(
        settings, lambda session, now, actor: set_disabled(session, name, disabled, actor=actor, now=now)
    )
    click.echo(f"{name} {'disabled' if disabled else 'enabled'}")


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
    from mailflow.bootstrap import command_app
    from mailflow.operations.cli_actor import cli_actor
    from mailflow.web.accounts import NoSuchUser

    app = command_app(settings)
    try:
        with app.sessions.begin() as session:
            change(session, app.clock(), cli_actor())
    except (ValueError, NoSuchUser) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        app.close()


def register(main: click.Group) -> None:
    main.add_command(users)
