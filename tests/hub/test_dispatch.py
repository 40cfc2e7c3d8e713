"""The router and dispatcher through the real hub: offers, accept/decline, expiry, disconnect,
restart. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio
from sqlalchemy import select

from channels.base import ChannelKind
from hub.config import apply_config, parse_config
from hub.db.models import Conversation, Interaction, Offer
from hub.domain import Role
from tests.conftest import Db
from tests.hub.helpers import inbound
from tests.hub.server import PASSWORD, RunningHub, running_hub

CENTER = """
skills: [english]
queues:
  - name: general
    required_skills: [{{skill: english, min_level: 1}}]
    offer_ttl_s: {ttl}
channels:
  - kind: sms
    name: sms-line
    address: "+14155550100"
    queue: general
agents:
  - email: agent@t.test
    name: Agent
    skills: {{english: 3}}
    capacity: {{sms: 2, webchat: 2}}
  - email: agent2@t.test
    name: Agent2
    skills: {{english: 5}}
    capacity: {{sms: 2, webchat: 2}}
"""


async def setup_center(db: Db, ttl: int = 30) -> None:
    await apply_config(db.sessions, parse_config(CENTER.format(ttl=ttl)), env={})


class AgentSocket:
    """A logged-in agent's browser connection collecting pushed events."""

    def __init__(self, hub: RunningHub, token: str) -> None:
        self.hub, self.token = hub, token
        self.client = socketio.AsyncClient()
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        for name in ("offer", "offer.revoked", "conversation.assigned", "agent.presence"):
            self.client.on(name, self._collect(name), namespace="/agent")

    def _collect(self, name: str) -> Any:
        async def handler(data: Any) -> None:
            await self.events.put((name, data))

        return handler

    async def __aenter__(self) -> AgentSocket:
        await self.client.connect(
            self.hub.url,
            namespaces=["/agent"],
            transports=["websocket"],
            auth={"token": self.token},
            wait_timeout=5,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.disconnect()

    async def next(self, name: str, timeout: float = 10) -> Any:
        while True:
            got, data = await asyncio.wait_for(self.events.get(), timeout)
            if got == name:
                return data


async def login(hub: RunningHub, email: str) -> str:
    async with hub.client() as c:
        r = await c.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        return str(r.json()["token"])


async def ready(hub: RunningHub, token: str) -> None:
    async with hub.client(token=token) as c:
        r = await c.put("/api/agents/me/presence", json={"presence": "ready"})
        assert r.status_code == 200, r.text


async def test_offer_accept_assigns_with_audited_reason(db: Db) -> None:
    await setup_center(db)
    async with running_hub(db) as hub:
        tok = hub.tokens[Role.AGENT]
        async with AgentSocket(hub, tok) as sock:
            await ready(hub, tok)
            receipt = await hub.services.ingestor(
                inbound(ChannelKind.SMS, "+14155550111", "in-1", "hello", channel_id="+14155550100")
            )
            offer = await sock.next("offer")
            assert offer["conversation_id"] == receipt.conversation_id
            assert offer["reason"]["candidates"][0]["id"] == hub.agent_ids["agent@t.test"]
            async with hub.client(token=tok) as c:
                listed = (await c.get("/api/offers")).json()["items"]
                assert [o["offer_id"] for o in listed] == [offer["offer_id"]]
                r = await c.post(f"/api/offers/{offer['offer_id']}/accept")
                assert r.status_code == 200, r.text
                again = await c.post(f"/api/offers/{offer['offer_id']}/accept")
                assert again.status_code == 409 and again.json()["code"] == "offer_not_live"
                conv = (await c.get(f"/api/conversations/{receipt.conversation_id}")).json()
                assert conv["status"] == "assigned"
                assert conv["assignee_id"] == hub.agent_ids["agent@t.test"]
                queues = (await c.get("/api/queues")).json()
                assert queues["items"][0]["live"]["answered"] == 1
        async with db.sessions() as s:
            kinds = [
                (i.kind, i.payload.get("reason", {}).get("rule"))
                for i in (
                    await s.execute(
                        select(Interaction)
                        .where(Interaction.conversation_id == receipt.conversation_id)
                        .order_by(Interaction.seq)
                    )
                ).scalars()
            ]
        assert [k for k, _ in kinds] == ["message", "offer", "assignment"]
        assert all(rule for _, rule in kinds[1:])  # every decision carries its reason


async def test_declined_offer_goes_to_next_agent_and_other_agents_cannot_take_it(db: Db) -> None:
    await setup_center(db)
    async with running_hub(db) as hub:
        t1, t2 = hub.tokens[Role.AGENT], await login(hub, "agent2@t.test")
        async with AgentSocket(hub, t1) as s1, AgentSocket(hub, t2) as s2:
            await ready(hub, t1)
            await ready(hub, t2)
            await hub.services.ingestor(
                inbound(ChannelKind.SMS, "+14155550112", "in-2", channel_id="+14155550100")
            )
            # longest idle: agent (ready first) gets it; agent2 may not accept agent's offer
            first = await s1.next("offer")
            async with hub.client(token=t2) as c2:
                stolen = await c2.post(f"/api/offers/{first['offer_id']}/accept")
                assert stolen.status_code == 404
            async with hub.client(token=t1) as c1:
                assert (
                    await c1.post(f"/api/offers/{first['offer_id']}/decline")
                ).status_code == 200
            second = await s2.next("offer")
            assert second["conversation_id"] == first["conversation_id"]
            assert second["offer_id"] != first["offer_id"]


async def test_expired_offers_move_on_and_missed_agent_goes_not_ready(db: Db) -> None:
    await setup_center(db, ttl=1)
    async with running_hub(db) as hub:
        tok = hub.tokens[Role.AGENT]
        async with AgentSocket(hub, tok) as sock:
            await ready(hub, tok)
            for i in range(3):
                await hub.services.ingestor(
                    inbound(
                        ChannelKind.SMS, f"+1415555012{i}", f"exp-{i}", channel_id="+14155550100"
                    )
                )
            offers, revoked = [], []
            while True:
                name, data = await asyncio.wait_for(sock.events.get(), 15)
                if name == "offer":
                    offers.append(data)
                elif name == "offer.revoked":
                    revoked.append(data)
                elif name == "agent.presence" and data["presence"] == "not_ready":
                    assert data["presence_reason"] == "missed"
                    break
            assert len(offers) == 3 and len(revoked) == 3
        async with db.sessions() as s:
            statuses = {o.status for o in (await s.execute(select(Offer))).scalars()}
            convs = {c.status for c in (await s.execute(select(Conversation))).scalars()}
        assert statuses == {"expired"} and convs == {"queued"}  # nothing lost


async def test_disconnect_revokes_offer_at_once(db: Db) -> None:
    await setup_center(db)
    async with running_hub(db) as hub:
        tok = hub.tokens[Role.AGENT]
        sock = AgentSocket(hub, tok)
        await sock.__aenter__()
        await ready(hub, tok)
        await hub.services.ingestor(
            inbound(ChannelKind.SMS, "+14155550130", "dc-1", channel_id="+14155550100")
        )
        offer = await sock.next("offer")
        await sock.__aexit__()
        for _ in range(100):
            async with db.sessions() as s:
                o = await s.get(Offer, offer["offer_id"])
                assert o is not None
                if o.status != "pending":
                    break
            await asyncio.sleep(0.05)
        assert o is not None and o.status == "revoked"


async def test_restart_restores_live_offer_without_resending(db: Db) -> None:
    await setup_center(db)
    async with running_hub(db) as hub:
        tok = hub.tokens[Role.AGENT]
        sock = AgentSocket(hub, tok)
        await sock.__aenter__()
        await ready(hub, tok)
        r = await hub.services.ingestor(
            inbound(ChannelKind.SMS, "+14155550140", "rs-1", channel_id="+14155550100")
        )
        offer = await sock.next("offer")
        # a crash: the process dies with the offer live and never sees the socket close
        hub.services.extras.pop("dispatcher")
    await sock.client.disconnect()
    async with running_hub(db, seed=False) as hub2:
        dispatcher = hub2.services.extras["dispatcher"]
        for _ in range(300):
            if dispatcher.router.work(r.conversation_id) is not None:
                break
            await asyncio.sleep(0.05)
        view = dispatcher.router.work(r.conversation_id)
        assert view is not None and view.offer_id == offer["offer_id"]
        async with db.sessions() as s:
            n_offers = len((await s.execute(select(Offer))).scalars().all())
        assert n_offers == 1  # restored, not offered twice
        tok2 = await login(hub2, "agent@t.test")
        async with hub2.client(token=tok2) as c:
            assert (await c.post(f"/api/offers/{offer['offer_id']}/accept")).status_code == 200
            conv = (await c.get(f"/api/conversations/{r.conversation_id}")).json()
            assert conv["status"] == "assigned"


async def test_restart_requeues_offer_that_expired_while_down(db: Db) -> None:
    await setup_center(db, ttl=1)
    async with running_hub(db) as hub:
        tok = hub.tokens[Role.AGENT]
        sock = AgentSocket(hub, tok)
        await sock.__aenter__()
        await ready(hub, tok)
        r = await hub.services.ingestor(
            inbound(ChannelKind.SMS, "+14155550141", "rs-2", channel_id="+14155550100")
        )
        first = await sock.next("offer")
        hub.services.extras.pop("dispatcher")
    await sock.client.disconnect()
    await asyncio.sleep(1.2)  # the offer's TTL passes while no hub runs
    async with running_hub(db, seed=False):
        # the rebuild marks the stale offer expired and routes the work again: a new offer is
        # persisted (with a 1 s TTL it may itself expire before we look, which is fine)
        for _ in range(300):
            async with db.sessions() as s:
                offers = {
                    o.id: o.status
                    for o in (
                        await s.execute(
                            select(Offer).where(Offer.conversation_id == r.conversation_id)
                        )
                    ).scalars()
                }
            if len(offers) >= 2:
                break
            await asyncio.sleep(0.05)
        assert offers[first["offer_id"]] == "expired"
        assert len(offers) >= 2  # offered again after the restart, nothing lost


def test_service_level_day_ends_at_local_midnight_across_dst() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from hub.dispatch.dispatcher import next_midnight

    paris = ZoneInfo("Europe/Paris")
    # the night clocks go forward (2026-03-29): the day is 23 hours long
    before = datetime(2026, 3, 28, 23, 30, tzinfo=paris).timestamp()
    assert datetime.fromtimestamp(next_midnight(before, paris), paris) == datetime(
        2026, 3, 29, 0, 0, tzinfo=paris
    )
    day = next_midnight(datetime(2026, 3, 29, 0, 0, 1, tzinfo=paris).timestamp(), paris)
    assert day - datetime(2026, 3, 29, 0, 0, tzinfo=paris).timestamp() == 23 * 3600
    exactly = datetime(2026, 6, 1, 0, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    assert next_midnight(exactly, ZoneInfo("UTC")) == exactly + 86400  # strictly after
