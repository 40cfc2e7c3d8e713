"""Twilio-compatible webhooks through the Starlette routes: signature, replay, 400/401/503,
status callbacks and MMS media (media server is an httpx MockTransport stand-in)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import pytest

from channels.base import (
    Address,
    AddressKind,
    ChannelKind,
    InboundKind,
    Outbound,
    PermanentChannelError,
)
from channels.sms import SmsChannel, SmsConfig, TwilioConfig, sms_routes, twilio_signature
from channels.sms.stores import SentRecord
from tests.channels.sms.conftest import RecordingSink, mounted

TOKEN = "tw-auth-token"
BASE = "https://hub.example"
INBOUND = f"{BASE}/channels/sms/tw/twilio/inbound"
STATUS = f"{BASE}/channels/sms/tw/twilio/status"
SID = "SM" + "0123456789abcdef" * 2
PHONE = "+14158675309"


def media_standin(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/media/ok.jpg":
        return httpx.Response(
            200, content=b"\xff\xd8jpeg-bytes", headers={"content-type": "image/jpeg"}
        )
    return httpx.Response(404)


@pytest.fixture
async def channel() -> AsyncIterator[SmsChannel]:
    config = SmsConfig(
        channel_id="tw", provider="twilio",
        twilio=TwilioConfig(account_sid="AC" + "1" * 32, auth_token=TOKEN, sender="+18005551212"),
    )  # fmt: skip
    http = httpx.AsyncClient(transport=httpx.MockTransport(media_standin))
    yield SmsChannel(config, http=http)
    await http.aclose()


@pytest.fixture
async def client(channel: SmsChannel, sink: RecordingSink) -> AsyncIterator[httpx.AsyncClient]:
    app = mounted("/channels/sms/tw", sms_routes(channel, sink))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE) as http:
        yield http


async def signed_post(
    client: httpx.AsyncClient, url: str, form: dict[str, str], *, signature: str | None = None
) -> httpx.Response:
    sig = signature if signature is not None else twilio_signature(TOKEN, url, form.items())
    return await client.post(
        url, content=urlencode(form),
        headers={"X-Twilio-Signature": sig, "Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip


def message(body: str = "Hi there", sid: str = SID, **extra: str) -> dict[str, str]:
    return {"MessageSid": sid, "AccountSid": "AC" + "1" * 32, "From": PHONE,
            "To": "+18005551212", "Body": body, "NumMedia": "0", **extra}  # fmt: skip


async def test_signed_inbound_is_ingested(client: httpx.AsyncClient, sink: RecordingSink) -> None:
    response = await signed_post(client, INBOUND, message())
    assert response.status_code == 200
    assert "<Response>" in response.text
    [inbound] = sink.calls
    assert inbound.external_id == f"twilio:{SID}"
    assert inbound.sender.value == PHONE
    assert inbound.text == "Hi there"


async def test_forged_signature_is_401_and_logged(
    client: httpx.AsyncClient, sink: RecordingSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="channels.sms.routes")
    forged = twilio_signature("not-the-token", INBOUND, message().items())
    response = await signed_post(client, INBOUND, message(), signature=forged)
    assert response.status_code == 401
    assert response.json()["code"] == "sms_bad_signature"
    unsigned = await client.post(INBOUND, data=message())
    assert unsigned.status_code == 401
    assert sink.calls == []
    assert any("forged twilio webhook" in r.getMessage() for r in caplog.records)
    assert all(PHONE not in r.getMessage() for r in caplog.records)  # no addresses in logs


async def test_tampered_body_with_a_real_signature_is_401(
    client: httpx.AsyncClient, sink: RecordingSink
) -> None:
    good = twilio_signature(TOKEN, INBOUND, message().items())
    tampered = await signed_post(client, INBOUND, message("send me money"), signature=good)
    assert tampered.status_code == 401
    assert sink.calls == []


async def test_replay_is_401_even_after_stop(
    client: httpx.AsyncClient, sink: RecordingSink, channel: SmsChannel,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.WARNING, logger="channels.sms.routes")
    start = message("START", sid="SM" + "a" * 32)
    assert (await signed_post(client, INBOUND, start)).status_code == 200
    stop = message("STOP", sid="SM" + "b" * 32)
    assert (await signed_post(client, INBOUND, stop)).status_code == 200
    replay = await signed_post(client, INBOUND, start)
    assert replay.status_code == 401
    assert replay.json()["code"] == "sms_replayed"
    assert any("replayed" in r.getMessage() for r in caplog.records)
    assert len(sink.calls) == 2
    assert await channel.stores.opt_outs.is_opted_out("tw", PHONE)  # the replay changed nothing


async def test_malformed_signed_body_is_400_with_field(
    client: httpx.AsyncClient, sink: RecordingSink
) -> None:
    form = message()
    del form["From"]
    response = await signed_post(client, INBOUND, form)
    assert response.status_code == 400
    body = response.json()
    assert body == {"code": "parse_error", "message": "From is missing", "data": {"field": "From"}}
    assert sink.calls == []
    ok = await signed_post(client, INBOUND, message(sid="SM" + "c" * 32))
    assert ok.status_code == 200  # nothing else lost


async def test_sink_failure_is_503_and_the_retry_is_accepted(
    client: httpx.AsyncClient, sink: RecordingSink
) -> None:
    sink.fail_next = 1
    first = await signed_post(client, INBOUND, message())
    assert first.status_code == 503
    retry = await signed_post(client, INBOUND, message())
    assert retry.status_code == 200
    assert len(sink.stored) == 1


async def test_status_callback_becomes_delivery_event(
    client: httpx.AsyncClient, sink: RecordingSink, channel: SmsChannel
) -> None:
    await channel.stores.sent.remember(SentRecord(
        message_id=SID, channel_id="tw", to=PHONE, conversation_id="conv-7",
        idempotency_key="k", segments=1, sent_at=datetime.now(UTC),
    ))  # fmt: skip
    for status in ("sent", "delivered"):
        form = {"MessageSid": SID, "MessageStatus": status, "To": PHONE, "From": "+18005551212"}
        assert (await signed_post(client, STATUS, form)).status_code == 200
    events = sink.calls
    assert [e.metadata["status"] for e in events] == ["sent", "delivered"]
    assert all(e.kind is InboundKind.EVENT and e.auto_generated for e in events)
    assert events[1].metadata["conversation_id"] == "conv-7"
    assert events[0].external_id != events[1].external_id
    bad = {"MessageSid": SID, "MessageStatus": "teleported"}
    response = await signed_post(client, STATUS, bad)
    assert response.status_code == 400
    assert response.json()["data"]["field"] == "MessageStatus"


async def test_mms_media_fetched_from_standin_and_failures_kept(
    client: httpx.AsyncClient, sink: RecordingSink
) -> None:
    form = message(
        "look",
        NumMedia="2",
        MediaUrl0="https://media.standin/media/ok.jpg",
        MediaContentType0="image/jpeg",
        MediaUrl1="https://media.standin/media/gone.png",
        MediaContentType1="image/png",
    )
    assert (await signed_post(client, INBOUND, form)).status_code == 200
    [inbound] = sink.calls
    [attachment] = inbound.attachments
    assert attachment.data == b"\xff\xd8jpeg-bytes"
    assert attachment.content_type == "image/jpeg"
    assert inbound.metadata["media_fetch_failed"] == 1
    assert len(inbound.metadata["media"]) == 2  # the failed URL is not lost


async def test_signature_over_public_url_behind_a_proxy(sink: RecordingSink) -> None:
    config = SmsConfig(
        channel_id="tw", provider="twilio",
        twilio=TwilioConfig(account_sid="AC1", auth_token=TOKEN, sender="+18005551212",
                            webhook_base_url="https://public.example"),
    )  # fmt: skip
    channel = SmsChannel(config)
    app = mounted("/channels/sms/tw", sms_routes(channel, sink))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://10.0.0.5:8000"
    ) as internal:
        public = "https://public.example/channels/sms/tw/twilio/inbound"
        sig = twilio_signature(TOKEN, public, message().items())
        response = await internal.post(
            "/channels/sms/tw/twilio/inbound", content=urlencode(message()),
            headers={"X-Twilio-Signature": sig,
                     "Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
    assert response.status_code == 200
    await channel.aclose()


async def test_twilio_opted_out_number_is_refused_before_any_request(
    client: httpx.AsyncClient, channel: SmsChannel
) -> None:
    await signed_post(client, INBOUND, message("arrêt"))
    outbound = Outbound(
        channel=ChannelKind.SMS, channel_id="tw", conversation_id="c",
        to=Address(AddressKind.PHONE, PHONE), text="hello?", idempotency_key="x",
    )  # fmt: skip
    with pytest.raises(PermanentChannelError) as info:
        await channel.send(outbound)
    assert info.value.code == "sms_opted_out"
