"""The SASL exchanges that carry an OAuth2 bearer token: XOAUTH2 (Google's, Microsoft's) and OAUTHBEARER.

Both servers of the big providers accept XOAUTH2; OAUTHBEARER is the standard (RFC 7628). When a token is
refused, the server sends an error challenge first, which the client must answer with an empty
response (XOAUTH2) or a single ^A (OAUTHBEARER) before the server gives its final refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

Mechanism = Literal["XOAUTH2", "OAUTHBEARER"]


def initial_response(mechanism: Mechanism, user: str, token: str, host: str = "", port: int = 0) -> str:
    if mechanism == "XOAUTH2":
        return f"user={user}\x01auth=Bearer {token}\x01\x01"
    gs2_header = "n,a={},".format(user.replace("=", "=3D").replace(",", "=2C"))
    where = f"host={host}\x01port={port}\x01" if host else ""
    return f"{gs2_header}\x01{where}auth=Bearer {token}\x01\x01"


def smtp_authobject(mechanism: Mechanism, user: str, token: str, host: str, port: int) -> Callable[..., str]:
    """What ``smtplib.SMTP.auth`` calls: first for the initial response, then with each challenge."""
    first = initial_response(mechanism, user, token, host, port)

    def respond(challenge: bytes | None = None) -> str:
        if challenge is None:
            return first
        return "" if mechanism == "XOAUTH2" else "\x01"

    return respond
