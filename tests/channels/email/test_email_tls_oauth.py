"""STARTTLS, certificate verification and OAuth2 (XOAUTH2) against the real Dovecot and aiosmtpd.

Dovecot (tests/servers/dovecot.py) offers STARTTLS with a certificate from a test CA made at
start, and validates XOAUTH2 tokens through its ``oauth2`` passdb by introspection at the FAKE
provider (tests/servers/oauth_fake.py), which also plays the provider's token endpoint.
"""

from __future__ import annotations

import dataclasses
import logging
from email.message import EmailMessage

import pytest

from channels.base import PermanentChannelError
from channels.email.channel import EmailChannel
from channels.email.config import ImapConfig, SmtpConfig
from channels.email.imap import ImapSession
from channels.email.oauth import OAuth2Config, TokenSource
from channels.email.smtp import smtp_send
from channels.email.state import InMemoryMailboxStateStore
from tests.servers.dovecot import Dovecot, start_dovecot
from tests.servers.oauth_fake import CLIENT_ID, CLIENT_SECRET
from tests.servers.smtpd_server import OAuthHandler, smtp_server

from .conftest import RecordingSink, imap_config, make_mail
from .test_email_imap import running


def _starttls(dovecot: Dovecot, user: str, **overrides: object) -> ImapConfig:
    base = imap_config(dovecot, user).imap
    settings: dict[str, object] = {"security": "starttls", "allow_plaintext_auth": False,
                                   "ca_file": str(dovecot.tls.ca), **overrides}
    return dataclasses.replace(base, **settings)  # type: ignore[arg-type]


def _oauth(dovecot: Dovecot, user: str, **overrides: object) -> OAuth2Config:
    cfg = OAuth2Config(token_url=dovecot.oauth.token_url, client_id=CLIENT_ID,
                       client_secret=CLIENT_SECRET,
                       refresh_token=dovecot.oauth.refresh_token_for(user))
    return dataclasses.replace(cfg, **overrides)  # type: ignore[arg-type]


async def test_starttls_upgrades_verifies_and_ingests(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    dovecot.append(user, [make_mail(i, tag="tls") for i in range(3)])
    cfg = dataclasses.replace(imap_config(dovecot, user), imap=_starttls(dovecot, user))
    sink = RecordingSink()
    before = len(dovecot.log())  # the test's own plain APPEND login is logged above this
    async with running(EmailChannel(cfg, InMemoryMailboxStateStore()), sink):
        await sink.wait_for(3)
    new_lines = dovecot.log()[before:].splitlines()
    logins = [ln for ln in new_lines if f"Login: user=<{user}>" in ln]
    assert logins and all("TLS" in ln and "method=PLAIN" in ln for ln in logins)


async def test_starttls_rejects_a_certificate_from_another_ca(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    session = ImapSession(_starttls(dovecot, user, ca_file=str(dovecot.tls.other_ca)))
    with pytest.raises(PermanentChannelError) as info:
        await session.connect()
    assert info.value.code == "imap_tls_verify"
    assert "certificate rejected: unable to get local issuer certificate" in str(info.value)
    assert f"Login: user=<{user}>" not in dovecot.log()  # the password never left


async def test_starttls_rejects_a_certificate_for_another_host(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    session = ImapSession(_starttls(dovecot, user, host="localhost"))
    with pytest.raises(PermanentChannelError) as info:
        await session.connect()
    assert info.value.code == "imap_tls_verify"
    assert "Hostname mismatch, certificate is not valid for 'localhost'" in str(info.value)


async def test_server_without_starttls_is_refused_before_login() -> None:
    server = start_dovecot(tls=False)
    try:
        user = server.add_user()
        session = ImapSession(_starttls(server, user))
        with pytest.raises(PermanentChannelError) as info:
            await session.connect()
        assert info.value.code == "imap_starttls_unavailable"
        assert "does not offer STARTTLS; not logging in without TLS" in str(info.value)
        assert "Login:" not in server.log() and "auth failed" not in server.log()
    finally:
        server.stop()


async def test_password_is_not_sent_in_clear_unless_allowed(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    plain = dataclasses.replace(_starttls(dovecot, user), security="none")
    with pytest.raises(PermanentChannelError) as info:
        await ImapSession(plain).connect()
    assert info.value.code == "imap_plaintext_refused"
    smtp = SmtpConfig(host="127.0.0.1", port=1, username="u", password="p", security="none")
    with pytest.raises(PermanentChannelError) as info:
        await smtp_send(smtp, EmailMessage(), "a@example.com", ["b@example.com"])
    assert info.value.code == "smtp_plaintext_refused"


async def test_imap_xoauth2_login_and_refresh_after_revocation(
    dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = dovecot.add_user()
    oauth = _oauth(dovecot, user)
    cfg = _starttls(dovecot, user, password="", oauth2=oauth)
    session = ImapSession(cfg)
    await session.connect()
    assert await session.select("INBOX")
    await session.close()
    source_refreshes = dovecot.oauth.refreshes
    dovecot.oauth.revoke()  # the provider revoked every token: the next login is refused once
    session = ImapSession(cfg)
    await session.connect()
    await session.close()
    assert dovecot.oauth.refreshes == source_refreshes + 1
    log = dovecot.log()
    assert f"Login: user=<{user}>, method=XOAUTH2" in log
    assert oauth.refresh_token not in caplog.text and CLIENT_SECRET not in caplog.text
    assert "at-" not in caplog.text  # no access token in any log line


async def test_token_is_refreshed_before_it_expires(dovecot: Dovecot) -> None:
    now = [1000.0]
    source = TokenSource(_oauth(dovecot, dovecot.add_user()), clock=lambda: now[0])
    first = await source.token()
    assert await source.token() == first  # cached
    now[0] += 3600 - 119  # inside the 120 s margin before expiry
    second = await source.token()
    assert second != first and source.refreshes == 2


async def test_refused_refresh_token_is_a_precise_error_without_secrets(dovecot: Dovecot) -> None:
    cfg = dataclasses.replace(_oauth(dovecot, dovecot.add_user()), refresh_token="rt-stolen")
    with pytest.raises(PermanentChannelError) as info:
        await TokenSource(cfg).token()
    assert info.value.code == "oauth_refresh_refused"
    assert "invalid_grant" in str(info.value)
    assert "rt-stolen" not in str(info.value) and CLIENT_SECRET not in str(info.value)
    assert "rt-stolen" not in repr(cfg) and CLIENT_SECRET not in repr(cfg)


async def test_smtp_xoauth2_with_refresh_on_refusal(dovecot: Dovecot) -> None:
    user = "agent@contacthub.test"
    oauth = _oauth(dovecot, user)
    with smtp_server(oauth=dovecot.oauth) as server:
        cfg = SmtpConfig(host=server.host, port=server.port, username=user, security="none",
                         allow_plaintext_auth=True, oauth2=oauth)
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = user, "c@example.com", "Hi"
        msg.set_content("Hello")
        await smtp_send(cfg, msg, user, ["c@example.com"])
        dovecot.oauth.revoke()
        await smtp_send(cfg, msg, user, ["c@example.com"])
        handler = server.handler
        assert isinstance(handler, OAuthHandler)
        assert handler.logins == [user, user] and handler.refused == 1
        assert len(handler.messages) == 2
