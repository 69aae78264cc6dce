"""OAuth2 mail logins for real: Dovecot with an oauth2 passdb and aiosmtpd checking bearer tokens, both
asking the fixture's token server (introspection) about the tokens mailflow got from its token endpoint."""

from __future__ import annotations

import time

import pytest

from mailflow.adapters.imap import ImapMailbox
from mailflow.adapters.smtp import SmtpTransport
from mailflow.errors import MailboxLoginError, TokenRefused, TokenRequestRefused, TransportError
from mailflow.oauth2.factory import build_token_provider
from tests.fixtures.oauth2 import OAuth2Account
from tests.fixtures.smtp import SmtpServer

pytestmark = [
    pytest.mark.integration,
    # The SMTP fixture requires AUTH without TLS, on loopback only; aiosmtpd warns about it.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]

MESSAGE = (
    b"From: amina@example.org\r\nTo: migratie@stad.gent\r\nSubject: Vraag\r\n"
    b"Message-ID: <q1@example.org>\r\n\r\nHallo\r\n"
)
REPLY = (
    b"From: migratie@stad.gent\r\nTo: amina@example.org\r\nSubject: Re: Vraag\r\n"
    b"Message-ID: <r1@stad.gent>\r\n\r\nDag\r\n"
)


def smtp_values(server: SmtpServer) -> dict[str, object]:
    return {
        "smtp_host": server.host,
        "smtp_port": server.port,
        "smtp_security": "none",
        "smtp_auth": "oauth2",
    }


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_imap_login_with_an_oauth2_token_and_a_real_fetch(
    oauth2_account: OAuth2Account, mechanism: str
) -> None:
    uid = oauth2_account.mailbox.append("INBOX", MESSAGE)
    grants_before = len(oauth2_account.tokens.grants)

    with ImapMailbox.from_settings(oauth2_account.settings(oauth2_mechanism=mechanism)) as box:
        assert box.list_uids() == [uid]
        [(fetched_uid, body)] = list(box.fetch([uid]))

    assert (fetched_uid, body) == (uid, MESSAGE)
    assert oauth2_account.tokens.grants[grants_before:] == ["client_credentials"]
    assert oauth2_account.tokens.introspections[-1] is True
    log = oauth2_account.mailbox.server.log().splitlines()
    assert any(f"Login: user=<{oauth2_account.user}>, method={mechanism}" in line for line in log)


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_smtp_send_with_an_oauth2_token(
    oauth2_account: OAuth2Account, oauth2_smtp_server: SmtpServer, mechanism: str
) -> None:
    settings = oauth2_account.settings(**smtp_values(oauth2_smtp_server), oauth2_mechanism=mechanism)
    transport = SmtpTransport.from_settings(settings)
    transport.send("migratie@stad.gent", ["amina@example.org"], REPLY, "<r1@stad.gent>")

    [received] = oauth2_smtp_server.wait_for(1)
    assert received.data == REPLY
    assert oauth2_smtp_server.handler.logins == [(mechanism, oauth2_account.user, True)]  # type: ignore[attr-defined]


def test_imap_and_smtp_share_one_token(oauth2_account: OAuth2Account, oauth2_smtp_server: SmtpServer) -> None:
    settings = oauth2_account.settings(**smtp_values(oauth2_smtp_server))
    tokens = build_token_provider(settings, oauth2_account.user)
    grants_before = len(oauth2_account.tokens.grants)
    with ImapMailbox.from_settings(settings, token_provider=tokens) as box:
        box.list_uids()
    transport = SmtpTransport.from_settings(settings, token_provider=tokens)
    transport.send("m@stad.gent", ["a@example.org"], REPLY, "x")
    assert len(oauth2_account.tokens.grants) - grants_before == 1
    assert oauth2_smtp_server.wait_for(1)


def test_a_refused_token_is_a_clear_login_error_and_the_next_login_gets_a_new_one(
    oauth2_account: OAuth2Account,
) -> None:
    settings = oauth2_account.settings()
    tokens = build_token_provider(settings, oauth2_account.user)
    first = tokens.token()
    oauth2_account.tokens.revoke_all()  # introspection now answers active: false

    with pytest.raises(MailboxLoginError) as refused:
        ImapMailbox.from_settings(settings, token_provider=tokens).list_uids()

    message = str(refused.value)
    assert isinstance(refused.value.__cause__, TokenRefused)
    assert "refused the OAuth2 token" in message and "AUTHENTICATIONFAILED" in message
    assert f"client id {oauth2_account.client_id}" in message and "scope mail" in message
    assert oauth2_account.user in message
    assert first not in message and oauth2_account.client_secret not in message
    assert oauth2_account.tokens.introspections[-1] is False

    # The refused token was dropped: the next login asks for a fresh one and works.
    with ImapMailbox.from_settings(settings, token_provider=tokens) as box:
        assert box.list_uids() == []
    assert tokens.token() != first


def test_a_refused_token_on_smtp_is_a_retryable_transport_error(
    oauth2_account: OAuth2Account, oauth2_smtp_server: SmtpServer
) -> None:
    settings = oauth2_account.settings(**smtp_values(oauth2_smtp_server))
    tokens = build_token_provider(settings, oauth2_account.user)
    token = tokens.token()
    oauth2_account.tokens.revoke_all()
    transport = SmtpTransport.from_settings(settings, token_provider=tokens)

    with pytest.raises(TransportError) as refused:
        transport.send("migratie@stad.gent", ["amina@example.org"], REPLY, "<r1@stad.gent>")

    assert refused.value.permanent is False
    assert isinstance(refused.value.__cause__, TokenRefused)
    assert "535" in str(refused.value) and f"client id {oauth2_account.client_id}" in str(refused.value)
    assert token not in str(refused.value)
    assert oauth2_smtp_server.received == []
    transport.send("migratie@stad.gent", ["amina@example.org"], REPLY, "<r1@stad.gent>")  # a new token
    assert len(oauth2_smtp_server.wait_for(1)) == 1


def test_a_wrong_client_secret_names_client_scope_and_endpoint_but_not_the_secret(
    oauth2_account: OAuth2Account, oauth2_smtp_server: SmtpServer
) -> None:
    wrong = "not-the-secret-123"
    introspected = len(oauth2_account.tokens.introspections)
    settings = oauth2_account.settings(oauth2_client_secret=wrong, **smtp_values(oauth2_smtp_server))

    with pytest.raises(MailboxLoginError) as imap_error:
        ImapMailbox.from_settings(settings).list_uids()
    with pytest.raises(TransportError) as smtp_error:
        SmtpTransport.from_settings(settings).send("m@stad.gent", ["a@example.org"], REPLY, "x")

    for error in (imap_error.value, smtp_error.value):
        message = str(error)
        assert isinstance(error.__cause__, TokenRequestRefused)
        assert "refused a token" in message and "invalid_client" in message
        assert f"client id {oauth2_account.client_id}" in message and "scope mail" in message
        assert oauth2_account.tokens.token_url in message
        assert wrong not in message
    assert len(oauth2_account.tokens.introspections) == introspected  # no token, so no login attempt
    assert oauth2_smtp_server.handler.logins == []  # type: ignore[attr-defined]


def test_a_token_that_expired_early_is_a_clear_error_and_the_next_login_gets_a_new_one(
    oauth2_account: OAuth2Account, oauth2_smtp_server: SmtpServer
) -> None:
    """The provider said an hour, the token died after one second: IMAP and SMTP refuse it, each
    error says so in words and names whose token it was, and the next attempt logs in with a new one."""
    oauth2_account.tokens.lifetime, oauth2_account.tokens.announced_lifetime = 1, 3600
    settings = oauth2_account.settings(**smtp_values(oauth2_smtp_server))
    tokens = build_token_provider(settings, oauth2_account.user)
    expired = tokens.token()
    time.sleep(1.2)
    assert oauth2_account.tokens.introspect(expired)["active"] is False

    with pytest.raises(MailboxLoginError) as imap_refused:
        ImapMailbox.from_settings(settings, token_provider=tokens).list_uids()
    tokens.token()  # the renewed token, itself dead a second later
    time.sleep(1.2)
    with pytest.raises(TransportError) as smtp_refused:
        SmtpTransport.from_settings(settings, token_provider=tokens).send(
            "migratie@stad.gent", ["amina@example.org"], REPLY, "<r1@stad.gent>"
        )

    for error in (imap_refused.value, smtp_refused.value):
        message = str(error)
        assert "refused the OAuth2 token" in message and "expired or was revoked" in message
        assert f"client id {oauth2_account.client_id}" in message and expired not in message
    oauth2_account.tokens.lifetime = 3600
    with ImapMailbox.from_settings(settings, token_provider=tokens) as box:
        assert box.list_uids() == []
    assert tokens.token() != expired


def test_an_expiring_token_is_renewed_before_it_is_refused(oauth2_account: OAuth2Account) -> None:
    oauth2_account.tokens.lifetime = 2
    settings = oauth2_account.settings(oauth2_refresh_margin=300)
    tokens = build_token_provider(settings, oauth2_account.user)
    first = tokens.token()
    assert tokens.token() == first  # cached while fresh

    time.sleep(2.1)
    assert oauth2_account.tokens.introspect(first)["active"] is False  # the server no longer takes it
    with ImapMailbox.from_settings(settings, token_provider=tokens) as box:
        assert box.list_uids() == []
    assert tokens.token() != first
    assert oauth2_account.tokens.introspections[-1] is True  # the login's introspection
