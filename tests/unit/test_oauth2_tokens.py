"""The token cache, expiry warnings, SASL strings and OAuth2 settings, without any server."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from mailflow.errors import ConfigurationError, TokenRequestRefused
from mailflow.oauth2.expiry import CredentialExpiry, days_left, expiry_warnings
from mailflow.oauth2.factory import build_token_provider, configured_expiries, secret
from mailflow.oauth2.generic import GenericTokenSource
from mailflow.oauth2.sasl import initial_response, smtp_authobject
from mailflow.oauth2.tokens import AccessToken, OAuth2Identity, TokenProvider
from mailflow.settings import load_settings


class CountingSource:
    """Hands out numbered tokens that last ``lifetime`` seconds on the given clock."""

    def __init__(self, clock: list[float], lifetime: float = 3600.0, delay: float = 0.0) -> None:
        self.clock, self.lifetime, self.delay = clock, lifetime, delay
        self.fetches = 0
        self.identity = OAuth2Identity("generic", "client-1", "mail", user="box")
        self.expiries: list[CredentialExpiry] = []

    def fetch(self) -> AccessToken:
        time.sleep(self.delay)
        self.fetches += 1
        now = self.clock[0]
        return AccessToken(f"token-{self.fetches}", now + self.lifetime, now)

    def known_expiries(self) -> Sequence[CredentialExpiry]:
        return self.expiries


def provider(source: CountingSource, clock: list[float], **options: object) -> TokenProvider:
    return TokenProvider(source, clock=lambda: clock[0], **options)  # type: ignore[arg-type]


def test_a_token_is_reused_until_the_margin_before_it_expires() -> None:
    clock = [1000.0]
    tokens = provider(CountingSource(clock, lifetime=3600), clock, margin=300)
    assert tokens.token() == "token-1"
    clock[0] += 3299
    assert tokens.token() == "token-1"
    clock[0] += 1  # 300 s before expiry: renewed, not used until refused
    assert tokens.token() == "token-2"


def test_short_lived_tokens_are_renewed_at_half_their_life_not_on_every_use() -> None:
    clock = [0.0]
    source = CountingSource(clock, lifetime=60)
    tokens = provider(source, clock, margin=300)
    assert [tokens.token() for _ in range(5)] == ["token-1"] * 5
    clock[0] = 30
    assert tokens.token() == "token-2"
    assert source.fetches == 2


def test_invalidate_drops_only_the_refused_token() -> None:
    clock = [0.0]
    tokens = provider(CountingSource(clock), clock)
    first = tokens.token()
    tokens.invalidate("some-older-token")
    assert tokens.token() == first
    tokens.invalidate(first)
    assert tokens.token() == "token-2"


def test_threads_share_one_request_for_a_token() -> None:
    clock = [0.0]
    source = CountingSource(clock, delay=0.05)
    tokens = provider(source, clock)
    seen: list[str] = []
    threads = [threading.Thread(target=lambda: seen.append(tokens.token())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == ["token-1"] * 8
    assert source.fetches == 1


def test_days_left_and_warnings() -> None:
    today = date(2026, 12, 6)
    assert days_left(date(2026, 12, 20), today) == 14
    assert days_left(today, today) == 0
    assert days_left(date(2026, 12, 1), today) == -5
    expiries = [
        CredentialExpiry("client secret", date(2026, 12, 16)),
        CredentialExpiry("refresh token", date(2027, 6, 1)),
        CredentialExpiry("certificate", date(2026, 12, 1)),
    ]
    assert expiry_warnings(expiries, today, warn_days=14) == [
        "the OAuth2 client secret expires on 2026-12-16, in 10 days; renew it before then",
        "the OAuth2 certificate expired on 2026-12-01; renew it",
    ]


def test_the_provider_warns_once_a_day_of_an_expiring_secret(caplog: pytest.LogCaptureFixture) -> None:
    clock = [datetime(2026, 12, 6, 9, tzinfo=UTC).timestamp()]
    source = CountingSource(clock, lifetime=600)
    source.expiries = [CredentialExpiry("refresh token", date(2026, 12, 9))]
    secret_expiry = CredentialExpiry("client secret", date(2026, 12, 10))
    tokens = provider(source, clock, expiries=[secret_expiry], warn_days=7)
    caplog.set_level(logging.WARNING, logger="mailflow.oauth2")

    tokens.token()
    clock[0] += 600  # a new token the same day: no second warning
    tokens.token()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "refresh token expires on 2026-12-09, in 3 days" in warnings[0]
    assert "client secret expires on 2026-12-10, in 4 days" in warnings[1]
    assert "client id client-1" in warnings[1] and "token-" not in warnings[1]
    assert [item.what for item in tokens.credential_expiries()] == ["refresh token", "client secret"]

    clock[0] += 86400
    tokens.token()
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 4


def test_sasl_initial_responses() -> None:
    xoauth2 = initial_response("XOAUTH2", "box@stad.gent", "tok")
    assert xoauth2 == "user=box@stad.gent\x01auth=Bearer tok\x01\x01"
    assert (
        initial_response("OAUTHBEARER", "a,b=c@stad.gent", "tok", "smtp.example", 587)
        == "n,a=a=2Cb=3Dc@stad.gent,\x01host=smtp.example\x01port=587\x01auth=Bearer tok\x01\x01"
    )
    # After the server's error challenge: an empty answer (XOAUTH2) or ^A (OAUTHBEARER, RFC 7628).
    respond = smtp_authobject("XOAUTH2", "box", "tok", "h", 25)
    assert respond() == "user=box\x01auth=Bearer tok\x01\x01" and respond(b"{}") == ""
    assert smtp_authobject("OAUTHBEARER", "box", "tok", "h", 25)(b"{}") == "\x01"


def test_settings_name_what_oauth2_is_missing(tmp_path: Path) -> None:
    imap = {"imap_host": "imap.example", "imap_user": "box", "imap_auth": "oauth2"}
    smtp = {"smtp_host": "smtp.example", "smtp_auth": "oauth2"}
    with pytest.raises(ConfigurationError, match="set oauth2_provider"):
        load_settings(**imap)
    with pytest.raises(ConfigurationError, match=r"oauth2_tenant_id; oauth2_client_id; exactly one of"):
        load_settings(**imap, oauth2_provider="microsoft")
    with pytest.raises(ConfigurationError, match="oauth2_service_account_file"):
        load_settings(**smtp, oauth2_provider="google")
    with pytest.raises(ConfigurationError, match="oauth2_token_url"):
        load_settings(**smtp, oauth2_provider="generic", oauth2_client_id="c")
    with pytest.raises(ConfigurationError, match="smtp_user or imap_user"):
        load_settings(**smtp, oauth2_provider="generic", oauth2_client_id="c", oauth2_token_url="http://t")
    settings = load_settings(
        imap_host="imap.example",
        imap_user="box",
        imap_auth="oauth2",
        oauth2_provider="microsoft",
        oauth2_tenant_id="t",
        oauth2_client_id="c",
        oauth2_client_secret_file=tmp_path / "secret",
        oauth2_mechanism="oauthbearer",
        oauth2_client_secret_expires="2027-03-01",
    )
    assert settings.oauth2_mechanism == "OAUTHBEARER"
    assert configured_expiries(settings) == [CredentialExpiry("client secret", date(2027, 3, 1))]
    assert settings.imap_password is None  # OAuth2 needs none


def test_secrets_come_from_their_files_and_never_show_in_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("s3cret-value\n")
    assert secret(None, path, "client secret") == "s3cret-value"
    assert secret("direct", None, "client secret") == "direct"
    with pytest.raises(ConfigurationError, match="cannot read the OAuth2 client secret file"):
        secret(None, tmp_path / "missing", "client secret")
    settings = load_settings(oauth2_client_secret="s3cret-value", oauth2_refresh_token="r3fresh")
    assert "s3cret-value" not in repr(settings) and "r3fresh" not in repr(settings)


def test_a_generic_source_reaching_nothing_is_an_oauth2_error_naming_the_endpoint() -> None:
    settings = load_settings(
        smtp_host="smtp.example",
        smtp_auth="oauth2",
        imap_user="box",
        oauth2_provider="generic",
        oauth2_token_url="http://user:pw@127.0.0.1:9/token?x=1",
        oauth2_client_id="c",
        oauth2_client_secret="s3cret",
        oauth2_timeout=2,
    )
    tokens = build_token_provider(settings, "box")
    assert isinstance(tokens._source, GenericTokenSource)
    with pytest.raises(Exception) as failure:
        tokens.token()
    message = str(failure.value)
    assert not isinstance(failure.value, TokenRequestRefused)  # unreachable is not a refusal
    assert "cannot reach the token endpoint" in message and "http://127.0.0.1:9/token" in message
    assert "user:pw" not in message and "s3cret" not in message
