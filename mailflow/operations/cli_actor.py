"""Who ran a command that changes something, as the event log names them."""

from __future__ import annotations

import getpass
import os


def cli_actor() -> str:
    """The actor "cli:<login name>" of the operating-system user running the command."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        who = f"uid {os.getuid()}"
    return f"cli:{who}"
