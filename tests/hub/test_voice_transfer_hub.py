"""Transfers through the real hub's REST API, a real Asterisk 22 and sipp phones.

Agent One answers a call (routed by the router, rung by the hub); then transfers it, blind, to
Agent Two (the router offers it to them as preferred agent, their phone rings, answering
accepts it), or to an outside number through the trunk pattern, or attended: the caller
on hold, Agent Two's phone rung as a consult leg, cancelled once and then completed. The timeline
records each step (who, to whom, kind, stage).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from hub.db.models import ChannelInstance
from hub.domain import Role
from tests.channels.voice.test_voice_transfer_e2e import ended
from tests.conftest import Db
from tests.hub.server import RunningHub, running_hub
from tests.hub.test_dispatch import AgentSocket, login, ready
from tests.hub.voice_helpers import (
    SQLITE_ONLY,
    agent_phone,
    asterisk_fixture,
    call_events,
    call_in,
    caller_values,
    conversation,
    ready_agent,
    setup_center,
    speech_fixture,
    stored_timeline,
    timeline,
    voice_channel,
)
from tests.servers.asterisk import AsteriskTestbed, Sipp

asterisk = asterisk_fixture("contacthub-hub")


agent_speech = speech_fixture("Sales, how can I help?")


async def wait_assignee(hub: RunningHub, conv_id: str, agent_id: str) -> dict[str, Any]:
    async with asyncio.timeout(15):
        while (conv := await conversation(hub, conv_id))["assignee_id"] != agent_id:
            await asyncio.sleep(0.1)
    return conv


async def answered_call(hub: RunningHub, tb: AsteriskTestbed, tmp_path: Path,
                        speech: Path) -> tuple[str, Sipp]:
    """A caller routed to Agent One, who answers; returns (conversation id, caller)."""
    caller = call_in(tb, tmp_path, caller_values(speech))
    tok = hub.tokens[Role.AGENT]
    async with ready_agent(hub, tok) as sock:
        offer = await sock.next("offer", timeout=15)
        await sock.next("conversation.assigned", timeout=15)
    return str(offer["conversation_id"]), caller


@dataclass
class OnCall:
    """Agent One on an answered call; Agent Two signed in (socket open, not ready yet)."""

    hub: RunningHub
    conv_id: str
    caller: Sipp
    phone1: Sipp
    token2: str


@contextlib.asynccontextmanager
async def agent_one_on_a_call(db: Db, tb: AsteriskTestbed, tmp_path: Path,
                              speech: Path) -> AsyncIterator[OnCall]:
    """The start of every agent-to-agent transfer: the center, a routed call Agent One answered."""
    await setup_center(db, tb)
    ph1 = agent_phone(tb, tmp_path, speech)
    async with running_hub(db) as hub:
        await voice_channel(hub)
        t2 = await login(hub, "agent2@t.test")
        async with AgentSocket(hub, t2):
            conv_id, caller = await answered_call(hub, tb, tmp_path, speech)
            yield OnCall(hub, conv_id, caller, ph1, t2)


@SQLITE_ONLY
async def test_blind_transfer_to_a_second_agent(
    db: Db, asterisk: AsteriskTestbed, agent_speech: Path, tmp_path: Path
) -> None:
    tb = asterisk
    async with agent_one_on_a_call(db, tb, tmp_path, agent_speech) as on:
        hub, conv_id, t2 = on.hub, on.conv_id, on.token2
        a1, a2 = hub.agent_ids["agent@t.test"], hub.agent_ids["agent2@t.test"]
        ph2 = agent_phone(tb, tmp_path, agent_speech, line="agent2")
        await ready(hub, t2)
        async with hub.client(token=t2) as c2:  # not theirs (yet): invisible to them
            r = await c2.post(f"/api/calls/{conv_id}/transfer", json={"agent_id": a1})
            assert r.status_code == 404, r.text
        async with hub.client(token=hub.tokens[Role.AGENT]) as c1:
            bad = await c1.post(f"/api/calls/{conv_id}/transfer",
                                json={"agent_id": a2, "queue_id": "x"})  # fmt: skip
            assert bad.status_code == 422 and bad.json()["code"] == "invalid_transfer"
            r = await c1.post(f"/api/calls/{conv_id}/transfer",
                              json={"mode": "blind", "agent_id": a2})  # fmt: skip
            # the router may already ring Agent Two's phone when the answer is built
            assert r.status_code == 200 and r.json()["state"] in ("queued", "offering"), r.text
        await ended(on.phone1, timeout=10)  # Agent One's phone hung up at once
        await wait_assignee(hub, conv_id, a2)
        async with hub.client(token=t2) as c2:
            live = (await c2.get(f"/api/calls/{conv_id}")).json()
            assert live["state"] == "connected", live
            assert (await c2.post(f"/api/calls/{conv_id}/hangup")).status_code == 200
    await ended(ph2, on.caller, timeout=10)
    items = await stored_timeline(db, conv_id)
    steps = [(e["kind"], e["stage"], e["from_agent"], e["to"]) for e in
             call_events(items) if e["event"] == "transfer"]
    assert steps == [("blind", "requested", a1, {"agent_id": a2})]
    # then a normal offer from the router to the target agent, whose phone answered
    offers = [i["payload"] for i in items if i["kind"] == "offer" and "reason" in i["payload"]]
    assert offers[-1]["agent_id"] == a2
    assert offers[-1]["reason"]["rule"] == "preferred_agent", offers[-1]
    answered = [e for e in call_events(items) if e["event"] == "agent_answered"]
    assert [e["agent_id"] for e in answered] == [a1, a2]
    assert [i["kind"] for i in items].count("transfer") == 1  # the conversation moved once


@SQLITE_ONLY
async def test_attended_transfer_cancel_then_complete(
    db: Db, asterisk: AsteriskTestbed, agent_speech: Path, tmp_path: Path
) -> None:
    tb = asterisk
    async with agent_one_on_a_call(db, tb, tmp_path, agent_speech) as on:
        hub, conv_id, t2 = on.hub, on.conv_id, on.token2
        channel = await voice_channel(hub)
        a1, a2 = hub.agent_ids["agent@t.test"], hub.agent_ids["agent2@t.test"]
        await ready(hub, t2)
        url = f"/api/calls/{conv_id}/transfer"
        async with hub.client(token=hub.tokens[Role.AGENT]) as c1:
            early = await c1.post(f"{url}/complete")
            assert early.status_code == 409 and early.json()["code"] == "bad_call_state"
            ph2 = agent_phone(tb, tmp_path, agent_speech, line="agent2")
            r = await c1.post(url, json={"mode": "attended", "agent_id": a2})
            assert r.status_code == 200 and r.json()["state"] == "consulted", r.text
            r = await c1.post(f"{url}/cancel")
            assert r.status_code == 200 and r.json()["state"] == "connected", r.text
            await ended(ph2, timeout=10)
            assert (await conversation(hub, conv_id))["assignee_id"] == a1

            ph2 = agent_phone(tb, tmp_path, agent_speech, line="agent2")
            r = await c1.post(url, json={"mode": "attended", "agent_id": a2})
            assert r.status_code == 200 and r.json()["state"] == "consulted", r.text
            r = await c1.post(f"{url}/complete")
            assert r.status_code == 200 and r.json()["state"] == "connected", r.text
        await ended(on.phone1, timeout=10)  # Agent One left
        await wait_assignee(hub, conv_id, a2)
        call_id = next(iter(channel.calls()))
        call = channel.call(call_id)
        assert call is not None and call.agent_channel is not None
        async with hub.client(token=t2) as c2:
            assert (await c2.post(f"/api/calls/{conv_id}/hangup")).status_code == 200
    await ended(ph2, on.caller, timeout=10)
    steps = [(e["kind"], e["stage"], e["to"]) for e in
             call_events(await stored_timeline(db, conv_id)) if e["event"] == "transfer"]
    assert steps == [("attended", s, {"agent_id": a2}) for s in
                     ("consulting", "answered", "cancelled", "consulting", "answered",
                      "completed")]  # fmt: skip


@SQLITE_ONLY
async def test_blind_transfer_to_an_external_number_through_the_trunk_pattern(
    db: Db, asterisk: AsteriskTestbed, agent_speech: Path, tmp_path: Path
) -> None:
    tb = asterisk
    await setup_center(db, tb)
    async with db.sessions() as s, s.begin():  # the "trunk" is a sipp UAS on 127.0.0.1
        row = (await s.execute(select(ChannelInstance))).scalar_one()
        row.config = {**row.config, "outbound_endpoint": "PJSIP/{digits}@agent2"}
    ph1 = agent_phone(tb, tmp_path, agent_speech)
    async with running_hub(db) as hub:
        await voice_channel(hub)
        a1 = hub.agent_ids["agent@t.test"]
        conv_id, caller = await answered_call(hub, tb, tmp_path, agent_speech)
        outside = agent_phone(tb, tmp_path, agent_speech, line="agent2")
        async with hub.client(token=hub.tokens[Role.AGENT]) as c1:
            bad = await c1.post(f"/api/calls/{conv_id}/transfer", json={"number": "12"})
            assert bad.status_code == 422, bad.text
            r = await c1.post(f"/api/calls/{conv_id}/transfer", json={"number": "(415) 555-0199"})
            assert r.status_code == 200, r.text
        await ended(ph1)
        async with asyncio.timeout(15):
            while not [e for e in call_events(await timeline(hub, conv_id))
                       if e.get("stage") == "answered"]:
                await asyncio.sleep(0.1)
        async with hub.client(token=hub.tokens[Role.AGENT]) as c1:
            assert (await c1.get(f"/api/calls/{conv_id}")).json()["state"] == "connected"
            assert (await c1.post(f"/api/calls/{conv_id}/hangup")).status_code == 200
    await ended(outside, caller)
    steps = [(e["stage"], e["from_agent"], e["to"]) for e in
             call_events(await stored_timeline(db, conv_id)) if e["event"] == "transfer"]
    assert steps == [("requested", a1, {"number": "+14155550199"}),
                     ("answered", a1, {"number": "+14155550199"})]
