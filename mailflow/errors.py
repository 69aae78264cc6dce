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


class TransportError(MailflowError):
    """Sending a reply failed. ``permanent`` tells whether retrying can help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class UnreadableMessage(MailflowError):
    """An email cannot be parsed at all; the worker quarantines it with this reason."""
