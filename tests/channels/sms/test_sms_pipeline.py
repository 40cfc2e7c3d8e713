"""The channel pipeline without a network: concatenation, keywords/opt-out, rate limit, send()
error mapping. Gateways here are httpx MockTransport stand-ins (real Kannel: the e2e tests)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qs, quote_from_bytes, urlsplit

import httpx
import pytest

from channels.base import (
    Address,
    AddressKind,
    ChannelKind,
    Inbound,
    Outbound,
    PermanentChannelError,
    TransientChannelError,
)
from channels.sms import KannelConfig, KeywordAction, KeywordConfig, SmsChannel, SmsConfig
from channels.sms.channel import RateLimited
from channels.sms.kannel_parse import parse_kannel_inbound
from channels.sms.ratelimit import TokenBucketLimiter
from channels.sms.signature import verify_dlr_token
from channels.sms.stores import SmsStores
from tests.channels.sms.conftest import RecordingSink

PHONE = "+15551234567"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class StandinKannel:
    """A stand-in for smsbox's sendsms: records requests, answers what the test says."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.status = 202
        self.body = "0: Accepted for delivery"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, text=self.body)

    def texts(self) -> list[str]:
        return [parse_qs(urlsplit(str(r.url)).query)["text"][0] for r in self.requests]


def make_channel(
    standin: StandinKannel | None = None,
    *,
    clock: Callable[[], float] | None = None,
    stores: SmsStores | None = None,
    channel_id: str = "main",
    keyword_replies: dict[KeywordAction, str] | None = None,
    **overrides: object,
) -> SmsChannel:
    config = SmsConfig(
        channel_id=channel_id,
        provider="kannel",
        kannel=KannelConfig(
            sendsms_url="http://kannel.standin/cgi-bin/sendsms",
            username="u",
            password="p",
            sender="12345",
            dlr_url="http://hub.example/channels/sms/main/kannel/dlr",
            dlr_secret="dlr-secret",
        ),
        **overrides,  # type: ignore[arg-type]
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(standin or StandinKannel()))
    return SmsChannel(
        config, http=http, clock=clock or Clock(), stores=stores, keyword_replies=keyword_replies
    )


def reply(text: str = "hello", key: str = "k1", to: str = PHONE) -> Outbound:
    return Outbound(
        channel=ChannelKind.SMS, channel_id="main", conversation_id="conv-1",
        to=Address(AddressKind.PHONE, to), text=text, idempotency_key=key,
    )  # fmt: skip


def part(seq: int, total: int, data: bytes, *, ref: bytes = b"\x00\x03\x2a", pid: str = "",
         coding: str = "1") -> Inbound:  # fmt: skip
    """A parsed Kannel get-url request for one part (8-bit ref by default)."""
    udh = bytes([len(ref) + 2]) + ref + bytes([total, seq])  # UDHL, IEI, IEDL, ref, total, seq
    query = "&".join(
        f"{k}={quote_from_bytes(v, safe='')}"
        for k, v in {"from": PHONE.encode(), "to": b"12345", "text": data, "udh": udh,
                     "coding": coding.encode(), "id": (pid or f"p{seq}").encode(),
                     "ts": b"1795501610"}.items()
    )  # fmt: skip
    return parse_kannel_inbound(query, channel_id="main")


# concatenation ----------------------------------------------------------------------------


async def test_parts_out_of_order_and_duplicated_are_joined_once(sink: RecordingSink) -> None:
    channel = make_channel()
    assert await channel.accept(sink, part(3, 3, b"world!")) is None
    assert await channel.accept(sink, part(1, 3, b"Hello, ")) is None
    assert await channel.accept(sink, part(1, 3, b"Hello, ")) is None  # gateway retry
    receipt = await channel.accept(sink, part(2, 3, b"wide "))
    assert receipt is not None and receipt.created
    [joined] = sink.calls
    assert joined.text == "Hello, wide world!"
    assert joined.metadata["concat"]["partial"] is False
    assert joined.metadata["concat"]["part_ids"] == ["kannel:p1", "kannel:p2", "kannel:p3"]
    assert joined.external_id.startswith("sms:concat:")
    # a late retry of a part already joined is ignored, not a phantom new message
    assert await channel.accept(sink, part(2, 3, b"wide ")) is None
    assert await channel.flush_expired(sink) == 0
    assert len(sink.calls) == 1


async def test_ucs2_parts_with_16_bit_ref_and_split_emoji(sink: RecordingSink) -> None:
    channel = make_channel()
    encoded = "Привет 😀 мир".encode("utf-16-be")
    cut = len("Привет ".encode("utf-16-be")) + 2  # inside the surrogate pair
    ref = b"\x08\x04\x12\x34"
    await channel.accept(sink, part(1, 2, encoded[:cut], ref=ref, coding="2"))
    await channel.accept(sink, part(2, 2, encoded[cut:], ref=ref, coding="2"))
    [joined] = sink.calls
    assert joined.text == "Привет 😀 мир"


async def test_missing_part_is_ingested_as_partial_after_timeout(sink: RecordingSink) -> None:
    clock = Clock()
    channel = make_channel(clock=clock, concat_timeout=60.0)
    await channel.accept(sink, part(1, 3, b"first "))
    await channel.accept(sink, part(3, 3, b"third"))
    clock.now += 30
    assert await channel.flush_expired(sink) == 0
    clock.now += 31
    assert await channel.flush_expired(sink) == 1
    [partial] = sink.calls
    assert partial.text == "first third"
    assert partial.metadata["concat"]["partial"] is True
    assert partial.metadata["concat"]["missing"] == [2]
    assert await channel.flush_expired(sink) == 0  # flushed once


async def test_failed_ingest_keeps_parts_for_the_gateway_retry(sink: RecordingSink) -> None:
    channel = make_channel()
    await channel.accept(sink, part(1, 2, b"one "))
    sink.fail_next = 1
    with pytest.raises(TransientChannelError):
        await channel.accept(sink, part(2, 2, b"two"))
    receipt = await channel.accept(sink, part(2, 2, b"two"))  # the gateway retries
    assert receipt is not None and receipt.created
    assert sink.calls[0].external_id == sink.calls[1].external_id
    assert next(iter(sink.stored.values())).text == "one two"


async def test_partial_flush_failure_keeps_parts(sink: RecordingSink) -> None:
    clock = Clock()
    channel = make_channel(clock=clock, concat_timeout=10.0)
    await channel.accept(sink, part(1, 2, b"only part"))
    clock.now += 11
    sink.fail_next = 1
    with pytest.raises(TransientChannelError):
        await channel.flush_expired(sink)
    assert await channel.flush_expired(sink) == 1
    assert next(iter(sink.stored.values())).text == "only part"


# keywords and opt-out ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("STOP", KeywordAction.OPT_OUT), ("stop", KeywordAction.OPT_OUT),
        (" Unsubscribe. ", KeywordAction.OPT_OUT), ("cancel", KeywordAction.OPT_OUT),
        ("END", KeywordAction.OPT_OUT), ("quit", KeywordAction.OPT_OUT),
        ("Arrêt", KeywordAction.OPT_OUT), ("BAJA", KeywordAction.OPT_OUT),
        ("abmelden", KeywordAction.OPT_OUT), ("STOPALL", KeywordAction.OPT_OUT_ALL),
        ("start", KeywordAction.OPT_IN), ("UNSTOP", KeywordAction.OPT_IN),
        ("Yes", KeywordAction.OPT_IN), ("HELP", KeywordAction.HELP),
        ("info", KeywordAction.HELP), ("Aide", KeywordAction.HELP), ("ayuda", KeywordAction.HELP),
        ("please stop calling", None), ("stopped", None), ("", None),
    ],
)  # fmt: skip
def test_keyword_classification(text: str, action: KeywordAction | None) -> None:
    match = KeywordConfig().classify(text)
    assert (match[1] if match else None) == action


async def test_stop_is_recorded_and_blocks_send_until_start(sink: RecordingSink) -> None:
    standin = StandinKannel()
    channel = make_channel(standin)
    await channel.accept(sink, inbound_text("Stop"))
    [stop] = sink.calls
    assert stop.metadata["keyword"] == "STOP"
    assert stop.metadata["keyword_action"] == "opt_out"
    with pytest.raises(PermanentChannelError) as info:
        await channel.send(reply())
    assert info.value.code == "sms_opted_out"
    assert "texted STOP" in str(info.value)
    assert standin.requests == []
    await channel.accept(sink, inbound_text("START", "kannel:2"))
    await channel.send(reply())
    assert standin.texts() == ["hello"]


async def test_stopall_applies_to_every_channel_sharing_the_store(sink: RecordingSink) -> None:
    stores = SmsStores()
    first = make_channel(stores=stores, channel_id="main")
    other = make_channel(stores=SmsStores(opt_outs=stores.opt_outs), channel_id="other")
    await first.accept(sink, inbound_text("STOPALL"))
    for channel in (first, other):
        with pytest.raises(PermanentChannelError, match="opted out"):
            await channel.send(reply())
    plain_stores = SmsStores()
    scoped = make_channel(stores=plain_stores, channel_id="main")
    await scoped.accept(sink, inbound_text("STOP", "kannel:9"))
    unaffected = make_channel(stores=SmsStores(opt_outs=plain_stores.opt_outs), channel_id="b")
    await unaffected.send(reply())  # STOP is per number/channel, STOPALL is global


async def test_help_is_marked_but_does_not_opt_out(sink: RecordingSink) -> None:
    channel = make_channel()
    await channel.accept(sink, inbound_text("help"))
    assert sink.calls[0].metadata["keyword_action"] == "help"
    await channel.send(reply())


async def test_configured_keywords_and_confirmation_reply(sink: RecordingSink) -> None:
    standin = StandinKannel()
    keywords = KeywordConfig(extra_opt_out=frozenset({"Désinscription"}))
    confirmation = {KeywordAction.OPT_OUT: "You are unsubscribed. Text START to resume."}
    channel = make_channel(standin, keywords=keywords, keyword_replies=confirmation)
    await channel.accept(sink, inbound_text("DESINSCRIPTION"))
    assert sink.calls[0].metadata["keyword_action"] == "opt_out"
    assert standin.texts() == ["You are unsubscribed. Text START to resume."]
    with pytest.raises(PermanentChannelError):
        await channel.send(reply())


def inbound_text(text: str, external_id: str = "kannel:1") -> Inbound:
    return Inbound(
        channel=ChannelKind.SMS, channel_id="main", external_id=external_id,
        sender=Address(AddressKind.PHONE, PHONE), text=text, received_at=datetime.now(UTC),
    )  # fmt: skip


# rate limit ------------------------------------------------------------------------------


def test_token_bucket() -> None:
    bucket = TokenBucketLimiter(rate=1.0, burst=2)
    assert bucket.acquire("a", 0.0) == 0.0
    assert bucket.acquire("a", 0.0) == 0.0
    assert bucket.acquire("a", 0.0) == pytest.approx(1.0)
    assert bucket.acquire("b", 0.0) == 0.0  # per key
    assert bucket.acquire("a", 0.5) == pytest.approx(0.5)
    assert bucket.acquire("a", 1.0) == 0.0
    assert bucket.acquire("a", 100.0) == 0.0  # refills, capped at burst
    assert bucket.acquire("a", 100.0) == 0.0
    assert bucket.acquire("a", 100.0) > 0


async def test_send_rate_limited_per_number_with_retry_after() -> None:
    clock = Clock()
    standin = StandinKannel()
    channel = make_channel(standin, clock=clock, rate_per_second=0.5, rate_burst=2)
    await channel.send(reply(key="1"))
    await channel.send(reply(key="2"))
    with pytest.raises(RateLimited) as info:
        await channel.send(reply(key="3"))
    assert isinstance(info.value, TransientChannelError)
    assert info.value.code == "sms_rate_limited"
    assert info.value.retry_after == pytest.approx(2.0)
    await channel.send(reply(key="4", to="+15557654321"))
    clock.now += 2.0
    await channel.send(reply(key="3"))
    assert len(standin.requests) == 4


# send() ----------------------------------------------------------------------------------


async def test_send_builds_signed_dlr_url_and_is_idempotent() -> None:
    standin = StandinKannel()
    channel = make_channel(standin)
    first = await channel.send(reply("Ça coûte 5 €", key="same"))
    again = await channel.send(reply("Ça coûte 5 €", key="same"))
    assert first.external_id == again.external_id
    [request] = standin.requests
    params = {k: v[0] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}
    assert params["coding"] == "2" and params["charset"] == "UTF-8"
    assert params["to"] == PHONE and params["from"] == "12345" and params["dlr-mask"] == "31"
    dlr = urlsplit(params["dlr-url"])
    dlr_params = {k: v[0] for k, v in parse_qs(dlr.query).items()}
    assert dlr_params["mid"] == first.external_id
    assert verify_dlr_token("dlr-secret", first.external_id, dlr_params["sig"])
    assert "status=%d" in params["dlr-url"] and "answer=%A" in params["dlr-url"]


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        (503, TransientChannelError, "sms_gateway_busy"),
        (403, PermanentChannelError, "sms_gateway_auth"),
        (400, PermanentChannelError, "sms_rejected"),
    ],
)
async def test_kannel_http_errors_map_to_channel_errors(
    status: int, error: type[Exception], code: str
) -> None:
    standin = StandinKannel()
    standin.status, standin.body = status, "Authorization failed"
    channel = make_channel(standin)
    with pytest.raises(error) as info:
        await channel.send(reply())
    assert getattr(info.value, "code", None) == code
    if error is TransientChannelError:
        assert not isinstance(info.value, PermanentChannelError)


async def test_unreachable_gateway_is_transient() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    channel = make_channel()
    channel.http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    with pytest.raises(TransientChannelError) as info:
        await channel.send(reply())
    assert info.value.code == "sms_gateway_unreachable"


async def test_send_refuses_bad_address_and_too_long() -> None:
    channel = make_channel(max_segments=2)
    email = Outbound(
        channel=ChannelKind.SMS, channel_id="main", conversation_id="c",
        to=Address(AddressKind.EMAIL, "a@example.com"), text="hi", idempotency_key="e",
    )  # fmt: skip
    with pytest.raises(PermanentChannelError) as info:
        await channel.send(email)
    assert info.value.code == "sms_bad_address"
    with pytest.raises(PermanentChannelError) as info:
        await channel.send(reply("x" * 307))
    assert info.value.code == "sms_too_long"
    assert channel.segments("x" * 307).segments == 3


async def test_run_loop_ingests_stale_partials_until_cancelled(sink: RecordingSink) -> None:
    channel = make_channel(clock=time.time, concat_timeout=0.0, concat_sweep_interval=0.02)
    await channel.accept(sink, part(2, 2, b"tail only"))
    task = asyncio.create_task(channel.run(sink))
    try:
        [partial] = await sink.wait_for(1, timeout=5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert partial.text == "tail only"
    assert partial.metadata["concat"]["missing"] == [1]
