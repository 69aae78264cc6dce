"""Logging in to an IMAP server: with a password, or with an OAuth2 token over SASL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from mailflow.errors import TOKEN_REFUSED_HINT, MailboxLoginError, OAuth2Error, TokenRefused

if TYPE_CHECKING:
    from mailflow.oauth2.sasl import Mechanism
    from mailflow.oauth2.tokens import TokenProvider


def login(
    client: IMAPClient,
    user: str,
    password: str | None,
    *,
    where: str,
    name: str,
    tokens: TokenProvider | None = None,
    mechanism: Mechanism = "XOAUTH2",
) -> None:
    """Log in, or raise ``MailboxLoginError`` saying what was refused (never the password or token)."""
    if tokens is None:
        try:
            client.login(user, password or "")
        except LoginError as exc:
            raise MailboxLoginError(f"{where} refused the login of {name}: {exc}") from exc
        return
    try:
        token = tokens.token()
    except OAuth2Error as exc:
        raise MailboxLoginError(f"cannot log in to {name}: {exc}") from exc
    try:
        if mechanism == "OAUTHBEARER":
            client.oauthbearer_login(user, token)
        else:
            client.oauth2_login(user, token, mech=mechanism)
    except LoginError as exc:
        # Revoked, or issued without the mailbox's permission: the next attempt asks for a new one.
        tokens.invalidate(token)
        identity = tokens.identity.describe()
        refused = TokenRefused(
            f"the IMAP server {where} refused the OAuth2 token ({mechanism}) for {identity}: "
            f"{_without(token, str(exc))} — {TOKEN_REFUSED_HINT}"
        )
        refused.__cause__ = exc
        raise MailboxLoginError(f"cannot log in to {name}: {refused}") from refused


def _without(token: str, text: str) -> str:
    # Some servers echo what they were sent; a token must never reach the logs.
    return text.replace(token, "<token>")
