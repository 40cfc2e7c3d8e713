"""A mailbox secured the modern way, through the real hub: IMAP STARTTLS with a private CA and
XOAUTH2 login (Dovecot's oauth2 passdb), SMTP STARTTLS + XOAUTH2 (aiosmtpd), secrets from the
environment at apply time; an HTML reply's quoted history arrives folded. The OAuth2 provider
is the local FAKE in tests/servers/oauth_fake.py. SQLite and PostgreSQL."""

from __future__ import annotations

import email
from email.utils import make_msgid
from typing import Any

import pytest

from hub.db.models import ChannelInstance
from hub.wiring.email import EmailChannelConfigError, MailRowConfig, _parse, email_config
from tests.conftest import Db
from tests.hub.email_helpers import accepted_mail, apply_mail_center, imap, reply_sent
from tests.servers.dovecot import Dovecot
from tests.servers.oauth_fake import CLIENT_ID, CLIENT_SECRET
from tests.servers.smtpd_server import OAuthHandler, smtp_server

__all__ = ["imap"]  # fixture

HTML_REPLY = (
    "From: Carla Customer <carla@example.org>\r\nTo: {to}\r\nSubject: Broken kettle\r\n"
    "Message-ID: {msgid}\r\nDate: Tue, 24 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/html; charset=utf-8\r\n\r\n"
    '<div dir="ltr">The kettle arrived broken.</div><div class="gmail_quote">'
    "<div>On Mon, Nov 23, 2026 Shop wrote:</div><blockquote>Your kettle shipped.</blockquote>"
    "</div>\r\n"
)


async def test_starttls_and_oauth2_mailbox_end_to_end(db: Db, imap: Dovecot) -> None:
    user = imap.add_user()
    env = {"MAIL_CLIENT_SECRET": CLIENT_SECRET,
           "MAIL_REFRESH_TOKEN": imap.oauth.refresh_token_for(user)}
    with smtp_server(oauth=imap.oauth, tls="starttls", cert=(imap.tls.cert, imap.tls.key)) as smtp:
        await apply_mail_center(db, user, f"""
            imap_host: {imap.host}
            imap_port: {imap.port}
            imap_security: starttls
            ca_file: "{imap.tls.ca}"
            oauth2_token_url: "{imap.oauth.token_url}"
            oauth2_client_id: {CLIENT_ID}
            oauth2_client_secret_env: MAIL_CLIENT_SECRET
            oauth2_refresh_token_env: MAIL_REFRESH_TOKEN
            poll_interval_s: 0.2
            smtp_host: {smtp.host}
            smtp_port: {smtp.port}
            smtp_security: starttls
            display_name: Acme Support
            """, env)
        first_id = make_msgid(domain="example.org")
        first = HTML_REPLY.format(to=user, msgid=first_id).encode()
        async with accepted_mail(db, imap, user, first) as (c, conv_id):
            items = (await c.get(f"/api/conversations/{conv_id}/interactions")).json()["items"]
            [inbound] = [i for i in items if i["kind"] == "message"]
            assert inbound["text"] == "The kettle arrived broken."
            shown, _, folded = inbound["html"].partition('<details class="ch-quoted">')
            assert "arrived broken" in shown and "shipped" not in shown
            assert "Your kettle shipped." in folded
            sent = await reply_sent(c, conv_id, smtp, polls=300)
            assert email.message_from_bytes(sent.content)["In-Reply-To"] == first_id
    handler = smtp.handler
    assert isinstance(handler, OAuthHandler) and handler.logins == [user]
    log = imap.log()
    assert f"Login: user=<{user}>, method=XOAUTH2" in log and "TLS" in log


def _row(**config: Any) -> ChannelInstance:
    return ChannelInstance(kind="email", name="support", address="support@example.com",
                           config=config)


def test_plaintext_credentials_need_an_explicit_opt_in() -> None:
    with pytest.raises(EmailChannelConfigError, match="imap_security: none would send"):
        _parse(MailRowConfig, _row(imap_host="h", password="p", imap_security="none"))
    cfg = _parse(MailRowConfig, _row(imap_host="h", password="p", imap_security="none",
                                     allow_plaintext_auth=True))
    assert email_config(_row(), cfg).imap.allow_plaintext_auth


def test_oauth2_keys_come_together_and_replace_the_password() -> None:
    with pytest.raises(EmailChannelConfigError, match="oauth2 needs"):
        _parse(MailRowConfig, _row(imap_host="h", oauth2_client_id="x"))
    with pytest.raises(EmailChannelConfigError, match="password is required"):
        _parse(MailRowConfig, _row(imap_host="h"))
    row = _row(imap_host="h", smtp_host="s", oauth2_token_url="https://login.example/token",
               oauth2_client_id="id", oauth2_client_secret="s3cr3t-value",
               oauth2_refresh_token="rt-v4lue")
    built = email_config(row, _parse(MailRowConfig, row))
    assert built.imap.oauth2 is not None and built.imap.oauth2.refresh_token == "rt-v4lue"
    assert built.smtp is not None and built.smtp.oauth2 == built.imap.oauth2
    assert built.smtp.password is None
    assert "s3cr3t-value" not in repr(built) and "rt-v4lue" not in repr(built)
