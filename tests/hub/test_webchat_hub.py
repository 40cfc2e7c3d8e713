"""Web chat through the real hub: visitor socket -> ingest -> router -> agent -> reply -> visitor,
and resume with history. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
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
