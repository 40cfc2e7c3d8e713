"""A hub restart while an agent's phone rings: the restored offer rings the phone again at once.

The dispatcher restores a live offer from the database without sending it again (no second
``offer`` event), so without help the agent's phone would stay silent until the offer expired
while the caller waits. Here the hub dies while agent 1's phone rings (nobody answers it); the
agent then moves to another phone (``voice_endpoint`` agent2, which answers); after the restart
the same offer rings the new phone well before its 20 s time to live is over, and the answer
assigns the call under that offer.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy import func, select

from hub.db.models import Offer
from hub.domain import Role
from tests.conftest import Db
from tests.hub.server import running_hub
from tests.hub.test_dispatch import AgentSocket, ready
from tests.hub.test_voice_hub import agent_speech, asterisk
from tests.hub.voice_helpers import (
    CUSTOMER,
    SQLITE_ONLY,
    agent_phone,
    call_events,
    call_in,
    caller_values,
    conversation,
    customer_phone,
    dial,
    set_voice_endpoint,
    setup_center,
    setup_outbound,
    silent_phone,
    stored_timeline,
    voice_channel,
    wait_call_state,
    wait_ringing,
    wait_status,
)
from tests.servers.asterisk import AsteriskTestbed

__all__ = ["agent_speech", "asterisk"]  # fixtures shared with the inbound voice tests


@SQLITE_ONLY
async def test_restored_offer_rings_the_phone_again_right_after_a_restart(
    db: Db, asterisk: AsteriskTestbed, agent_speech: Path, tmp_path: Path
) -> None:
    tb = asterisk
    await setup_center(db, tb)
    silent = silent_phone(tb, tmp_path)
    async with running_hub(db) as hub:
        channel = await voice_channel(hub)
        tok = hub.tokens[Role.AGENT]
        agent_id = hub.agent_ids["agent@t.test"]
        sock = AgentSocket(hub, tok)
        await sock.__aenter__()
        await ready(hub, tok)
        caller = call_in(tb, tmp_path, caller_values(agent_speech))
        offer = await sock.next("offer", timeout=15)
        conv_id = offer["conversation_id"]
        await wait_ringing(channel)  # agent 1's phone rings
        # a crash: the process dies with the offer live and never sees the socket close
        hub.services.extras.pop("dispatcher")
    await sock.client.disconnect()
    await set_voice_endpoint(db, agent_id, "PJSIP/agent2")  # the agent moved desks meanwhile
    phone = agent_phone(tb, tmp_path, agent_speech, line="agent2", ring_ms=300)
    t = time.monotonic()
    async with running_hub(db, seed=False) as hub2:
        async with asyncio.timeout(10):  # well inside the offer's 20 s time to live
            while (conv := await conversation(hub2, conv_id))["status"] != "assigned":
                await asyncio.sleep(0.1)
        assigned_after = time.monotonic() - t
        assert conv["assignee_id"] == agent_id
        tok2 = hub2.tokens[Role.AGENT]
        async with hub2.client(token=tok2) as c:
            assert (await c.get(f"/api/calls/{conv_id}")).json()["state"] == "connected"
            assert (await c.post(f"/api/calls/{conv_id}/hangup")).status_code == 200
        await wait_status(hub2, conv_id, "resolved")
    for p in (silent, phone, caller):
        assert await asyncio.to_thread(p.wait, 10) == 0, p.errors()
    async with db.sessions() as s:
        offers = (await s.execute(select(func.count()).select_from(Offer))).scalar_one()
    assert offers == 1  # the restored offer rang and was accepted; nothing offered twice
    assert assigned_after < 10, assigned_after
    items = await stored_timeline(db, conv_id)
    assignment = [i for i in items if i["kind"] == "assignment"]
    assert assignment and assignment[0]["payload"]["offer_id"] == offer["offer_id"]
    events = call_events(items)
    answered = [e for e in events if e["event"] == "agent_answered"]
    assert len(answered) == 1 and answered[0]["endpoint"] == "PJSIP/agent2", events
    print(f"\nassigned {assigned_after * 1000:.0f} ms after the restart began")


@SQLITE_ONLY
async def test_click_to_call_cut_by_a_restart_is_hung_up_and_resolved_as_lost(
    db: Db, asterisk: AsteriskTestbed, agent_speech: Path, tmp_path: Path
) -> None:
    """Outbound calls are not adopted across a restart: the new process hangs up their legs
    (so no phone stays connected to a call nobody records) and resolves the conversation as
    ``lost``, which frees the agent in the router."""
    tb = asterisk
    await setup_outbound(db, tb)
    phone = agent_phone(tb, tmp_path, agent_speech, ring_ms=100)
    customer = customer_phone(tb, tmp_path, "agent", name="customer", ring_ms="100",
                              speech_pcap=str(agent_speech))
    async with running_hub(db) as hub:
        await voice_channel(hub)
        tok = hub.tokens[Role.AGENT]
        agent_id = hub.agent_ids["agent@t.test"]
        await ready(hub, tok)
        status, out = await dial(hub, tok, number=CUSTOMER)
        assert status == 201, out
        conv_id = str(out["conversation_id"])
        await wait_call_state(hub, tok, conv_id, "connected")
        hub.services.extras.pop("dispatcher")  # a crash: nothing is cleaned up
    async with running_hub(db, seed=False) as hub2:
        done = await wait_status(hub2, conv_id, "resolved", timeout=15)
        dispatcher = hub2.services.extras["dispatcher"]
        async with asyncio.timeout(5):
            while (view := dispatcher.router.agent(agent_id)) is not None and view.held:
                await asyncio.sleep(0.1)
        for p in (phone, customer):  # both phones were hung up
            assert await asyncio.to_thread(p.wait, 10) == 0, p.errors()
    assert done["attributes"]["call"]["outcome"] == "lost", done["attributes"]
    assert done["attributes"]["call"]["end_reason"] == "hub_restart"
    assert done["attributes"]["call"]["direction"] == "outbound"
