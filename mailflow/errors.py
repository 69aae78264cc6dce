"""The few exceptions mailflow raises.

Discarding, quarantining and holding for triage are outcomes of the pipeline, not exceptions:
these classes are for things that stop a piece of work from being done at all.
"""


class MailflowError(Exception):
    """Base of every error mailflow raises on purpose."""


class ConfigurationError(MailflowError):
    """Settings or catalogue files are missing or invalid; raised at start-up."""


class MailboxError(MailflowError):
    """The mailbox could not be reached or refused an operation (retried with backoff)."""


class MailboxLoginError(MailboxError):
    """The mailbox refused our login (password or OAuth2 token): retried, but somebody must look."""


class StorageError(MailflowError):
    """An email's bytes could not be stored (disk full, say): it stays in the mailbox for a later cycle."""


class MailboxMissingError(MailboxError):
    """The watched folder does not exist (renamed or deleted): never created by us, somebody must look."""


class TransportError(MailflowError):
    """Sending a reply failed. ``permanent`` tells whether retrying can help; ``ambiguous`` that the
    connection broke after the whole message was sent, so the server may have accepted it."""

    def __init__(self, message: str, *, permanent: bool = False, ambiguous: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.ambiguous = ambiguous


class OAuth2Error(MailflowError):
    """An OAuth2 mail login could not be done: no token could be had, or the token was refused.

    The message names the provider, tenant, client id and scope, never a secret or a token, so that an
    operator can see which registration to fix. The adapters re-raise it as ``MailboxLoginError`` or
    ``TransportError`` (the cause chain keeps this one), so the worker retries as for any login fault.
    """


class TokenRequestRefused(OAuth2Error):
    """The identity provider refused a token: wrong secret, unknown tenant or client, expired grant."""


class TokenRefused(OAuth2Error):
    """The mail server refused the access token it was given (revoked, wrong scope, mailbox not permitted)."""


# What a refused token's error adds, for the person reading the log.
TOKEN_REFUSED_HINT = (
    "the token expired or was revoked before its announced end, or the app is not permitted this "
    "mailbox; the next attempt asks the identity provider for a new token"
)


class UnreadableMessage(MailflowError):
    """An email cannot be parsed at all; the worker quarantines it with this reason."""


class Interrupted(MailflowError):
    """Long work (retraining) given up because the process is stopping; nothing half-done was kept."""
