"""Outbound through a Twilio-compatible REST API. No real provider is reachable here: every test
talks to a LOCAL STAND-IN server (Starlette under uvicorn) that mimics the Messages endpoint."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from channels.base import (
    Address,
    AddressKind,
    ChannelKind,
    Outbound,
    PermanentChannelError,
    TransientChannelError,
)
from channels.sms import SmsChannel, SmsConfig, TwilioConfig
from channels.sms.twilio_client import ProviderRateLimited
from tests.channels.sms.conftest import HttpServer, serve

SID = "AC" + "f" * 32
TOKEN = "standin-token"


@dataclass
class Standin:
    """What the stand-in provider received."""

    forms: list[dict[str, str]] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)


def standin_app(state: Standin) -> Starlette:
    async def create(request: Request) -> Response:
        state.auth.append(request.headers.get("authorization", ""))
        expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        if request.path_params["sid"] != SID or request.headers.get("authorization") != expected:
            return JSONResponse({"code": 20003, "message": "Authenticate", "status": 401}, 401)
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        state.forms.append(form)
        to = form.get("To", "")
        if to == "+15550000001":
            body = {"code": 21610, "message": "Attempt to send to unsubscribed recipient"}
            return JSONResponse({**body, "status": 400}, 400)
        if to == "+15550000002":
            body = {"code": 20429, "message": "Too Many Requests", "status": 429}
            return JSONResponse(body, 429, headers={"Retry-After": "7"})
        if to == "+15550000003":
            return Response("upstream exploded", 500)
        if to == "+15550000004":
            return JSONResponse({"code": 21211, "message": "Invalid 'To'", "status": 400}, 400)
        sid = f"SM{len(state.forms):032x}"
        return JSONResponse({"sid": sid, "status": "queued", "to": to, "body": form["Body"]}, 201)

    return Starlette(
        routes=[Route("/2010-04-01/Accounts/{sid}/Messages.json", create, methods=["POST"])]
    )


@pytest.fixture
async def standin() -> AsyncIterator[tuple[Standin, HttpServer]]:
    state = Standin()
    async with serve(standin_app(state)) as server:
        yield state, server


def channel_for(server: HttpServer, token: str = TOKEN) -> SmsChannel:
    twilio = TwilioConfig(
        account_sid=SID,
        auth_token=token,
        sender="+18005551212",
        base_url=server.base,
        status_callback_url="https://hub.example/channels/sms/tw/twilio/status",
    )
    return SmsChannel(SmsConfig(channel_id="tw", provider="twilio", twilio=twilio))


def reply(to: str, key: str = "k") -> Outbound:
    return Outbound(
        channel=ChannelKind.SMS,
        channel_id="tw",
        conversation_id="conv",
        to=Address(AddressKind.PHONE, to),
        text="Your order shipped 📦",
        idempotency_key=key,
    )


async def test_twilio_rest_against_local_standin(standin: tuple[Standin, HttpServer]) -> None:
    state, server = standin
    channel = channel_for(server)
    result = await channel.send(reply("+14158675309"))
    again = await channel.send(reply("+14158675309"))  # same idempotency key: not resent
    await channel.aclose()
    assert result.external_id == "SM" + "0" * 31 + "1"
    assert result.status == "queued"
    assert again.external_id == result.external_id
    [form] = state.forms
    assert form == {
        "To": "+14158675309",
        "Body": "Your order shipped 📦",
        "From": "+18005551212",
        "StatusCallback": "https://hub.example/channels/sms/tw/twilio/status",
    }
    record = await channel.stores.sent.by_message_id(result.external_id)
    assert record is not None and record.conversation_id == "conv"


@pytest.mark.parametrize(
    ("to", "error", "code"),
    [
        ("+15550000001", PermanentChannelError, "sms_opted_out"),
        ("+15550000002", ProviderRateLimited, "sms_provider_rate_limited"),
        ("+15550000003", TransientChannelError, "sms_gateway_busy"),
        ("+15550000004", PermanentChannelError, "sms_bad_address"),
    ],
)
async def test_twilio_rest_errors_against_local_standin(
    standin: tuple[Standin, HttpServer], to: str, error: type[Exception], code: str
) -> None:
    _, server = standin
    channel = channel_for(server)
    with pytest.raises(error) as info:
        await channel.send(reply(to))
    await channel.aclose()
    assert getattr(info.value, "code", None) == code
    if isinstance(info.value, ProviderRateLimited):
        assert info.value.retry_after == 7.0
    if code == "sms_opted_out":
        assert "unsubscribed" in str(info.value)


async def test_twilio_rest_bad_credentials_against_local_standin(
    standin: tuple[Standin, HttpServer],
) -> None:
    state, server = standin
    channel = channel_for(server, token="wrong")
    with pytest.raises(PermanentChannelError) as info:
        await channel.send(reply("+14158675309"))
    await channel.aclose()
    assert info.value.code == "sms_gateway_auth"
    assert state.forms == []


async def test_twilio_rest_unreachable_is_transient() -> None:
    dead = TwilioConfig(
        account_sid=SID, auth_token=TOKEN, sender="+18005551212", base_url="http://127.0.0.1:9"
    )
    channel = SmsChannel(SmsConfig(channel_id="tw", provider="twilio", twilio=dead))
    with pytest.raises(TransientChannelError) as info:
        await channel.send(reply("+14158675309"))
    await channel.aclose()
    assert info.value.code == "sms_gateway_unreachable"
