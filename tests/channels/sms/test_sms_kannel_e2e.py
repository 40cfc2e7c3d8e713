"""End to end through a real Kannel: phone (fake SMSC) -> bearerbox -> smsbox -> our routes
(uvicorn) -> sink; send() -> smsbox sendsms -> bearerbox -> phone; DLRs back to our route."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from channels.base import (
    Address,
    AddressKind,
    ChannelKind,
    InboundKind,
    Outbound,
    PermanentChannelError,
)
from channels.sms import KANNEL_GET_URL_TEMPLATE, KannelConfig, SmsChannel, SmsConfig, sms_routes
from tests.channels.sms.conftest import RecordingSink, mounted, serve
from tests.servers.kannel import KannelTestbed, free_port

PHONE = "+15551234567"
SHORT_CODE = "12345"
PREFIX = "/channels/sms/main"


@dataclass
class Rig:
    kannel: KannelTestbed
    channel: SmsChannel
    sink: RecordingSink


@pytest.fixture
async def rig(
    tmp_path: Path, sink: RecordingSink, request: pytest.FixtureRequest
) -> AsyncIterator[Rig]:
    combine = getattr(request, "param", True)
    app_port = free_port()
    base = f"http://127.0.0.1:{app_port}{PREFIX}"
    testbed = KannelTestbed(
        tmp_path / "kannel",
        KANNEL_GET_URL_TEMPLATE.format(base=f"{base}/kannel/inbound") + "&token=inbound-secret",
        combine_concatenated=combine,
    )
    config = SmsConfig(
        channel_id="main",
        provider="kannel",
        kannel=KannelConfig(
            sendsms_url=testbed.sendsms_url,
            username=testbed.username,
            password=testbed.password,
            sender=SHORT_CODE,
            dlr_url=f"{base}/kannel/dlr",
            dlr_secret="dlr-secret",
            inbound_token="inbound-secret",
        ),
    )
    channel = SmsChannel(config)
    async with serve(mounted(PREFIX, sms_routes(channel, sink)), app_port):
        try:
            await testbed.start()
            yield Rig(testbed, channel, sink)
        except BaseException:
            print(testbed.logs())
            raise
        finally:
            await testbed.stop()
            await channel.aclose()


def reply(text: str, key: str) -> Outbound:
    return Outbound(
        channel=ChannelKind.SMS,
        channel_id="main",
        conversation_id="conv-1",
        to=Address(AddressKind.PHONE, PHONE),
        text=text,
        idempotency_key=key,
    )


async def test_phone_to_hub_reply_to_phone_and_dlr(rig: Rig) -> None:
    await rig.kannel.smsc.send_text(PHONE, SHORT_CODE, "Hello, is anyone there?")
    [inbound] = await rig.sink.wait_for(1)
    assert inbound.kind is InboundKind.MESSAGE
    assert inbound.sender == Address(AddressKind.PHONE, PHONE)
    assert inbound.recipient == SHORT_CODE
    assert inbound.text == "Hello, is anyone there?"
    assert inbound.external_id.startswith("kannel:") and len(inbound.external_id) > 20
    assert inbound.metadata["smsc"] == "FAKE"

    result = await rig.channel.send(reply("Yes, Ana here. ¿Cómo está?", "reply-1"))
    line = await rig.kannel.smsc.next_message()
    assert (line.sender, line.receiver) == (SHORT_CODE, PHONE)
    assert line.kind == "ucs-2"  # ó is not GSM-7: sent as UCS-2
    assert line.text == "Yes, Ana here. ¿Cómo está?"

    stored = await rig.sink.wait_for(3)  # the message + SMSC ack (8) + handset delivery (1)
    reports = [i for i in stored if i.kind is InboundKind.EVENT]
    assert {r.metadata["status"] for r in reports} == {"sent", "delivered"}
    for report in reports:
        assert report.metadata["message_id"] == result.external_id
        assert report.metadata["conversation_id"] == "conv-1"
        assert report.sender.value == PHONE


async def test_kannel_retry_after_failed_ingest_keeps_the_same_external_id(rig: Rig) -> None:
    rig.sink.fail_next = 1  # the hub's DB is briefly unavailable: the route answers 503
    await rig.kannel.smsc.send_text(PHONE, SHORT_CODE, "are you open on sunday")
    [stored] = await rig.sink.wait_for(1, timeout=15)
    assert len(rig.sink.calls) == 2  # Kannel retried the same get-url
    assert rig.sink.calls[0].external_id == rig.sink.calls[1].external_id == stored.external_id
    assert stored.text == "are you open on sunday"


async def test_stop_via_kannel_blocks_the_next_reply(rig: Rig) -> None:
    await rig.kannel.smsc.send_text(PHONE, SHORT_CODE, "STOP")
    [inbound] = await rig.sink.wait_for(1)
    assert inbound.metadata["keyword"] == "STOP"
    assert inbound.metadata["keyword_action"] == "opt_out"
    with pytest.raises(PermanentChannelError) as info:
        await rig.channel.send(reply("one more thing", "reply-after-stop"))
    assert info.value.code == "sms_opted_out"
    assert "opted out" in str(info.value)
    assert rig.kannel.smsc.received.empty()


@pytest.mark.parametrize("rig", [False], indirect=True)  # Kannel passes the UDH through to us
async def test_concatenated_parts_through_kannel_are_joined(rig: Rig) -> None:
    text = "This is a long message that a phone had to split in two parts. " * 4
    half = len(text) // 2
    await rig.kannel.smsc.send_udh(
        PHONE, SHORT_CODE, b"\x05\x00\x03\x2a\x02\x02", text[half:].encode()
    )
    await rig.kannel.smsc.send_udh(
        PHONE, SHORT_CODE, b"\x05\x00\x03\x2a\x02\x01", text[:half].encode()
    )
    [joined] = await rig.sink.wait_for(1)
    assert joined.text == text
    assert joined.metadata["concat"]["partial"] is False
    assert len(rig.sink.calls) == 1


async def test_hub_down_then_restarted_gets_the_message_once(
    tmp_path: Path, sink: RecordingSink
) -> None:
    """The hub is down when the customer texts; Kannel keeps retrying; after the hub restarts
    the message arrives exactly once (and a resend after a second restart dedupes by id)."""
    app_port = free_port()
    base = f"http://127.0.0.1:{app_port}{PREFIX}"
    testbed = KannelTestbed(
        tmp_path / "kannel", KANNEL_GET_URL_TEMPLATE.format(base=f"{base}/kannel/inbound"),
        http_retries=5,
    )  # fmt: skip
    config = SmsConfig(
        channel_id="main", provider="kannel",
        kannel=KannelConfig(sendsms_url=testbed.sendsms_url, username=testbed.username,
                            password=testbed.password, sender=SHORT_CODE,
                            dlr_url=f"{base}/kannel/dlr", dlr_secret="s"),
    )  # fmt: skip
    try:
        await testbed.start()
        await testbed.smsc.send_text(PHONE, SHORT_CODE, "anyone there at night?")
        await asyncio.sleep(1.5)  # smsbox's first attempts hit a closed port
        assert sink.calls == []
        channel = SmsChannel(config)  # a fresh process: empty in-memory state
        async with serve(mounted(PREFIX, sms_routes(channel, sink)), app_port):
            [inbound] = await sink.wait_for(1, timeout=15)
        await channel.aclose()
        assert inbound.text == "anyone there at night?"
        assert len(sink.calls) == 1
    except BaseException:
        print(testbed.logs())
        raise
    finally:
        await testbed.stop()
