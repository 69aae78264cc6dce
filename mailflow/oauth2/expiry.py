"""When OAuth2 credentials stop working: client secrets and refresh tokens expire on a known date.

Microsoft 365 client secrets last at most two years and stop logins on the day they expire, without
any earlier sign from the server; refresh tokens may expire too. These functions turn the known dates
into days left and warnings, for the worker's log and for configuration checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class CredentialExpiry:
    what: str  # e.g. "client secret", "refresh token"
    expires: date


def days_left(expires: date, today: date) -> int:
    """Whole days until ``expires``: 0 on the day itself, negative once past."""
    return (expires - today).days


def expiry_warnings(expiries: Iterable[CredentialExpiry], today: date, warn_days: int) -> list[str]:
    """One line per credential that expires within ``warn_days`` days or already has."""
    warnings = []
    for item in expiries:
        left = days_left(item.expires, today)
        if left < 0:
            warnings.append(f"the OAuth2 {item.what} expired on {item.expires:%Y-%m-%d}; renew it")
        elif left <= warn_days:
            warnings.append(
                f"the OAuth2 {item.what} expires on {item.expires:%Y-%m-%d}, in {left} days; "
                "renew it before then"
            )
    return warnings
