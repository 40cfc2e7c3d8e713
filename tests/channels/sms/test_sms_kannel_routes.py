"""Kannel routes at the edge: shared token, signed DLR URLs, malformed requests (ASGI, no Kannel;
the full path through a real Kannel is in test_sms_kannel_e2e.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from channels.base import InboundKind
from channels.sms import KannelConfig, SmsChannel, SmsConfig, sms_routes
from channels.sms.signature import dlr_token
from tests.channels.sms.conftest import RecordingSink, mounted

PREFIX = "/channels/sms/main/kannel"


@pytest.fixture
async def channel() -> AsyncIterator[SmsChannel]:
    config = SmsConfig(
        channel_id="main",
        provider="kannel",
        kannel=KannelConfig(
            sendsms_url="http://127.0.0.1:9/cgi-bin/sendsms",
            username="u",
            password="p",
            sender="12345",
            dlr_url="http://hub/channels/sms/main/kannel/dlr",
            dlr_secret="dlr-secret",
            inbound_token="tok",
        ),
    )
    channel = SmsChannel(config)
    yield channel
    await channel.aclose()


@pytest.fixture
async def client(channel: SmsChannel, sink: RecordingSink) -> AsyncIterator[httpx.AsyncClient]:
    app = mounted("/channels/sms/main", sms_routes(channel, sink))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://h") as c:
        yield c


async def test_inbound_needs_the_token(
    client: httpx.AsyncClient, sink: RecordingSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    params = {"from": "+15551234567", "text": "hi", "id": "x1"}
    missing = await client.get(f"{PREFIX}/inbound", params=params)
    wrong = await client.get(f"{PREFIX}/inbound", params={**params, "token": "nope"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.json()["code"] == "sms_bad_token"
    ok = await client.get(f"{PREFIX}/inbound", params={**params, "token": "tok"})
    assert ok.status_code == 200 and ok.content == b""  # empty: smsbox texts nothing back
    assert [i.text for i in sink.calls] == ["hi"]


async def test_malformed_inbound_is_400_with_field(
    client: httpx.AsyncClient, sink: RecordingSink
) -> None:
    response = await client.get(
        f"{PREFIX}/inbound", params={"token": "tok", "from": "not a number", "text": "hi"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert response.json()["data"] == {"field": "from"}
    assert sink.calls == []


async def test_dlr_needs_our_signature(client: httpx.AsyncClient, sink: RecordingSink) -> None:
    base = {"mid": "m1", "status": "1", "to": "+15551234567", "answer": ""}
    forged = await client.get(f"{PREFIX}/dlr", params={**base, "sig": dlr_token("guess", "m1")})
    assert forged.status_code == 401
    assert sink.calls == []
    ok = await client.get(f"{PREFIX}/dlr", params={**base, "sig": dlr_token("dlr-secret", "m1")})
    assert ok.status_code == 200
    [event] = sink.calls
    assert event.kind is InboundKind.EVENT
    assert event.metadata["status"] == "delivered"
    assert "conversation_id" not in event.metadata  # unknown message: kept, not tied


async def test_malformed_dlr_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{PREFIX}/dlr", params={"mid": "m1", "status": "64"})
    assert response.status_code == 400
    assert response.json()["data"] == {"field": "status"}


async def test_replayed_old_start_does_not_undo_a_later_stop(
    client: httpx.AsyncClient, sink: RecordingSink, channel: SmsChannel
) -> None:
    start = {"token": "tok", "from": "+15551234567", "text": "START", "id": "a", "ts": "1000"}
    stop = {"token": "tok", "from": "+15551234567", "text": "STOP", "id": "b", "ts": "2000"}
    for params in (start, stop, start):  # the last one is a replay of the first request
        assert (await client.get(f"{PREFIX}/inbound", params=params)).status_code == 200
    assert [i.metadata["keyword_action"] for i in sink.calls] == ["opt_in", "opt_out", "opt_in"]
    assert len(sink.stored) == 2  # the replay deduped in the hub by external_id
    assert await channel.stores.opt_outs.is_opted_out("main", "+15551234567")
