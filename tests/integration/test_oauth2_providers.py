"""The Microsoft and Google token sources with their real libraries (MSAL, google-auth) pointed at the
fixture's token server: the requests those libraries build are checked there (secrets, signed
assertions, grants), and Google's tokens log in to the OAuth2 Dovecot.

MSAL only talks https, so Microsoft's tests use the token server over TLS; that server is not the one
Dovecot asks, so Microsoft tokens are checked by introspection at the token server rather than by a login.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from mailflow.adapters.imap import ImapMailbox
from mailflow.errors import MailboxLoginError, TokenRequestRefused
from mailflow.oauth2.google import GoogleTokenSource
from mailflow.oauth2.microsoft import DEFAULT_SCOPE, MicrosoftTokenSource
from tests.fixtures.oauth2 import OAuth2Account
from tests.fixtures.token_server import TokenServer

pytestmark = pytest.mark.integration

TENANT = "contoso-tenant-id"


def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_of(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def certificate_pem(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailflow")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
def microsoft(tls_token_server: TokenServer, monkeypatch: pytest.MonkeyPatch) -> TokenServer:
    # requests lets these variables override a session's own CA file: the test's CA must win.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    tls_token_server.tenants.add(TENANT)
    return tls_token_server


def msal_source(server: TokenServer, client_id: str, **credential: object) -> MicrosoftTokenSource:
    return MicrosoftTokenSource(
        TENANT,
        client_id,
        user="migratie@stad.gent",
        authority_host=server.base_url,
        verify=server.cafile or True,
        timeout=10,
        **credential,  # type: ignore[arg-type]
    )


def test_msal_with_a_client_secret_gets_tokens_the_server_accepts(microsoft: TokenServer) -> None:
    client_id, secret = microsoft.add_client("migratie@stad.gent")
    source = msal_source(microsoft, client_id, client_secret=secret)

    first, second = source.fetch(), source.fetch()

    assert first.value != second.value  # asked again, not served from MSAL's own cache
    assert 3500 < first.expires_at - first.obtained_at <= 3600
    answer = microsoft.introspect(second.value)
    assert answer["active"] is True and answer["client_id"] == client_id
    assert answer["username"] == "migratie@stad.gent" and answer["scope"] == DEFAULT_SCOPE


def test_msal_with_a_certificate_signs_an_assertion_the_server_verifies(
    microsoft: TokenServer, tmp_path: Path
) -> None:
    key = private_key()
    certificate = certificate_pem(key)
    client_id, _ = microsoft.add_client("migratie@stad.gent", certificate_pem=certificate)
    path = tmp_path / "mailflow.pem"
    path.write_text(certificate + pem_of(key))  # either order works

    source = msal_source(microsoft, client_id, certificate_file=path)
    token = source.fetch()

    assert microsoft.introspect(token.value)["active"] is True
    [expiry] = source.known_expiries()  # the certificate's own end date feeds the expiry warning
    assert (expiry.what, expiry.expires) == (
        "client certificate",
        (datetime.now(UTC) + timedelta(days=1)).date(),
    )
    # Another key with the same client id is refused: the signature was really checked.
    other = tmp_path / "other.pem"
    other.write_text(pem_of(private_key()) + certificate)
    with pytest.raises(TokenRequestRefused, match="invalid_client"):
        msal_source(microsoft, client_id, certificate_file=other).fetch()


def test_a_wrong_client_secret_names_tenant_client_and_scope(microsoft: TokenServer) -> None:
    client_id, _ = microsoft.add_client("migratie@stad.gent")
    with pytest.raises(TokenRequestRefused) as refused:
        msal_source(microsoft, client_id, client_secret="wrong-secret-value").fetch()
    message = str(refused.value)
    assert f"tenant {TENANT}" in message and f"client id {client_id}" in message
    assert f"scope {DEFAULT_SCOPE}" in message and "invalid_client" in message
    assert "wrong-secret-value" not in message


def test_an_unknown_tenant_is_named(microsoft: TokenServer) -> None:
    client_id, secret = microsoft.add_client("migratie@stad.gent")
    source = MicrosoftTokenSource(
        "no-such-tenant",
        client_id,
        client_secret=secret,
        authority_host=microsoft.base_url,
        verify=microsoft.cafile or True,
    )
    with pytest.raises(TokenRequestRefused, match=r"tenant no-such-tenant.*invalid_tenant"):
        source.fetch()


def service_account(server: TokenServer, tmp_path: Path, users: set[str]) -> Path:
    key = private_key()
    email = "mailflow@counter-project.iam.gserviceaccount.com"
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    server.service_accounts[email] = (public.decode(), users)
    info = {
        "type": "service_account",
        "project_id": "counter-project",
        "private_key_id": "key-1",
        "private_key": pem_of(key),
        "client_email": email,
        "client_id": "104200000000000000001",
        "token_uri": server.token_url,
    }
    path = tmp_path / "google-key.json"
    path.write_text(json.dumps(info))
    return path


def test_a_google_service_account_logs_in_to_the_delegated_mailbox(
    oauth2_account: OAuth2Account, tmp_path: Path
) -> None:
    key_file = service_account(oauth2_account.tokens, tmp_path, {oauth2_account.user})
    oauth2_account.mailbox.append("INBOX", b"Subject: hello\r\n\r\nbody\r\n")
    settings = oauth2_account.settings(
        oauth2_provider="google",
        oauth2_service_account_file=key_file,
        oauth2_client_id=None,
        oauth2_client_secret=None,
        oauth2_scope=None,
    )
    with ImapMailbox.from_settings(settings) as box:
        assert len(box.list_uids()) == 1
    assert oauth2_account.tokens.grants[-1] == "urn:ietf:params:oauth:grant-type:jwt-bearer"

    # Delegation covers only the granted mailbox: another user gets a clear refusal.
    with pytest.raises(MailboxLoginError) as refused:
        ImapMailbox.from_settings(settings.model_copy(update={"imap_user": "someone-else"})).list_uids()
    assert isinstance(refused.value.__cause__, TokenRequestRefused)
    message = str(refused.value)
    assert "unauthorized_client" in message and "mailbox user someone-else" in message
    assert (
        "service account mailflow@counter-project" in message and "scope https://mail.google.com/" in message
    )


def test_a_google_refresh_token_gets_a_token_and_a_revoked_one_is_named(
    oauth2_account: OAuth2Account,
) -> None:
    server = oauth2_account.tokens
    refresh_token = server.add_refresh_token(oauth2_account.client_id)

    def source(token: str) -> GoogleTokenSource:
        return GoogleTokenSource(
            oauth2_account.user,
            client_id=oauth2_account.client_id,
            client_secret=oauth2_account.client_secret,
            refresh_token=token,
            token_url=server.token_url,
        )

    token = source(refresh_token).fetch()
    assert server.grants[-1] == "refresh_token"
    assert server.introspect(token.value)["username"] == oauth2_account.user
    assert 3500 < token.expires_at - token.obtained_at < 3601

    with pytest.raises(TokenRequestRefused) as refused:
        source("refresh-revoked").fetch()
    assert "invalid_grant" in str(refused.value) and oauth2_account.client_id in str(refused.value)
    assert "refresh-revoked" not in str(refused.value)
