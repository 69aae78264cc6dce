"""MAILFLOW_CA_FILE: servers whose certificates an internal CA signed are refused until it is trusted.

The CA and the server certificate it signs are made here with ``cryptography``; the SMTP server
(aiosmtpd, STARTTLS and AUTH required) and Dovecot (implicit TLS, its own self-signed certificate
serving as the CA) are real.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailflow.adapters.imap import ImapMailbox
from mailflow.adapters.smtp import SmtpTransport
from mailflow.errors import MailboxError, TransportError
from mailflow.operations.check_mail import ServerClocks, check_smtp
from mailflow.settings import Settings
from tests.fixtures.dovecot import running_dovecot
from tests.fixtures.smtp import RecordingHandler, free_port

pytestmark = pytest.mark.integration

USER, PASSWORD = "mailflow", "smtp-secret"
MESSAGE = (
    b"From: migratie@stad.gent\r\nTo: a@example.org\r\nSubject: x\r\nMessage-ID: <m@stad.gent>\r\n\r\nHi\r\n"
)


@dataclass
class InternalPki:
    ca_file: Path
    server_cert: Path
    server_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> InternalPki:
    """A city's internal CA, and a certificate for 127.0.0.1 it signed."""
    directory = tmp_path_factory.mktemp("pki")
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Stad Gent Internal CA"))
        .issuer_name(_name("Stad Gent Internal CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("mail.stad.gent.internal"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = InternalPki(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    pki.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    pki.server_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return pki


def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def tls_smtp(pki: InternalPki) -> Iterator[tuple[int, RecordingHandler]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    handler, port = RecordingHandler(), free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticate,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


def smtp_settings(port: int, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "starttls",
        "smtp_user": USER,
        "smtp_password": PASSWORD,
        "smtp_timeout": 10,
    }
    return Settings(**{**values, **overrides})  # type: ignore[arg-type]


def test_smtp_refuses_an_unknown_ca_and_says_what_to_set(tls_smtp, pki):
    port, handler = tls_smtp
    with pytest.raises(TransportError) as refused:
        SmtpTransport.from_settings(smtp_settings(port)).send(
            "migratie@stad.gent", ["a@example.org"], MESSAGE, "<m>"
        )
    assert "unable to get local issuer certificate" in str(refused.value)
    assert "MAILFLOW_CA_FILE" in str(refused.value)
    assert handler.received == []

    SmtpTransport.from_settings(smtp_settings(port, ca_file=pki.ca_file)).send(
        "migratie@stad.gent", ["a@example.org"], MESSAGE, "<m>"
    )
    assert [r.data for r in handler.received] == [MESSAGE]


def test_check_trusts_the_internal_ca_only_when_told(tls_smtp, pki):
    port, handler = tls_smtp
    [untrusted] = check_smtp(smtp_settings(port), ServerClocks())
    assert untrusted.level == "FAIL" and "certificate verify failed" in untrusted.detail
    assert "MAILFLOW_CA_FILE" in untrusted.fix

    [trusted, *_] = check_smtp(smtp_settings(port, ca_file=pki.ca_file), ServerClocks())
    assert trusted.level == "OK"
    assert trusted.detail.endswith(f"EHLO, STARTTLS, AUTH as {USER} accepted; nothing sent")

    [wrong] = check_smtp(smtp_settings(port, ca_file=pki.ca_file, smtp_password="nope"), ServerClocks())
    assert wrong.level == "FAIL" and "refused (535)" in wrong.detail
    assert wrong.fix == "check MAILFLOW_SMTP_USER and MAILFLOW_SMTP_PASSWORD"
    assert handler.received == []


def test_imap_refuses_an_unknown_certificate_until_its_ca_is_trusted():
    with running_dovecot(tls=True) as server:
        user, password = server.add_user()
        values = {
            "imap_host": server.host,
            "imap_port": server.tls_port,
            "imap_user": user,
            "imap_password": password,
            "imap_security": "ssl",
            "imap_timeout": 10,
        }
        with pytest.raises(MailboxError) as refused, ImapMailbox.from_settings(Settings(**values)) as mailbox:
            mailbox.uidvalidity()
        assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)
        assert "set MAILFLOW_CA_FILE" in str(refused.value)

        trusted = Settings(**values, ca_file=server.root / "tls" / "cert.pem")
        with ImapMailbox.from_settings(trusted) as mailbox:
            assert mailbox.uidvalidity() > 0
