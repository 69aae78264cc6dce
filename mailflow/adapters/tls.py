"""TLS client contexts: the system's CA certificates, plus an internal CA when ``ca_file`` names one."""

from __future__ import annotations

import ssl
from pathlib import Path

from mailflow.errors import ConfigurationError

UNTRUSTED_HINT = (
    "the server's certificate is not trusted; if it is signed by an internal CA, "
    "set MAILFLOW_CA_FILE to that CA's certificate (PEM)"
)


def client_context(ca_file: Path | None) -> ssl.SSLContext:
    """A verifying context (host name and chain checked), also trusting the CAs in ``ca_file``."""
    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"cannot read CA certificates from {ca_file}: {exc}") from exc
    return context


def explain(exc: BaseException) -> str:
    """The error's text, with what to do when it is a certificate the system does not trust."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"{exc} ({UNTRUSTED_HINT})"
    return str(exc)
