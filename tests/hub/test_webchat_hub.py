"""Web chat through the real hub: visitor socket -> ingest -> router -> agent -> reply -> visitor,
and resume with history. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import socketio

from hub.config import apply_config, parse_config
from hub.domain import Role
from tests.conftest import Db
from tests.hub.server import RunningHub, running_hub
from tests.hub.test_dispatch import AgentSocket, ready

CENTER = """
skills: [english]
queues:
  - name: chat
    required_skills: [{skill: english, min_level: 1}]
channels:
  - kind: webchat
    name: website
    address: site-key-123
    queue: chat
    config:
      title: Acme support
      agent_name: Acme
      allowed_origins: ["*"]
agents:
  - email: agent@t.test
    name: Agent
    skills: {english: 3}
    capacity: {webchat: 3}
"""


class Visitor:
    def __init__(self, hub: RunningHub, token: str | None = None) -> None:
        self.hub, self.token = hub, token
        self.sio = socketio.AsyncClient()
        self.inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        for name in ("session", "message"):
            self.sio.on(name, self._put(name), namespace="/widget")

    def _put(self, name: str) -> Any:
        async def handler(data: Any) -> None:
            await self.inbox.put((name, data))

        return handler

    async def connect(self) -> dict[str, Any]:
        auth = {"site_key": "site-key-123", **({"visitor_token": self.token} if self.token else {})}
        await self.sio.connect(
            self.hub.url,
            namespaces=["/widget"],
            transports=["websocket"],
            auth=auth,
            wait_timeout=5,
        )
        return await self.next("session")

    async def next(self, name: str) -> Any:
        while True:
            got, data = await asyncio.wait_for(self.inbox.get(), 10)
            if got == name:
                return data

    async def call(self, event: str, data: Any) -> Any:
        return await self.sio.call(event, data, namespace="/widget", timeout=10)


async def test_visitor_chat_reaches_agent_and_back(db: Db) -> None:
    await apply_config(db.sessions, parse_config(CENTER), env={})
    async with running_hub(db) as hub:
        status = hub.services.extras["channel_host"].status()
        assert status["failed"] == {}
        tok = hub.tokens[Role.AGENT]
        async with AgentSocket(hub, tok) as agent:
            await ready(hub, tok)
            visitor = Visitor(hub)
            session = await visitor.connect()
            assert session["site"]["name"] == "Acme support" and session["site"]["online"]
            ack = await visitor.call("message", {"text": "Where is my order?", "client_id": "c1"})
            again = await visitor.call("message", {"text": "Where is my order?", "client_id": "c1"})
            assert ack == again and ack["id"].startswith("ix_")  # stored once, same ids
            offer = await agent.next("offer")
            assert offer["conversation_id"] == ack["conversation_id"]
            async with hub.client(token=tok) as c:
                assert (await c.post(f"/api/offers/{offer['offer_id']}/accept")).status_code == 200
                r = await c.post(
                    f"/api/conversations/{ack['conversation_id']}/messages",
                    json={"text": "It ships today!"},
                )
                assert r.status_code == 201, r.text
            reply = await visitor.next("message")
            assert reply["text"] == "It ships today!" and reply["id"] == r.json()["id"]
            assert reply["author"]["type"] == "agent"
            await visitor.sio.disconnect()
            # a reload: same token, same visitor, history from the interaction log
            back = Visitor(hub, session["visitor_token"])
            resumed = await back.connect()
            assert resumed["resumed"] and resumed["visitor_id"] == session["visitor_id"]
            hist = await back.call("history", {})
            assert [m["text"] for m in hist["messages"]] == [
                "Where is my order?",
                "It ships today!",
            ]
            assert hist["messages"][0]["id"] == ack["id"]
            await back.sio.disconnect()
        async with hub.client(Role.SUPERVISOR) as sup:
            timeline = (
                await sup.get(f"/api/conversations/{ack['conversation_id']}/interactions")
            ).json()["items"]
        sent = [i for i in timeline if i["direction"] == "outbound"]
        assert sent[0]["delivery"]["status"] == "sent"


def test_hub_origin_is_always_allowed_but_others_are_not() -> None:
    from hub.db.models import ChannelInstance
    from hub.wiring.webchat import site_config

    row = ChannelInstance(
        id="ch_x",
        kind="webchat",
        name="site",
        address="k",
        config={"allowed_origins": ["https://shop.example"]},
    )
    site = site_config(row, "http://hub.internal:9000")
    assert site.origin_allowed("https://shop.example")
    assert site.origin_allowed("http://hub.internal:9000")  # the hub's own demo page
    assert not site.origin_allowed("https://evil.example")


async def test_expired_sites_are_reloaded_once_while_events_keep_the_old_copy(db: Db) -> None:
    """Every widget event reads its site: when the cache expires under load, ONE background
    load replaces it and the events in flight answer from the old copy meanwhile (each one used
    to run its own load). Only the very first read waits for a load."""
    from hub.wiring.webchat import SITE_CACHE_S, DbSites

    await apply_config(db.sessions, parse_config(CENTER), env={})
    opened = 0

    def counting_sessions() -> Any:
        nonlocal opened
        opened += 1
        return db.sessions()

    sites = DbSites(SimpleNamespace(sessions=counting_sessions, settings=db.settings))  # type: ignore[arg-type]
    first = await asyncio.gather(*(sites.get_site("site-key-123") for _ in range(50)))
    assert opened == 1 and all(s is not None and s.name == "Acme support" for s in first)
    assert await sites.get_site("nope") is None and opened == 1  # cached, unknown key
    sites._loaded -= SITE_CACHE_S + 1  # expired
    stale = await asyncio.gather(*(sites.get_site("site-key-123") for _ in range(50)))
    assert all(s is first[0] for s in stale)  # the old copy, no waiting
    assert sites._loading is not None
    await sites._loading
    assert opened == 2
    fresh = await sites.get_site("site-key-123")
    assert fresh is not None and fresh is not first[0] and opened == 2


async def test_availability_is_cached_briefly_and_dropped_on_presence_change() -> None:
    """A visitor message asks whether an agent could answer; the router snapshot is taken once
    per ``AVAILABILITY_CACHE_S`` per queue, and a presence change forgets the answer at once."""
    from hub.events import Event
    from hub.wiring.webchat import RouterAvailability

    class Router:
        snapshots = 0
        ready = 0

        def snapshot(self) -> dict[str, Any]:
            self.snapshots += 1
            return {"queues": {"q1": {"agents_ready": self.ready, "agents_busy": 0}}}

    class Sites:
        async def get_site(self, key: str) -> object:
            return object()

        def queue_of(self, key: str) -> str:
            return "q1"

    router = Router()
    ctx = SimpleNamespace(extras={"dispatcher": router})
    availability = RouterAvailability(ctx, Sites())  # type: ignore[arg-type]
    assert [await availability.agents_available("k") for _ in range(20)] == [False] * 20
    assert router.snapshots == 1
    router.ready = 1
    await availability.on_event(Event("conversation.queued", {"id": "c"}))  # not presence
    assert await availability.agents_available("k") is False and router.snapshots == 1
    await availability.on_event(Event("agent.presence", {"id": "a", "presence": "ready"}))
    assert await availability.agents_available("k") is True and router.snapshots == 2


async def test_a_chat_message_returns_once_stored_and_its_events_follow(db: Db) -> None:
    """The widget acks when ingest returns: for web chat that is right after the commit, and
    the item's events (agents' sockets, the dispatcher) follow in the same loop tick, in order,
    still only after the commit. Other channels return after publishing, as before."""
    from sqlalchemy import select

    from channels.base import ChannelKind
    from hub.actions import ingest as ingest_module
    from hub.db.models import Interaction
    from hub.events import Event
    from tests.hub.helpers import inbound
    from tests.hub.test_ingest import make_ingestor

    assert ChannelKind.WEBCHAT in ingest_module.ACK_BEFORE_FANOUT
    ingest, bus, _ = make_ingestor(db)
    heard: list[tuple[str, str]] = []
    committed: list[bool] = []

    async def listen(event: Event) -> None:
        heard.append((event.name, str(event.data.get("id"))))
        if event.name == "interaction.created":
            async with db.sessions() as s:  # another connection: sees only committed rows
                committed.append(await s.get(Interaction, event.data["id"]) is not None)

    bus.subscribe(listen)
    at_return: dict[str, list[tuple[str, str]]] = {}

    async def send(channel: ChannelKind, sender: str) -> str:
        receipt = await ingest(inbound(channel, sender, f"{sender}:1"))
        at_return[sender] = list(heard)  # before this task yields to anything else
        async with db.sessions() as s:  # the ack's promise: stored
            assert await s.scalar(select(Interaction.id).where(
                Interaction.id == receipt.interaction_id)) == receipt.interaction_id  # fmt: skip
        return receipt.interaction_id

    chats = await asyncio.gather(*(send(ChannelKind.WEBCHAT, f"v-ack-{n}") for n in range(3)))
    assert all(seen == [] for seen in at_return.values())  # none waited for the fan-out
    await bus.drain()
    created = [ident for name, ident in heard if name == "interaction.created"]
    assert created == chats  # every event, in the batch's order
    assert [name for name, _ in heard].count("conversation.queued") == 3
    assert committed == [True] * 3
    sms = await send(ChannelKind.SMS, "+14155550177")
    assert ("interaction.created", sms) in at_return["+14155550177"]  # published, then returned
