"""The fax channel end to end: gateway mail in Dovecot → FAX Inbound; reply → PDF to the gateway."""

from __future__ import annotations

import asyncio
import subprocess
from contextlib import suppress
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest

from channels.base import (
    Address,
    AddressKind,
    ChannelKind,
    Inbound,
    IngestReceipt,
    Outbound,
    PermanentChannelError,
)
from channels.email.config import EmailConfig, ImapConfig, SmtpConfig
from channels.email.state import InMemoryMailboxStateStore
from channels.fax.channel import FaxChannel
from channels.fax.config import FaxConfig
from tests.servers.dovecot import Dovecot
from tests.servers.smtpd_server import smtp_server

from .faxgen import fax_tiff, hylafax_mail


class Sink:
    def __init__(self) -> None:
        self.items: list[Inbound] = []
        self.arrived = asyncio.Event()

    async def __call__(self, inbound: Inbound, /) -> IngestReceipt:
        self.items.append(inbound)
        self.arrived.set()
        return IngestReceipt("i", "c", "k", True)


def _config(dovecot: Dovecot | None, user: str | None, smtp_port: int | None = None) -> FaxConfig:
    imap = ImapConfig(
        host="127.0.0.1", port=dovecot.port if dovecot else 1, username=user or "x",
        password=dovecot.users[user] if dovecot and user else "x", security="none",
        allow_plaintext_auth=True,
        backoff_initial_s=0.05, poll_interval_s=0.2, idle_max_s=5,
    )
    smtp = SmtpConfig(host="127.0.0.1", port=smtp_port, security="none") if smtp_port else None
    email = EmailConfig("fax-main", "fax-inbox@contacthub.test", imap, smtp,
                        display_name="ACME Support")
    return FaxConfig(email=email, send_address="{number}@fax.gateway.example")


async def test_gateway_mail_becomes_fax_inbound(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    tiff = fax_tiff([["PLEASE REPLACE", "the broken pump"], ["SIGNED", "Jane"]])
    dovecot.append(user, [hylafax_mail(tiff, callid="2125550123")])
    sink = Sink()
    channel = FaxChannel(_config(dovecot, user), InMemoryMailboxStateStore())
    task = asyncio.create_task(channel.run(sink))
    try:
        await asyncio.wait_for(sink.arrived.wait(), 30)
        await asyncio.wait_for(channel.receiver.connected.wait(), 10)
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)
    (fax,) = sink.items
    assert fax.channel is ChannelKind.FAX and fax.channel_id == "fax-main"
    assert fax.sender == Address(AddressKind.PHONE, "+12125550123")
    assert "REPLACE" in fax.text.upper() and "PUMP" in fax.text.upper()
    assert fax.metadata["fax"]["pages"] == 2


async def test_reply_by_fax_sends_a_pdf_to_the_gateway(tmp_path: Path) -> None:
    with smtp_server() as server:
        channel = FaxChannel(_config(None, None, server.port), InMemoryMailboxStateStore())
        result = await channel.send(Outbound(
            channel=ChannelKind.FAX, channel_id="fax-main", conversation_id="c9",
            to=Address(AddressKind.PHONE, "+12125550123"),
            text="Dear Jane,\nthe replacement pump ships tomorrow.\nRegards",
            idempotency_key="out-5", subject="Broken pump", author_name="Ana Agent",
        ))
    assert result.status == "queued"
    (sent,) = server.handler.messages
    assert sent.rcpt_tos == ["12125550123@fax.gateway.example"]
    msg = message_from_bytes(sent.content, policy=default)
    assert str(msg["Subject"]) == "Broken pump [#CH-c9]"
    (pdf_part,) = [p for p in msg.walk() if p.get_content_type() == "application/pdf"]
    pdf = tmp_path / "fax.pdf"
    pdf.write_bytes(pdf_part.get_payload(decode=True))  # type: ignore[arg-type]
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True,
                          text=True).stdout
    assert "the replacement pump ships tomorrow." in text
    assert "From: Ana Agent" in text and "Reference: [#CH-c9]" in text


async def test_reply_by_fax_needs_a_phone_number() -> None:
    channel = FaxChannel(_config(None, None, 1), InMemoryMailboxStateStore())
    with pytest.raises(PermanentChannelError):
        await channel.send(Outbound(
            channel=ChannelKind.FAX, channel_id="fax-main", conversation_id="c9",
            to=Address(AddressKind.EMAIL, "jane@example.com"), text="x", idempotency_key="k",
        ))
