"""Builds the token provider the settings describe, reading secrets from their files."""

from __future__ import annotations

from pathlib import Path

from mailflow.errors import ConfigurationError
from mailflow.oauth2.expiry import CredentialExpiry
from mailflow.oauth2.tokens import TokenProvider, TokenSource
from mailflow.settings import Settings


def build_token_provider(settings: Settings, user: str) -> TokenProvider:
    """One provider per mailbox user: Google's service-account tokens are issued for one user."""
    return TokenProvider(
        build_token_source(settings, user),
        margin=settings.oauth2_refresh_margin,
        expiries=configured_expiries(settings),
        warn_days=settings.oauth2_expiry_warning_days,
    )


def build_token_source(settings: Settings, user: str) -> TokenSource:
    client_secret = secret(settings.oauth2_client_secret, settings.oauth2_client_secret_file, "client secret")
    refresh_token = secret(settings.oauth2_refresh_token, settings.oauth2_refresh_token_file, "refresh token")
    if settings.oauth2_provider == "microsoft":
        from mailflow.oauth2.microsoft import DEFAULT_SCOPE, MicrosoftTokenSource

        return MicrosoftTokenSource(
            settings.oauth2_tenant_id or "",
            settings.oauth2_client_id or "",
            client_secret=client_secret,
            certificate_file=settings.oauth2_certificate_file,
            scope=settings.oauth2_scope or DEFAULT_SCOPE,
            user=user,
            timeout=settings.oauth2_timeout,
        )
    if settings.oauth2_provider == "google":
        from mailflow.oauth2.google import DEFAULT_SCOPE, TOKEN_URL, GoogleTokenSource

        return GoogleTokenSource(
            user,
            service_account_file=settings.oauth2_service_account_file,
            client_id=settings.oauth2_client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
            scope=settings.oauth2_scope or DEFAULT_SCOPE,
            token_url=settings.oauth2_token_url or TOKEN_URL,
        )
    if settings.oauth2_provider == "generic":
        from mailflow.oauth2.generic import GenericTokenSource

        if not settings.oauth2_token_url or not settings.oauth2_client_id:
            raise ConfigurationError("the generic OAuth2 provider needs oauth2_token_url, oauth2_client_id")
        return GenericTokenSource(
            settings.oauth2_token_url,
            settings.oauth2_client_id,
            client_secret,
            scope=settings.oauth2_scope,
            refresh_token=refresh_token,
            user=user,
            timeout=settings.oauth2_timeout,
        )
    raise ConfigurationError("OAuth2 login needs oauth2_provider (microsoft, google or generic)")


def configured_expiries(settings: Settings) -> list[CredentialExpiry]:
    """The expiry dates set in the settings; ``mailflow check`` can warn with ``expiry_warnings``."""
    expiries = []
    if settings.oauth2_client_secret_expires:
        expiries.append(CredentialExpiry("client secret", settings.oauth2_client_secret_expires))
    if settings.oauth2_refresh_token_expires:
        expiries.append(CredentialExpiry("refresh token", settings.oauth2_refresh_token_expires))
    return expiries


def secret(value: str | None, path: Path | None, what: str) -> str | None:
    """The secret given directly, or the first line of its file (so a trailing newline does no harm)."""
    if path is None:
        return value
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the OAuth2 {what} file {path}: {exc}") from exc
    if not text:
        raise ConfigurationError(f"the OAuth2 {what} file {path} is empty")
    return text.splitlines()[0].strip()
