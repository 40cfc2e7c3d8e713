"""Sending replies through real SMTP servers (aiosmtpd): threading headers, TLS, auth, errors."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from email.policy import default
from pathlib import Path

import pytest

from channels.base import (
    Address,
    AddressKind,
    Attachment,
    ChannelKind,
    Outbound,
    PermanentChannelError,
    TransientChannelError,
)
from channels.email.channel import EmailChannel
from channels.email.config import EmailConfig, ImapConfig, Security, SmtpConfig
from channels.email.parse import parse_email
from channels.email.state import InMemoryMailboxStateStore
from tests.servers.dovecot import Dovecot
from tests.servers.smtpd_server import Handler, self_signed, smtp_server

from .conftest import imap_config
from .test_email_imap import flags_by_uid


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


def _client_ctx(cert: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert[0]))


def _channel(port: int, security: Security = "none", ctx: ssl.SSLContext | None = None,
             user: str | None = None, password: str | None = None) -> EmailChannel:
    smtp = SmtpConfig(host="127.0.0.1", port=port, security=security, ssl_context=ctx,
                      username=user, password=password, timeout_s=5)
    imap = ImapConfig(host="127.0.0.1", username="x", password="x", security="none")
    cfg = EmailConfig("support", "support@contacthub.test", imap, smtp, display_name="Support")
    return EmailChannel(cfg, InMemoryMailboxStateStore())


def _reply(**overrides: object) -> Outbound:
    fields: dict[str, object] = {
        "channel": ChannelKind.EMAIL, "channel_id": "support", "conversation_id": "conv42",
        "to": Address(AddressKind.EMAIL, "alice@example.com"), "text": "We fixed it.\n",
        "idempotency_key": "outbox-17", "subject": "RE: Printer does not print",
        "in_reply_to": "<cust-2@example.com>",
        "references": ("<cust-1@example.com>", "<ch.first@contacthub.test>"),
        "author_name": "Ana Agent",
    }
    fields.update(overrides)
    return Outbound(**fields)  # type: ignore[arg-type]


def _received(handler: Handler) -> Iterator[Message]:
    for item in handler.messages:
        yield message_from_bytes(item.content, policy=default)


async def test_reply_carries_threading_name_token_and_attachments() -> None:
    with smtp_server() as server:
        channel = _channel(server.port)
        out = _reply(
            html='<p>We fixed it.</p><img src="cid:sig@ch">',
            attachments=(Attachment("report.pdf", "application/pdf", b"%PDF-1.4 test"),
                         Attachment("sig.png", "image/png", b"\x89PNG fake", "sig@ch", True)),
        )
        result = await channel.send(out)
        again = await channel.send(out)  # the outbox retrying the same item
    assert result.external_id == again.external_id  # same Message-ID on retry
    assert result.external_id.startswith("<ch.") and result.external_id.endswith(
        "@contacthub.test>")
    first, _ = list(_received(server.handler))
    assert server.handler.messages[0].mail_from == "support@contacthub.test"
    assert server.handler.messages[0].rcpt_tos == ["alice@example.com"]
    assert str(first["From"]) == '"Ana Agent (Support)" <support@contacthub.test>'
    assert str(first["Subject"]) == "Re: Printer does not print [#CH-conv42]"
    assert str(first["Message-ID"]) == result.external_id
    assert str(first["In-Reply-To"]) == "<cust-2@example.com>"
    assert str(first["References"]).split() == [
        "<cust-1@example.com>", "<ch.first@contacthub.test>", "<cust-2@example.com>"]
    names = [str(p.get_filename()) for p in first.walk() if p.get_filename()]
    assert sorted(names) == ["report.pdf", "sig.png"]
    # Our own parser, reading the customer's copy back, finds the thread and the token.
    parsed = parse_email(server.handler.messages[0].content, channel_id="support")
    assert "ticket:conv42" in parsed.thread_refs
    assert parsed.text == "We fixed it."
    assert [a.filename for a in parsed.attachments if a.inline] == ["sig.png"]


async def test_starttls_with_auth(cert: tuple[Path, Path]) -> None:
    with smtp_server(tls="starttls", cert=cert, credentials=("agent", "pw")) as server:
        await _channel(server.port, "starttls", _client_ctx(cert), "agent", "pw").send(_reply())
        assert len(server.handler.messages) == 1
        with pytest.raises(PermanentChannelError) as info:
            await _channel(server.port, "starttls", _client_ctx(cert), "agent", "wrong").send(
                _reply())
        assert info.value.code == "smtp_535"


async def test_implicit_tls(cert: tuple[Path, Path]) -> None:
    with smtp_server(tls="tls", cert=cert) as server:
        await _channel(server.port, "tls", _client_ctx(cert)).send(_reply())
        assert len(server.handler.messages) == 1


async def test_untrusted_certificate_is_transient(cert: tuple[Path, Path]) -> None:
    with smtp_server(tls="tls", cert=cert) as server, pytest.raises(TransientChannelError):
        await _channel(server.port, "tls", ssl.create_default_context()).send(_reply())


@pytest.mark.parametrize(
    ("handler", "error", "code"),
    [
        (Handler(data_reply="451 4.3.0 Try again later"), TransientChannelError, "smtp_451"),
        (Handler(rcpt_reply="452 4.2.2 Mailbox full"), TransientChannelError, "smtp_452"),
        (Handler(rcpt_reply="550 5.1.1 No such user"), PermanentChannelError, "smtp_550"),
        (Handler(data_reply="554 5.7.1 Message rejected as spam"), PermanentChannelError,
         "smtp_554"),
    ],
)
async def test_smtp_reply_codes_map_to_retry_or_dead_letter(
    handler: Handler, error: type[Exception], code: str
) -> None:
    with smtp_server(handler=handler) as server, pytest.raises(error) as info:
        await _channel(server.port).send(_reply())
    assert getattr(info.value, "code", None) == code
    assert handler.messages == []


async def test_connection_refused_is_transient() -> None:
    with smtp_server() as server:
        port = server.port  # stopped on exit: nothing listens there any more
    with pytest.raises(TransientChannelError) as info:
        await _channel(port).send(_reply())
    assert info.value.code == "smtp_connect"


async def test_non_email_target_is_permanent() -> None:
    with pytest.raises(PermanentChannelError):
        await _channel(1).send(_reply(to=Address(AddressKind.PHONE, "+15551234567")))


async def test_sent_copy_is_appended_to_sent_folder(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    with smtp_server() as server:
        cfg: EmailConfig = imap_config(
            dovecot, user, smtp=SmtpConfig(host="127.0.0.1", port=server.port, security="none"),
            sent_folder="Sent",
        )
        result = await EmailChannel(cfg, InMemoryMailboxStateStore()).send(_reply())
    flags = flags_by_uid(dovecot, user, "Sent")
    assert len(flags) == 1 and "\\Seen" in next(iter(flags.values()))
    conn = dovecot.client(user)
    conn.select("Sent", readonly=True)
    _, data = conn.uid("FETCH", "1", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    conn.logout()
    assert result.external_id.encode() in data[0][1]


async def test_reply_throughput() -> None:
    count = 200
    with smtp_server() as server:
        channel = _channel(server.port)
        start = time.perf_counter()
        for i in range(count):
            await channel.send(_reply(idempotency_key=f"bulk-{i}"))
        rate = count / (time.perf_counter() - start)
    print(json.dumps({"replies": count, "replies_per_s": round(rate)}))
    ids = {message_from_bytes(m.content)["Message-ID"] for m in server.handler.messages}
    assert len(ids) == count  # one distinct Message-ID per outbox item
    assert rate >= 20


async def test_check_send_refuses_early() -> None:
    channel = _channel(1)
    await channel.check_send(_reply())  # fine: nothing is contacted
    with pytest.raises(PermanentChannelError) as info:
        await channel.check_send(_reply(to=Address(AddressKind.VISITOR, "visitor-123")))
    assert info.value.code == "bad_address"
