"""The /widget protocol against a real uvicorn server, driven by python-socketio's AsyncClient."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from channels.base import (
    Address,
    AddressKind,
    Attachment,
    Channel,
    ChannelKind,
    Outbound,
    PermanentChannelError,
    TransientChannelError,
)
from channels.webchat.config import BusinessHours, FieldType, FormField, Limits, SiteConfig
from channels.webchat.devserver import DevStack, dev_stack
from channels.webchat.stores import MarkStatus
from tests.channels.webchat.webchat_visitor import Visitor

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PRECHAT = (
    FormField("name", FieldType.TEXT, {"en": "Name"}, required=True),
    FormField("topic", FieldType.SELECT, {"en": "Topic"}, options=("billing", "tech")),
)
SITES = (
    SiteConfig(
        "site-a",
        name="A",
        prechat_fields=PRECHAT,
        agent_name="Ada",
        allowed_origins=("https://shop.example", "https://*.example.org"),
    ),
    SiteConfig("site-closed", business_hours=BusinessHours(windows={})),
    SiteConfig(
        "site-tight",
        limits=Limits(
            visitor_burst=3,
            visitor_per_minute=1,
            ip_burst=5,
            ip_per_minute=1,
            connect_burst=4,
            connect_per_minute=1,
            max_text_chars=50,
            max_attachment_bytes=1000,
            max_attachments=2,
        ),
    ),
)
AUTH = {"site_key": "site-a"}


@pytest.fixture
async def stack() -> AsyncIterator[DevStack]:
    async with dev_stack(*SITES) as running:
        yield running


@pytest.fixture
async def visitor(stack: DevStack) -> AsyncIterator[Visitor]:
    v = Visitor()
    yield v
    await v.close()


def reply(
    stack: DevStack,
    visitor_id: str,
    conversation_id: str,
    text: str,
    key: str,
    site: str = "site-a",
    **metadata: str,
) -> Outbound:
    return Outbound(
        channel=ChannelKind.WEBCHAT,
        channel_id=site,
        conversation_id=conversation_id,
        to=Address(AddressKind.VISITOR, visitor_id),
        text=text,
        idempotency_key=key,
        author_name="Grace",
        metadata=metadata,
    )


async def test_connect_gives_a_session_with_token_and_site_view(
    stack: DevStack, visitor: Visitor
) -> None:
    session = await visitor.connect(stack.url, AUTH)
    assert len(session["visitor_token"]) >= 40
    assert session["visitor_id"].startswith("v_")
    assert session["resumed"] is False
    assert session["site"]["online"] is True
    assert [f["name"] for f in session["site"]["prechat_fields"]] == ["name", "topic"]
    assert session["site"]["agent"]["name"] == "Ada"


@pytest.mark.parametrize(
    ("auth", "code"),
    [
        ({"site_key": "nope"}, "bad_site_key"),
        ({}, "invalid_payload"),
        (None, "invalid_payload"),
        ({"site_key": 42}, "invalid_payload"),
    ],
)
async def test_bad_site_key_or_auth_is_refused(
    stack: DevStack, visitor: Visitor, auth: object, code: str
) -> None:
    error = await visitor.refused(stack.url, auth)
    assert error["data"]["code"] == code
    assert error["message"]


async def test_message_is_ingested_and_acked_with_ids(stack: DevStack, visitor: Visitor) -> None:
    session = await visitor.connect(stack.url, AUTH)
    ack = await visitor.call(
        "message", {"text": "hello", "client_id": "m1", "page_url": "https://shop.example/cart"}
    )
    assert set(ack) == {"id", "conversation_id"}
    [inbound] = stack.ingest.inbounds
    assert inbound.channel is ChannelKind.WEBCHAT and inbound.channel_id == "site-a"
    assert inbound.external_id == f"{session['visitor_id']}:m1"
    assert inbound.sender == Address(AddressKind.VISITOR, session["visitor_id"])
    assert inbound.text == "hello"
    assert inbound.metadata["offline"] is False
    assert inbound.metadata["page_url"] == "https://shop.example/cart"
    receipt = stack.ingest.receipts[("site-a", inbound.external_id)]
    assert ack == {"id": receipt.interaction_id, "conversation_id": receipt.conversation_id}


async def test_repeated_client_id_is_stored_once_with_the_same_ack(
    stack: DevStack, visitor: Visitor
) -> None:
    session = await visitor.connect(stack.url, AUTH)
    first = await visitor.call("message", {"text": "once", "client_id": "dup-1"})
    again = await visitor.call("message", {"text": "once", "client_id": "dup-1"})
    assert first == again
    assert len(stack.ingest.inbounds) == 1
    history = await visitor.call("history", {})
    assert [m["id"] for m in history["messages"]] == [first["id"]]
    assert stack.history.entries[("site-a", session["visitor_id"])][0].client_id == "dup-1"


async def test_agent_reply_reaches_the_visitor_and_history(
    stack: DevStack, visitor: Visitor
) -> None:
    session = await visitor.connect(stack.url, AUTH)
    ack = await visitor.call("message", {"text": "hi", "client_id": "a"})
    result = await stack.channel.send(
        reply(
            stack,
            session["visitor_id"],
            ack["conversation_id"],
            "Hello, how can I help?",
            "out-1",
            message_id="i99",
            author_avatar_url="/a.png",
        )
    )
    message = await visitor.next("message")
    assert result.external_id == "i99"
    assert message["id"] == "i99" and message["conversation_id"] == ack["conversation_id"]
    assert message["text"] == "Hello, how can I help?"
    assert message["author"] == {"type": "agent", "name": "Grace", "avatar_url": "/a.png"}
    assert datetime.fromisoformat(message["at"]).tzinfo is not None
    history = await visitor.call("history", {})
    assert [m["author"]["type"] for m in history["messages"]] == ["visitor", "agent"]


async def test_send_to_a_non_visitor_or_unknown_site_is_permanent(stack: DevStack) -> None:
    bad = Outbound(
        channel=ChannelKind.WEBCHAT,
        channel_id="site-a",
        conversation_id="c",
        to=Address(AddressKind.EMAIL, "a@b.c"),
        text="x",
        idempotency_key="k",
    )
    with pytest.raises(PermanentChannelError):
        await stack.channel.send(bad)
    with pytest.raises(PermanentChannelError):
        await stack.channel.send(reply(stack, "v_x", "c", "x", "k", site="gone"))


async def test_resume_with_token_keeps_visitor_and_history(stack: DevStack) -> None:
    first = Visitor()
    session = await first.connect(stack.url, AUTH)
    ack = await first.call("message", {"text": "before reload", "client_id": "r1"})
    await first.close()
    await stack.channel.send(
        reply(
            stack, session["visitor_id"], ack["conversation_id"], "answered while away", "out-away"
        )
    )
    second = Visitor()
    resumed = await second.connect(stack.url, {**AUTH, "visitor_token": session["visitor_token"]})
    assert resumed["resumed"] is True
    assert resumed["visitor_id"] == session["visitor_id"]
    assert resumed["visitor_token"] == session["visitor_token"]
    history = await second.call("history", {"limit": 10})
    assert [m["text"] for m in history["messages"]] == ["before reload", "answered while away"]
    await second.close()
    stranger = Visitor()
    fresh = await stranger.connect(stack.url, {**AUTH, "visitor_token": "x" * 43})
    assert fresh["resumed"] is False and fresh["visitor_id"] != session["visitor_id"]
    assert (await stranger.call("history", {}))["messages"] == []
    await stranger.close()


async def test_other_tabs_see_both_sides(stack: DevStack, visitor: Visitor) -> None:
    session = await visitor.connect(stack.url, AUTH)
    tab2 = Visitor()
    await tab2.connect(stack.url, {**AUTH, "visitor_token": session["visitor_token"]})
    ack = await visitor.call("message", {"text": "from tab 1", "client_id": "t1"})
    echoed = await tab2.next("message")
    assert echoed["id"] == ack["id"] and echoed["author"]["type"] == "visitor"
    await stack.channel.send(
        reply(stack, session["visitor_id"], ack["conversation_id"], "both", "o")
    )
    assert (await visitor.next("message"))["text"] == "both"
    assert (await tab2.next("message"))["text"] == "both"
    assert visitor.pending("message") == 0  # the sender tab does not get its own echo
    await tab2.close()


@pytest.mark.parametrize(
    ("event", "payload", "code", "field"),
    [
        ("message", "just text", "invalid_payload", None),
        ("message", {"text": "x"}, "invalid_payload", "client_id"),
        ("message", {"text": "x", "client_id": "bad id!"}, "invalid_payload", "client_id"),
        ("message", {"text": "   ", "client_id": "e"}, "invalid_payload", "text"),
        ("message", {"text": "y" * 4001, "client_id": "l"}, "too_long", "text"),
        ("message", {"text": 5, "client_id": "n"}, "invalid_payload", "text"),
        ("launch_rockets", {}, "unknown_event", None),
        ("typing", {"typing": "yes"}, "invalid_payload", "typing"),
        ("receipt", {"ids": [], "status": "read"}, "invalid_payload", "ids"),
        ("receipt", {"ids": ["a"], "status": "sent"}, "invalid_payload", "status"),
        ("history", {"limit": 0}, "invalid_payload", "limit"),
        ("prechat", {"fields": {"topic": "billing"}}, "required", "fields.name"),
        ("prechat", {"fields": {"name": "Bo", "topic": "cars"}}, "invalid_payload", "fields.topic"),
    ],
)
async def test_malformed_payloads_get_error_acks_and_nothing_breaks(
    stack: DevStack,
    visitor: Visitor,
    event: str,
    payload: object,
    code: str,
    field: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await visitor.connect(stack.url, AUTH)
    ack = await visitor.call(event, payload)
    assert ack["error"]["code"] == code
    assert ack["error"].get("field") == field
    assert ack["error"]["message"]
    assert any("refused" in r.getMessage() for r in caplog.records)
    assert stack.ingest.inbounds == []
    ok = await visitor.call("message", {"text": "still fine", "client_id": "after"})
    assert "id" in ok


async def test_two_arguments_are_refused(stack: DevStack, visitor: Visitor) -> None:
    await visitor.connect(stack.url, AUTH)
    ack = await visitor.call("message", {"text": "a", "client_id": "a"}, "extra")
    assert ack["error"]["code"] == "invalid_payload"


async def test_attachments_binary_and_base64(stack: DevStack, visitor: Visitor) -> None:
    await visitor.connect(stack.url, AUTH)
    ack = await visitor.call(
        "message",
        {
            "text": "",
            "client_id": "f1",
            "attachments": [
                {"name": "../../shot.png", "type": "image/png", "data": PNG},
                {
                    "name": "notes.txt",
                    "type": "text/plain",
                    "data": base64.b64encode("héllo".encode()).decode(),
                },
            ],
        },
    )
    assert "id" in ack
    [inbound] = stack.ingest.inbounds
    png, txt = inbound.attachments
    assert (png.filename, png.content_type, png.data) == ("shot.png", "image/png", PNG)
    assert txt.data.decode() == "héllo"
    history = await visitor.call("history", {})
    [file1, file2] = history["messages"][0]["attachments"]
    assert file1["data"] == PNG and file1["size"] == len(PNG) and file2["type"] == "text/plain"


@pytest.mark.parametrize(
    ("attachments", "code"),
    [
        ([{"name": "a.html", "type": "text/html", "data": b"<p>x</p>"}], "attachment_type"),
        ([{"name": "fake.png", "type": "image/png", "data": b"<script>"}], "attachment_type"),
        (
            [{"name": "big.png", "type": "image/png", "data": PNG + b"\x00" * 1000}],
            "attachment_too_large",
        ),
        ([{"name": "p.png", "type": "image/png", "data": PNG}] * 3, "too_many_attachments"),
        ([{"name": "b.png", "type": "image/png", "data": "!!not base64"}], "invalid_payload"),
        ([{"name": "e.png", "type": "image/png", "data": b""}], "invalid_payload"),
    ],
)
async def test_attachment_limits(
    stack: DevStack, visitor: Visitor, attachments: object, code: str
) -> None:
    await visitor.connect(stack.url, {"site_key": "site-tight"})
    ack = await visitor.call("message", {"text": "f", "client_id": "f", "attachments": attachments})
    assert ack["error"]["code"] == code
    assert stack.ingest.inbounds == []


async def test_prechat_answers_travel_in_metadata_and_survive_reload(
    stack: DevStack, visitor: Visitor
) -> None:
    session = await visitor.connect(stack.url, AUTH)
    assert session["prechat"] == {}
    ack = await visitor.call(
        "prechat", {"fields": {"name": " Bo ", "topic": "tech", "evil": "dropped"}}
    )
    assert ack == {"ok": True, "prechat": {"name": "Bo", "topic": "tech"}}
    await visitor.call("message", {"text": "hi", "client_id": "p"})
    [inbound] = stack.ingest.inbounds
    assert inbound.metadata["prechat"] == {"name": "Bo", "topic": "tech"}
    assert inbound.sender_name == "Bo"
    again = Visitor()
    resumed = await again.connect(stack.url, {**AUTH, "visitor_token": session["visitor_token"]})
    assert resumed["prechat"] == {"name": "Bo", "topic": "tech"}
    await again.close()


async def test_offline_when_no_agent_and_offline_form(stack: DevStack, visitor: Visitor) -> None:
    stack.availability.offline.add("site-a")
    session = await visitor.connect(stack.url, AUTH)
    assert session["site"]["online"] is False
    assert await visitor.call("message", {"text": "anyone?", "client_id": "o1"})
    form = {
        "client_id": "o2",
        "text": "call me back",
        "fields": {"name": "Cy", "email": "cy@example.com"},
    }
    ack = await visitor.call("offline", form)
    assert "id" in ack
    plain, offline = stack.ingest.inbounds
    assert plain.metadata["offline"] is True
    assert offline.metadata["offline_form"] == {"name": "Cy", "email": "cy@example.com"}
    assert offline.sender_name == "Cy" and offline.text == "call me back"
    bad = await visitor.call(
        "offline", {**form, "client_id": "o3", "fields": {"name": "Cy", "email": "nope"}}
    )
    assert bad["error"]["field"] == "fields.email"
    await stack.channel.set_online("site-a", True)
    assert await visitor.next("availability") == {"online": True}


@pytest.mark.parametrize(
    ("now", "online"),
    [
        (datetime(2026, 11, 23, 9, 30, tzinfo=UTC), True),  # Monday 10:30 in Paris
        (datetime(2026, 11, 23, 17, 30, tzinfo=UTC), False),  # Monday 18:30 in Paris
        (datetime(2026, 11, 28, 9, 30, tzinfo=UTC), False),  # Saturday
    ],
)
async def test_business_hours_decide_online(now: datetime, online: bool) -> None:
    hours = SiteConfig(
        "site-h", business_hours=BusinessHours.weekdays("09:00", "18:00", "Europe/Paris")
    )
    async with dev_stack(hours, now=lambda: now) as running:
        v = Visitor()
        session = await v.connect(running.url, {"site_key": "site-h"})
        assert session["site"]["online"] is online
        await v.call("message", {"text": "hours?", "client_id": "h"})
        assert running.ingest.inbounds[0].metadata["offline"] is (not online)
        await v.close()


async def test_per_visitor_and_per_ip_rate_limits(stack: DevStack) -> None:
    tight = {"site_key": "site-tight"}
    one, two = Visitor(), Visitor()
    await one.connect(stack.url, tight)
    acks = [await one.call("message", {"text": "m", "client_id": f"m{i}"}) for i in range(4)]
    assert all("id" in a for a in acks[:3])
    assert acks[3]["error"]["code"] == "rate_limited"
    assert acks[3]["error"]["retry_after"] > 0
    await two.connect(stack.url, tight)  # same IP, another visitor: 2 IP tokens left
    acks = [await two.call("message", {"text": "m", "client_id": f"n{i}"}) for i in range(3)]
    assert ["id" in a for a in acks] == [True, True, False]
    assert acks[2]["error"]["code"] == "rate_limited"
    assert len(stack.ingest.inbounds) == 5
    await one.close()
    await two.close()
    # connects per IP: 2 used above, 2 more allowed, the 5th refused
    for _ in range(2):
        v = Visitor()
        await v.connect(stack.url, tight)
        await v.close()
    refused = await Visitor().refused(stack.url, tight)
    assert refused["data"]["code"] == "rate_limited"


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        ("https://shop.example", True),
        ("https://eu.example.org", True),
        ("https://evil.example", False),
        ("http://shop.example", False),
        (None, True),  # non-browser clients send no Origin
    ],
)
async def test_origin_allow_list(stack: DevStack, origin: str | None, accepted: bool) -> None:
    v = Visitor()
    if accepted:
        await v.connect(stack.url, AUTH, origin=origin)
        await v.close()
    else:
        assert (await v.refused(stack.url, AUTH, origin=origin))["data"]["code"] == (
            "origin_not_allowed"
        )


async def test_typing_and_receipts_both_ways(stack: DevStack, visitor: Visitor) -> None:
    session = await visitor.connect(stack.url, AUTH)
    vid = session["visitor_id"]
    assert await visitor.call("typing", {"typing": True}) == {"ok": True}
    ack = await visitor.call("message", {"text": "q", "client_id": "q"})
    await stack.channel.send(reply(stack, vid, ack["conversation_id"], "a", "o", message_id="r1"))
    await visitor.next("message")
    assert await visitor.call("receipt", {"ids": ["r1"], "status": "read"}) == {"ok": True}
    kinds = [(s.kind, s.typing, s.message_ids) for s in stack.signals.signals]
    assert kinds == [("typing", True, ()), ("read", False, ("r1",))]
    await stack.channel.send_typing("site-a", vid, True, "Grace")
    assert await visitor.next("typing") == {
        "typing": True,
        "author": {"type": "agent", "name": "Grace"},
    }
    await stack.channel.mark("site-a", vid, [ack["id"]], MarkStatus.READ)
    assert await visitor.next("receipt") == {"ids": [ack["id"]], "status": "read"}
    statuses = {m["id"]: m["status"] for m in (await visitor.call("history", {}))["messages"]}
    assert statuses == {ack["id"]: "read", "r1": "read"}


async def test_hub_outage_is_retryable_and_nothing_is_lost(
    stack: DevStack, visitor: Visitor
) -> None:
    await visitor.connect(stack.url, AUTH)
    real = stack.ingest
    calls = 0

    async def flaky(inbound: object) -> object:
        nonlocal calls
        calls += 1
        raise TransientChannelError("db down")

    stack.channel._sink = flaky  # type: ignore[assignment]
    failed = await visitor.call("message", {"text": "keep me", "client_id": "k"})
    assert failed["error"] == {
        "code": "unavailable",
        "message": "not stored, retry later",
        "retryable": True,
    }
    stack.channel._sink = real
    ok = await visitor.call("message", {"text": "keep me", "client_id": "k"})
    assert "id" in ok and calls == 1 and [i.text for i in real.inbounds] == ["keep me"]


async def test_polling_transport_works_too() -> None:
    async with dev_stack(*SITES) as running:
        visitor = Visitor()
        await visitor.connect(running.url, AUTH, transport="polling")
        ack = await visitor.call("message", {"text": "over polling", "client_id": "pl"})
        assert "id" in ack and running.ingest.inbounds[0].text == "over polling"
        # a graceful close waits for the pending long-poll (ping timeout); drop it instead
        await visitor.client.eio.disconnect(abort=True)


async def test_it_is_a_channel_and_serves_many_sites(stack: DevStack) -> None:
    assert isinstance(stack.channel, Channel)
    assert stack.channel.kind is ChannelKind.WEBCHAT
    a, b = Visitor(), Visitor()
    await a.connect(stack.url, AUTH)
    await b.connect(stack.url, {"site_key": "site-tight"})
    await a.call("message", {"text": "on a", "client_id": "x"})
    await b.call("message", {"text": "on tight", "client_id": "x"})
    assert [(i.channel_id, i.text) for i in stack.ingest.inbounds] == [
        ("site-a", "on a"),
        ("site-tight", "on tight"),
    ]
    await a.close()
    await b.close()


async def test_agent_files_go_as_binary_or_as_links(stack: DevStack, visitor: Visitor) -> None:
    session = await visitor.connect(stack.url, AUTH)
    pdf = Attachment("label.pdf", "application/pdf", b"%PDF-1.7 label")
    png = Attachment("map.png", "image/png", PNG)
    outbound = Outbound(
        channel=ChannelKind.WEBCHAT,
        channel_id="site-a",
        conversation_id="c1",
        to=Address(AddressKind.VISITOR, session["visitor_id"]),
        text="files",
        idempotency_key="f1",
        attachments=(pdf, png),
        metadata={"attachment_urls": ["https://hub.example/media/abc"]},
    )
    await stack.channel.send(outbound)
    first, second = (await visitor.next("message"))["attachments"]
    assert first == {
        "name": "label.pdf",
        "type": "application/pdf",
        "size": 14,
        "url": "https://hub.example/media/abc",
    }
    assert second == {"name": "map.png", "type": "image/png", "size": len(PNG), "data": PNG}
    await stack.channel.send(outbound)  # a retried send replaces, never duplicates
    assert len((await visitor.call("history", {}))["messages"]) == 1


async def test_message_text_never_reaches_logs_above_debug(
    stack: DevStack, visitor: Visitor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    session = await visitor.connect(stack.url, AUTH)
    secret = "my card is 4111 1111 1111 1111"
    await visitor.call("message", {"text": secret, "client_id": "s1"})
    await visitor.call("message", {"text": secret, "client_id": "s1"})
    await visitor.call("message", {"text": secret * 200, "client_id": "s2"})
    await visitor.call("message", {"text": secret})
    await visitor.call(secret, {})
    await stack.channel.send(reply(stack, session["visitor_id"], "c", secret, "o"))
    loud = [r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG]
    assert loud and not any("4111" in line or session["visitor_id"] in line for line in loud)


async def test_store_failure_at_connect_is_a_clear_refusal(
    stack: DevStack, visitor: Visitor, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(site_key: str, /) -> SiteConfig | None:
        raise OSError("database is down")

    stack.sites.get_site = broken  # type: ignore[method-assign]
    error = await visitor.refused(stack.url, AUTH)
    assert error["data"] == {"code": "unavailable", "message": "chat is unavailable, retry later"}
    assert "widget connect failed" in caplog.text
